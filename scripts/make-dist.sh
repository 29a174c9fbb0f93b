#!/usr/bin/env bash
# make-dist.sh BINARY VERSION SCRATCH OUTDIR: the release tarball (`make dist`, docs/portable-binary.md).
#
#   OUTDIR/udocker-VERSION-linux-x86_64.tar.gz   udocker-VERSION/{bin/udocker, share/man/man1/udocker.1,
#                                                 share/{bash-completion,zsh,fish}/…, INSTALL, LICENSE,
#                                                 share/doc/udocker/licenses/*}
#   OUTDIR/SHA256SUMS
#
# BINARY is the release build (linked for glibc 2.28 by scripts/zig-link); it is stripped here.
# SCRATCH is the build's scratch path (its checkouts/ give the licences of the packages linked in).
# Reproducible: every file's time is SOURCE_DATE_EPOCH (default: the last commit's time), entries
# are sorted, owners are 0/0 and gzip stores no name or time, so one commit gives the same bytes.
set -euo pipefail

bin="$1"; version="$2"; scratch="$3"; out="$4"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
name="udocker-$version"
tarball="$out/$name-linux-x86_64.tar.gz"
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$root" log -1 --format=%ct 2>/dev/null || echo 0)}"

[ -x "$bin" ] || { echo "make-dist: no binary at $bin" >&2; exit 1; }
stage="$(mktemp -d "${TMPDIR:-/tmp}/udocker-dist.XXXXXX")"
trap 'rm -rf "$stage"' EXIT
d="$stage/$name"
umask 022
mkdir -p "$d/bin" "$d/share/man/man1" "$d/share/bash-completion/completions" "$d/share/zsh/site-functions" \
  "$d/share/fish/vendor_completions.d" "$d/share/doc/udocker/licenses"

install -m 755 "$bin" "$d/bin/udocker"
strip --strip-all "$d/bin/udocker"
"$d/bin/udocker" _manpage >"$d/share/man/man1/udocker.1"
"$d/bin/udocker" _completion bash >"$d/share/bash-completion/completions/udocker"
"$d/bin/udocker" _completion zsh >"$d/share/zsh/site-functions/_udocker"
"$d/bin/udocker" _completion fish >"$d/share/fish/vendor_completions.d/udocker.fish"
sed "s/@VERSION@/$version/g" "$here/dist/INSTALL" >"$d/INSTALL"
install -m 644 "$root/LICENSE" "$d/LICENSE"

# Licences of what is linked into the binary: the Swift packages, the Swift runtime, libstdc++ and
# zlib (static archives), zig's libunwind. Each is a file named after its component.
lic="$d/share/doc/udocker/licenses"
for pkg in "$scratch"/checkouts/*; do
  [ -d "$pkg" ] || continue
  for f in LICENSE.txt LICENSE LICENSE.md; do
    if [ -f "$pkg/$f" ]; then install -m 644 "$pkg/$f" "$lic/$(basename "$pkg").txt"; break; fi
  done
done
swift_root="$(dirname "$(dirname "$(command -v swift)")")"
[ -f "$swift_root/share/swift/LICENSE.txt" ] && install -m 644 "$swift_root/share/swift/LICENSE.txt" "$lic/swift-runtime.txt"
[ -f /usr/share/doc/libstdc++-12-dev/copyright ] && install -m 644 /usr/share/doc/libstdc++-12-dev/copyright "$lic/libstdc++.txt"
[ -f /usr/share/doc/zlib1g/copyright ] && install -m 644 /usr/share/doc/zlib1g/copyright "$lic/zlib.txt"
zig_lib="$("${ZIG_PYTHON:-python3}" -c 'import ziglang, os; print(os.path.dirname(ziglang.__file__))' 2>/dev/null || true)"
[ -n "$zig_lib" ] && [ -f "$zig_lib/lib/libunwind/LICENSE.TXT" ] && install -m 644 "$zig_lib/lib/libunwind/LICENSE.TXT" "$lic/libunwind.txt"

mkdir -p "$out"
find "$stage" -exec touch -h -d "@$epoch" {} +
tar -C "$stage" --sort=name --mtime="@$epoch" --owner=0 --group=0 --numeric-owner --format=gnu \
  -cf - "$name" | gzip -n -9 >"$tarball.tmp"
mv "$tarball.tmp" "$tarball"
(cd "$out" && sha256sum "$(basename "$tarball")" >SHA256SUMS)
echo "make-dist: $tarball ($(stat -c %s "$tarball") bytes; binary $(stat -c %s "$d/bin/udocker") bytes)"
cat "$out/SHA256SUMS"
