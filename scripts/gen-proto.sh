#!/usr/bin/env bash
# Regenerates every committed file derived from proto/: the protobuf-c code of the server and
# the C client, and the Python client's _pb2 module. `make proto` runs it; the staleness tests
# run it into a temporary directory (OUT_ROOT) and compare.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUT_ROOT=${OUT_ROOT:-$ROOT}
PROTO=hiscore/v1/hiscore.proto
command -v protoc-c >/dev/null || { echo "protoc-c missing: apt-get install protobuf-c-compiler" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT

protoc-c -I "$ROOT/proto" --c_out="$tmp" "$ROOT/proto/$PROTO"
mkdir -p "$OUT_ROOT/Sources/HiscoreProtoC/include/hiscore/v1" "$OUT_ROOT/Sources/HiscoreProtoC/hiscore/v1"
cp "$tmp/hiscore/v1/hiscore.pb-c.h" "$OUT_ROOT/Sources/HiscoreProtoC/include/hiscore/v1/hiscore.pb-c.h"
cp "$tmp/hiscore/v1/hiscore.pb-c.c" "$OUT_ROOT/Sources/HiscoreProtoC/hiscore/v1/hiscore.pb-c.c"

if [ -d "$ROOT/clients/python" ]; then
  command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler" >&2; exit 2; }
  mkdir -p "$OUT_ROOT/clients/python/src/hiscore/_proto"
  protoc -I "$ROOT/proto" --python_out="$tmp" "$ROOT/proto/$PROTO"
  cp "$tmp/hiscore/v1/hiscore_pb2.py" "$OUT_ROOT/clients/python/src/hiscore/_proto/hiscore_pb2.py"
fi
