"""Conformance vectors (clients/testdata/vectors.json): decode every frame, re-encode it to the
identical bytes, and check the decoded meaning."""
from __future__ import annotations

import json
from typing import Any, Dict, List

import pytest
from google.protobuf import json_format

from hiscore import framing, pb

from conftest import REPO

VECTORS: List[Dict[str, Any]] = json.loads(
    (REPO / "clients" / "testdata" / "vectors.json").read_text(encoding="utf-8"))["vectors"]
TYPES = {"hiscore.v1.Request": pb.Request, "hiscore.v1.Response": pb.Response}


def test_vector_set_is_complete() -> None:
    requests = {pb.Request.FromString(framing.FrameDecoder().feed(bytes.fromhex(v["hex"]))[0])
                .WhichOneof("method") for v in VECTORS if v["type"] == "hiscore.v1.Request"}
    assert requests == {f.name for f in pb.Request.DESCRIPTOR.oneofs_by_name["method"].fields}
    results = {pb.Response.FromString(framing.FrameDecoder().feed(bytes.fromhex(v["hex"]))[0])
               .WhichOneof("result") for v in VECTORS if v["type"] == "hiscore.v1.Response"}
    assert results - {None} == {f.name for f in pb.Response.DESCRIPTOR.oneofs_by_name["result"].fields}
    assert None in results  # error frames
    changes = {pb.Response.FromString(bytes.fromhex(v["hex"])[5:]).event.WhichOneof("change")
               for v in VECTORS if v["name"].startswith("response_event")}
    assert changes == {"player", "window", "feed"}


@pytest.mark.parametrize("vector", VECTORS, ids=[v["name"] for v in VECTORS])
def test_vector_roundtrip(vector: Dict[str, Any]) -> None:
    data = bytes.fromhex(vector["hex"])
    if vector["type"] == "preface":
        assert data == framing.PREFACE
        return
    frames = framing.FrameDecoder().feed(data)
    assert len(frames) == 1 and framing.encode_frame(frames[0]) == data
    msg = TYPES[vector["type"]].FromString(frames[0])
    assert framing.encode_frame(msg.SerializeToString()) == data, "re-encoding differs"
    assert json_format.MessageToDict(msg, preserving_proto_field_name=True) == vector["message"]
    rebuilt = json_format.ParseDict(vector["message"], TYPES[vector["type"]]())
    assert framing.encode_frame(rebuilt.SerializeToString()) == data
