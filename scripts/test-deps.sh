#!/usr/bin/env bash
# Installs everything the end-to-end tests need on a Debian 12 (bookworm) machine.
# Run as root (CI does, via `make test`).  Idempotent: reruns are cheap.
#
#   * apt packages: registry, image tools, engines' helper binaries
#   * the unprivileged test user ($UDOCKER_E2E_USER, default udtest) with subuid/subgid ranges
#   * a venv with the Python udocker 1.3.17 (reference implementation for compatibility tests),
#     built with Debian's /usr/bin/python3 (a pyenv python under /root is not readable by the
#     test user) in a world-readable directory ($UDOCKER_E2E_VENV, default /opt/udocker-e2e-venv).
#
# Without root: only checks and lists what is missing (exit 1 if anything is).
set -euo pipefail

E2E_USER="${UDOCKER_E2E_USER:-udtest}"
VENV="${UDOCKER_E2E_VENV:-/opt/udocker-e2e-venv}"
PYUDOCKER_VERSION="${UDOCKER_E2E_PYUDOCKER_VERSION:-1.3.17}"
# zig, the link driver of the portable release build (`make release`/`make dist`, issue 22): PyPI's
# `ziglang`, pinned, in its own venv (the Makefile's ZIG_VENV).
ZIG_VENV="${UDOCKER_ZIG_VENV:-/opt/udocker-zig}"
ZIGLANG_VERSION="${UDOCKER_ZIGLANG_VERSION:-0.17.1}"

# Debian package -> a file that proves it is installed.
PACKAGES=(
  "docker-registry:/usr/bin/docker-registry"
  "skopeo:/usr/bin/skopeo"
  "umoci:/usr/bin/umoci"
  "podman:/usr/bin/podman"
  "busybox-static:/bin/busybox"
  "mmdebstrap:/usr/bin/mmdebstrap"
  "proot:/usr/bin/proot"
  "fakechroot:/usr/bin/fakechroot"
  "libfakechroot:/usr/lib/x86_64-linux-gnu/fakechroot/libfakechroot.so"
  "patchelf:/usr/bin/patchelf"
  "runc:/usr/sbin/runc"
  "crun:/usr/bin/crun"
  "uidmap:/usr/bin/newuidmap"
  "zstd:/usr/bin/zstd"
  "zlib1g-dev:/usr/include/zlib.h"
  "apache2-utils:/usr/bin/htpasswd"
  "openssl:/usr/bin/openssl"
  "gcc:/usr/bin/gcc"
  "libc6-dev:/usr/include/dirent.h"
  "python3:/usr/bin/python3"
  "python3-venv:/usr/share/doc/python3-venv"
  "jq:/usr/bin/jq"
  "charliecloud:/usr/bin/ch-run"   # make bench: ch-run / ch-image, the second peer
  "groff-base:/usr/bin/groff"
  "curl:/usr/bin/curl"
  "gcc:/usr/bin/gcc"
  "tar:/bin/tar"
  "gzip:/bin/gzip"
  "ca-certificates:/etc/ssl/certs/ca-certificates.crt"
  "util-linux:/usr/bin/setpriv"
  "strace:/usr/bin/strace"   # ContainerTests: which commands start a process (ps forks no probe)
  "debian-archive-keyring:/usr/share/keyrings/debian-archive-keyring.gpg"
  # HPC (MPI + Slurm tests, scripts/fixtures/hpc-*): Open MPI stays the host's default MPI
  # (mpich's alternatives have priority 40 < Open MPI's 50, so mpirun/mpicc remain Open MPI);
  # mpich brings MPICH's own launcher mpiexec.hydra. The MPICH test image's program is built
  # against libmpich-dev's headers unpacked by hpc-images.sh, not installed.
  "openmpi-bin:/usr/bin/mpirun.openmpi"
  "mpich:/usr/bin/mpiexec.hydra"
  "libopenmpi-dev:/usr/lib/x86_64-linux-gnu/openmpi/include/mpi.h"
  "libpmix-dev:/usr/share/doc/libpmix-dev"
  "slurm-wlm:/usr/sbin/slurmd"
  "slurm-wlm-basic-plugins:/usr/lib/x86_64-linux-gnu/slurm-wlm/mpi_pmix.so"
  "munge:/usr/sbin/munged"
  # the two-node cluster of ClusterTests (scripts/fixtures/hpc-cluster.sh): netns, bridge, veth
  "iproute2:/sbin/ip"
  "gcc:/usr/bin/gcc"
  "binutils:/usr/bin/strip"
  "libstdc++-12-dev:/usr/lib/gcc/x86_64-linux-gnu/12/libstdc++.a"
)

missing=()
for entry in "${PACKAGES[@]}"; do
  pkg="${entry%%:*}"; file="${entry#*:}"
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || [ ! -e "$file" ]; then
    missing+=("$pkg")
  fi
done

if [ "$(id -u)" -ne 0 ]; then
  problems=0
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "test-deps: missing Debian packages: ${missing[*]}" >&2
    echo "test-deps: run as root: apt-get install -y ${missing[*]}" >&2
    problems=1
  fi
  if [ ! -x "$VENV/bin/udocker" ]; then
    echo "test-deps: missing Python udocker venv at $VENV (run this script as root, or" >&2
    echo "           /usr/bin/python3 -m venv $VENV && $VENV/bin/pip install udocker==$PYUDOCKER_VERSION)" >&2
    problems=1
  fi
  if [ "$(id -un)" != "$E2E_USER" ] && ! id "$E2E_USER" >/dev/null 2>&1; then
    # Running as a non-root user other than the test user: the tests then run as ourselves.
    :
  fi
  [ "$problems" -eq 0 ] || exit 1
  echo "test-deps: all dependencies present (not root: nothing installed)"
  exit 0
fi

if [ "${#missing[@]}" -gt 0 ]; then
  echo "test-deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  if ! apt-get ${APT_LOCK_WAIT:--o DPkg::Lock::Timeout=600} install -y --no-install-recommends "${missing[@]}" </dev/null; then
    apt-get ${APT_LOCK_WAIT:--o DPkg::Lock::Timeout=600} update </dev/null
    apt-get ${APT_LOCK_WAIT:--o DPkg::Lock::Timeout=600} install -y --no-install-recommends "${missing[@]}" </dev/null
  fi
fi
# docker-registry's package starts a system service on 127.0.0.1:5000 when systemd runs it;
# our fixtures start their own instance on that port, so stop the packaged one if present.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet docker-registry 2>/dev/null; then
  systemctl stop docker-registry || true
  systemctl disable docker-registry >/dev/null 2>&1 || true
fi

# Unprivileged test user, with subordinate id ranges (newuidmap/newgidmap).
if ! id "$E2E_USER" >/dev/null 2>&1; then
  echo "test-deps: creating user $E2E_USER"
  useradd --create-home --shell /bin/bash "$E2E_USER"
fi
for f in /etc/subuid /etc/subgid; do
  touch "$f"
  if ! grep -q "^$E2E_USER:" "$f"; then
    # pick a range above every existing one
    start=$(awk -F: 'BEGIN{m=100000} {e=$2+$3; if (e>m) m=e} END{print m}' "$f")
    echo "$E2E_USER:$start:65536" >> "$f"
  fi
done

# Python udocker (reference tool) in a world-readable venv, built on Debian's python3.
# (checked through python: `udocker version` would create ~/.udocker)
if [ ! -x "$VENV/bin/udocker" ] || [ "$("$VENV/bin/python3" -c 'import udocker; print(udocker.__version__)' 2>/dev/null)" != "$PYUDOCKER_VERSION" ]; then
  echo "test-deps: installing udocker==$PYUDOCKER_VERSION into $VENV"
  rm -rf "$VENV"
  /usr/bin/python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "udocker==$PYUDOCKER_VERSION" </dev/null
fi
chmod -R a+rX "$VENV"

# zig for the release link (docs/portable-binary.md); binutils for `strip` in make-dist.sh.
if [ "$("$ZIG_VENV/bin/python3" -m ziglang version 2>/dev/null)" != "$ZIGLANG_VERSION" ]; then
  echo "test-deps: installing ziglang==$ZIGLANG_VERSION into $ZIG_VENV"
  rm -rf "$ZIG_VENV"
  /usr/bin/python3 -m venv "$ZIG_VENV"
  "$ZIG_VENV/bin/pip" install --quiet --disable-pip-version-check "ziglang==$ZIGLANG_VERSION" </dev/null
fi
echo "test-deps: ok (user $E2E_USER, python udocker at $VENV/bin/udocker)"
