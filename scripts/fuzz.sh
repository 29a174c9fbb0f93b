#!/bin/sh
# Bounded libFuzzer runs of the fuzz targets (Fuzz/, enabled in Package.swift by UDOCKER_FUZZ=1).
#   FUZZ_SECONDS     seconds per target (default 60)
#   FUZZ_TARGETS     targets to run (default: FuzzTar FuzzELF FuzzManifest FuzzReference)
#   FUZZ_BUILD_PATH  build path (default .build-fuzz; it holds nothing of the normal build)
#   UDOCKER_FUZZ_SANITIZE  fuzzer (default) or fuzzer,address
# Seeds (Fuzz/seeds.py: well-formed and hostile inputs) are written to $FUZZ_BUILD_PATH/corpus/<target>,
# which is kept between runs (the corpus grows). A crash, a timeout or an out-of-memory stops the
# target, leaves its input in $FUZZ_BUILD_PATH/crashes/<target>/ (path printed) and makes the exit 1.
# Replay one input: $FUZZ_BUILD_PATH/debug/<target> <file>.
set -eu
cd "$(dirname "$0")/.."
SECONDS_EACH=${FUZZ_SECONDS:-60}
TARGETS=${FUZZ_TARGETS:-"FuzzTar FuzzELF FuzzManifest FuzzReference"}
BP=${FUZZ_BUILD_PATH:-.build-fuzz}
SWIFT=${SWIFT:-swift}
export UDOCKER_FUZZ=1

start=$(date +%s)
for t in $TARGETS; do
    $SWIFT build --build-path "$BP" --product "$t"
done
BIN=$($SWIFT build --build-path "$BP" --show-bin-path)
echo "fuzz: build took $(($(date +%s) - start)) s"

mkdir -p "$BP/corpus"
python3 Fuzz/seeds.py "$BP/corpus"

status=0
for t in $TARGETS; do
    mkdir -p "$BP/crashes/$t" "$BP/corpus/$t"
    log="$BP/$t.log"
    echo "== $t: ${SECONDS_EACH} s, corpus $(ls "$BP/corpus/$t" | wc -l) inputs"
    if ! "$BIN/$t" -max_total_time="$SECONDS_EACH" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
        -artifact_prefix="$BP/crashes/$t/" "$BP/corpus/$t" >"$log" 2>&1; then
        status=1
        tail -30 "$log"
        crash=$(sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$log" | tail -1)
        echo "fuzz: $t FAILED: input ${crash:-(none written; see $log)}; replay: $BIN/$t ${crash:-<input>}"
    fi
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
    echo "fuzz: $t: ${runs:-?} executions (${rate:-?}/s), peak RSS ${rss:-?} MB, corpus $(ls "$BP/corpus/$t" | wc -l) inputs"
done
exit $status
