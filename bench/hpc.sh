#!/usr/bin/env bash
# The seeds' table (issue 12): a CPU-bound C matrix multiply bare and under N1, P1, F3 and R1,
# and the MPI ring with 1, 2 and 4 ranks (Open MPI's mpirun on the host, one container per rank),
# as time per engine and the ratio to bare metal. Not part of the tests. Entry: `make bench-hpc`.
#
# Needs: the HPC test image in a registry (default the test fixtures' 127.0.0.1:5000, pushed by
# scripts/fixtures/hpc-images.sh, which this script runs when the image is missing), gcc, mpicc,
# mpirun. Runs as the unprivileged $BENCH_USER (default udtest) when started as root.
# Environment: BENCH_BIN (default .build/debug/udocker; label it with BENCH_BUILD=debug|release),
#   BENCH_REPS=3 (median), BENCH_MATMUL_N=600, BENCH_HPC_MODES="N1 P1 F3 R1",
#   BENCH_HPC_WORK=/tmp/udocker-bench-hpc, BENCH_OUT=bench/results (hpc.md).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
if [ -n "${BENCH_BIN:-}" ]; then BIN="$BENCH_BIN"; BUILD="${BENCH_BUILD:-unknown}"
elif [ -x "$ROOT/.build-dist/release/udocker" ]; then BIN="$ROOT/.build-dist/release/udocker"; BUILD=release
else BIN="$ROOT/.build/debug/udocker"; BUILD=debug; fi
REPS="${BENCH_REPS:-3}"
N="${BENCH_MATMUL_N:-600}"
MODES="${BENCH_HPC_MODES:-N1 P1 F3 R1}"
BW="${BENCH_HPC_WORK:-/tmp/udocker-bench-hpc}"
OUT="${BENCH_OUT:-$ROOT/bench/results}"
REG="${UDOCKER_E2E_HPC_REGISTRY:-127.0.0.1:5000}"
USER_NAME="${BENCH_USER:-udtest}"
IMAGE="$REG/library/mpi-openmpi:latest"

log() { printf 'bench-hpc: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
[ -x "$BIN" ] || die "no udocker binary at $BIN (swift build, or set BENCH_BIN)"
for t in gcc mpicc mpirun curl; do command -v "$t" >/dev/null || die "$t not found"; done
OWN_REGISTRY=""
if [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/" 2>/dev/null || true)" != 200 ]; then
  # no fixtures running: a registry of our own for the run (127.0.0.1:5011)
  REG=127.0.0.1:5011; IMAGE="$REG/library/mpi-openmpi:latest"
  mkdir -p "$BW-registry/storage"
  printf 'version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' "$BW-registry/storage" "$REG" >"$BW-registry/config.yml"
  setsid docker-registry serve "$BW-registry/config.yml" </dev/null >"$BW-registry/log" 2>&1 &
  OWN_REGISTRY=$!
  trap 'kill "$OWN_REGISTRY" 2>/dev/null || true; rm -rf "$BW-registry"' EXIT
  for _ in $(seq 1 50); do [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/" || true)" = 200 ] && break; sleep 0.2; done
fi
if ! curl -sf "http://$REG/v2/library/mpi-openmpi/tags/list" >/dev/null; then
  log "image missing in $REG: building it (scripts/fixtures/hpc-images.sh)"
  UDOCKER_E2E_HPC_REGISTRY="$REG" "$ROOT/scripts/fixtures/hpc-images.sh"
fi

rm -rf "$BW"; mkdir -p "$BW/home" "$BW/tmp" "$OUT"
install -m 755 "$BIN" "$BW/udocker"
gcc -O2 -o "$BW/matmul" "$ROOT/scripts/fixtures/hpc/matmul.c"
mpicc -O2 -o "$BW/ring" "$ROOT/scripts/fixtures/hpc/ring.c"
AS=()
if [ "$(id -u)" -eq 0 ]; then
  chown -R "$USER_NAME:" "$BW"
  AS=(setpriv --reuid="$(id -u "$USER_NAME")" --regid="$(id -g "$USER_NAME")" --clear-groups --)
fi
chmod 755 "$BW"
E=(env -i HOME="$BW/home" UDOCKER_DIR="$BW/home/.udocker" TMPDIR="$BW/tmp" PATH=/usr/bin:/bin LANG=C.UTF-8)
U() { "${AS[@]}" "${E[@]}" "$BW/udocker" "$@"; }

# median wall time (seconds) of REPS runs of "$@" (output must succeed)
measure() {
  local i a b times=()
  for i in $(seq 1 "$REPS"); do
    a="$(date +%s.%N)"
    "${AS[@]}" "${E[@]}" "$@" >"$BW/out" 2>"$BW/err" || { cat "$BW/out" "$BW/err" >&2; die "failed: $*"; }
    b="$(date +%s.%N)"
    times+=("$(awk -v a="$a" -v b="$b" 'BEGIN {printf "%.3f", b - a}')")
  done
  printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

log "pulling $IMAGE"
U pull "$IMAGE" >/dev/null
for m in $MODES; do
  U create --name="c$m" "$IMAGE" >/dev/null
  [ "$m" = N1 ] || U setup --execmode="$m" "c$m" >/dev/null
  U run --nobanner "c$m" true >/dev/null 2>&1 || true   # first run: per-mode setup
done

declare -A T
T[matmul,bare]="$(measure "$BW/matmul" "$N")"
for m in $MODES; do T[matmul,$m]="$(measure "$BW/udocker" run --nobanner "c$m" matmul "$N")"; done
for np in 1 2 4; do
  T[ring$np,bare]="$(measure mpirun --oversubscribe -np "$np" "$BW/ring")"
  for m in $MODES; do
    T[ring$np,$m]="$(measure mpirun --oversubscribe -np "$np" "$BW/udocker" run --nobanner "c$m" ring)"
  done
done

{
  echo "Seeds' table: median of $REPS runs, seconds (ratio to bare). Build: $BUILD. $(nproc) CPUs, $(date -u +%Y-%m-%d)."
  echo
  printf '| workload | bare |'; for m in $MODES; do printf ' %s |' "$m"; done; echo
  printf '|---|---|'; for m in $MODES; do printf -- '---|'; done; echo
  for w in matmul ring1 ring2 ring4; do
    case "$w" in matmul) label="matmul n=$N" ;; *) label="MPI ring, ${w#ring} rank(s)" ;; esac
    printf '| %s | %s |' "$label" "${T[$w,bare]}"
    for m in $MODES; do
      if [ "${T[$w,$m]}" = - ]; then printf ' n/a |'; continue; fi
      printf ' %s (%s) |' "${T[$w,$m]}" "$(awk -v a="${T[$w,$m]}" -v b="${T[$w,bare]}" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')"
    done
    echo
  done
} | tee "$OUT/hpc.md"
rm -rf "$BW"
