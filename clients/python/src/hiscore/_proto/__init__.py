"""Generated protobuf code (scripts/gen-proto.sh, `make proto`). Do not edit hiscore_pb2.py."""
