#!/usr/bin/env bash
# scripts/soak.sh - does the server's memory stay flat under a long mixed load? Starts its own
# release hiscored (async durability, snapshots every 16 MiB of log, a fresh temp data dir),
# loads PLAYERS players into a `set` board, then repeats CYCLES times: a rank-change stream run
# (`hiscore-bench streams`: SUBS player subscriptions and WATCHERS top-10 watchers under
# WRITE_RATE writes/s for STREAM_S seconds) and one closed-loop `hiscore-bench server` run of
# every workload (50 connections, pipeline 16, REQUESTS each). The players are the same
# throughout, so the board does not grow: after each run it prints jemalloc's allocated bytes
# (and the other gauges that hold memory) from /metrics. A leak shows as growth that does not
# level off; the engine's arenas and the top cache settle within a few cycles.
#
# Knobs (env): CYCLES=12 PLAYERS=200000 SUBS=20000 WATCHERS=200 WRITE_RATE=10000 STREAM_S=15
#   REQUESTS=100000 PORT=17950 ADMIN_PORT=17951 SCRATCH=.build-rel BUILD=1
# Prints one line per run; exit status 1 when a benchmark run failed.
set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CYCLES=${CYCLES:-12}
PLAYERS=${PLAYERS:-200000}
SUBS=${SUBS:-20000}
WATCHERS=${WATCHERS:-200}
WRITE_RATE=${WRITE_RATE:-10000}
STREAM_S=${STREAM_S:-15}
REQUESTS=${REQUESTS:-100000}
PORT=${PORT:-17950}
ADMIN_PORT=${ADMIN_PORT:-17951}
SCRATCH=${SCRATCH:-.build-rel}
BUILD=${BUILD:-1}
BIN=$SCRATCH/release

if [ "$BUILD" = 1 ]; then
    swift build -c release --scratch-path "$SCRATCH" --product hiscored >&2
    swift build -c release --scratch-path "$SCRATCH" --product hiscore-bench >&2
fi

WORK=$(mktemp -d)
SERVER_PID=
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

"$BIN/hiscored" --host 127.0.0.1 --port "$PORT" --admin-port "$ADMIN_PORT" --data-dir "$WORK/data" \
    --durability async --snapshot-after 16M 2>"$WORK/hiscored.log" &
SERVER_PID=$!
for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$ADMIN_PORT/readyz" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/hiscored.log" >&2; exit 1; }
    sleep 0.1
done

gauges() {
    curl -s "http://127.0.0.1:$ADMIN_PORT/metrics" |
        grep -E '^(hiscore_jemalloc_allocated_bytes|hiscore_top_cache_bytes|hiscore_feed_backlog_bytes|hiscore_subscriptions|process_resident_memory_bytes) ' |
        awk '{ printf "%s=%s ", $1, $2 }'
}

failed=0
echo "start: $(gauges)"
"$BIN/hiscore-bench" streams --addr "127.0.0.1:$PORT" --players "$PLAYERS" --preload --no-baseline \
    --player-subscriptions 1 --top-watchers 1 --duration 1 --write-rate 1000 >/dev/null 2>>"$WORK/bench.log" || failed=1
echo "loaded $PLAYERS players: $(gauges)"
for cycle in $(seq "$CYCLES"); do
    "$BIN/hiscore-bench" streams --addr "127.0.0.1:$PORT" --players "$PLAYERS" --no-baseline \
        --player-subscriptions "$SUBS" --top-watchers "$WATCHERS" --duration "$STREAM_S" \
        --write-rate "$WRITE_RATE" >/dev/null 2>>"$WORK/bench.log" || { echo "cycle $cycle: streams run failed"; failed=1; }
    echo "cycle $cycle after streams: $(gauges)"
    for workload in submit rank top10 page around mixed; do
        "$BIN/hiscore-bench" server --target hiscore --addr "127.0.0.1:$PORT" --players "$PLAYERS" \
            --connections 50 --workload "$workload" --pipeline 16 --requests "$REQUESTS" \
            >/dev/null 2>>"$WORK/bench.log" || { echo "cycle $cycle: $workload run failed"; failed=1; }
    done
    echo "cycle $cycle after calls: $(gauges)"
done
[ "$failed" = 0 ] || tail -20 "$WORK/bench.log" >&2
exit "$failed"
