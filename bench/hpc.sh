#!/usr/bin/env bash
# The seeds' table (issue 12): a CPU-bound C matrix multiply bare and under N1, P1, F3 and R1,
# and the MPI ring with 1, 2 and 4 ranks (Open MPI's mpirun on the host, one container per rank),
# as time per engine and the ratio to bare metal; and (issue 25) a two-rank ping-pong, 8 B to
# 4 MiB, latency and bandwidth per engine beside bare, as a table row and a plot
# (bench/results/hpc-pingpong.svg, gnuplot). The host load is recorded beside the table.
# Not part of the tests. Entry: `make bench-hpc`.
#
# Needs: the HPC test image in a registry (default the test fixtures' 127.0.0.1:5000, pushed by
# scripts/fixtures/hpc-images.sh, which this script runs when the image is missing; an image from
# before /usr/local/bin/pingpong is refused: rebuild it), gcc, mpicc, mpirun, gnuplot (the plot is
# skipped with a note when missing). Runs as the unprivileged $BENCH_USER (default udtest) when
# started as root. Start munged first (docs/hpc.md: a stopped munged adds ~2 s to every bare job).
# Environment: BENCH_BIN (default .build/debug/udocker; label it with BENCH_BUILD=debug|release),
#   BENCH_REPS=3 (median), BENCH_MATMUL_N=600, BENCH_HPC_MODES="N1 P1 F3 R1",
#   BENCH_PINGPONG_MAX=4194304 (bytes), BENCH_PINGPONG_SCALE=1 (multiplies the iteration counts),
#   BENCH_HPC_WORK=/tmp/udocker-bench-hpc, BENCH_OUT=bench/results (hpc.md, hpc-pingpong.svg and
#   hpc-pingpong-<engine>.dat).
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
PP_MAX="${BENCH_PINGPONG_MAX:-4194304}"
PP_SCALE="${BENCH_PINGPONG_SCALE:-1}"
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
mpicc -O2 -o "$BW/pingpong" "$ROOT/scripts/fixtures/hpc/pingpong.c"
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

# ping-pong: REPS runs of "$@"; per message size the median latency and bandwidth, in
# $OUT/hpc-pingpong-<label>.dat ("bytes latency_us bandwidth_MBps")
pingpong() {
  local label="$1" i size; shift
  : >"$BW/pp-$label"
  for i in $(seq 1 "$REPS"); do
    "${AS[@]}" "${E[@]}" "$@" "$PP_MAX" "$PP_SCALE" >"$BW/out" 2>"$BW/err" || { cat "$BW/out" "$BW/err" >&2; die "failed: $*"; }
    sed -n 's/^pingpong: size=\([0-9]*\) latency_us=\([0-9.]*\) bandwidth_MBps=\([0-9.]*\)$/\1 \2 \3/p' "$BW/out" >>"$BW/pp-$label"
  done
  [ -s "$BW/pp-$label" ] || die "no ping-pong output: $*"
  for size in $(cut -d' ' -f1 "$BW/pp-$label" | sort -nu); do
    printf '%s %s %s\n' "$size" \
      "$(awk -v s="$size" '$1 == s {print $2}' "$BW/pp-$label" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')" \
      "$(awk -v s="$size" '$1 == s {print $3}' "$BW/pp-$label" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')"
  done >"$OUT/hpc-pingpong-$label.dat"
}
# the value in column $2 of a .dat file at size $3
at_size() { awk -v s="$3" -v c="$2" '$1 == s {print $c}' "$OUT/hpc-pingpong-$1.dat"; }

load_before="$(cut -d' ' -f1-3 /proc/loadavg)"
munged="stopped"; pgrep -x munged >/dev/null && munged="running"
log "pulling $IMAGE"
U pull "$IMAGE" >/dev/null
for m in $MODES; do
  U create --name="c$m" "$IMAGE" >/dev/null
  [ "$m" = N1 ] || U setup --execmode="$m" "c$m" >/dev/null
  U run --nobanner "c$m" true >/dev/null 2>&1 || true   # first run: per-mode setup
done
U run --nobanner "c${MODES%% *}" test -x /usr/local/bin/pingpong \
  || die "$IMAGE has no /usr/local/bin/pingpong: rebuild it (scripts/fixtures/hpc-images.sh)"

declare -A T
T[matmul,bare]="$(measure "$BW/matmul" "$N")"
for m in $MODES; do T[matmul,$m]="$(measure "$BW/udocker" run --nobanner "c$m" matmul "$N")"; done
for np in 1 2 4; do
  T[ring$np,bare]="$(measure mpirun --oversubscribe -np "$np" "$BW/ring")"
  for m in $MODES; do
    T[ring$np,$m]="$(measure mpirun --oversubscribe -np "$np" "$BW/udocker" run --nobanner "c$m" ring)"
  done
done
log "ping-pong, $REPS run(s) each"
pingpong bare mpirun --oversubscribe -np 2 "$BW/pingpong"
for m in $MODES; do pingpong "$m" mpirun --oversubscribe -np 2 "$BW/udocker" run --nobanner "c$m" pingpong; done
for m in bare $MODES; do
  T[lat,$m]="$(at_size "$m" 2 8)"
  T[bw,$m]="$(at_size "$m" 3 1048576)"
done
load_after="$(cut -d' ' -f1-3 /proc/loadavg)"

{
  echo "Seeds' table: median of $REPS runs, seconds (ratio to bare). Build: $BUILD. $(nproc) CPUs, $(date -u +%Y-%m-%d)."
  echo "Host load (1, 5, 15 min) before: $load_before; after: $load_after. munged: $munged."
  echo
  printf '| workload | bare |'; for m in $MODES; do printf ' %s |' "$m"; done; echo
  printf '|---|---|'; for m in $MODES; do printf -- '---|'; done; echo
  for w in matmul ring1 ring2 ring4 lat bw; do
    case "$w" in
      matmul) label="matmul n=$N" ;;
      lat) label="ping-pong latency, 8 B (µs)" ;;
      bw) label="ping-pong bandwidth, 1 MiB (MB/s)" ;;
      *) label="MPI ring, ${w#ring} rank(s)" ;;
    esac
    printf '| %s | %s |' "$label" "${T[$w,bare]:--}"
    for m in $MODES; do
      if [ "${T[$w,$m]:--}" = - ] || [ "${T[$w,bare]:--}" = - ]; then printf ' n/a |'; continue; fi
      printf ' %s (%s) |' "${T[$w,$m]}" "$(awk -v a="${T[$w,$m]}" -v b="${T[$w,bare]}" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')"
    done
    echo
  done
  echo
  echo "Ping-pong: two ranks, one-way latency (half the round trip) and windowed bandwidth, median per size; plot: hpc-pingpong.svg."
} | tee "$OUT/hpc.md"

if command -v gnuplot >/dev/null; then
  # One gnuplot `plot` line: column <n> of every engine's data file, bare drawn thicker.
  plot_column() {
    printf 'plot '
    for m in bare $MODES; do
      w=2; [ "$m" = bare ] && w=4
      printf "'%s' using 1:%s with linespoints lw %s title '%s', " "$OUT/hpc-pingpong-$m.dat" "$1" "$w" "$m"
    done | sed 's/, $//'
    echo
  }
  {
    echo "set terminal svg size 1000,420 dynamic font 'sans,11'"
    echo "set output '$OUT/hpc-pingpong.svg'"
    echo "set multiplot layout 1,2 title 'MPI ping-pong, 2 ranks ($BUILD build, $(nproc) CPUs, load $load_before)'"
    echo "set logscale x 2; set format x '%.0b%B'; set xlabel 'message size (bytes)'; set grid; set key top left"
    echo "set logscale y; set ylabel 'one-way latency (µs)'; set title 'latency (lower is better)'"
    plot_column 2
    echo "set ylabel 'bandwidth (MB/s)'; set title 'bandwidth (higher is better)'"
    plot_column 3
    echo "unset multiplot"
  } >"$BW/plot.gp"
  gnuplot "$BW/plot.gp" && log "plot: $OUT/hpc-pingpong.svg"
else
  log "gnuplot not found: no plot (apt-get install gnuplot-nox)"
fi
rm -rf "$BW"
