#!/usr/bin/env python3
"""Start-up of two udocker binaries in the same loop (issue 22: the glibc 2.28 link must not slow
`run` down by more than 10 %). Not a test: a measurement, as `make bench` is.

    bench/compare-startup.py OLD NEW IMAGE [RUNS] [REPS]

As the user running it (not root), with a throw-away UDOCKER_DIR: pulls IMAGE with NEW, creates one
container, then alternates loops of RUNS runs of `version` and of `run --nobanner C /bin/true`
with OLD and NEW, REPS times, and prints the per-run means (ms), the NEW/OLD ratio of the medians,
and the load average before and after.
"""
import os
import statistics
import subprocess
import sys
import tempfile
import time


def main():
    old, new, image = sys.argv[1], sys.argv[2], sys.argv[3]
    runs = int(sys.argv[4]) if len(sys.argv) > 4 else 50
    reps = int(sys.argv[5]) if len(sys.argv) > 5 else 5
    with tempfile.TemporaryDirectory(prefix="ud-startup-") as home:
        env = {"HOME": home, "UDOCKER_DIR": home + "/ud", "PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "TMPDIR": home}
        subprocess.run([new, "-q", "pull", image], env=env, check=True, stdout=subprocess.DEVNULL)
        subprocess.run([new, "create", "--name=c", image], env=env, check=True, stdout=subprocess.DEVNULL)
        load_before = os.getloadavg()
        steps = [("version", ["version"]), ("run C /bin/true", ["run", "--nobanner", "c", "/bin/true"])]
        results = {(label, which): [] for label, _ in steps for which in ("old", "new")}
        for _ in range(reps):
            for label, args in steps:
                for which, binary in (("old", old), ("new", new)):
                    t = time.perf_counter()
                    for _ in range(runs):
                        subprocess.run([binary] + args, env=env, check=True, stdout=subprocess.DEVNULL)
                    results[(label, which)].append((time.perf_counter() - t) / runs * 1000)
        load_after = os.getloadavg()
    print(f"{runs} runs per loop, {reps} loops each, interleaved; load {load_before[0]:.2f} -> {load_after[0]:.2f}")
    print("| step | old (ms, median of loop means) | new | new/old |")
    print("|---|---|---|---|")
    for label, _ in steps:
        o = statistics.median(results[(label, "old")])
        n = statistics.median(results[(label, "new")])
        print(f"| {label} | {o:.2f} | {n:.2f} | {n / o:.3f} |")


if __name__ == "__main__":
    main()
