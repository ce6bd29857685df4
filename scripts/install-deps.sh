#!/usr/bin/env bash
# Installs the system and Python packages Hiscore needs when they are missing (Debian).
# Idempotent and quick when everything is present; `make run` and `make test` call it first.
set -euo pipefail
DEBS=(pkg-config libprotobuf-c-dev protobuf-c-compiler libjemalloc-dev protobuf-compiler)
# Tests also need: redis (benchmarks), openssl (test certificates), libssl-dev (the C client's TLS).
[ "${1:-}" = "--test" ] && DEBS+=(redis-server redis-tools openssl libssl-dev make gcc)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}" >&2
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ "${1:-}" = "--test" ]; then
  PY=${PYTHON:-python3}
  if ! "$PY" -c 'import google.protobuf, pytest' 2>/dev/null; then
    echo "installing Python packages: protobuf pytest" >&2
    "$PY" -m pip install -q "protobuf>=4.21,<7" pytest >&2
  fi
  if [ -d clients/python ] && ! "$PY" -c 'import hiscore' 2>/dev/null; then
    "$PY" -m pip install -q -e ./clients/python >&2
  fi
fi
