#!/usr/bin/env python3
"""Writes one deterministic synthetic layer (an uncompressed tar) for the large bench image.

    genlayer.py OUT.tar --seed N --mb SIZE --files COUNT [--prefix DIR] [--whiteouts-of SEED]

Same arguments, same bytes (seeded PRNG, fixed mtimes/owners), so the large image is fixed from
run to run without downloading anything. The contents mimic a software image: a directory tree
under <prefix> with many small files, fewer large ones (log-normal sizes), about half text-like
(compressible) and half binary (incompressible), plus symlinks and hard links.
`--whiteouts-of SEED` writes a small layer instead that deletes part of layer SEED (plain and
opaque whiteouts), so create has whiteouts to apply. Python stdlib only.
"""
import argparse
import io
import math
import random
import tarfile

MTIME = 1700000000
WORDS = ("the of and to in is for on that with as by this be are from at or an it not which "
         "config value return error file path image layer container user root data module "
         "function object string buffer index table state cache thread lock socket stream "
         "include define struct static const void int char unsigned long size_t NULL if else "
         "while for switch case break continue goto typedef enum union extern inline").split()


def text_pool(rng, size):
    out, n = [], 0
    while n < size:
        line = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 14)))
        out.append(line)
        n += len(line) + 1
    return ("\n".join(out) + "\n").encode()[:size]


def add_dir(tf, name, mode=0o755):
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, mode, MTIME
    tf.addfile(ti)


def add_file(tf, name, data, mode=0o644):
    ti = tarfile.TarInfo(name)
    ti.size, ti.mode, ti.mtime = len(data), mode, MTIME
    tf.addfile(ti, io.BytesIO(data))


def layout(seed, files, prefix):
    """(dirs, [(path, size, kind)]) for layer `seed`; also used to derive whiteouts."""
    rng = random.Random(seed)
    dirs, paths = [], []
    ndirs = max(4, files // 40)
    for d in range(ndirs):
        depth = 1 + d % 3
        parts = [f"{prefix}/pkg{seed}-{d // 9:03d}"] + [f"sub{(d * 7 + k) % 13:02d}" for k in range(1, depth)]
        dirs.append("/".join(parts))
    dirs = sorted(set(dirs))
    for i in range(files):
        d = dirs[rng.randrange(len(dirs))]
        size = int(min(8 << 20, math.exp(rng.gauss(8.3, 1.9))))  # median ~4 KB, tail to 8 MB
        kind = "text" if rng.random() < 0.55 else "bin"
        paths.append((f"{d}/f{i:06d}.{'txt' if kind == 'text' else 'so'}", size, kind))
    return rng, dirs, paths


def write_layer(out, seed, mb, files, prefix):
    rng, dirs, paths = layout(seed, files, prefix)
    target = mb << 20
    total = sum(s for _, s, _ in paths)
    scale = target / total if total else 1.0
    pool = text_pool(random.Random(seed * 7919 + 1), 4 << 20)
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tf:
        made = set()
        for d in dirs:
            parts = d.split("/")
            for k in range(1, len(parts) + 1):
                p = "/".join(parts[:k])
                if p not in made:
                    made.add(p)
                    add_dir(tf, p)
        for idx, (p, size, kind) in enumerate(paths):
            size = max(0, int(size * scale))
            if kind == "text":
                off = rng.randrange(len(pool))
                data = (pool[off:] + pool)[:size] if size <= len(pool) else (pool * (size // len(pool) + 1))[:size]
            else:
                data = rng.randbytes(size)
            add_file(tf, p, data, 0o755 if kind == "bin" and idx % 5 == 0 else 0o644)
            if idx % 97 == 0:  # symlink next to it
                ti = tarfile.TarInfo(p + ".link")
                ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.SYMTYPE, p.rsplit("/", 1)[1], 0o777, MTIME
                tf.addfile(ti)
            if idx % 211 == 0:  # hard link
                ti = tarfile.TarInfo(p + ".hard")
                ti.type, ti.linkname, ti.mode, ti.mtime = tarfile.LNKTYPE, p, 0o644, MTIME
                tf.addfile(ti)


def write_whiteouts(out, of_seed, files, prefix):
    _, dirs, paths = layout(of_seed, files, prefix)
    with tarfile.open(out, "w", format=tarfile.GNU_FORMAT) as tf:
        made = set()
        # every 10th file removed, one whole directory removed, one directory made opaque
        for p, _, _ in paths[::10]:
            d, base = p.rsplit("/", 1)
            for k in range(1, d.count("/") + 2):
                q = "/".join(d.split("/")[:k])
                if q not in made:
                    made.add(q)
                    add_dir(tf, q)
            add_file(tf, f"{d}/.wh.{base}", b"")
        n = prefix.count("/") + 2
        top = sorted({"/".join(d.split("/")[:n]) for d in dirs})
        if len(top) >= 2:
            gone, opaque = top[0], top[1]
            parent, name = gone.rsplit("/", 1)
            add_file(tf, f"{parent}/.wh.{name}", b"")
            if opaque not in made:
                add_dir(tf, opaque)
            add_file(tf, f"{opaque}/.wh..wh..opq", b"")
            add_file(tf, f"{opaque}/kept-after-opaque", b"new\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, required=True)
    ap.add_argument("--mb", type=int, default=220)
    ap.add_argument("--files", type=int, default=8000)
    ap.add_argument("--prefix", default="opt/bench")
    ap.add_argument("--whiteouts-of", type=int)
    a = ap.parse_args()
    if a.whiteouts_of is not None:
        write_whiteouts(a.out, a.whiteouts_of, a.files, a.prefix)
    else:
        write_layer(a.out, a.seed, a.mb, a.files, a.prefix)


if __name__ == "__main__":
    main()
