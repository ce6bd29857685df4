#!/usr/bin/env python3
"""Generates the wire conformance vectors (vectors.json, vectors.txt) from the Python _pb2 module.

    python3 clients/testdata/gen_vectors.py          # rewrite the files
    python3 clients/testdata/gen_vectors.py --check  # exit 1 if they are stale

Every vector is one complete frame (flag byte, big-endian length, protobuf body), or the
8-byte connection preface, with its decoded meaning as protobuf JSON (proto field names,
int64/uint64 as strings, bytes as base64, default values omitted). Clients in every language
decode each frame and re-encode it to identical bytes. Deterministic: fixed values only.
vectors.txt holds the same frames as `name type hex` lines for languages without a JSON parser.
"""
from __future__ import annotations

import json
import os
import struct
import sys
from typing import Any, Dict, List, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python", "src"))

from google.protobuf import json_format  # noqa: E402
from google.protobuf.message import Message  # noqa: E402

from hiscore._proto import hiscore_pb2 as pb  # noqa: E402

PREFACE = b"HISCORE\x01"
UNICODE = "プレイヤー🎮-Zoë"
I64_MAX = (1 << 63) - 1
I64_MIN = -(1 << 63)
U64_MAX = (1 << 64) - 1


def frame(body: bytes) -> bytes:
    return struct.pack(">BI", 0, len(body)) + body


def entry(player: str = "alice", score: int = 1234, rank: int = 1, **kw: Any) -> pb.Entry:
    kw.setdefault("subscore", -5)
    kw.setdefault("metadata", b"\x01\x02\x03")
    kw.setdefault("reached_at_us", 1_700_000_000_000_000)
    return pb.Entry(player_id=player, score=score, rank=rank, **kw)


def requests() -> List[Tuple[str, pb.Request, str]]:
    R = pb.Request
    out: List[Tuple[str, pb.Request, str]] = [
        ("request_ping_doc_example", R(call_id=1, ping=pb.PingRequest(payload=b"hi")),
         "docs/protocol.md section 9"),
        ("request_ping_empty", R(call_id=2, ping=pb.PingRequest()),
         "empty method body: the oneof field is present with length 0"),
        ("request_submit", R(call_id=3, submit=pb.SubmitRequest(
            board_id="season-1", player_id="alice", score=100))),
        ("request_submit_metadata_deadline_token", R(
            call_id=4, deadline_ms=250, auth_token="key-123",
            submit=pb.SubmitRequest(board_id="laps.fastest:eu", player_id=UNICODE, score=I64_MAX,
                                    subscore=I64_MIN, metadata=b"\x00\xff\x00"))),
        ("request_submit_empty_metadata", R(call_id=5, submit=pb.SubmitRequest(
            board_id="b", player_id="p", score=-1, metadata=b"")),
         "metadata present but empty (clears stored metadata): tag 0x2a, length 0"),
        ("request_submit_skip_ranks", R(call_id=3, submit=pb.SubmitRequest(
            board_id="season-1", player_id="alice", score=100, skip_ranks=True)),
         "no ranks wanted in the answer: tag 0x30, value 1"),
        ("request_submit_batch", R(call_id=6, submit_batch=pb.SubmitBatchRequest(submits=[
            pb.SubmitRequest(board_id="season-1", player_id="alice", score=100),
            pb.SubmitRequest(board_id="season-2", player_id="bob", score=7, subscore=3,
                             metadata=b"m")]))),
        ("request_get_rank", R(call_id=7, get_rank=pb.GetRankRequest(
            board_id="season-1", player_id="alice"))),
        ("request_get_rank_dense", R(call_id=8, get_rank=pb.GetRankRequest(
            board_id="season-1", player_id="alice", rank_mode=pb.RANK_MODE_DENSE))),
        ("request_top_default", R(call_id=9, top=pb.TopRequest(board_id="season-1"))),
        ("request_top_offset_zero", R(call_id=10, top=pb.TopRequest(
            board_id="season-1", limit=50, offset=0)),
         "offset present with value 0 (oneof start): tag 0x18, value 0"),
        ("request_top_offset", R(call_id=11, top=pb.TopRequest(
            board_id="season-1", limit=1000, offset=U64_MAX, rank_mode=pb.RANK_MODE_COMPETITION))),
        ("request_top_cursor", R(call_id=12, top=pb.TopRequest(
            board_id="season-1", limit=500, cursor=b"\x09\x08\x07", rank_mode=pb.RANK_MODE_ORDINAL))),
        ("request_around", R(call_id=13, around=pb.AroundRequest(
            board_id="season-1", player_id="alice", before=2, after=3))),
        ("request_entries", R(call_id=14, entries=pb.EntriesRequest(
            board_id="season-1", player_ids=["alice", "bob", UNICODE],
            rank_mode=pb.RANK_MODE_COMPETITION))),
        ("request_count_unbounded", R(call_id=15, count=pb.CountRequest(board_id="season-1"))),
        ("request_count_bounds", R(call_id=16, count=pb.CountRequest(
            board_id="season-1", min_score=0, max_score=-1)),
         "both bounds present; min_score 0 is still encoded (oneof presence)"),
        ("request_count_min_only", R(call_id=17, count=pb.CountRequest(
            board_id="season-1", min_score=I64_MIN))),
        ("request_create_board_default", R(call_id=18, create_board=pb.CreateBoardRequest(
            config=pb.BoardConfig(board_id="season-1")))),
        ("request_create_board_full", R(call_id=19, create_board=pb.CreateBoardRequest(
            config=pb.BoardConfig(
                board_id="laps.fastest:eu", score_order=pb.SORT_ORDER_ASCENDING,
                subscore_order=pb.SORT_ORDER_ASCENDING, write_operator=pb.WRITE_OPERATOR_SET,
                rank_mode=pb.RANK_MODE_DENSE,
                limits=pb.BoardLimits(max_entries=1_000_000, max_metadata_bytes=4096))))),
        ("request_describe_board", R(call_id=20, describe_board=pb.DescribeBoardRequest(
            board_id="season-1"))),
        ("request_list_boards", R(call_id=21, list_boards=pb.ListBoardsRequest(
            after_board_id="a", limit=100))),
        ("request_list_boards_empty", R(call_id=22, list_boards=pb.ListBoardsRequest())),
        ("request_delete_board", R(call_id=23, delete_board=pb.DeleteBoardRequest(
            board_id="season-1"))),
        ("request_remove_player", R(call_id=24, remove_player=pb.RemovePlayerRequest(
            board_id="season-1", player_id="alice"))),
        ("request_subscribe_player", R(call_id=25, subscribe=pb.SubscribeRequest(
            board_id="season-1", player_id="alice"))),
        ("request_subscribe_top", R(call_id=26, subscribe=pb.SubscribeRequest(
            board_id="season-1", top=10, min_interval_ms=250, rank_mode=pb.RANK_MODE_COMPETITION))),
        ("request_subscribe_around", R(call_id=27, subscribe=pb.SubscribeRequest(
            board_id="season-1", around=pb.SubscribeAround(player_id="alice", before=2, after=2)))),
        ("request_subscribe_feed", R(call_id=28, subscribe=pb.SubscribeRequest(
            board_id="season-1", feed=pb.SubscribeFeed()))),
        ("request_cancel", R(call_id=29, cancel=pb.CancelRequest(call_id=7))),
        ("request_authenticate", R(call_id=31, authenticate=pb.AuthenticateRequest(
            token="reader-key-0123456789abcdef"))),
        ("request_reset_board", R(call_id=33, reset_board=pb.ResetBoardRequest(board_id="season-1"))),
        ("request_top_archived_period", R(call_id=34, top=pb.TopRequest(board_id="season-1", limit=10, period_id=3))),
        ("request_backup", R(call_id=32, backup=pb.BackupRequest(destination="/var/backups/hiscore-2026-11-29"))),
        ("request_erase_player", R(call_id=35, erase_player=pb.ErasePlayerRequest(player_id="alice"))),
        ("request_max_call_id", R(call_id=U64_MAX, deadline_ms=U64_MAX, ping=pb.PingRequest(
            payload=bytes(range(256))))),
    ]
    return out


def responses() -> List[Tuple[str, pb.Response, str]]:
    S = pb.Response
    st = pb.Status
    out: List[Tuple[str, pb.Response, str]] = [
        ("response_hello", S(call_id=0, hello=pb.ServerHello(
            protocol_version=1, server_version="0.1.0", max_frame_bytes=1_048_576,
            max_inflight_calls=256, max_batch_submits=1000, max_page_entries=1000,
            max_players_per_query=1000, max_subscriptions=1000, max_metadata_bytes=256)),
         "first frame after the preface; call_id 0 is not encoded"),
        ("response_ping_doc_example", S(call_id=1, ping=pb.PingResponse(payload=b"hi")),
         "docs/protocol.md section 9"),
        ("response_ping_empty", S(call_id=2, ping=pb.PingResponse())),
        ("response_submit_new", S(call_id=3, submit=pb.SubmitResponse(
            entry=entry(rank=1), previous_rank=0, changed=True, created=True))),
        ("response_submit_explicit_ok", S(call_id=3, status=st(code=pb.STATUS_CODE_OK),
                                          submit=pb.SubmitResponse(entry=entry(rank=2),
                                                                   previous_rank=5, changed=True)),
         "status present with code OK (= success, like an absent status)"),
        ("response_submit_batch", S(call_id=6, submit_batch=pb.SubmitBatchResponse(results=[
            pb.SubmitResult(status=st(), result=pb.SubmitResponse(entry=entry(), created=True,
                                                                  changed=True)),
            pb.SubmitResult(status=st(code=pb.STATUS_CODE_INVALID_ARGUMENT,
                                      message="invalid player id"))]))),
        ("response_get_rank", S(call_id=7, get_rank=pb.GetRankResponse(
            entry=entry(UNICODE, score=I64_MIN, rank=U64_MAX, subscore=I64_MAX, metadata=b"",
                        reached_at_us=I64_MAX), board_size=U64_MAX))),
        ("response_top", S(call_id=9, top=pb.TopResponse(
            entries=[entry("alice", 300, 1), entry("bob", 200, 2, metadata=b""),
                     entry("carol", 100, 3, subscore=0)],
            next_cursor=b"\x01\x02\x03\x04", board_size=42))),
        ("response_top_empty", S(call_id=10, top=pb.TopResponse()),
         "an empty board: the result is present with length 0"),
        ("response_around", S(call_id=13, around=pb.AroundResponse(
            entries=[entry("bob", 200, 2), entry("alice", 100, 3)], board_size=3))),
        ("response_entries", S(call_id=14, entries=pb.EntriesResponse(
            entries=[entry("alice", 100, 7)], missing_player_ids=["bob", "zed"], board_size=9))),
        ("response_count", S(call_id=16, count=pb.CountResponse(count=5, board_size=10))),
        ("response_create_board", S(call_id=19, create_board=pb.CreateBoardResponse(
            board=pb.BoardInfo(config=pb.BoardConfig(
                board_id="laps.fastest:eu", score_order=pb.SORT_ORDER_ASCENDING,
                write_operator=pb.WRITE_OPERATOR_INCREMENT, rank_mode=pb.RANK_MODE_COMPETITION,
                limits=pb.BoardLimits(max_entries=10, max_metadata_bytes=256)))))),
        ("response_describe_board", S(call_id=20, describe_board=pb.DescribeBoardResponse(
            board=pb.BoardInfo(config=pb.BoardConfig(board_id="season-1", limits=pb.BoardLimits()),
                               size=3, version=17)))),
        ("response_list_boards", S(call_id=21, list_boards=pb.ListBoardsResponse(
            boards=[pb.BoardInfo(config=pb.BoardConfig(board_id="a"), size=1, version=1),
                    pb.BoardInfo(config=pb.BoardConfig(board_id="b"))], more=True))),
        ("response_delete_board", S(call_id=23, delete_board=pb.DeleteBoardResponse(
            removed_entries=3))),
        ("response_remove_player", S(call_id=24, remove_player=pb.RemovePlayerResponse(
            entry=entry(rank=4)))),
        ("response_cancel_true", S(call_id=29, cancel=pb.CancelResponse(cancelled=True))),
        ("response_cancel_false", S(call_id=30, cancel=pb.CancelResponse())),
        ("response_authenticate_key", S(call_id=31, authenticate=pb.AuthenticateResponse(role=pb.ROLE_WRITER))),
        ("response_reset_board", S(call_id=33, reset_board=pb.ResetBoardResponse(
            archived_period_id=3, archived_entries=1200))),
        ("response_backup", S(call_id=33, backup=pb.BackupResponse(
            destination="/var/backups/hiscore-2026-11-29", files=7, linked_files=6, copied_bytes=40960))),
        ("response_erase_player", S(call_id=35, erase_player=pb.ErasePlayerResponse(removed_entries=4))),
        ("response_authenticate_player", S(call_id=32, authenticate=pb.AuthenticateResponse(
            role=pb.ROLE_PLAYER, player_id="alice", boards=["season-1", "weekly"], expires_at=1893456000))),
        ("response_error_not_found", S(call_id=7, status=st(code=pb.STATUS_CODE_NOT_FOUND,
                                                            message="board 'x' not found")),
         "a failed call: status only, no result"),
        ("response_error_cancelled", S(call_id=7, status=st(code=pb.STATUS_CODE_CANCELLED,
                                                            message="cancelled"))),
        ("response_error_connection_level", S(call_id=0, status=st(
            code=pb.STATUS_CODE_INVALID_ARGUMENT,
            message="expected the preface 48 49 53 43 4f 52 45 01")),
         "call_id 0: connection-level error, the server closes the connection next"),
        ("response_error_no_message", S(call_id=8, status=st(code=pb.STATUS_CODE_UNAUTHENTICATED))),
        ("response_event_player_snapshot", S(call_id=25, event=pb.RankEvent(
            board_version=10, snapshot=True, player=pb.PlayerRankChange(
                entry=entry(rank=3), previous_rank=0, present=True)))),
        ("response_event_player_absent", S(call_id=25, event=pb.RankEvent(
            board_version=11, player=pb.PlayerRankChange(entry=pb.Entry(player_id="alice"),
                                                         previous_rank=3))),
         "player left the board: present false, rank 0"),
        ("response_event_window_snapshot", S(call_id=26, event=pb.RankEvent(
            board_version=12, snapshot=True, window=pb.WindowUpdate(
                entries=[entry("alice", 300, 1), entry("bob", 200, 2)], window_size=2)))),
        ("response_event_window_changes", S(call_id=26, event=pb.RankEvent(
            board_version=13, window=pb.WindowUpdate(changes=[
                pb.WindowChange(kind=pb.WINDOW_CHANGE_KIND_ENTERED, entry=entry("carol", 400, 1),
                                position=0),
                pb.WindowChange(kind=pb.WINDOW_CHANGE_KIND_MOVED, entry=entry("alice", 300, 2),
                                position=1, previous_position=0),
                pb.WindowChange(kind=pb.WINDOW_CHANGE_KIND_LEFT, entry=entry("bob", 200, 3),
                                previous_position=1)], window_size=2)))),
        ("response_event_feed", S(call_id=28, event=pb.RankEvent(
            board_version=15, feed=pb.FeedBatch(items=[
                pb.FeedItem(entry=entry("alice", 500, 1), previous_rank=2, board_version=14),
                pb.FeedItem(entry=entry("dave", 1, 9), created=True, board_version=15),
                pb.FeedItem(entry=entry("bob", 200, 0), previous_rank=3, removed=True,
                            board_version=15)])))),
        ("response_event_empty_feed", S(call_id=28, event=pb.RankEvent(feed=pb.FeedBatch())),
         "an empty event: the change oneof is present with length 0"),
        ("response_stream_end_ok", S(call_id=25),
         "final frame of a stream ended with OK: only the call id"),
        ("response_stream_end_cancelled", S(call_id=25, status=st(
            code=pb.STATUS_CODE_CANCELLED, message="subscription cancelled"))),
        ("response_stream_end_unavailable", S(call_id=26, status=st(
            code=pb.STATUS_CODE_UNAVAILABLE, message="server shutting down"))),
    ]
    return out


def meaning(msg: Message) -> Dict[str, Any]:
    return json_format.MessageToDict(msg, preserving_proto_field_name=True)


def build() -> Tuple[str, str]:
    vectors: List[Dict[str, Any]] = [{
        "name": "preface",
        "type": "preface",
        "direction": "client_to_server",
        "hex": PREFACE.hex(),
        "message": {"magic": "HISCORE", "protocol_version": 1},
        "note": "the first 8 bytes a client sends (not a frame)",
    }]
    for direction, typ, items in (("client_to_server", "hiscore.v1.Request", requests()),
                                  ("server_to_client", "hiscore.v1.Response", responses())):
        for item in items:
            name, msg = item[0], item[1]
            note = item[2] if len(item) > 2 else ""
            v: Dict[str, Any] = {"name": name, "type": typ, "direction": direction,
                                 "hex": frame(msg.SerializeToString()).hex(),
                                 "message": meaning(msg)}
            if note:
                v["note"] = note
            vectors.append(v)
    names = [v["name"] for v in vectors]
    assert len(set(names)) == len(names), "duplicate vector names"
    doc = {
        "description": "Hiscore wire protocol v1 conformance vectors. 'hex' is the complete frame "
                       "(flag, big-endian uint32 length, protobuf body) except for the preface. "
                       "'message' is the protobuf JSON mapping (proto field names, defaults omitted).",
        "generator": "clients/testdata/gen_vectors.py",
        "vectors": vectors,
    }
    js = json.dumps(doc, indent=1, ensure_ascii=False) + "\n"
    lines = ["# Hiscore wire protocol v1 conformance vectors: name type hex (see vectors.json).",
             "# Generated by clients/testdata/gen_vectors.py; do not edit."]
    lines += [f"{v['name']} {v['type']} {v['hex']}" for v in vectors]
    txt = "\n".join(lines) + "\n"
    return js, txt


def main() -> int:
    js, txt = build()
    targets = {os.path.join(HERE, "vectors.json"): js, os.path.join(HERE, "vectors.txt"): txt}
    if "--check" in sys.argv[1:]:
        stale = [p for p, content in targets.items()
                 if not os.path.exists(p) or open(p, encoding="utf-8").read() != content]
        for p in stale:
            print(f"stale: {p} (run python3 clients/testdata/gen_vectors.py)", file=sys.stderr)
        return 1 if stale else 0
    for p, content in targets.items():
        with open(p, "w", encoding="utf-8", newline="\n") as f:
            f.write(content)
    return 0


if __name__ == "__main__":
    sys.exit(main())
