#!/usr/bin/env python3
"""Turns measure.py's raw samples into medians, ratios and target verdicts.

    report.py RAW.json OUTDIR      writes OUTDIR/results.json and OUTDIR/results.md, prints the tables

Python stdlib only.
"""
import json
import os
import statistics
import sys

raw = json.load(open(sys.argv[1]))
OUT = sys.argv[2]
S, R, M = raw["samples"], raw["rss_kb"], raw["meta"]
CFG = raw["config"]


def med(key, table=S):
    v = [x for x in table.get(key, []) if x is not None]
    return statistics.median(v) if v else None


def fs(x):  # seconds
    if x is None:
        return "–"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def fr(x, digits=2):
    return "–" if x is None else f"{x:.{digits}f}×"


def fmb(kb):
    return "–" if kb is None else f"{kb / 1024:.0f} MB"


def ratio(a, b):
    return a / b if a is not None and b else None


images = CFG["images"].split()
ours_modes = M.get("ours_modes", [])
peer_modes = M.get("peer_modes", [])
n_short = M.get("short_runs", CFG.get("short_runs"))
summary = {"pull_create": {}, "run": {}, "targets": []}
md = []

# ---- pull / create ----------------------------------------------------------------------------
def mx(key):
    return max([x for x in R.get(key, []) if x is not None], default=None)


md.append("### Pull and create (median wall time; fresh repository each repetition)\n")
md.append("| image | step | ours | peer (udocker 1.3.17) | ours / peer | GNU tar -xzf | umoci unpack | ours / GNU tar | peak RSS ours | peak RSS peer |")
md.append("|---|---|---|---|---|---|---|---|---|---|")
# (key, label, our step, the peer's step compared with it, floors shown)
STEPS = (("pull", "pull", "pull", "pull", False),
         ("create1", "first create (ours: `--storage=overlay`, fills the layer cache)", "create1", "create1", True),
         ("create2", "second create (ours: `--storage=overlay`, layer cache hit)", "create2", "create2", False),
         ("createflat", "create, flat ROOT (ours: `--storage=flat`; peer: its first create)", "createflat", "create1", True))
for img in images:
    for key, label, ostep, pstep, floors in STEPS:
        o, p = med(f"{ostep}/{img}/ours"), med(f"{pstep}/{img}/peer")
        tar, umo = (med(f"create1/{img}/gnutar"), med(f"create1/{img}/umoci")) if floors else (None, None)
        ro, rp = mx(f"{ostep}/{img}/ours"), mx(f"{pstep}/{img}/peer")
        summary["pull_create"][f"{key}/{img}"] = {
            "ours_step": ostep, "peer_step": pstep,
            "ours_s": o, "peer_s": p, "ours_over_peer": ratio(o, p), "gnutar_s": tar, "umoci_s": umo,
            "ours_over_gnutar": ratio(o, tar), "peak_rss_kb_ours": ro, "peak_rss_kb_peer": rp,
            "samples_ours": S.get(f"{ostep}/{img}/ours"), "samples_peer": S.get(f"{pstep}/{img}/peer")}
        md.append(f"| {img} | {label} | {fs(o)} | {fs(p)} | {fr(ratio(o, p))} | {fs(tar)} | {fs(umo)} | "
                  f"{fr(ratio(o, tar))} | {fmb(ro)} | {fmb(rp)} |")
md.append("")
# ch-image has one step (download + unpack into a flat directory image): compared with our pull +
# flat create and the peer's pull + first create
md.append("Pull and unpack into a flat tree (sum of the medians above; Charliecloud: `ch-image --no-cache pull` "
          "from the same storage over HTTPS, its only way):\n")
md.append("| image | ours pull + flat create | peer pull + create | Charliecloud ch-image pull | ours / peer | ours / Charliecloud |")
md.append("|---|---|---|---|---|---|")
for img in images:
    o1, o2 = med(f"pull/{img}/ours"), med(f"createflat/{img}/ours")
    p1, p2 = med(f"pull/{img}/peer"), med(f"create1/{img}/peer")
    o = o1 + o2 if o1 is not None and o2 is not None else None
    p = p1 + p2 if p1 is not None and p2 is not None else None
    c = med(f"pullunpack/{img}/charliecloud")
    summary["pull_create"][f"pullunpack/{img}"] = {"ours_s": o, "peer_s": p, "charliecloud_s": c,
                                                  "ours_over_peer": ratio(o, p), "ours_over_charliecloud": ratio(o, c),
                                                  "samples_charliecloud": S.get(f"pullunpack/{img}/charliecloud")}
    md.append(f"| {img} | {fs(o)} | {fs(p)} | {fs(c)} | {fr(ratio(o, p))} | {fr(ratio(o, c))} |")
md.append("")
md.append("Images: " + "; ".join(
    f"`{i}` {v.get('layers')} layer(s), {v.get('compressed_bytes', 0) / 1e6:.0f} MB compressed" for i, v in M.get("images", {}).items()) + ".")
md.append("")

# ---- run ----------------------------------------------------------------------------------------
targets_run = [("bare", None)] + [("ours", m) for m in ours_modes] + [("peer", m) for m in peer_modes] + \
              ([("charliecloud", "ch-run")] if M.get("ch_run_root") else [])


def rkey(key, tool, mode):
    return f"{key}/{tool}" + (f"/{mode}" if mode else "")


bare = {k: med(rkey(k, "bare", None)) for k in ("true", "cpu", "forkexec", "find")}
peer_true = {m: med(rkey("true", "peer", m)) for m in peer_modes}
ch_true = med(rkey("true", "charliecloud", "ch-run"))
W = M.get("workloads", {})
md.append(f"### Run (median wall time of `udocker run --nobanner C …`; bare = the same command on the host)\n")
md.append(f"| who | mode | run /bin/true | − bare | this ÷ ch-run | " + " | ".join(f"peer {m} ÷ this" for m in peer_modes) +
          f" | CPU loop | ×bare | fork/exec loop | ×bare | find /usr loop | ×bare | {n_short} runs in a row |")
md.append("|---|---|---|---|---|" + "---|" * len(peer_modes) + "---|---|---|---|---|---|---|")
for tool, mode in targets_run:
    row = {}
    for k in ("true", "cpu", "forkexec", "find"):
        row[k] = med(rkey(k, tool, mode))
        row[k + "_over_bare"] = ratio(row[k], bare[k])
    row["true_minus_bare"] = (row["true"] - bare["true"]) if row["true"] is not None and bare["true"] is not None else None
    row["peer_true_over_this"] = {m: ratio(v, row["true"]) for m, v in peer_true.items()} if tool == "ours" else {}
    row["true_over_chrun"] = ratio(row["true"], ch_true)
    row[f"runs{n_short}"] = med(rkey(f"runs{n_short}", tool, mode))
    summary["run"][f"{tool}/{mode}" if mode else tool] = row
    label = {"bare": "host", "ours": "ours", "peer": "peer", "charliecloud": "Charliecloud"}[tool]
    speed = " | ".join("–" if row["peer_true_over_this"].get(m) is None else
                       (f"{row['peer_true_over_this'][m]:.0f}×" if row["peer_true_over_this"][m] >= 10 else f"{row['peer_true_over_this'][m]:.1f}×")
                       for m in peer_modes)
    minus = "–" if tool == "bare" or row["true_minus_bare"] is None else f"{row['true_minus_bare'] * 1000:+.0f} ms"
    md.append(f"| {label} | {mode or '–'} | {fs(row['true'])} | {minus} | {fr(row['true_over_chrun'])} | {speed} | "
              f"{fs(row['cpu'])} | {fr(row['cpu_over_bare'], 3) if tool != 'bare' else '1'} | "
              f"{fs(row['forkexec'])} | {fr(row['forkexec_over_bare'], 3) if tool != 'bare' else '1'} | "
              f"{fs(row['find'])} | {fr(row['find_over_bare'], 3) if tool != 'bare' else '1'} | {fs(row[f'runs{n_short}'])} |")
md.append("")

# ---- start-up breakdown, parallel short runs, binary ------------------------------------------------
steps = M.get("startup_steps", [])
startup = {}
if steps:
    md.append(f"### Start-up breakdown (per-run mean of a loop of {M.get('startup_runs')} runs; median of {CFG['reps']} loops)\n")
    md.append("| step | per run | + over the step before | ÷ bare /bin/true |")
    md.append("|---|---|---|---|")
    prev, base = None, med(f"startup/{steps[0]}")
    for label in steps:
        v = med(f"startup/{label}")
        startup[label] = v
        step_up = (v - prev) if v is not None and prev is not None and not label.startswith("ch-run") else None
        md.append(f"| {label} | {'–' if v is None else f'{v * 1000:.1f} ms'} | "
                  f"{'–' if step_up is None else f'{step_up * 1000:+.1f} ms'} | {fr(ratio(v, base))} |")
        if not label.startswith("ch-run"):
            prev = v
    md.append("")
summary["startup"] = startup
npar = M.get("par_runs") or CFG.get("par_runs", 1000)
par = {k: med(f"par{npar}/{k}") for k in ("ours/N1-flat", "charliecloud/ch-run")}
summary["parallel_runs"] = par
if any(v is not None for v in par.values()):
    md.append(f"### {npar} × `run /bin/true`, 2 at a time (median of {CFG['reps']})\n")
    md.append("| ours N1 (flat) | Charliecloud ch-run (same ROOT) | ours / ch-run |")
    md.append("|---|---|---|")
    md.append(f"| {fs(par['ours/N1-flat'])} | {fs(par['charliecloud/ch-run'])} | "
              f"{fr(ratio(par['ours/N1-flat'], par['charliecloud/ch-run']))} |")
    md.append("")
if M.get("ours_bytes"):
    md.append(f"Binary under test: {M['ours_bytes'] / 1e6:.1f} MB, stripped {M.get('ours_stripped_bytes', 0) / 1e6:.1f} MB.\n")

# ---- targets ------------------------------------------------------------------------------------
def target(name, value, limit, ok, shown):
    t = {"target": name, "measured": value, "limit": limit,
         "status": "not measured" if ok is None else ("met" if ok else "missed"), "shown": shown}
    summary["targets"].append(t)


big = [i for i in ("python", "large") if i in images]
pc = summary["pull_create"]
for img in big:
    r = pc[f"pull/{img}"]["ours_over_peer"]
    target(f"verified pull ≤ 0.9× the peer's unverified pull ({img})", r, 0.9, None if r is None else r <= 0.9, fr(r))
    for key, which in (("create1", "layer-cache create"), ("createflat", "flat create")):
        r = pc[f"{key}/{img}"]["ours_over_peer"]
        target(f"first create ≤ 0.3× the peer ({img}; ours: {which} vs the peer's first create)", r, 0.3,
               None if r is None else r <= 0.3, fr(r))
    for key, which in (("create1", "layer-cache create"), ("createflat", "flat create")):
        r = pc[f"{key}/{img}"]["ours_over_gnutar"]
        target(f"first create ≤ 0.8× GNU tar on the same layers ({img}; ours: {which})", r, 0.8,
               None if r is None else r <= 0.8, fr(r))
    v = pc[f"create2/{img}"]["ours_s"]
    target(f"second create with the cache (N1) ≤ 50 ms ({img})", v, 0.05, None if v is None else v <= 0.05, fs(v))
# "flat as the image grows 10×": the cache-hit create of the large image against the python one
vp, vl = pc.get("create2/python", {}).get("ours_s"), pc.get("create2/large", {}).get("ours_s")
if vp is not None and vl is not None:
    grow = ratio(M["images"]["large"]["compressed_bytes"], M["images"]["python"]["compressed_bytes"])
    target(f"second create flat as the image grows ({grow:.0f}× compressed): large ÷ python, both ≤ 50 ms",
           ratio(vl, vp), 0.05, vp <= 0.05 and vl <= 0.05, f"{fs(vl)} ÷ {fs(vp)} = {fr(ratio(vl, vp))}")
else:
    target("second create flat as the image grows 10× (large ÷ python, both ≤ 50 ms)", None, 0.05, None,
           "not measured (BENCH_LARGE=0)")
# N1 runs on both storages: flat (the default) and overlay (the layer cache); both are targets.
for key, which in (("ours/N1-flat", "N1, flat: the default storage"), ("ours/N1", "N1, overlay storage")):
    n1 = summary["run"].get(key, {})
    if not n1:
        continue
    v = n1.get("true_minus_bare")
    target(f"run /bin/true ({which}) ≤ bare + 20 ms", v, 0.02, None if v is None else v <= 0.02,
           "–" if v is None else f"bare {v * 1000:+.1f} ms")
    for m in peer_modes:
        v = n1.get("peer_true_over_this", {}).get(m)
        target(f"run /bin/true ({which}) ≥ 50× faster than the peer (its {m})", v, 50, None if v is None else v >= 50,
               "–" if v is None else f"{v:.1f}×")
    for k, lim, label in (("cpu", 1.02, "CPU loop"), ("forkexec", 1.05, "fork/exec loop"), ("find", 1.05, "find /usr")):
        v = n1.get(k + "_over_bare")
        target(f"{label} ({which}) ≤ {lim}× bare", v, lim, None if v is None else v <= lim, fr(v, 3))
# issue 11: start like a C tool
n1f = summary["run"].get("ours/N1-flat", {})
v = n1f.get("true_over_chrun")
target("run /bin/true (N1, flat) ≤ 2× Charliecloud's ch-run on the same ROOT", v, 2.0,
       None if v is None else v <= 2.0, fr(v))
lbl = [l for l in steps if l.startswith("udocker version")]
v = ratio(startup.get(lbl[0]), startup.get(steps[0])) if lbl and steps else None
target("udocker version ≤ 2× bare /bin/true", v, 2.0, None if v is None else v <= 2.0, fr(v))
v = ratio(par.get("ours/N1-flat"), par.get("charliecloud/ch-run"))
target(f"{npar} × run /bin/true, 2 at a time ≤ 2× the same with ch-run", v, 2.0, None if v is None else v <= 2.0, fr(v))
v = M.get("ours_stripped_bytes")
target("binary ≤ 30 MB stripped", v, 30e6, None if v is None else v <= 30e6, "–" if v is None else f"{v / 1e6:.1f} MB")
r1 = summary["run"].get("ours/R1", {})
if r1.get("cpu_over_bare") is not None:
    v = r1["cpu_over_bare"]
    target("CPU loop (R1) ≤ 1.02× bare", v, 1.02, v <= 1.02, fr(v, 3))
kb = summary["pull_create"].get("pull/large", {}).get("peak_rss_kb_ours")
target("pull peak RSS of the large image ≤ 64 MB", kb, 65536, None if kb is None else kb <= 65536,
       fmb(kb) if kb is not None else "not measured (BENCH_LARGE=1)")

md.append("### Targets\n")
md.append("| target | measured | status |")
md.append("|---|---|---|")
for t in summary["targets"]:
    md.append(f"| {t['target']} | {t['shown']} | **{t['status']}** |")
md.append("")

# ---- header / notes -------------------------------------------------------------------------------
head = [
    "## udocker (Swift) benchmark results\n",
    f"Measured {M.get('started', '?')} on `{M.get('host', '?')}`: {M.get('cpus')} CPUs ({M.get('cpu_model', '?')}), "
    f"{M.get('mem_gb')} GB RAM, {M.get('fs')} filesystem, Debian {M.get('debian', '?')}, kernel {M.get('kernel')}; "
    f"load average at start {' '.join(M.get('loadavg_start', []))}, at end {' '.join(M.get('loadavg_end', []))}.",
    f"Binary under test: **{CFG['build']}** build ({M.get('ours_version', '?')}, commit {CFG['commit']}"
    f"{', with uncommitted changes' if CFG.get('uncommitted_source_changes') else ''}); "
    f"peer: Python udocker {CFG['peer_version']}; Charliecloud {CFG.get('ch_version', '?')}. All commands run as `{M.get('user')}` with their own UDOCKER_DIR; "
    f"medians of {CFG['reps']} repetitions (pull/create of the large image: {CFG.get('large_reps', 1)}; "
    f"run /bin/true: {CFG['reps'] + 2} for ours and bare; a workload that took over 5× the bare run "
    f"once is measured once); "
    f"registry: docker-registry on {CFG['registry']}. Measuring took {M.get('measure_seconds')} s.",
    "",
]
notes = ["", "Notes:", "",
         "- ratios are ours ÷ other (< 1 is faster), except “peer X ÷ this”: how many times faster than the peer's mode X ours is;",
         "- the machine was shared with other builds while measuring (see the load averages); single samples vary "
         "by up to 3× under load, all samples are in results.json;",
         "- quiet disk: the bench deletes nothing while measuring (used trees are moved aside and deleted at the end) "
         "and starts measuring ≥ 300 s after its last deletion, because on ext4 without a journal, creating files "
         "within minutes of a large `rm -rf` is several times slower (ext4 skips and rescans recently freed inodes); "
         "ours, the peer and the floors all create under the same conditions (other processes on the machine may "
         "still delete files);",
         "- ours: first create = `create --storage=overlay` (extracts each layer once into the shared DiffID-keyed "
         "layer cache; the container is an overlayfs of those for N1), second create = the same again (cache hit), "
         "flat = `create --storage=flat` (udocker-compatible ROOT, every engine; done after the cache was filled). "
         "The peer only has flat containers; its second create extracts again;",
         f"- `run`: ours N1 runs an overlay container, our other modes flat ones "
         f"({', '.join(f'{m}: {k}' for m, k in M.get('ours_mode_storage', {}).items())});",
         "- the peer's pull does not verify layer digests; ours verifies every blob while it streams;",
         "- GNU tar / umoci are floors on the same compressed layer blobs (no whiteout handling in tar);",
         f"- CPU loop: `{W.get('cpu')}`; fork/exec loop: `{W.get('forkexec')}`; find loop: `{W.get('find')}` "
         "(the bare run walks the container's ROOT/usr; the container's binaries are the image's bookworm ones, "
         "the bare ones the host's bookworm ones); workloads run in our modes "
         f"{' '.join(M.get('ours_workload_modes', []))} (BENCH_WORKLOAD_MODES);",
         f"- the peer's F1 re-runs patchelf on every binary of the container on each run, so its workloads "
         f"run in {CFG['peer_workload_modes']} only; its {n_short}-runs series uses its fastest mode "
         f"({M.get('peer_short_runs_mode')}); its R1 exit codes are wrong without a tty (ignored).",
         ]
for n in dict.fromkeys(raw.get("notes", [])):
    notes.append(f"- {n}")
for e in raw.get("errors", []):
    notes.append(f"- ERROR: {e.splitlines()[0] if e else e}")
text = "\n".join(head + md + notes) + "\n"

os.makedirs(OUT, exist_ok=True)
result = {"meta": M, "config": CFG, "summary": summary, "samples": S, "rss_kb": R,
          "notes": list(dict.fromkeys(raw.get("notes", []))), "errors": raw.get("errors", [])}
for name, data in (("results.json", json.dumps(result, indent=1, ensure_ascii=False) + "\n"), ("results.md", text)):
    tmp = os.path.join(OUT, name + ".tmp")
    with open(tmp, "w") as f:
        f.write(data)
    os.replace(tmp, os.path.join(OUT, name))
print(text)
