#!/usr/bin/env bash
# Runs the Python and C client test suites against a real hiscored (`make test` calls this).
# Expects .build/debug/hiscored (built by `swift build` first); builds it when missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
PY=${PYTHON:-python3}
BIN=${HISCORED_BIN:-$ROOT/.build/debug/hiscored}

log() { echo "== clients: $*" >&2; }

if [ ! -x "$BIN" ]; then
  log "hiscored missing at $BIN; building it"
  timeout 1800 swift build --product hiscored
fi
[ -x "$BIN" ] || { echo "hiscored not found at $BIN" >&2; exit 1; }

# Python dependencies (the package itself in editable mode, which pulls protobuf).
if ! "$PY" -c 'import hiscore, google.protobuf, pytest' 2>/dev/null; then
  log "installing the Python client (pip install -e clients/python[test])"
  timeout 300 "$PY" -m pip install -q -e "clients/python[test]"
fi

# Each suite runs a private copy of the binary (a concurrent rebuild cannot swap it).
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hiscore-clients.XXXXXX")
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

log "python tests"
HISCORED_BIN="$BIN" HISCORE_REQUIRE_SERVER=1 timeout 300 "$PY" -m pytest -q -p no:cacheprovider clients/python/tests

log "building the C client"
timeout 300 make -s -C clients/c

log "C tests"
cp "$BIN" "$WORK/hiscored"
"$WORK/hiscored" --host 127.0.0.1 --port 0 --data-dir "$WORK/data" --shards 2 >"$WORK/server.log" 2>&1 &
SERVER_PID=$!
PORT=""
for _ in $(seq 1 300); do
  PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORK/server.log" | head -n 1)
  [ -n "$PORT" ] && break
  kill -0 "$SERVER_PID" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$PORT" ]; then
  echo "hiscored did not start; its log:" >&2
  cat "$WORK/server.log" >&2
  exit 1
fi
HISCORE_REQUIRE_SERVER=1 timeout 120 clients/c/build/test_client clients/testdata/vectors.txt "$PORT"
timeout 60 clients/c/build/leaderboard 127.0.0.1 "$PORT" >/dev/null
log "all client tests passed"
