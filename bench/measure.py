#!/usr/bin/env python3
"""Runs every measurement of the benchmark as the (unprivileged) user it is started as.

    measure.py CONFIG.json RAW.json

CONFIG is written by bench/run.sh. RAW gets every sample (seconds, kB) plus metadata; report.py
turns it into medians, ratios and targets. Python stdlib only.

Each tool gets its own UDOCKER_DIR (and HOME) under config.home. Repetitions of different tools
and of the bare baseline are interleaved (ours, peer, ours, peer, ...) so that load drift on the
machine hits them alike.

Quiet disk: no tree is deleted while measuring. A tree that is done with is renamed into
config.graveyard (same filesystem, O(1)); run.sh deletes the graveyard once everything is measured.
On ext4 without a journal, deleting a 10k-file tree makes the next 10k file creations several
times slower for up to minutes (see run.sh), which would dominate every create measurement.
"""
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time

CFG = json.load(open(sys.argv[1]))
RAW_PATH = sys.argv[2]
HOME = CFG["home"]
GRAVEYARD = CFG["graveyard"]
MIN_FREE_GB = 15
OURS, PEER = CFG["ours"], CFG["peer"]
CH_RUN, CH_IMAGE = CFG.get("ch_run"), CFG.get("ch_image")
REG = CFG["registry"]
TLSREG = CFG.get("tls_registry")
REPS = int(CFG["reps"])
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
FAKECHROOT_SO = "/usr/lib/x86_64-linux-gnu/fakechroot/libfakechroot.so"
CANDIDATE_MODES = ["N1", "P1", "P2", "F1", "F2", "F3", "F4", "R1", "R2", "R3", "S1"]

# Workloads: the same programs inside the container (the image's bookworm binaries) and on the
# host (the host's bookworm binaries); `find` walks the container's own /usr in both cases.
CPU_N = 80_000_000
CPU = ["python3", "-c", f"print(sum(i * i for i in range({CPU_N})))"]
FORK_N = 3000
FORK = ["/bin/sh", "-c", f"i=0; while [ $i -lt {FORK_N} ]; do /bin/true; i=$((i+1)); done"]
FIND_N = 30
def FIND(usr):
    return ["/bin/sh", "-c", f"i=0; while [ $i -lt {FIND_N} ]; do find {usr} >/dev/null; i=$((i+1)); done"]

raw = {"config": CFG, "samples": {}, "rss_kb": {}, "meta": {}, "notes": [], "errors": []}


def log(msg):
    print(f"measure [{time.strftime('%H:%M:%S')}]: {msg}", file=sys.stderr, flush=True)


def add(key, value, table="samples"):
    raw[table].setdefault(key, []).append(value)


def save():
    tmp = RAW_PATH + ".tmp"
    with open(tmp, "w") as f:
        json.dump(raw, f, indent=1)
    os.replace(tmp, RAW_PATH)


def env_for(udir, extra=None):
    e = {"HOME": udir + ".home", "UDOCKER_DIR": udir, "PATH": PATH, "LANG": "C.UTF-8",
         "TMPDIR": udir + ".tmp",
         "UDOCKER_FAKECHROOT_SO": FAKECHROOT_SO, "UDOCKER_USE_PATCHELF_EXECUTABLE": "/usr/bin/patchelf"}
    e.update(extra or {})
    return e


def fresh(udir, peer=False):
    for d in (udir, udir + ".home", udir + ".tmp"):
        bury(d)
    os.makedirs(udir + ".home")
    os.makedirs(udir + ".tmp")
    if peer:  # keeps the Python udocker offline (see Tests/TestSupport/E2ESandbox.swift)
        os.makedirs(udir + "/lib")
        with open(udir + "/lib/VERSION", "w") as f:
            f.write("1.2.11\n")


_buried = [0]


def bury(path):
    """Moves `path` out of the way without deleting it (quiet disk, see the module docstring)."""
    if not os.path.lexists(path):
        return
    _buried[0] += 1
    dst = os.path.join(GRAVEYARD, f"{_buried[0]}-{os.path.basename(path)}")
    try:
        os.rename(path, dst)
    except PermissionError:  # moving a directory to another parent rewrites its ".." entry
        os.chmod(path, 0o700)
        os.rename(path, dst)


class Failed(Exception):
    pass


def run(cmd, env=None, check=True, rss=False, timeout=3600, quiet=True):
    """Wall seconds (and peak RSS in kB via /usr/bin/time -v when rss=True)."""
    tf = None
    if rss:
        tf = tempfile.NamedTemporaryFile(prefix="time-", suffix=".txt", delete=False)
        tf.close()
        cmd = ["/usr/bin/time", "-v", "-o", tf.name] + cmd
    out = tempfile.TemporaryFile()
    # A blocking wait, not subprocess.run(timeout=…): with a timeout, Popen.wait polls with sleeps
    # that double from 0.5 ms, so every short command would measure ~15.5 ms (0.5+1+2+4+8).
    t = time.perf_counter()
    p = subprocess.Popen(cmd, env=env, stdout=out if quiet else None, stderr=subprocess.STDOUT if quiet else None,
                         stdin=subprocess.DEVNULL, cwd=HOME)
    killer = threading.Timer(timeout, p.kill)
    killer.start()
    p.wait()
    wall = time.perf_counter() - t
    killer.cancel()
    kb = None
    if tf:
        for line in open(tf.name):
            if "Maximum resident set size" in line:
                kb = int(line.rsplit(":", 1)[1])
        os.unlink(tf.name)
    if check and p.returncode != 0:
        out.seek(0)
        text = out.read().decode(errors="replace")[-2000:]
        raise Failed(f"{' '.join(cmd)} -> exit {p.returncode}\n{text}")
    out.seek(0)
    return wall, kb, out.read().decode(errors="replace")


def ours(udir, *args, **kw):
    return run([OURS] + list(args), env=env_for(udir), **kw)


def peer(udir, *args, **kw):
    return run([PEER] + list(args), env=env_for(udir, {"UDOCKER_REGISTRY": "http://" + REG}), **kw)


def ch_env(udir):
    """Charliecloud's environment: ch-run wants $USER; ch-image keeps its storage in udir and
    trusts the bench's throw-away CA (it refuses plain HTTP)."""
    e = {"HOME": udir + ".home", "PATH": PATH, "LANG": "C.UTF-8", "USER": raw["meta"].get("user", "?"),
         "CH_IMAGE_STORAGE": udir, "REQUESTS_CA_BUNDLE": CFG.get("tls_ca", "")}
    return e


def chimage(udir, *args, **kw):
    return run([CH_IMAGE, "--no-cache"] + list(args), env=ch_env(udir), **kw)


def chrun(root, cmd, **kw):
    return run([CH_RUN, root, "--"] + list(cmd), env=ch_env(HOME + "/ch"), **kw)


def image_layers(tag):
    """Layer blob paths of `tag` in the OCI layout (for the GNU tar floor)."""
    lay = CFG["layout"]
    def blob(d):
        algo, hexd = d.split(":", 1)
        return os.path.join(lay, "blobs", algo, hexd)
    idx = json.load(open(os.path.join(lay, "index.json")))
    for m in idx["manifests"]:
        if m.get("annotations", {}).get("org.opencontainers.image.ref.name") == tag:
            man = json.load(open(blob(m["digest"])))
            return [blob(l["digest"]) for l in man["layers"]], sum(l["size"] for l in man["layers"])
    raise Failed(f"tag {tag} not in {lay}")


# ----------------------------------------------------------------------------------------------
def machine_meta():
    m = raw["meta"]
    m["host"] = platform.node()
    m["kernel"] = platform.release()
    m["cpus"] = os.cpu_count()
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                m["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                m["mem_gb"] = round(int(line.split()[1]) / 1048576, 1)
        m["fs"] = subprocess.run(["findmnt", "-no", "FSTYPE", "-T", HOME], capture_output=True, text=True).stdout.strip()
        m["loadavg_start"] = open("/proc/loadavg").read().split()[:3]
        m["debian"] = open("/etc/debian_version").read().strip()
    except OSError:
        pass
    m["started"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    m["user"] = subprocess.run(["id", "-un"], capture_output=True, text=True).stdout.strip()
    m["ours_version"] = (run([OURS, "--version"], check=False)[2].strip().splitlines() or ["?"])[0]
    m["ours_bytes"] = os.path.getsize(OURS)
    if CFG.get("ours_stripped") and os.path.exists(CFG["ours_stripped"]):
        m["ours_stripped_bytes"] = os.path.getsize(CFG["ours_stripped"])
    m["ch_version"] = CFG.get("ch_version")


def pull_and_create(images):
    """Fresh repository per repetition (the previous one is buried, not deleted).

    ours: pull, create --storage=overlay c1 (first create: extracts every layer into the shared
    layer cache), create --storage=overlay c2 (second create: cache hit), create --storage=flat c3
    (every layer extracted into the container's ROOT). The peer: pull, create c1, create c2."""
    for img in images:
        ref_ours = f"{REG}/library/bench-{img}:latest"
        ref_peer = f"library/bench-{img}:latest"
        layers, csize = image_layers(img)
        raw["meta"].setdefault("images", {})[img] = {"layers": len(layers), "compressed_bytes": csize}
        reps = int(CFG.get("large_reps", 1)) if img == "large" else REPS
        for rep in range(reps):
            # nothing is deleted until the end: keep clear of filling the disk (a repetition of
            # the large image leaves ~7 GB in the graveyard)
            st = os.statvfs(GRAVEYARD)
            free_gb = st.f_bavail * st.f_frsize / 1e9
            if rep > 0 and free_gb < MIN_FREE_GB:
                raw["notes"].append(f"{img}: only {rep} of {reps} repetitions of pull/create "
                                    f"({free_gb:.0f} GB left on the disk, the bench keeps {MIN_FREE_GB} GB free)")
                log(raw["notes"][-1])
                break
            order = ("ours", "peer", "charliecloud") if rep % 2 == 0 else ("charliecloud", "peer", "ours")
            for tool in order:
                if tool == "charliecloud":
                    if not (CH_IMAGE and TLSREG):
                        continue
                    udir = f"{HOME}/ch-{img}"
                    for d in (udir, udir + ".home"):
                        bury(d)
                    os.makedirs(udir + ".home")
                    # pull = download + unpack into a flat directory image (ch-image has no separate step)
                    w, kb, _ = chimage(udir, "pull", f"{TLSREG}/library/bench-{img}:latest", rss=True)
                    add(f"pullunpack/{img}/charliecloud", w); add(f"pullunpack/{img}/charliecloud", kb, "rss_kb")
                    log(f"{img} rep {rep + 1}/{reps} charliecloud: ch-image pull (TLS, +unpack) {w:.3f}s")
                    bury(udir); bury(udir + ".home")
                    save()
                    continue
                udir = f"{HOME}/{tool}-{img}"
                fresh(udir, peer=(tool == "peer"))
                call = ours if tool == "ours" else peer
                ref = ref_ours if tool == "ours" else ref_peer
                steps = [("pull", ["pull", ref])]
                if tool == "ours":
                    steps += [("create1", ["create", "--storage=overlay", "--name=c1", ref]),
                              ("create2", ["create", "--storage=overlay", "--name=c2", ref]),
                              ("createflat", ["create", "--storage=flat", "--name=c3", ref])]
                else:
                    steps += [("create1", ["create", "--name=c1", ref]),
                              ("create2", ["create", "--name=c2", ref])]
                shown = []
                for key, args in steps:
                    w, kb, _ = call(udir, *args, rss=True)
                    add(f"{key}/{img}/{tool}", w); add(f"{key}/{img}/{tool}", kb, "rss_kb")
                    shown.append(f"{key} {w:.3f}s")
                log(f"{img} rep {rep + 1}/{reps} {tool}: " + ", ".join(shown))
                if rep == 0 and img == "python":
                    n = sum(len(fs) + len(ds) for _, ds, fs in os.walk(udir))
                    raw["meta"]["images"][img][f"entries_in_udocker_dir_{tool}"] = n
                if not (img == "python" and rep == reps - 1):
                    bury(udir)
                save()
            # floors on the same layers, into a directory that does not exist yet
            d = f"{HOME}/floor-{img}"
            bury(d); os.makedirs(d)
            t = time.perf_counter()
            for lay in layers:
                # as a user: device nodes cannot be made (udocker skips them too)
                run(["tar", "--anchored", "--exclude=./dev/*", "--exclude=dev/*", "-xzf", lay, "-C", d])
            add(f"create1/{img}/gnutar", time.perf_counter() - t)
            bury(d)
            w, kb, _ = run(["umoci", "unpack", "--rootless", "--image", f"{CFG['layout']}:{img}", d], rss=True)
            add(f"create1/{img}/umoci", w)
            bury(d)
            log(f"{img} rep {rep + 1}/{reps} floors: GNU tar {raw['samples'][f'create1/{img}/gnutar'][-1]:.3f}s, "
                f"umoci {w:.3f}s")
            save()


def probe_engines(udir, tool):
    """Modes whose `setup --execmode=X` is accepted and whose `run /bin/true` works.

    Acceptance is tried on cheap flat busybox containers; each accepted mode then gets a container
    of the python image: ours N1 the overlay container c1 made by pull_and_create, our other modes
    the flat c3 and then new flat containers (`setup --execmode` of another mode would make an
    overlay container flat); the peer's modes its c1 and c2, then new containers."""
    call = ours if tool == "ours" else peer
    ref = f"{REG}/library/bench-python:latest" if tool == "ours" else "library/bench-python:latest"
    modes = CANDIDATE_MODES if tool == "ours" else CFG["peer_modes"].split()
    if tool == "ours":
        bb = f"{REG}/library/bench-busybox:latest"
        call(udir, "pull", bb)
        accepted = []
        for mode in modes:
            name = f"probe-{mode.lower()}"
            call(udir, "create", "--storage=flat", f"--name={name}", bb)
            r = call(udir, "setup", f"--execmode={mode}", name, check=False)
            shown = call(udir, "setup", name, check=False)[2]
            if mode in shown:
                accepted.append(mode)
            else:
                out = r[2].strip().splitlines()
                raw["notes"].append(f"ours {mode} not measured: setup --execmode={mode}: {out[-1] if out else '?'}")
                log(f"ours {mode}: setup refuses it")
        modes = accepted
    free = ["c3"] if tool == "ours" else ["c1", "c2"]
    ok = {}
    for mode in modes:
        try:
            if tool == "ours" and mode == "N1":
                name = "c1"
            elif free:
                name = free.pop(0)
            else:
                name = f"m{mode.lower()}"
                call(udir, "create", *(["--storage=flat"] if tool == "ours" else []), f"--name={name}", ref)
            call(udir, "setup", f"--execmode={mode}", name)
            if tool == "ours":
                shown = call(udir, "setup", name)[2]
                if mode not in shown:
                    raise Failed(f"setup shows {shown.strip()!r}")
            # first run (also does the mode's one-time container preparation); the peer's R1
            # returns wrong exit codes without a tty, so the output is what counts
            out = call(udir, "run", "--nobanner", name, "/bin/echo", "bench-ok", check=(tool == "ours"), timeout=900)[2]
            if "bench-ok" not in out:
                raise Failed(f"run printed {out.strip()[-300:]!r}")
            ok[mode] = name
            log(f"{tool} {mode}: usable")
        except (Failed, subprocess.TimeoutExpired) as e:
            msg = str(e).strip().splitlines()
            raw["notes"].append(f"{tool} {mode} not measured: {msg[-1] if msg else e}")
            log(f"{tool} {mode}: not usable ({msg[-1] if msg else e})")
    return ok


def run_workloads():
    o_dir, p_dir = f"{HOME}/ours-python", f"{HOME}/peer-python"
    o_modes = probe_engines(o_dir, "ours")
    if "N1" in o_modes:  # N1 also on a flat container, to show what the overlay mount costs
        try:
            ours(o_dir, "create", "--storage=flat", "--name=n1flat", f"{REG}/library/bench-python:latest")
            ours(o_dir, "setup", "--execmode=N1", "n1flat")
            out = ours(o_dir, "run", "--nobanner", "n1flat", "/bin/echo", "bench-ok")[2]
            if "bench-ok" not in out:
                raise Failed(f"run printed {out.strip()[-300:]!r}")
            o_modes["N1-flat"] = "n1flat"
        except Failed as e:
            msg = str(e).strip().splitlines()
            raw["notes"].append(f"ours N1 on a flat container not measured: {msg[-1] if msg else e}")
    # Charliecloud's ch-run on the very ROOT our N1-flat runs (a flat udocker container is a plain
    # directory tree, which is what ch-run takes)
    ch_root = None
    os.makedirs(HOME + "/ch.home", exist_ok=True)
    if CH_RUN and "N1-flat" in o_modes:
        try:
            ch_root = ours(o_dir, "inspect", "-p", "n1flat")[2].strip().splitlines()[-1]
            out = chrun(ch_root, ["/bin/echo", "bench-ok"])[2]
            if "bench-ok" not in out:
                raise Failed(f"ch-run printed {out.strip()[-300:]!r}")
        except Failed as e:
            msg = str(e).strip().splitlines()
            raw["notes"].append(f"ch-run not measured: {msg[-1] if msg else e}")
            ch_root = None
    raw["meta"]["ch_run_root"] = ch_root
    p_modes = probe_engines(p_dir, "peer")
    raw["meta"]["ours_modes"] = list(o_modes)
    raw["meta"]["ours_mode_storage"] = {m: ("overlay" if n == "c1" else "flat") for m, n in o_modes.items()}
    raw["meta"]["peer_modes"] = list(p_modes)
    if "N1" not in o_modes:
        raw["errors"].append("our N1 engine does not run")
    # the bare `find` walks the same tree the containers see as /usr: the ROOT of a flat container
    # of the image that no engine touches
    bare_usr = None
    try:
        ours(o_dir, "create", "--storage=flat", "--name=bare-root", f"{REG}/library/bench-python:latest")
        cid_root = run([OURS, "inspect", "-p", "bare-root"], env=env_for(o_dir))[2].strip().splitlines()[-1]
        bare_usr = os.path.join(cid_root, "usr")
    except Failed as e:
        log(f"no flat ROOT for the bare find: {e}")
    if not bare_usr or not os.path.isdir(bare_usr):
        bare_usr = "/usr"
        raw["notes"].append("bare find ran on the host's /usr (no container ROOT found)")
    raw["meta"]["bare_find_root"] = bare_usr
    peer_work = [m for m in CFG["peer_workload_modes"].split() if m in p_modes]
    ours_work = [m for m in CFG["workload_modes"].split() if m in o_modes]
    raw["meta"]["ours_workload_modes"] = ours_work
    raw["meta"]["peer_workload_modes"] = peer_work
    raw["meta"]["workloads"] = {"cpu": " ".join(CPU), "forkexec": " ".join(FORK), "find": " ".join(FIND("/usr"))}

    targets = [("bare", None, None)] + [("ours", m, n) for m, n in o_modes.items()] + \
              [("peer", m, n) for m, n in p_modes.items()] + \
              ([("charliecloud", "ch-run", ch_root)] if ch_root else [])

    def exec_one(tool, mode, name, cmd, key):
        try:
            exec_raw(tool, mode, name, cmd, key)
        except (Failed, subprocess.TimeoutExpired) as e:
            msg = str(e).strip().splitlines()
            raw["notes"].append(f"{key} {tool} {mode or ''} failed: {msg[0][:200] if msg else e} ... {msg[-1][:200] if msg else ''}")
            log(f"{key} {tool} {mode or ''} failed: {msg[-1] if msg else e}")

    def exec_raw(tool, mode, name, cmd, key):
        if tool == "bare":
            w = run(cmd, env={"PATH": PATH, "LANG": "C.UTF-8", "HOME": HOME})[0]
        elif tool == "ours":
            w = ours(o_dir, "run", "--nobanner", name, *cmd)[0]
        elif tool == "charliecloud":
            w = chrun(name, cmd)[0]
        else:  # the peer's R1 returns wrong exit codes without a tty
            w = peer(p_dir, "run", "--nobanner", name, *cmd, check=False)[0]
        add(f"{key}/{tool}" + (f"/{mode}" if mode else ""), w)

    # /bin/true: warm-up done by the probe; REPS + 2 samples each (it is cheap for ours)
    for rep in range(REPS + 2):
        for tool, mode, name in targets:
            if tool == "peer" and rep >= REPS:
                continue
            exec_one(tool, mode, name, ["/bin/true"], "true")
        log(f"/bin/true rep {rep + 1}")
    save()
    startup_breakdown(o_dir, o_modes, ch_root)
    parallel_runs(o_dir, o_modes, ch_root)
    for key, cmd in (("cpu", CPU), ("forkexec", FORK), ("find", None)):
        for rep in range(REPS):
            for tool, mode, name in targets:
                if (tool == "peer" and mode not in peer_work) or (tool == "ours" and mode not in ours_work):
                    continue
                # A mode that took over 5× the bare run once is not measured again: its ratio is
                # not in question, and PRoot's find loop alone would add ~2 minutes per repetition.
                k = f"{key}/{tool}" + (f"/{mode}" if mode else "")
                if rep > 0 and raw["samples"].get(k) and raw["samples"].get(f"{key}/bare") and \
                        raw["samples"][k][0] > 5 * raw["samples"][f"{key}/bare"][0]:
                    continue
                c = cmd if cmd else FIND(bare_usr if tool == "bare" else "/usr")
                exec_one(tool, mode, name, c, key)
            log(f"{key} rep {rep + 1}/{REPS}")
            save()

    # N short runs in a row (ours: every mode; the peer: its fastest mode)
    n = int(CFG["short_runs"])
    raw["meta"]["short_runs"] = n
    true_med = {}
    for tool, mode, name in targets:
        if tool == "peer":
            s = sorted(raw["samples"][f"true/peer/{mode}"])
            true_med[mode] = s[len(s) // 2]
    fastest_peer = min(true_med, key=true_med.get) if true_med else None
    raw["meta"]["peer_short_runs_mode"] = fastest_peer
    for tool, mode, name in targets:
        if tool == "peer" and mode != fastest_peer:
            continue
        t = time.perf_counter()
        for _ in range(n):
            if tool == "bare":
                run(["/bin/true"], env={"PATH": PATH})
            elif tool == "ours":
                ours(o_dir, "run", "--nobanner", name, "/bin/true")
            elif tool == "charliecloud":
                chrun(name, ["/bin/true"])
            else:
                peer(p_dir, "run", "--nobanner", name, "/bin/true", check=False)
        add(f"runs{n}/{tool}" + (f"/{mode}" if mode else ""), time.perf_counter() - t)
        log(f"{n} runs {tool} {mode or ''}: {raw['samples'][f'runs{n}/{tool}' + (f'/{mode}' if mode else '')][-1]:.1f}s")
        save()


def startup_breakdown(o_dir, o_modes, ch_root):
    """Where a short run's time goes: each step adds one layer to the one before it. Per-run means
    of a loop of STARTUP_N runs (a loop, not single runs: a few ms are below one sample's noise),
    REPS loops each, interleaved."""
    n = int(CFG.get("startup_runs", 50))
    raw["meta"]["startup_runs"] = n
    env_o = env_for(o_dir)
    steps = [("bare /bin/true", ["/bin/true"], {"PATH": PATH}),
             ("udocker --version (process + runtime start, no command)", [OURS, "--version"], env_o),
             ("udocker version (command table, configuration)", [OURS, "version"], env_o)]
    if "N1-flat" in o_modes:
        steps += [("udocker inspect -p C (+ repository, container lookup)", [OURS, "inspect", "-p", "n1flat"], env_o),
                  ("udocker run C /bin/true (N1, flat: + namespaces, mounts, exec)",
                   [OURS, "run", "--nobanner", "n1flat", "/bin/true"], env_o)]
    if ch_root:
        steps.append(("ch-run ROOT -- /bin/true (Charliecloud, same ROOT)", [CH_RUN, ch_root, "--", "/bin/true"], ch_env(HOME + "/ch")))
    raw["meta"]["startup_steps"] = [label for label, _, _ in steps]
    for rep in range(REPS):
        for label, cmd, env in steps:
            try:
                t = time.perf_counter()
                for _ in range(n):
                    run(cmd, env=env)
                add(f"startup/{label}", (time.perf_counter() - t) / n)
            except Failed as e:
                raw["notes"].append(f"start-up step {label!r} failed: {str(e).strip().splitlines()[-1][:200]}")
        log(f"start-up breakdown rep {rep + 1}/{REPS}")
    save()


def parallel_runs(o_dir, o_modes, ch_root):
    """PAR_RUNS × `run /bin/true`, 2 at a time (an HTC job's short tasks): ours N1-flat and ch-run."""
    n = int(CFG.get("par_runs", 1000))
    raw["meta"]["par_runs"] = n
    who = []
    if "N1-flat" in o_modes:
        who.append(("ours/N1-flat", [OURS, "run", "--nobanner", "n1flat", "/bin/true"], env_for(o_dir)))
    if ch_root:
        who.append(("charliecloud/ch-run", [CH_RUN, ch_root, "--", "/bin/true"], ch_env(HOME + "/ch")))
    for rep in range(REPS):
        for key, cmd, env in (who if rep % 2 == 0 else list(reversed(who))):
            errors = []

            def worker(count):
                try:
                    for _ in range(count):
                        run(cmd, env=env)
                except Failed as e:
                    errors.append(e)
            t = time.perf_counter()
            th = [threading.Thread(target=worker, args=(c,)) for c in (n // 2, n - n // 2)]
            for x in th:
                x.start()
            for x in th:
                x.join()
            if errors:
                raw["notes"].append(f"{n} runs 2 at a time, {key}: {str(errors[0]).strip().splitlines()[-1][:200]}")
                continue
            add(f"par{n}/{key}", time.perf_counter() - t)
            log(f"{n} runs 2 at a time {key}: {raw['samples'][f'par{n}/{key}'][-1]:.1f}s")
        save()


def main():
    machine_meta()
    images = CFG["images"].split()
    t0 = time.perf_counter()
    try:
        pull_and_create(images)
        run_workloads()
    except Failed as e:
        raw["errors"].append(str(e))
        log(f"FAILED: {e}")
    raw["meta"]["measure_seconds"] = round(time.perf_counter() - t0, 1)
    raw["meta"]["loadavg_end"] = open("/proc/loadavg").read().split()[:3]
    save()
    sys.exit(1 if raw["errors"] else 0)


if __name__ == "__main__":
    main()
