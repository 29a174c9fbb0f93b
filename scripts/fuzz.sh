#!/bin/sh
# Bounded libFuzzer runs of the four fuzz targets (Fuzz/, enabled in Package.swift by UDOCKER_FUZZ=1).
#   FUZZ_SECONDS   seconds per target (default 60)
#   FUZZ_TARGETS   targets to run (default: FuzzTar FuzzELF FuzzManifest FuzzReference)
# Seeds are generated into .build-fuzz/corpus/<target> (kept between runs: the corpus grows);
# a crash stops the target and leaves its input in .build-fuzz/crashes/<target>/ (exit 1).
set -eu
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=${FUZZ_TARGETS:-"FuzzTar FuzzELF FuzzManifest FuzzReference"}
BP=.build-fuzz
export UDOCKER_FUZZ=1
for t in $TARGETS; do
    swift build --build-path "$BP" -Xswiftc -sanitize=fuzzer --product "$t"
done
BIN=$(swift build --build-path "$BP" -Xswiftc -sanitize=fuzzer --show-bin-path)

seed() { mkdir -p "$BP/corpus/$1"; }
seed FuzzTar; seed FuzzELF; seed FuzzManifest; seed FuzzReference
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/d/e"; printf hello > "$tmp/d/f"; ln -s f "$tmp/d/l"; ln "$tmp/d/f" "$tmp/d/h"; : > "$tmp/d/.wh.x"
for fmt in gnu pax ustar; do tar --format=$fmt -C "$tmp" -cf "$BP/corpus/FuzzTar/seed-$fmt.tar" d; done
gzip -c "$BP/corpus/FuzzTar/seed-pax.tar" > "$BP/corpus/FuzzTar/seed.tar.gz"
for f in /bin/true /lib64/ld-linux-x86-64.so.2; do [ -f "$f" ] && cp "$f" "$BP/corpus/FuzzELF/$(basename "$f")"; done
cat > "$BP/corpus/FuzzManifest/manifest.json" <<'J'
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:0000000000000000000000000000000000000000000000000000000000000000","size":2},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:1111111111111111111111111111111111111111111111111111111111111111","size":3}]}
J
cat > "$BP/corpus/FuzzManifest/index.json" <<'J'
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:2222222222222222222222222222222222222222222222222222222222222222","size":9,"platform":{"architecture":"amd64","os":"linux","variant":"v8"}}]}
J
echo '{"architecture":"amd64","os":"linux","config":{"Env":["A=1"],"Cmd":["sh"],"WorkingDir":"/"},"rootfs":{"type":"layers","diff_ids":[]}}' > "$BP/corpus/FuzzManifest/config.json"
printf 'linux/arm64/v8' > "$BP/corpus/FuzzManifest/platform"
i=0; for r in busybox library/debian:bookworm 127.0.0.1:5000/a/b:c "ghcr.io/x/y@sha256:3333333333333333333333333333333333333333333333333333333333333333" localhost/x:1; do
    i=$((i+1)); printf '%s' "$r" > "$BP/corpus/FuzzReference/seed$i"; done

status=0
for t in $TARGETS; do
    mkdir -p "$BP/crashes/$t"
    echo "== $t: ${SECONDS_EACH}s"
    if ! "$BIN/$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
            -artifact_prefix="$BP/crashes/$t/" "$BP/corpus/$t" 2>"$BP/$t.log"; then
        echo "$t: CRASH (input in $BP/crashes/$t/)"; status=1
    fi
    grep -E "stat::number_of_executed_units|stat::peak_rss_mb" "$BP/$t.log" || tail -5 "$BP/$t.log"
done
exit $status
