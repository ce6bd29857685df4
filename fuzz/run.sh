#!/usr/bin/env bash
# Builds hiscore-fuzz with libFuzzer + ASan (own scratch path, .build-fuzz) and fuzzes the wire
# layer for a bounded time.
#
#   fuzz/run.sh [SECONDS]        fuzz for SECONDS (default 60); exit 1 if anything crashed
#   fuzz/run.sh --build-only     just build
#   fuzz/run.sh --replay         run fuzz/corpus and fuzz/regressions once under ASan
#
# Fuzzing starts from a temporary copy of fuzz/corpus (the committed corpus stays small); new
# crashes land in fuzz/crashes/ (untracked). Minimize one with
#   SWIFT_BACKTRACE=enable=no .build-fuzz/debug/hiscore-fuzz -minimize_crash=1 -runs=20000 \
#       -exact_artifact_path=fuzz/regressions/NAME fuzz/crashes/crash-...
# and commit it under fuzz/regressions/ (FuzzRegressionTests replays that directory).
#
# Environment: JOBS (parallel fuzzing processes, default 1), FUZZ_ARGS (extra libFuzzer flags),
# KEEP_CORPUS=1 (print and keep the grown corpus directory).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
SCRATCH=$ROOT/.build-fuzz
BIN=$SCRATCH/debug/hiscore-fuzz
SWIFT=${SWIFT:-swift}
export SWIFT_BACKTRACE=enable=no
# Leaks are the arena's business (MemoryLeakTests); keep ASan on memory errors.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:symbolize=1}

build() {
    # -sanitize=fuzzer through -Xswiftc (not --sanitize fuzzer, which compiles main.swift with
    # -parse-as-library and links libFuzzer's own main): main.swift calls LLVMFuzzerRunDriver.
    # -Xcc instruments the C targets (the generated protobuf-c descriptors) too.
    "$SWIFT" build -c debug --scratch-path "$SCRATCH" --product hiscore-fuzz \
        -Xswiftc -sanitize=fuzzer,address -Xswiftc -DHISCORE_FUZZ \
        -Xcc -fsanitize=fuzzer-no-link,address 2>&1 |
        grep -v "Cannot export local symbol '__asan" || true
    [[ -x $BIN && $("$BIN" -help=1 2>&1) == *Usage:* ]] ||
        { echo "fuzz/run.sh: build failed (no libFuzzer binary at $BIN)" >&2; exit 2; }
}

case "${1:-}" in
--build-only)
    build
    exit 0
    ;;
--replay)
    build
    shopt -s nullglob
    files=("$ROOT"/fuzz/corpus/* "$ROOT"/fuzz/regressions/*)
    exec "$BIN" "${files[@]}"
    ;;
esac

SECONDS_TO_RUN=${1:-60}
[[ $SECONDS_TO_RUN =~ ^[0-9]+$ ]] || { echo "usage: fuzz/run.sh [SECONDS|--build-only|--replay]" >&2; exit 2; }
build

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hiscore-fuzz.XXXXXX")
if [[ -z ${KEEP_CORPUS:-} ]]; then trap 'rm -rf "$WORK"' EXIT; fi
mkdir -p "$WORK/corpus" "$ROOT/fuzz/crashes"
touch "$WORK/started"
cp "$ROOT"/fuzz/corpus/* "$WORK/corpus/"
cp "$ROOT"/fuzz/regressions/* "$WORK/corpus/" 2>/dev/null || true

JOBS=${JOBS:-1}
parallel=()
[[ $JOBS -gt 1 ]] && parallel=(-fork="$JOBS" -ignore_crashes=1)
echo "fuzz/run.sh: fuzzing for ${SECONDS_TO_RUN}s (jobs=$JOBS), corpus copy in $WORK/corpus"
set +e
# shellcheck disable=SC2086  # FUZZ_ARGS is a list of flags
(cd "$WORK" && exec "$BIN" \
    -max_total_time="$SECONDS_TO_RUN" -rss_limit_mb=2048 -timeout=5 -max_len=8192 \
    -dict="$ROOT/fuzz/hiscore.dict" -artifact_prefix="$ROOT/fuzz/crashes/" -print_final_stats=1 \
    "${parallel[@]}" ${FUZZ_ARGS:-} corpus) 2>&1 |
    tee "$WORK/fuzz.log" | grep --line-buffered -vE '^#[0-9]+[[:space:]]+(NEW|REDUCE) '
fuzz_status=${PIPESTATUS[0]}
set -e

crashes=$(find "$ROOT/fuzz/crashes" -type f -newer "$WORK/started" \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
echo "fuzz/run.sh: corpus grew to $(find "$WORK/corpus" -type f | wc -l) inputs; $crashes new artifact(s) in fuzz/crashes/"
[[ -n ${KEEP_CORPUS:-} ]] && echo "fuzz/run.sh: grown corpus kept in $WORK/corpus"
if [[ $crashes -gt 0 || $fuzz_status -ne 0 ]]; then
    echo "fuzz/run.sh: FAILED (libFuzzer exit $fuzz_status): see fuzz/crashes/ (minimize into fuzz/regressions/, see the header of this script)" >&2
    exit 1
fi
exit 0
