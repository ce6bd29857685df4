#!/usr/bin/env bash
# Installs the system and Python packages Hiscore needs when they are missing (Debian).
# Idempotent and quick when everything is present; `make run` and `make test` call it first.
set -euo pipefail
DEBS=(pkg-config libprotobuf-c-dev protobuf-c-compiler libjemalloc-dev protobuf-compiler)
# Tests also need: redis (benchmarks), openssl (test certificates), libssl-dev (the C client's TLS),
# and python3 with venv (the Python client's tests run in a private environment, .build-venv).
[ "${1:-}" = "--test" ] && DEBS+=(redis-server redis-tools openssl libssl-dev make gcc python3 python3-venv)
missing=()
for p in "${DEBS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing Debian packages: ${missing[*]}" >&2
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { echo "missing Debian packages (${missing[*]}) and no sudo: install them as root" >&2; exit 1; }
    SUDO=sudo
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
if [ "${1:-}" = "--test" ]; then
  # A virtual environment of the repository's own: Debian's python3 refuses `pip install` into
  # the system (PEP 668, "externally managed"). It sees the system's packages, so a machine that
  # has protobuf and pytest already installs nothing.
  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  VENV="$ROOT/.build-venv"
  if [ ! -x "$VENV/bin/python" ]; then
    echo "creating the Python test environment $VENV" >&2
    "${PYTHON:-python3}" -m venv --system-site-packages "$VENV"
  fi
  if ! "$VENV/bin/python" -c 'import google.protobuf, pytest' 2>/dev/null; then
    echo "installing Python packages into $VENV: protobuf pytest" >&2
    "$VENV/bin/python" -m pip install -q "protobuf>=4.21,<7" pytest >&2
  fi
fi
