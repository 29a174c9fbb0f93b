#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpus into DIR/<target>/ (called by scripts/fuzz.sh).

Seeds are the well-formed inputs plus the hostile shapes of the trust corpus
(docs/trust-boundaries.md): absolute and '..' names, links out of the root, whiteouts,
PAX overrides and out-of-range times, GNU long names, devices, cut archives; ELF files with
headers that point past the end; manifests with bad digests and oversized fields."""
import gzip, io, json, os, struct, sys, tarfile

out = sys.argv[1]
def put(target, name, data):
    os.makedirs(os.path.join(out, target), exist_ok=True)
    with open(os.path.join(out, target, name), "wb") as f:
        f.write(data)

# --- FuzzTar ---------------------------------------------------------------------------------
def tar(entries, fmt=tarfile.PAX_FORMAT):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=fmt) as t:
        for name, kind, extra in entries:
            i = tarfile.TarInfo(name)
            i.mtime = 1700000000
            data = None
            if kind == "file":
                data = extra if extra is not None else b"hello\n"
                i.size = len(data)
                i.mode = 0o644
            elif kind == "dir":
                i.type = tarfile.DIRTYPE; i.mode = extra if extra is not None else 0o755
            elif kind == "sym":
                i.type = tarfile.SYMTYPE; i.linkname = extra
            elif kind == "hard":
                i.type = tarfile.LNKTYPE; i.linkname = extra
            elif kind == "chr":
                i.type = tarfile.CHRTYPE; i.devmajor, i.devminor = 1, 3
            elif kind == "fifo":
                i.type = tarfile.FIFOTYPE
            elif kind == "pax":
                data = b"x"; i.size = 1; i.pax_headers = extra
            t.addfile(i, io.BytesIO(data) if data is not None else None)
    # Without the padding to tarfile's 10 KiB record: the end marker (two zero blocks) is enough.
    body = b.getvalue().rstrip(b"\0")
    return body.ljust((len(body) + 511) // 512 * 512 + 1024, b"\0")

plain = [("d", "dir", None), ("d/f", "file", None), ("d/l", "sym", "f"), ("d/h", "hard", "d/f"),
         ("d/e", "dir", None), ("tmp", "dir", 0o1777)]
for fmt, name in [(tarfile.GNU_FORMAT, "gnu"), (tarfile.PAX_FORMAT, "pax"), (tarfile.USTAR_FORMAT, "ustar")]:
    put("FuzzTar", f"seed-{name}.tar", tar(plain, fmt))
put("FuzzTar", "seed.tar.gz", gzip.compress(tar(plain), mtime=0))
hostile = {
    "abs-name": [("/etc/passwd", "file", None)],
    "dotdot-name": [("../../outside", "file", None)],
    "symlink-escape": [("l", "sym", "../../../../tmp"), ("l/x", "file", None)],
    "symlink-abs": [("l", "sym", "/etc"), ("l/passwd", "file", b"root::0:0::/:/bin/sh\n")],
    "hardlink-out": [("h", "hard", "../../etc/passwd")],
    "hardlink-abs": [("h", "hard", "/etc/passwd")],
    "whiteouts": [("d", "dir", None), ("d/a", "file", None), ("d/.wh.a", "file", b""), ("d/.wh..wh..opq", "file", b""),
                  (".wh...", "file", b""), ("d/.wh.", "file", b"")],
    "file-then-dir": [("x", "file", None), ("x", "dir", None), ("x/y", "file", None)],
    "dir-then-symlink": [("x", "dir", None), ("x", "sym", "/"), ("x/y", "file", None)],
    "devices": [("dev", "dir", None), ("dev/null", "chr", None), ("dev/p", "fifo", None)],
    "pax-path": [("short", "pax", {"path": "../../pax-escape"})],
    "pax-times": [("t", "pax", {"mtime": "99999999999999999999.5", "atime": "-1e30"})],
    "pax-size": [("s", "pax", {"size": "18446744073709551615"})],
    "pax-link": [("s", "pax", {"linkpath": "/" * 300})],
    "long-name": [("a/" * 60 + "f", "file", None)],
}
for name, entries in hostile.items():
    fmt = tarfile.GNU_FORMAT if name == "long-name" else tarfile.PAX_FORMAT
    try:
        put("FuzzTar", f"hostile-{name}.tar", tar(entries, fmt))
    except (ValueError, tarfile.TarError):
        pass
whole = tar(plain)
put("FuzzTar", "cut-at-entry.tar", whole[:1024])
put("FuzzTar", "cut-mid-header.tar", whole[:700])
put("FuzzTar", "gzip-cut.tar.gz", gzip.compress(whole, mtime=0)[:60])
put("FuzzTar", "zstd-magic", b"\x28\xb5\x2f\xfd" + b"\x00" * 60)

# --- FuzzELF ---------------------------------------------------------------------------------
for f in ["/bin/true", "/lib64/ld-linux-x86-64.so.2"]:
    if os.path.isfile(f):
        data = open(f, "rb").read()
        put("FuzzELF", os.path.basename(f), data)
        put("FuzzELF", os.path.basename(f) + ".cut", data[:0x400])
def elf(phs, tail=b"", shoff=0, shnum=0, phnum=None):
    h = b"\x7fELF\x02\x01\x01" + b"\x00" * 9
    h += struct.pack("<HHIQQQIHHHHHH", 2, 0x3e, 1, 0x401000, 64, shoff, 0, 64, 56,
                     len(phs) if phnum is None else phnum, 64, shnum, 0)
    for t, off, va, fs, ms in phs:
        h += struct.pack("<IIQQQQQQ", t, 5, off, va, va, fs, ms, 0x1000)
    return h.ljust(0x200, b"\x00") + tail
interp = b"/lib64/ld-linux-x86-64.so.2\x00"
huge = 0xFFFFFFFFFFFFF000
put("FuzzELF", "hostile-load-top", elf([(1, 0, huge, 0x200, 0x2000), (3, 0x200, huge + 0x200 & (2**64 - 1), len(interp), len(interp))], interp))
put("FuzzELF", "hostile-interp-past-end", elf([(3, 0x10000, 0x400000, 0x1000, 0x1000)], interp))
put("FuzzELF", "hostile-phnum", elf([(1, 0, 0x400000, 0x200, 0x200)], phnum=0xffff))
put("FuzzELF", "hostile-shoff", elf([(3, 0x200, 0x400200, len(interp), len(interp))], interp, shoff=2**63, shnum=0xffff))
dyn = struct.pack("<QQQQQQ", 5, huge, 29, 0, 0, 0)
put("FuzzELF", "hostile-dynamic", elf([(2, 0x200, 0x400200, len(dyn), len(dyn))], dyn))

# --- FuzzManifest ----------------------------------------------------------------------------
z64, o64 = "0" * 64, "1" * 64
manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + z64, "size": 2},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": "sha256:" + o64, "size": 3}]}
put("FuzzManifest", "manifest.json", json.dumps(manifest).encode())
docker = dict(manifest, mediaType="application/vnd.docker.distribution.manifest.v2+json")
put("FuzzManifest", "docker-v2.json", json.dumps(docker).encode())
index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
         "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": "sha256:" + "2" * 64, "size": 9,
                        "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}]}
put("FuzzManifest", "index.json", json.dumps(index).encode())
put("FuzzManifest", "docker-list.json", json.dumps(dict(index, mediaType="application/vnd.docker.distribution.manifest.list.v2+json")).encode())
put("FuzzManifest", "schema1.json", json.dumps({"schemaVersion": 1, "name": "x", "tag": "y", "fsLayers": [{"blobSum": "sha256:" + z64}]}).encode())
put("FuzzManifest", "config.json", json.dumps({"architecture": "amd64", "os": "linux", "config": {"Env": ["A=1"], "Cmd": ["sh"],
    "WorkingDir": "/", "User": "1000:1000", "ExposedPorts": {"80/tcp": {}}}, "rootfs": {"type": "layers", "diff_ids": ["sha256:" + z64]}}).encode())
bad = dict(manifest, layers=[{"mediaType": "x", "digest": "sha256:../../" + z64[:58], "size": -1}])
put("FuzzManifest", "hostile-digest.json", json.dumps(bad).encode())
put("FuzzManifest", "hostile-size.json", json.dumps(dict(manifest, config=dict(manifest["config"], size=2**70))).encode())
put("FuzzManifest", "platform", b"linux/arm64/v8")
put("FuzzManifest", "digest-sha512", b"sha512:" + b"a" * 128)

# --- FuzzReference ---------------------------------------------------------------------------
for i, r in enumerate(["busybox", "library/debian:bookworm", "127.0.0.1:5000/a/b:c", "ghcr.io/x/y@sha256:" + "3" * 64,
                       "localhost/x:1", "[::1]:5000/x:_T.1", "quay.io/o/r:v1@sha256:" + "4" * 64, "a__b-c---e/f_g.h",
                       "My-Registry.example.com/x", "../x", "a//b", "x:" + "t" * 129]):
    put("FuzzReference", f"seed{i + 1}", r.encode())
