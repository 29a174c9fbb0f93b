#!/usr/bin/env bash
# End-to-end test fixtures: local registries and test images built with independent tools.
#
#   scripts/test-fixtures.sh [start]   start registries, build + push every image, write $W/env
#   scripts/test-fixtures.sh stop      stop the registries and the token issuer started by `start`
#   scripts/test-fixtures.sh status    show what is running
#
# Work dir W = $UDOCKER_E2E_WORK (default /tmp/udocker-e2e), world-readable:
#   registry/{plain,token}/   registry storage (wiped on every start)
#   registry/*.yml            registry configs;  auth/{key,cert}.pem  token signing key + cert
#   auth/htpasswd             bcrypt users of the htpasswd registry
#   pids/*.pid  logs/*.log    background processes
#   oci/                      OCI layout holding every image (built by umoci, rebuilt each start)
#   cache/                    mmdebstrap tarball of Debian bookworm minbase, keyed by date
#   home/                     owned by the test user: tests create their UDOCKER_DIRs here
#   bin/udocker               world-readable copy of our binary (installed by the Makefile)
#   ports                     the ports chosen by `start` (read by start-tls, status)
#   env                       KEY=value lines for the Swift E2E tests (source with `set -a`)
#
# Registries (Debian's docker-registry 2.8), on loopback ports chosen at start: the default port
# when nothing listens there, else a free one (a local registry on 5000 is common). The ports are
# in $W/env; tests build every image reference from it.
#   plain     (5000)  plain HTTP, no auth, delete enabled
#   token     (5001)  plain HTTP, token auth; issuer scripts/fixtures/token-issuer.py (5002)
#                     (alice/secret may pull+push; anonymous tokens carry no access)
#   tls       (5443)  HTTPS (certificate from a self-signed test CA, tls/ca.pem), no auth, serving
#                     the storage of plain read-only (same images)
#   htpasswd  (5003)  plain HTTP, Basic auth from auth/htpasswd (bob/hunter2), serving the storage
#                     of plain read-only (for `udocker login`)
#
# Images (never built by our own code): see build_* below and the report in Tests/EndToEndTests.
# Runs as root (umoci unpack keeps ownership) or as an unprivileged user (umoci --rootless,
# mmdebstrap unshare mode, which needs subuids).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
W="${UDOCKER_E2E_WORK:-/tmp/udocker-e2e}"
E2E_USER="${UDOCKER_E2E_USER:-udtest}"
VENV="${UDOCKER_E2E_VENV:-/opt/udocker-e2e-venv}"
# Preferred ports (used when free); see choose_ports.
DEFAULT_PORTS=(plain=5000 token=5001 issuer=5002 tls=5443 htpasswd=5003)
TOKEN_SERVICE="udocker-e2e-registry"
TOKEN_ISSUER="udocker-e2e-issuer"
TOKEN_USER="alice"
TOKEN_PASSWORD="secret"
HTPASSWD_USER="bob"
HTPASSWD_PASSWORD="hunter2"
SUITE="${UDOCKER_E2E_DEBIAN_SUITE:-bookworm}"
L="$W/oci"

log() { printf 'test-fixtures: %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

if [ "$(id -u)" -eq 0 ]; then ROOTLESS=(); else ROOTLESS=(--rootless); fi

# ---------------------------------------------------------------------------------------------
# processes

stop_all() {
  local f pid
  for f in "$W"/pids/*.pid; do
    [ -e "$f" ] || continue
    pid="$(cat "$f" 2>/dev/null || true)"
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      log "stopped $(basename "$f" .pid) (pid $pid)"
    fi
    rm -f "$f"
  done
}

status_all() {
  local f pid
  for f in "$W"/pids/*.pid; do
    [ -e "$f" ] || continue
    pid="$(cat "$f")"
    if kill -0 "$pid" 2>/dev/null; then echo "$(basename "$f" .pid): running (pid $pid)"; else echo "$(basename "$f" .pid): dead"; fi
  done
}

# start_bg <name> <command...>: detached, logs to logs/<name>.log, pid to pids/<name>.pid
start_bg() {
  local name="$1"; shift
  setsid "$@" </dev/null >"$W/logs/$name.log" 2>&1 &
  echo $! >"$W/pids/$name.pid"
}

# wait_http <url> <name>: until the URL answers 200 or 401
wait_http() {
  local url="$1" name="$2" code
  for _ in $(seq 1 100); do
    code="$(curl -s -o /dev/null -w '%{http_code}' "$url" 2>/dev/null || true)"
    case "$code" in 200|401) return 0 ;; esac
    if ! kill -0 "$(cat "$W/pids/$name.pid")" 2>/dev/null; then
      cat "$W/logs/$name.log" >&2 || true
      die "$name exited while starting"
    fi
    sleep 0.1
  done
  cat "$W/logs/$name.log" >&2 || true
  die "$name does not answer at $url"
}

# port_free <port>: nothing listens on (or holds) 127.0.0.1:<port> (bind test, as the services do)
port_free() {
  /usr/bin/python3 -c 'import socket, sys
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", int(sys.argv[1])))' "$1" 2>/dev/null
}
any_free_port() {
  /usr/bin/python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# choose_ports: every service gets its default port when that is free, else a free loopback port
# (all distinct); written to $W/ports and exported as REG, TREG, TOKEN_PORT, TLSREG, HTREG.
choose_ports() {
  local kv name port used=" "
  : >"$W/ports.tmp"
  for kv in "${DEFAULT_PORTS[@]}"; do
    name="${kv%%=*}"; port="${kv#*=}"
    if ! port_free "$port" || [[ "$used" == *" $port "* ]]; then
      local old="$port"
      for _ in $(seq 1 20); do
        port="$(any_free_port)"
        [[ "$used" == *" $port "* ]] || break
      done
      log "127.0.0.1:$old is in use: $name uses 127.0.0.1:$port"
    fi
    used="$used$port "
    echo "$name=$port" >>"$W/ports.tmp"
  done
  mv "$W/ports.tmp" "$W/ports"
  load_ports
}
load_ports() {
  local f="$W/ports" kv
  [ -s "$f" ] || { f=/dev/null; }
  declare -gA PORT=()
  for kv in "${DEFAULT_PORTS[@]}"; do PORT[${kv%%=*}]="${kv#*=}"; done
  while IFS='=' read -r k v; do [ -n "$k" ] && PORT[$k]="$v"; done <"$f"
  REG="127.0.0.1:${PORT[plain]}"; TREG="127.0.0.1:${PORT[token]}"; TOKEN_PORT="${PORT[issuer]}"
  TLSREG="127.0.0.1:${PORT[tls]}"; HTREG="127.0.0.1:${PORT[htpasswd]}"
}

write_registry_config() { # <name> <port> <auth yaml or empty> [storage name]
  local name="$1" port="$2" auth="$3" store="${4:-$1}"
  cat >"$W/registry/$name.yml" <<EOF
version: 0.1
log:
  level: info
  formatter: text
storage:
  filesystem:
    rootdirectory: $W/registry/$store
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
$auth
EOF
}

prepare_tls() {
  # A test CA and a server certificate for 127.0.0.1/localhost signed by it: the TLS registry.
  mkdir -p "$W/tls"
  if [ ! -s "$W/tls/server.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=udocker-e2e test CA" \
      -keyout "$W/tls/ca-key.pem" -out "$W/tls/ca.pem" >/dev/null 2>&1 || die "openssl (CA) failed"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=127.0.0.1" \
      -keyout "$W/tls/server-key.pem" -out "$W/tls/server.csr" >/dev/null 2>&1 || die "openssl (CSR) failed"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' >"$W/tls/ext.cnf"
    openssl x509 -req -in "$W/tls/server.csr" -CA "$W/tls/ca.pem" -CAkey "$W/tls/ca-key.pem" -CAcreateserial \
      -days 3650 -extfile "$W/tls/ext.cnf" -out "$W/tls/server.pem" >/dev/null 2>&1 || die "openssl (sign) failed"
  fi
  chmod 755 "$W/tls"; chmod 644 "$W/tls/ca.pem" "$W/tls/server.pem"; chmod 600 "$W/tls/ca-key.pem" "$W/tls/server-key.pem"
  write_registry_config tls "${PORT[tls]}" "  tls:
    certificate: $W/tls/server.pem
    key: $W/tls/server-key.pem" plain
}

# The TLS registry (also started by hand next to running fixtures: $0 start-tls).
start_tls_registry() {
  port_free "${PORT[tls]}" || die "$TLSREG is already in use"
  start_bg registry-tls docker-registry serve "$W/registry/tls.yml"
  for _ in $(seq 1 100); do
    case "$(curl -s --cacert "$W/tls/ca.pem" -o /dev/null -w '%{http_code}' "https://$TLSREG/v2/" 2>/dev/null || true)" in
      200) log "TLS registry up: https://$TLSREG (CA $W/tls/ca.pem)"; return 0 ;;
    esac
    sleep 0.1
  done
  cat "$W/logs/registry-tls.log" >&2 || true
  die "the TLS registry does not answer at https://$TLSREG/v2/"
}

start_services() {
  mkdir -p "$W/registry/plain" "$W/registry/token" "$W/pids" "$W/logs" "$W/auth"
  choose_ports

  # Signing key + self-signed certificate for the token issuer (the registry trusts the cert).
  if [ ! -s "$W/auth/cert.pem" ]; then
    openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=$TOKEN_ISSUER" \
      -keyout "$W/auth/key.pem" -out "$W/auth/cert.pem" >/dev/null 2>&1 || die "openssl req failed"
  fi
  chmod 644 "$W/auth/cert.pem"; chmod 600 "$W/auth/key.pem"

  htpasswd -Bbn "$HTPASSWD_USER" "$HTPASSWD_PASSWORD" >"$W/auth/htpasswd" 2>/dev/null || die "htpasswd failed (apache2-utils)"
  chmod 644 "$W/auth/htpasswd"
  write_registry_config plain "${PORT[plain]}" ""
  write_registry_config htpasswd "${PORT[htpasswd]}" "auth:
  htpasswd:
    realm: udocker-e2e-basic
    path: $W/auth/htpasswd" plain
  write_registry_config token "${PORT[token]}" "auth:
  token:
    realm: http://127.0.0.1:$TOKEN_PORT/token
    service: $TOKEN_SERVICE
    issuer: $TOKEN_ISSUER
    rootcertbundle: $W/auth/cert.pem"

  start_bg token-issuer /usr/bin/python3 "$HERE/fixtures/token-issuer.py" --port "$TOKEN_PORT" \
    --key "$W/auth/key.pem" --cert "$W/auth/cert.pem" --issuer "$TOKEN_ISSUER" --service "$TOKEN_SERVICE"
  start_bg registry-plain docker-registry serve "$W/registry/plain.yml"
  start_bg registry-token docker-registry serve "$W/registry/token.yml"
  start_bg registry-htpasswd docker-registry serve "$W/registry/htpasswd.yml"
  wait_http "http://127.0.0.1:$TOKEN_PORT/health" token-issuer
  wait_http "http://$REG/v2/" registry-plain
  wait_http "http://$TREG/v2/" registry-token
  wait_http "http://$HTREG/v2/" registry-htpasswd
  prepare_tls
  start_tls_registry
  log "registries up: $REG (open), $TREG (token auth via 127.0.0.1:$TOKEN_PORT), $HTREG (htpasswd), https://$TLSREG"
}

# ---------------------------------------------------------------------------------------------
# image building (umoci, busybox-static, mmdebstrap, GNU tar)

umoci_unpack() { # <ref> <bundle>
  rm -rf "$2"
  umoci unpack "${ROOTLESS[@]}" --image "$L:$1" "$2" >/dev/null
}
umoci_repack() { # <ref> <bundle>
  umoci repack --refresh-bundle --image "$L:$1" "$2" >/dev/null
}

BUSYBOX_APPLETS="sh ls cat id env pwd echo true false sleep touch mkdir rm stat head wc sha256sum readlink grep uname whoami chmod ln test [ find sort"

# populate_busybox <rootfs>: static busybox + applet symlinks + minimal /etc
populate_busybox() {
  local r="$1" a
  mkdir -p "$r/bin" "$r/etc" "$r/tmp" "$r/mnt" "$r/proc" "$r/dev" "$r/sys" "$r/root" "$r/home" "$r/var/tmp" "$r/usr/bin"
  chmod 1777 "$r/tmp" "$r/var/tmp"
  cp /bin/busybox "$r/bin/busybox"
  chmod 755 "$r/bin/busybox"
  for a in $BUSYBOX_APPLETS; do ln -sf busybox "$r/bin/$a"; done
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$r/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$r/etc/group"
  printf 'udocker-e2e busybox image\n' >"$r/etc/e2e-release"
}

# busybox_config <ref> [extra umoci config args]
busybox_config() {
  local ref="$1"; shift
  umoci config --image "$L:$ref" --os linux --architecture amd64 --author udocker-e2e \
    --config.env PATH=/usr/sbin:/usr/bin:/sbin:/bin \
    --config.env E2E_IMAGE_VAR=from-image \
    --config.env E2E_OVERRIDE=from-image \
    --config.cmd sh --config.workingdir /tmp "$@" >/dev/null
}

build_busybox() {
  log "building busybox"
  umoci new --image "$L:busybox" >/dev/null
  umoci_unpack busybox "$W/build/busybox"
  populate_busybox "$W/build/busybox/rootfs"
  umoci_repack busybox "$W/build/busybox"
  busybox_config busybox
}

. "$HERE/fixtures/debian-mirror.sh"

# debian_minbase <suite> <image> [umoci config args]: an image of one layer, mmdebstrap's minbase
# of <suite> (the tarball cached by date under $W/cache).
debian_minbase() {
  local suite="$1" image="$2" day tarball mirror
  shift 2
  day="$(date +%Y%m%d)"
  mkdir -p "$W/cache"
  tarball="$W/cache/debian-$suite-minbase-$day.tar"
  if [ ! -s "$tarball" ]; then
    mirror="$(debian_mirror)"
    log "mmdebstrap $suite minbase from $mirror (cached as $(basename "$tarball"))"
    mmdebstrap --variant=minbase --format=tar --quiet "$suite" "$tarball.tmp" "$mirror" </dev/null >"$W/logs/mmdebstrap-$suite.log" 2>&1 \
      || { cat "$W/logs/mmdebstrap-$suite.log" >&2; die "mmdebstrap $suite failed"; }
    mv "$tarball.tmp" "$tarball"
    find "$W/cache" -name "debian-$suite-minbase-*.tar" ! -name "$(basename "$tarball")" -delete
  fi
  log "building $image from $(basename "$tarball")"
  umoci new --image "$L:$image" >/dev/null
  umoci raw add-layer --image "$L:$image" --history.created_by "mmdebstrap --variant=minbase $suite" "$tarball" >/dev/null
  umoci config --image "$L:$image" --os linux --architecture amd64 --author udocker-e2e \
    --config.env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin --config.cmd bash "$@" >/dev/null
}

build_debian() { debian_minbase "$SUITE" debian --config.env E2E_IMAGE_VAR=from-debian; }

# debian:bullseye (glibc 2.31, as SLES 15 SP3+, Cray OS and Ubuntu 20.04 have): the release binary
# must start under an older C library than the build host's (issue 22; TarballInstallTests): the
# oldest suite the mirror still serves (buster, glibc 2.28, is archived).
OLD_SUITE="${UDOCKER_E2E_OLD_SUITE:-bullseye}"
build_old_debian() { debian_minbase "$OLD_SUITE" debian-old; }

# cuda-e2e: the Debian image declaring CUDA 12.6 the way nvidia/cuda images do (for the --nvidia
# pre-flight against fake drivers; see scripts/fixtures/nvidia-driver-tree.sh)
build_cuda() {
  log "building cuda-e2e"
  umoci config --image "$L:debian" --tag cuda-e2e \
    --config.env CUDA_VERSION=12.6.0 --config.env "NVIDIA_REQUIRE_CUDA=cuda>=12.6 brand=tesla,driver>=470" \
    --config.env NVIDIA_VISIBLE_DEVICES=all --config.env NVIDIA_DRIVER_CAPABILITIES=compute,utility >/dev/null
}

# whiteout: three layers
#   1 (umoci repack): busybox + /keep /gone /gonedir/f /opq/{a,b} /dir/sub/{stay,gone2}
#   2 (umoci repack after deleting /gone, /gonedir, /dir/sub/gone2): umoci writes .wh.<name> entries
#   3 (GNU tar, umoci raw add-layer): opq/ + opq/.wh..wh..opq + opq/c  (opaque directory)
# expected after create: /keep, /dir/sub/stay, /opq/c; no /gone, /gonedir, /dir/sub/gone2,
# /opq/a, /opq/b, and no .wh.* file anywhere.
build_whiteout() {
  log "building whiteout"
  local b="$W/build/whiteout" t="$W/build/whiteout-layer3"
  umoci new --image "$L:whiteout" >/dev/null
  umoci_unpack whiteout "$b"
  populate_busybox "$b/rootfs"
  echo keep >"$b/rootfs/keep"
  echo gone >"$b/rootfs/gone"
  mkdir -p "$b/rootfs/gonedir" "$b/rootfs/opq" "$b/rootfs/dir/sub"
  echo f >"$b/rootfs/gonedir/f"
  echo a >"$b/rootfs/opq/a"
  echo b >"$b/rootfs/opq/b"
  echo stay >"$b/rootfs/dir/sub/stay"
  echo gone2 >"$b/rootfs/dir/sub/gone2"
  umoci_repack whiteout "$b"
  rm -rf "$b/rootfs/gone" "$b/rootfs/gonedir" "$b/rootfs/dir/sub/gone2"
  umoci_repack whiteout "$b"
  rm -rf "$t"; mkdir -p "$t/opq"
  : >"$t/opq/.wh..wh..opq"
  echo c >"$t/opq/c"
  tar -C "$t" --numeric-owner --owner=0 --group=0 --format=gnu --no-recursion -cf "$W/build/whiteout-layer3.tar" opq opq/.wh..wh..opq opq/c
  umoci raw add-layer --image "$L:whiteout" --history.created_by "GNU tar: opaque whiteout for /opq" "$W/build/whiteout-layer3.tar" >/dev/null
  busybox_config whiteout
}

# multi: OCI index with linux/amd64 (busybox + /arch=amd64) and linux/arm64/v8 (one tiny layer:
# /arch=arm64 only; its config says arm64).
build_multi() {
  log "building multi"
  local b="$W/build/multi-amd64" t="$W/build/multi-arm64"
  umoci new --image "$L:multi-amd64" >/dev/null
  umoci_unpack multi-amd64 "$b"
  populate_busybox "$b/rootfs"
  echo amd64 >"$b/rootfs/arch"
  umoci_repack multi-amd64 "$b"
  busybox_config multi-amd64

  rm -rf "$t"; mkdir -p "$t"
  echo arm64 >"$t/arch"
  tar -C "$t" --numeric-owner --owner=0 --group=0 -cf "$W/build/multi-arm64.tar" arch
  umoci new --image "$L:multi-arm64" >/dev/null
  umoci raw add-layer --image "$L:multi-arm64" "$W/build/multi-arm64.tar" >/dev/null
  umoci config --image "$L:multi-arm64" --os linux --architecture arm64 --author udocker-e2e \
    --config.env PATH=/bin --config.cmd sh >/dev/null
  # umoci has no "variant" flag: the variant is only in the index (as on Docker Hub).
  /usr/bin/python3 "$HERE/fixtures/make-index.py" "$L" multi "multi-amd64=linux/amd64" "multi-arm64=linux/arm64/v8" >/dev/null
}

# corrupt: busybox layer + a second layer with a unique marker; after the push the second
# layer's blob is damaged in the registry storage (one byte flipped, same size), so the registry
# serves wrong bytes under the original digest.
build_corrupt() {
  log "building corrupt"
  local b="$W/build/corrupt"
  umoci new --image "$L:corrupt" >/dev/null
  umoci_unpack corrupt "$b"
  populate_busybox "$b/rootfs"
  umoci_repack corrupt "$b"
  echo "corrupt-marker $(date +%s%N) $RANDOM" >"$b/rootfs/corrupt-marker"
  umoci_repack corrupt "$b"
  busybox_config corrupt
}

SKOPEO=(skopeo --policy "$W/policy.json" --insecure-policy)
push() { # <layout ref> <registry/name:tag> [extra skopeo args]
  local src="$1" dst="$2"; shift 2
  log "push $src -> $dst"
  "${SKOPEO[@]}" copy --quiet --dest-tls-verify=false "$@" "oci:$L:$src" "docker://$dst" >/dev/null \
    || die "skopeo copy $src -> $dst failed"
}

corrupt_blob() { # <registry/name:tag>: flips one byte of the last layer blob in storage
  local ref="$1" digest hex data
  digest="$("${SKOPEO[@]}" inspect --raw --tls-verify=false "docker://$ref" | jq -r '.layers[-1].digest')"
  hex="${digest#sha256:}"
  data="$W/registry/plain/docker/registry/v2/blobs/sha256/${hex:0:2}/$hex/data"
  [ -f "$data" ] || die "blob $digest not found at $data"
  /usr/bin/python3 - "$data" <<'PY'
import os, sys
p = sys.argv[1]
with open(p, "r+b") as f:
    size = os.fstat(f.fileno()).st_size
    off = size // 2
    f.seek(off); b = f.read(1)
    f.seek(off); f.write(bytes([b[0] ^ 0xFF]))
PY
  [ "$(sha256sum "$data" | cut -d' ' -f1)" != "$hex" ] || die "corruption of $digest did not change the digest"
  echo "$digest"
}

build_and_push() {
  rm -rf "$L" "$W/build"
  mkdir -p "$W/build"
  echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$W/policy.json"
  umoci init --layout "$L" >/dev/null
  build_busybox
  build_debian
  build_old_debian
  build_cuda
  build_whiteout
  build_multi
  build_corrupt
  umoci gc --layout "$L" >/dev/null

  push busybox "$REG/library/busybox:latest"
  push debian "$REG/library/debian:$SUITE" --format v2s2
  push debian-old "$REG/library/debian:$OLD_SUITE" --format v2s2
  push cuda-e2e "$REG/library/cuda-e2e:12.6" --format v2s2
  push whiteout "$REG/library/whiteout:latest"
  push multi "$REG/library/multi:latest" --all
  push corrupt "$REG/library/corrupt:latest"
  push busybox "$TREG/library/busybox:latest" --dest-creds "$TOKEN_USER:$TOKEN_PASSWORD"
  CORRUPT_DIGEST="$(corrupt_blob "$REG/library/corrupt:latest")"
  log "corrupted $CORRUPT_DIGEST of $REG/library/corrupt:latest"

  # sanity checks through the registry API
  local I=("${SKOPEO[@]}" inspect --tls-verify=false)
  check() { local what="$1"; shift; "$@" >/dev/null || die "check failed: $what"; }
  check "busybox is amd64" jq -e '.Architecture == "amd64"' < <("${I[@]}" "docker://$REG/library/busybox:latest")
  check "debian is Docker schema 2" jq -e '.mediaType == "application/vnd.docker.distribution.manifest.v2+json"' \
    < <("${I[@]}" --raw "docker://$REG/library/debian:$SUITE")
  check "whiteout has 3 layers" jq -e '.layers | length == 3' < <("${I[@]}" --raw "docker://$REG/library/whiteout:latest")
  check "corrupt has 2 layers" jq -e '.layers | length == 2' < <("${I[@]}" --raw "docker://$REG/library/corrupt:latest")
  check "multi is an OCI index of 2" jq -e '.mediaType == "application/vnd.oci.image.index.v1+json" and (.manifests | length == 2)' \
    < <("${I[@]}" --raw "docker://$REG/library/multi:latest")
  check "multi resolves to arm64" jq -e '.Architecture == "arm64"' \
    < <("${I[@]}" --override-arch arm64 "docker://$REG/library/multi:latest")
  check "token registry with credentials" "${I[@]}" --creds "$TOKEN_USER:$TOKEN_PASSWORD" "docker://$TREG/library/busybox:latest"
  if "${I[@]}" --no-creds "docker://$TREG/library/busybox:latest" >/dev/null 2>&1; then
    die "anonymous pull from the token registry unexpectedly works"
  fi
  if "${I[@]}" --creds "$TOKEN_USER:wrong" "docker://$TREG/library/busybox:latest" >/dev/null 2>&1; then
    die "pull from the token registry with a wrong password unexpectedly works"
  fi
  check "htpasswd registry with credentials" "${I[@]}" --creds "$HTPASSWD_USER:$HTPASSWD_PASSWORD" "docker://$HTREG/library/busybox:latest"
  if "${I[@]}" --creds "$HTPASSWD_USER:wrong" "docker://$HTREG/library/busybox:latest" >/dev/null 2>&1; then
    die "pull from the htpasswd registry with a wrong password unexpectedly works"
  fi
}

write_env() {
  local bin="$W/bin/udocker" user="$E2E_USER"
  [ "$(id -u)" -eq 0 ] || user="$(id -un)"
  cat >"$W/env" <<EOF
UDOCKER_E2E=1
UDOCKER_E2E_WORK=$W
UDOCKER_E2E_HOME=$W/home
UDOCKER_E2E_USER=$user
UDOCKER_E2E_BIN=$bin
UDOCKER_E2E_PYUDOCKER=$VENV/bin/udocker
UDOCKER_E2E_REGISTRY=$REG
UDOCKER_E2E_TOKEN_REGISTRY=$TREG
UDOCKER_E2E_TLS_REGISTRY=$TLSREG
UDOCKER_E2E_TLS_CA=$W/tls/ca.pem
UDOCKER_E2E_TOKEN_ISSUER=127.0.0.1:$TOKEN_PORT
UDOCKER_E2E_HTPASSWD_REGISTRY=$HTREG
UDOCKER_E2E_HTPASSWD_USER=$HTPASSWD_USER
UDOCKER_E2E_HTPASSWD_PASSWORD=$HTPASSWD_PASSWORD
UDOCKER_E2E_TOKEN_USER=$TOKEN_USER
UDOCKER_E2E_TOKEN_PASSWORD=$TOKEN_PASSWORD
UDOCKER_E2E_DEBIAN_TAG=$SUITE
UDOCKER_E2E_OLD_DEBIAN_TAG=$OLD_SUITE
UDOCKER_E2E_CORRUPT_DIGEST=$CORRUPT_DIGEST
UDOCKER_E2E_FAKECHROOT_SO=/usr/lib/x86_64-linux-gnu/fakechroot/libfakechroot.so
UDOCKER_E2E_PATCHELF=/usr/bin/patchelf
EOF
  chmod 644 "$W/env"
  log "wrote $W/env"
}

prepare_workdir() {
  mkdir -p "$W" "$W/bin" "$W/home"
  chmod 755 "$W" "$W/bin"
  # sandboxes left by earlier test runs (UDOCKER_E2E_KEEP=1 or a crash)
  find "$W/home" -mindepth 1 -maxdepth 1 -exec rm -rf {} + 2>/dev/null || true
  if [ "$(id -u)" -eq 0 ]; then
    id "$E2E_USER" >/dev/null 2>&1 || die "test user $E2E_USER does not exist (run scripts/test-deps.sh as root)"
    chown "$E2E_USER:" "$W/home"
  fi
  chmod 755 "$W/home"
  # the test user must be able to reach the work dir
  local d="$W"
  while [ "$d" != "/" ]; do
    d="$(dirname "$d")"
    [ -x "$d" ] || die "$d is not searchable by other users"
  done
}

cmd="${1:-start}"
case "$cmd" in
  start)
    prepare_workdir
    mkdir -p "$W/pids" "$W/logs"
    stop_all
    rm -rf "$W/registry/plain" "$W/registry/token"
    # a failed start leaves nothing running
    trap 'status=$?; [ "$status" -eq 0 ] || { log "start failed: stopping what was started"; stop_all; }' EXIT
    start_services
    build_and_push
    UDOCKER_E2E_WORK="$W" UDOCKER_E2E_HPC_REGISTRY="$REG" "$HERE/fixtures/hpc-images.sh"
    write_env
    log "ready (stop with: $0 stop)"
    ;;
  start-tls) mkdir -p "$W/pids" "$W/logs" "$W/registry"; load_ports; prepare_tls; start_tls_registry ;;
  stop)
    stop_all
    # a two-node cluster that a crashed ClusterTests run left (namespaces, bridge, daemons)
    if [ "$(id -u)" -eq 0 ] && [ -e "/run/netns/ude2e${UDOCKER_E2E_CLUSTER_ID:-0}-n1" ]; then
      "$HERE/fixtures/hpc-cluster.sh" stop || true
    fi
    ;;
  status) load_ports; echo "ports: plain $REG, token $TREG, issuer $TOKEN_PORT, tls $TLSREG, htpasswd $HTREG"; status_all ;;
  *) echo "usage: $0 [start|start-tls|stop|status]" >&2; exit 2 ;;
esac
