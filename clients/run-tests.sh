#!/usr/bin/env bash
# Runs the Python and C client test suites against a real hiscored (`make test` calls this).
# Expects .build/debug/hiscored (built by `swift build` first); builds it when missing.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
# The Python client's tests run in the repository's environment (scripts/install-deps.sh --test).
PY=${PYTHON:-$ROOT/.build-venv/bin/python}
BIN=${HISCORED_BIN:-$ROOT/.build/debug/hiscored}

log() { echo "== clients: $*" >&2; }

if [ ! -x "$BIN" ]; then
  log "hiscored missing at $BIN; building it"
  timeout 1800 swift build --product hiscored
fi
[ -x "$BIN" ] || { echo "hiscored not found at $BIN" >&2; exit 1; }

# Python dependencies; the package under test is imported from this checkout (PYTHONPATH below).
if [ -z "${PYTHON:-}" ] && [ ! -x "$PY" ]; then
  timeout 600 "$ROOT/scripts/install-deps.sh" --test
fi
if ! "$PY" -c 'import google.protobuf, pytest' 2>/dev/null; then
  echo "$PY lacks protobuf or pytest: run scripts/install-deps.sh --test" >&2
  exit 1
fi

# Each suite runs a private copy of the binary (a concurrent rebuild cannot swap it).
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hiscore-clients.XXXXXX")
SERVER_PIDS=()
cleanup() {
  for pid in "${SERVER_PIDS[@]}"; do
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid" 2>/dev/null || true
      for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
    fi
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

# start_server NAME [FLAG...]: a private hiscored on an ephemeral loopback port; sets PORT.
start_server() {
  local name=$1
  shift
  "$WORK/hiscored" --host 127.0.0.1 --port 0 --data-dir "$WORK/data-$name" --shards 2 --exit-with-process $$ "$@" >"$WORK/$name.log" 2>&1 &
  local pid=$!
  SERVER_PIDS+=("$pid")
  PORT=""
  for _ in $(seq 1 300); do
    # The log may not exist yet (the background shell opens it): sed then fails, and under
    # `set -e -o pipefail` that failure would end the whole script.
    PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' "$WORK/$name.log" 2>/dev/null | head -n 1 || true)
    [ -n "$PORT" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if [ -z "$PORT" ]; then
    echo "hiscored ($name) did not start; its log:" >&2
    cat "$WORK/$name.log" >&2
    exit 1
  fi
}

# make_pki DIR: a test CA (ca.pem) that issued server.pem (localhost, 127.0.0.1) and client.pem,
# and other-ca.pem that issued nothing the servers trust (needs the openssl CLI).
make_pki() {
  local dir=$1 stem
  mkdir -p "$dir"
  for stem in ca other-ca; do
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
      -keyout "$dir/$stem.key" -out "$dir/$stem.pem" -subj "/CN=Hiscore test $stem" \
      -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
  done
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$dir/server.ext"
  printf 'extendedKeyUsage=clientAuth\n' >"$dir/client.ext"
  for stem in server client; do
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes \
      -keyout "$dir/$stem.key" -out "$dir/$stem.csr" -subj "/CN=hiscore test $stem" 2>/dev/null
    openssl x509 -req -in "$dir/$stem.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
      -days 2 -extfile "$dir/$stem.ext" -out "$dir/$stem.pem" 2>/dev/null
  done
}

log "python tests"
# The package under test is this checkout's, even when another checkout is pip-installed.
PYTHONPATH="$PWD/clients/python/src${PYTHONPATH:+:$PYTHONPATH}" \
  HISCORED_BIN="$BIN" HISCORE_REQUIRE_SERVER=1 timeout 300 "$PY" -m pytest -q -p no:cacheprovider clients/python/tests

log "building the C client"
timeout 300 make -s -C clients/c

log "C tests"
cp "$BIN" "$WORK/hiscored"
start_server plain --admin-port -1  # the space form: "-1" is a value, not an option
PLAIN_PORT=$PORT
HISCORE_REQUIRE_SERVER=1 timeout 120 clients/c/build/test_client clients/testdata/vectors.txt "$PORT"
timeout 60 clients/c/build/leaderboard 127.0.0.1 "$PORT" >/dev/null

log "C TLS tests"
make_pki "$WORK/pki"
TLS_FLAGS=(--admin-port=-1 --durability memory --tls-cert "$WORK/pki/server.pem" --tls-key "$WORK/pki/server.key")
start_server tls "${TLS_FLAGS[@]}"
TLS_PORT=$PORT
start_server mtls "${TLS_FLAGS[@]}" --tls-client-ca "$WORK/pki/ca.pem"
timeout 120 clients/c/build/test_tls "$WORK/pki" "$TLS_PORT" "$PORT" "$PLAIN_PORT"
log "all client tests passed"
