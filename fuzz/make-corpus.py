#!/usr/bin/env python3
"""Writes the hiscore-fuzz seed corpus (fuzz/corpus/) from clients/testdata/vectors.txt.

Each seed is a connection byte stream as hiscore-fuzz reads it: the preface, then frames. A
vector's hex is a whole frame (5-byte header + body). One seed per vector, plus a few streams
of several frames, a frame split by EOF, and the bare preface. Deterministic: rerun after the
vectors change and commit the result (the old seeds are removed first).
"""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
VECTORS = ROOT / "clients" / "testdata" / "vectors.txt"
OUT = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "fuzz" / "corpus"


def main() -> None:
    preface = None
    frames = {}
    for line in VECTORS.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, kind, hexdata = line.split()
        data = bytes.fromhex(hexdata)
        if kind == "preface":
            preface = data
        else:
            assert data[0] == 0 and int.from_bytes(data[1:5], "big") == len(data) - 5, name
            frames[name] = data
    assert preface is not None, "vectors.txt has no preface line"

    seeds = {name: preface + frame for name, frame in frames.items()}
    seeds["stream_ping_submit_get_rank"] = preface + b"".join(
        frames[n] for n in ("request_ping_empty", "request_submit", "request_get_rank"))
    seeds["stream_hello_then_events"] = preface + b"".join(
        frames[n] for n in ("response_hello", "response_event_window_changes", "response_stream_end_ok"))
    seeds["stream_truncated_frame"] = preface + frames["request_top_cursor"][:-3]
    seeds["stream_empty_frame"] = preface + bytes(5)
    seeds["preface_only"] = preface

    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.iterdir():
        old.unlink()
    for name, data in sorted(seeds.items()):
        (OUT / name).write_bytes(data)
    print(f"wrote {len(seeds)} seeds to {OUT}")


if __name__ == "__main__":
    main()
