#!/usr/bin/env bash
# Benchmark: our udocker against the Python udocker 1.3.17 (the "peer"), Charliecloud (ch-run on our
# flat ROOT, ch-image pull+unpack over TLS), GNU tar, umoci and the bare host, in one run on this machine. Not part of the tests. Entry point: `make bench`.
#
#   bench/run.sh            deps (as root) + build + registry + images + measurements + report
#   bench/run.sh images     only build (and cache) the images
#
# Environment (all optional):
#   BENCH_BUILD=release|debug   how to build the binary under test (default release:
#                               swift build -c release --static-swift-stdlib --disable-local-rpath
#                               --scratch-path .build-bench, as make install)
#   BENCH_BIN=/path/udocker     measure this binary instead of building one (BENCH_BUILD only labels it)
#   BENCH_LARGE=1               also the ~1 GB, 6-layer, ~40k-file image (default; BENCH_LARGE=0
#                               skips it; building it the first time takes a few minutes more)
#   BENCH_REPS=3                repetitions per measurement (medians are reported)
#   BENCH_LARGE_REPS=3          repetitions of pull/create for the large image
#   BENCH_SHORT_RUNS=100        "N short runs in a row"
#   BENCH_WORKLOAD_MODES="N1 N1-flat P1 F1 R1"  our modes for the CPU / fork-exec / find workloads
#                               (N1 runs an overlay container, N1-flat the same engine on a flat one)
#                               (`run /bin/true` and the short-runs series use every mode that
#                               `setup --execmode=X` accepts and that runs)
#   BENCH_PEER_MODES="F1 R1"    the peer's execution modes for `run /bin/true`
#   BENCH_PEER_WORKLOAD_MODES=R1  the peer's modes for the CPU / fork-exec / find workloads
#                               (F1 costs the peer ~15 s per run: it runs patchelf on every binary)
#   BENCH_PORT=5010             the registry's port on 127.0.0.1 (not the test fixtures' 5000)
#   BENCH_TLS_PORT=5011         the same storage served over HTTPS (ch-image refuses plain HTTP;
#                               certificate from a throw-away CA made under $BENCH_WORK/tls)
#   BENCH_PAR_RUNS=1000         "N runs of /bin/true, 2 at a time" (ours N1-flat and ch-run)
#   BENCH_STARTUP_RUNS=50       runs per loop of the start-up breakdown (--version, version, inspect, run, ch-run)
#   BENCH_WORK=/tmp/udocker-bench   scratch dir (registry storage, UDOCKER_DIRs, logs)
#   BENCH_USER=udtest           the unprivileged user everything is measured as (root only)
#   BENCH_OUT=bench/results     where results.json / results.md go
#
# Images (built once with umoci / mmdebstrap / busybox-static / bench/genlayer.py, cached as an OCI
# layout under the test fixtures' cache dir, $UDOCKER_E2E_WORK/cache, and pushed with skopeo):
#   bench-busybox   static busybox + applet links, 1 layer
#   bench-python    mmdebstrap --variant=minbase --include=python3 bookworm, 1 layer (~9k files)
#   bench-large     bench-python's layer + 4 synthetic layers (genlayer.py, fixed seeds) + 1
#                   whiteout layer: ~1 GB, ~40k files (unless BENCH_LARGE=0)
#
# Quiet disk: nothing is deleted while measuring. ext4 without a journal (as on the VM this was
# written on) makes the inode allocator skip inodes freed in the last 5 s, or in the last 300 s while
# their inode-table block is still dirty (recently_deleted() in fs/ext4/ialloc.c), and it rescans
# them on every new allocation: right after an `rm -rf` of a 10k-file tree, creating 10k files
# takes seconds instead of a fraction of one, whoever creates them. A `sync` does not help for long:
# the first new inode in a block of the inode table dirties it again. So measure.py renames every
# tree it is done with into $BENCH_WORK/graveyard (same filesystem), which is deleted only after the
# last measurement, and measuring starts only 300 s after the last deletion of bench trees (by this
# run or the one before: $BENCH_WORK/deleted-at; no wait on a fresh machine, up to 5 min when runs
# follow each other).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
BW="${BENCH_WORK:-/tmp/udocker-bench}"
E2E_WORK="${UDOCKER_E2E_WORK:-/tmp/udocker-e2e}"
CACHE="$E2E_WORK/cache"
LAYOUT="$CACHE/bench-oci-v1"
PORT="${BENCH_PORT:-5010}"
REG="127.0.0.1:$PORT"
TLS_PORT="${BENCH_TLS_PORT:-5011}"
TLSREG="127.0.0.1:$TLS_PORT"
BUILD="${BENCH_BUILD:-release}"
LARGE="${BENCH_LARGE:-1}"
OUT="${BENCH_OUT:-$ROOT/bench/results}"
VENV="${UDOCKER_E2E_VENV:-/opt/udocker-e2e-venv}"
SUITE=bookworm
if [ "$(id -u)" -eq 0 ]; then BUSER="${BENCH_USER:-${UDOCKER_E2E_USER:-udtest}}"; else BUSER="$(id -un)"; fi
SKOPEO=(skopeo --insecure-policy)
T0=$(date +%s)

log() { printf 'bench [%4ss]: %s\n' "$(( $(date +%s) - T0 ))" "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }
as_user() { if [ "$(id -u)" -eq 0 ] && [ "$BUSER" != root ]; then runuser -u "$BUSER" -- "$@"; else "$@"; fi; }

# ------------------------------------------------------------------------------------------------
# 1. dependencies: everything the tests need (registry, umoci, mmdebstrap, proot, fakechroot, runc,
#    the Python udocker venv, the test user) + GNU time for peak RSS.
deps() {
  if [ "$(id -u)" -eq 0 ]; then
    "$ROOT/scripts/test-deps.sh"
    if [ ! -x /usr/bin/time ]; then
      log "apt-get install time"
      DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends time </dev/null \
        || { apt-get update </dev/null; DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends time </dev/null; }
    fi
  else
    "$ROOT/scripts/test-deps.sh" || die "missing dependencies (run make bench as root once)"
    [ -x /usr/bin/time ] || die "missing /usr/bin/time (apt-get install time)"
  fi
  command -v ch-run >/dev/null && command -v ch-image >/dev/null || die "missing ch-run/ch-image (apt-get install charliecloud)"
}

# ------------------------------------------------------------------------------------------------
# 2. the binary under test
build_binary() {
  mkdir -p "$BW/bin"
  local bin
  if [ -n "${BENCH_BIN:-}" ]; then
    bin="$BENCH_BIN"
  else
    # Built from a snapshot of the sources: a tree being edited while it builds fails SwiftPM's
    # "modified during the build" check.
    local src="$ROOT/.build-bench/src" flags=(--scratch-path "$ROOT/.build-bench" --product udocker)
    # release: the same flags as `make release` (the glibc 2.28 link through scripts/zig-link)
    [ "$BUILD" = release ] && flags+=(-c release --static-swift-stdlib --disable-local-rpath -Xswiftc -tools-directory -Xswiftc "$src/scripts/zig-link")
    rm -rf "$src"; mkdir -p "$src"
    # scripts/: the release link runs scripts/zig-link (zig, glibc 2.28; docs/portable-binary.md)
    (cd "$ROOT" && cp -a Package.swift $(ls Package.resolved 2>/dev/null) Sources Tests scripts "$src/")
    (cd "$ROOT" && git rev-parse HEAD >"$src/.bench-commit" 2>/dev/null) || true
    log "swift build ${flags[*]} (BENCH_BUILD=$BUILD, sources snapshot in $src)"
    export ZIG="${ZIG:-$([ -x /opt/udocker-zig/bin/python3 ] && echo /opt/udocker-zig/bin/python3 || echo python3) -m ziglang}"
    (cd "$src" && swift build "${flags[@]}" 2>&1 | tail -n 5; exit "${PIPESTATUS[0]}") || die "swift build failed"
    bin="$(cd "$src" && swift build "${flags[@]}" --show-bin-path)/udocker"
  fi
  [ -x "$bin" ] || die "no binary at $bin"
  install -m 755 "$bin" "$BW/bin/udocker"
  # what a user installs (make install strips): its size is a target
  strip -o "$BW/bin/udocker.stripped" "$BW/bin/udocker"
  chmod 755 "$BW" "$BW/bin"
}

# ------------------------------------------------------------------------------------------------
# 3. registry (own instance, own port, storage wiped every run)
stop_registry() {
  local f pid
  for f in "$BW/registry.pid" "$BW/registry-tls.pid"; do
    [ -f "$f" ] || continue
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$f"
  done
}

# The same storage over HTTPS for ch-image (it refuses plain HTTP): a throw-away CA + a server
# certificate for 127.0.0.1, made once under $BW/tls.
start_tls_registry() {
  local t="$BW/tls"
  mkdir -p "$t"
  if [ ! -s "$t/server.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=udocker bench CA" \
      -keyout "$t/ca-key.pem" -out "$t/ca.pem" >/dev/null 2>&1 || die "openssl (CA) failed"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" -keyout "$t/server-key.pem" -out "$t/server.csr" >/dev/null 2>&1 \
      || die "openssl (CSR) failed"
    printf 'subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$t/ext.cnf"
    openssl x509 -req -in "$t/server.csr" -CA "$t/ca.pem" -CAkey "$t/ca-key.pem" -CAcreateserial -days 3650 \
      -extfile "$t/ext.cnf" -out "$t/server.pem" >/dev/null 2>&1 || die "openssl (sign) failed"
  fi
  chmod 755 "$t"; chmod 644 "$t/ca.pem"
  curl -s -o /dev/null --max-time 1 -k "https://$TLSREG/" 2>/dev/null && die "$TLSREG is already in use (set BENCH_TLS_PORT)"
  serve_registry registry-tls "$TLSREG" https "  tls:
    certificate: $t/server.pem
    key: $t/server-key.pem" --cacert "$t/ca.pem"
}

# serve_registry NAME ADDR SCHEME HTTP_EXTRA [CURL_OPTION...]: docker-registry on ADDR serving the
# bench storage (HTTP_EXTRA: more lines of its http: section), pid in $BW/NAME.pid
serve_registry() {
  local name="$1" addr="$2" scheme="$3" extra="$4"; shift 4
  cat >"$BW/registry/$name.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $BW/registry/storage
http:
  addr: $addr
$extra
EOF
  setsid docker-registry serve "$BW/registry/$name.yml" </dev/null >"$BW/logs/$name.log" 2>&1 &
  echo $! >"$BW/$name.pid"
  for _ in $(seq 1 100); do
    [ "$(curl -s "$@" -o /dev/null -w '%{http_code}' "$scheme://$addr/v2/" 2>/dev/null || true)" = 200 ] \
      && { log "$name up on $scheme://$addr"; return 0; }
    kill -0 "$(cat "$BW/$name.pid")" 2>/dev/null || { cat "$BW/logs/$name.log" >&2; die "$name exited"; }
    sleep 0.1
  done
  die "$name does not answer on $addr"
}

start_registry() {
  stop_registry
  rm -rf "$BW/registry"; mkdir -p "$BW/registry/storage" "$BW/logs"
  curl -s -o /dev/null --max-time 1 "http://$REG/" 2>/dev/null && die "$REG is already in use (set BENCH_PORT)"
  serve_registry registry "$REG" http ""
}

# ------------------------------------------------------------------------------------------------
# 4. images (cached OCI layout; rebuilt only when a tag is missing)
debian_mirror() {
  local m=""
  if [ -n "${UDOCKER_E2E_DEBIAN_MIRROR:-}" ]; then echo "$UDOCKER_E2E_DEBIAN_MIRROR"; return; fi
  if compgen -G "/etc/apt/sources.list.d/*.sources" >/dev/null; then
    m="$(awk '/^URIs:/ {for (i=2;i<=NF;i++) if ($i ~ /\/debian\/?$/) {print $i; exit}}' /etc/apt/sources.list.d/*.sources)"
  fi
  if [ -z "$m" ] && [ -f /etc/apt/sources.list ]; then
    m="$(awk '$1=="deb" && $0 !~ /security/ {for (i=2;i<=NF;i++) if ($i ~ /^https?:\/\/.*\/debian\/?$/) {print $i; exit}}' /etc/apt/sources.list)"
  fi
  echo "${m:-http://deb.debian.org/debian}"
}

# (no grep -q: with pipefail, umoci would die of SIGPIPE)
has_tag() { umoci ls --layout "$LAYOUT" 2>/dev/null | grep -x "$1" >/dev/null; }
# images are built under <tag>-wip and renamed when complete, so an interrupted build is redone
finish_tag() {
  umoci tag --image "$LAYOUT:$1-wip" "$1" >/dev/null
  umoci rm --image "$LAYOUT:$1-wip" >/dev/null
}
if [ "$(id -u)" -eq 0 ]; then ROOTLESS=(); else ROOTLESS=(--rootless); fi

python_rootfs_tar() { # the cached mmdebstrap tarball (path on stdout)
  local t="$CACHE/bench-debian-$SUITE-python3.tar"
  if [ ! -s "$t" ]; then
    log "mmdebstrap --variant=minbase --include=python3 $SUITE (cached as $t)"
    mmdebstrap --variant=minbase --include=python3 --format=tar --quiet "$SUITE" "$t.tmp" "$(debian_mirror)" \
      </dev/null >"$BW/logs/mmdebstrap.log" 2>&1 || { cat "$BW/logs/mmdebstrap.log" >&2; die "mmdebstrap failed"; }
    mv "$t.tmp" "$t"
  fi
  echo "$t"
}

build_images() {
  mkdir -p "$CACHE"
  [ -f "$LAYOUT/index.json" ] || umoci init --layout "$LAYOUT" >/dev/null
  local b="$BW/build"; rm -rf "$b"; mkdir -p "$b"
  if ! has_tag busybox; then
    log "building bench-busybox (umoci + busybox-static)"
    umoci new --image "$LAYOUT:busybox-wip" >/dev/null
    umoci unpack "${ROOTLESS[@]}" --image "$LAYOUT:busybox-wip" "$b/busybox" >/dev/null
    local r="$b/busybox/rootfs" a
    mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/proc" "$r/dev" "$r/sys" "$r/root" "$r/usr/bin"
    chmod 1777 "$r/tmp"; cp /bin/busybox "$r/bin/busybox"; chmod 755 "$r/bin/busybox"
    for a in sh ls cat env true false sleep find sort echo; do ln -sf busybox "$r/bin/$a"; done
    printf 'root:x:0:0:root:/root:/bin/sh\n' >"$r/etc/passwd"; printf 'root:x:0:\n' >"$r/etc/group"
    umoci repack --image "$LAYOUT:busybox-wip" "$b/busybox" >/dev/null
    umoci config --image "$LAYOUT:busybox-wip" --os linux --architecture amd64 --config.env PATH=/bin:/usr/bin --config.cmd sh >/dev/null
    finish_tag busybox
  fi
  if ! has_tag python; then
    local t; t="$(python_rootfs_tar)"
    log "building bench-python (umoci raw add-layer of $(basename "$t"))"
    umoci new --image "$LAYOUT:python-wip" >/dev/null
    umoci raw add-layer --image "$LAYOUT:python-wip" --history.created_by "mmdebstrap --variant=minbase --include=python3 $SUITE" "$t" >/dev/null
    umoci config --image "$LAYOUT:python-wip" --os linux --architecture amd64 \
      --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.cmd bash >/dev/null
    finish_tag python
  fi
  if [ "$LARGE" = 1 ] && ! has_tag large; then
    local t s; t="$(python_rootfs_tar)"
    log "building bench-large (base + 4 x genlayer.py + whiteouts; takes a few minutes once)"
    umoci new --image "$LAYOUT:large-wip" >/dev/null
    umoci raw add-layer --image "$LAYOUT:large-wip" --history.created_by "mmdebstrap python3" "$t" >/dev/null
    for s in 1 2 3 4; do
      /usr/bin/python3 "$HERE/genlayer.py" "$b/layer$s.tar" --seed "$s" --mb 220 --files 8000
      umoci raw add-layer --image "$LAYOUT:large-wip" --history.created_by "genlayer.py --seed $s" "$b/layer$s.tar" >/dev/null
      rm -f "$b/layer$s.tar"
    done
    /usr/bin/python3 "$HERE/genlayer.py" "$b/wh.tar" --seed 0 --whiteouts-of 2 --files 8000
    umoci raw add-layer --image "$LAYOUT:large-wip" --history.created_by "genlayer.py --whiteouts-of 2" "$b/wh.tar" >/dev/null
    umoci config --image "$LAYOUT:large-wip" --os linux --architecture amd64 \
      --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.cmd bash >/dev/null
    finish_tag large
  fi
  umoci gc --layout "$LAYOUT" >/dev/null
  chmod -R a+rX "$LAYOUT"; chmod -R go-w "$LAYOUT"
  rm -rf "$b"
}

push_images() {
  local img
  for img in busybox python $([ "$LARGE" = 1 ] && echo large); do
    log "push bench-$img -> $REG/library/bench-$img:latest"
    "${SKOPEO[@]}" copy --quiet --dest-tls-verify=false "oci:$LAYOUT:$img" "docker://$REG/library/bench-$img:latest" >/dev/null \
      || die "skopeo copy $img failed"
  done
}

# ------------------------------------------------------------------------------------------------
# trees of the measured user (UDOCKER_DIRs, containers, floors): deleted before and after measuring,
# never in between (see "Quiet disk" above)
# (several rm at once: deleting is bound by the disk's latency, mostly discards, not by the CPU)
delete_trees() {
  local d
  for d in "$BW/graveyard" "$BW/home"; do
    [ -e "$d" ] || continue
    [ "$(id -u)" -eq 0 ] || chmod -R u+rwX "$d" 2>/dev/null || true
    find "$d" -mindepth 1 -maxdepth 1 -print0 | xargs -0 -r -n 1 -P 4 rm -rf
    rm -rf "$d"
    date +%s >"$BW/deleted-at"
  done
}

# waits until the inodes freed by delete_trees no longer slow down file creation (see "Quiet disk")
quiet_disk() {
  local last=0 wait
  sync
  [ -s "$BW/deleted-at" ] && last="$(cat "$BW/deleted-at")"
  wait=$(( last + 300 - $(date +%s) ))
  if [ "$wait" -gt 6 ]; then
    log "quiet disk: waiting ${wait} s (bench trees were deleted less than 300 s ago; see bench/run.sh)"
  else
    wait=6
  fi
  sleep "$wait"
}

on_exit() {
  stop_registry
  if [ -e "$BW/graveyard" ] || [ -e "$BW/home" ]; then
    [ -s "$BW/home/raw.json" ] && cp "$BW/home/raw.json" "$BW/raw.json"
    local t; t=$(date +%s)
    delete_trees
    log "deleted the measured trees ($(( $(date +%s) - t )) s)"
  fi
  log "total $(( $(date +%s) - T0 )) s"
}

main() {
  deps
  mkdir -p "$BW" "$BW/logs" "$OUT"
  chmod 755 "$BW"
  trap on_exit EXIT
  if [ "${1:-}" = images ]; then build_images; log "images cached in $LAYOUT"; return 0; fi
  build_binary
  start_registry
  start_tls_registry
  local tb; tb=$(date +%s)
  build_images
  log "images ready ($(( $(date +%s) - tb )) s)"
  push_images

  # the measured user's area, and the graveyard its used trees are moved to (same filesystem)
  delete_trees
  mkdir -p "$BW/home" "$BW/graveyard"
  [ "$(id -u)" -eq 0 ] && chown "$BUSER:" "$BW/home" "$BW/graveyard"
  local images="busybox python"; [ "$LARGE" = 1 ] && images="$images large"
  local commit dirty
  commit="$(cd "$ROOT" && git rev-parse --short HEAD 2>/dev/null || echo unknown)"
  dirty="$(cd "$ROOT" && git status --porcelain -- Sources Package.swift 2>/dev/null | wc -l)"
  cat >"$BW/config.json" <<EOF
{
  "ours": "$BW/bin/udocker",
  "ours_stripped": "$BW/bin/udocker.stripped",
  "peer": "$VENV/bin/udocker",
  "ch_run": "$(command -v ch-run)",
  "ch_image": "$(command -v ch-image)",
  "ch_version": "$(USER="${USER:-$(id -un)}" ch-run --version 2>&1 | head -n 1)",
  "tls_registry": "$TLSREG",
  "tls_ca": "$BW/tls/ca.pem",
  "par_runs": ${BENCH_PAR_RUNS:-1000},
  "startup_runs": ${BENCH_STARTUP_RUNS:-50},
  "peer_version": "$("$VENV/bin/python3" -c 'import udocker; print(udocker.__version__)' 2>/dev/null || echo '?')",
  "registry": "$REG",
  "layout": "$LAYOUT",
  "images": "$images",
  "home": "$BW/home",
  "graveyard": "$BW/graveyard",
  "build": "$([ -n "${BENCH_BIN:-}" ] && echo "${BENCH_BUILD:-unknown} (BENCH_BIN=$BENCH_BIN)" || echo "$BUILD")",
  "commit": "$commit",
  "uncommitted_source_changes": $dirty,
  "reps": ${BENCH_REPS:-3},
  "short_runs": ${BENCH_SHORT_RUNS:-100},
  "peer_modes": "${BENCH_PEER_MODES:-F1 R1}",
  "peer_workload_modes": "${BENCH_PEER_WORKLOAD_MODES:-R1}",
  "workload_modes": "${BENCH_WORKLOAD_MODES:-N1 N1-flat P1 F1 R1}",
  "large_reps": ${BENCH_LARGE_REPS:-3},
  "large": $([ "$LARGE" = 1 ] && echo true || echo false)
}
EOF
  chmod 644 "$BW/config.json"
  quiet_disk
  log "measuring as $BUSER (images: $images; reps ${BENCH_REPS:-3})"
  local status=0
  as_user /usr/bin/python3 "$HERE/measure.py" "$BW/config.json" "$BW/home/raw.json" || status=$?
  [ -s "$BW/home/raw.json" ] || die "measure.py wrote no results"
  /usr/bin/python3 "$HERE/report.py" "$BW/home/raw.json" "$OUT"
  cp "$BW/home/raw.json" "$BW/raw.json"
  log "measured and reported in $(( $(date +%s) - T0 )) s (measure.py exit $status): $OUT/results.md, $OUT/results.json"
  return "$status"
}

main "$@"
