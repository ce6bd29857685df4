"""Unit tests: preface, framing, error mapping, and client behaviour against a fake server."""
from __future__ import annotations

import asyncio
import time
from typing import List

import pytest

import hiscore
from hiscore import framing, pb
from hiscore.errors import HiscoreError, StatusCode

from conftest import FakeConn, fake_server, run


# ---------------------------------------------------------------------------------------------
# Framing

def test_preface_bytes() -> None:
    assert framing.PREFACE == bytes.fromhex("48 49 53 43 4f 52 45 01")
    assert hiscore.PREFACE == b"HISCORE\x01"


def test_doc_example_ping_frame() -> None:
    req = pb.Request(call_id=1, ping=pb.PingRequest(payload=b"hi"))
    body = req.SerializeToString()
    assert body == bytes.fromhex("08 01 c2 01 04 0a 02 68 69")
    assert framing.encode_frame(body) == bytes.fromhex("00 00 00 00 09 08 01 c2 01 04 0a 02 68 69")


def test_empty_frame_and_big_endian_length() -> None:
    assert framing.encode_frame(b"") == b"\x00\x00\x00\x00\x00"
    assert framing.encode_frame(b"x" * 0x010203)[:5] == b"\x00\x00\x01\x02\x03"


def test_decoder_byte_by_byte() -> None:
    frames = [b"", b"a", b"hello" * 100, bytes(range(256))]
    stream = b"".join(framing.encode_frame(f) for f in frames)
    dec = framing.FrameDecoder()
    out: List[bytes] = []
    for i in range(len(stream)):
        out += dec.feed(stream[i:i + 1])
    assert out == frames
    assert dec.pending_bytes == 0
    # All at once, too.
    assert framing.FrameDecoder().feed(stream) == frames


def test_decoder_keeps_partial_frame() -> None:
    dec = framing.FrameDecoder()
    assert dec.feed(framing.encode_frame(b"abcdef")[:7]) == []
    assert dec.pending_bytes == 7


def test_decoder_rejects_compressed_flag() -> None:
    with pytest.raises(framing.FramingError, match="flag"):
        framing.FrameDecoder().feed(b"\x01\x00\x00\x00\x00")


def test_decoder_rejects_oversize_before_body() -> None:
    dec = framing.FrameDecoder(max_frame_bytes=1024)
    with pytest.raises(framing.FramingError, match="exceeds"):
        dec.feed(b"\x00\x00\x00\x04\x01")  # 1025 declared, no body needed to refuse
    framing.FrameDecoder(max_frame_bytes=1024).feed(b"\x00\x00\x00\x04\x00")  # exactly the limit


# ---------------------------------------------------------------------------------------------
# Errors

def test_error_mapping() -> None:
    for code in StatusCode:
        if code == StatusCode.OK:
            continue
        err = HiscoreError.from_status(int(code), "msg", call_id=7)
        assert isinstance(err, HiscoreError)
        assert err.code == code and err.message == "msg" and err.call_id == 7
        assert type(err).__name__.upper().replace("_", "") == code.name.replace("_", "")
    assert isinstance(HiscoreError.from_status(5, "x"), hiscore.NotFound)
    unknown = HiscoreError.from_status(99, "future code")
    assert unknown.code == StatusCode.UNKNOWN and unknown.raw_code == 99
    assert isinstance(hiscore.ConnectionLost(), hiscore.Unavailable)
    assert "NOT_FOUND: board" in str(hiscore.NotFound("board"))


def test_enums_match_proto() -> None:
    assert hiscore.SortOrder.ASCENDING == pb.SORT_ORDER_ASCENDING
    assert hiscore.WriteOperator.DECREMENT == pb.WRITE_OPERATOR_DECREMENT
    assert hiscore.RankMode.DENSE == pb.RANK_MODE_DENSE
    assert hiscore.WindowChangeKind.MOVED == pb.WINDOW_CHANGE_KIND_MOVED
    for code in StatusCode:
        assert pb.StatusCode.Value("STATUS_CODE_" + code.name) == code


def test_make_submit() -> None:
    assert hiscore.make_submit(("b", "p", 5)) == pb.SubmitRequest(board_id="b", player_id="p", score=5)
    m = hiscore.make_submit(("b", "p", 5, 2, b""))
    assert m.HasField("metadata") and m.subscore == 2
    assert hiscore.make_submit({"board_id": "b", "player_id": "p", "score": 1}).score == 1
    with pytest.raises(TypeError):
        hiscore.make_submit(("b",))  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Client against a fake server

def test_hello_and_out_of_order_responses() -> None:
    async def handler(conn: FakeConn) -> None:
        await conn.hello(server_version="fake-9")
        reqs = [await conn.recv() for _ in range(3)]
        for req in reversed(reqs):  # answer in reverse order
            assert req is not None and req.WhichOneof("method") == "ping"
            await conn.send(pb.Response(call_id=req.call_id,
                                        ping=pb.PingResponse(payload=req.ping.payload)))
        await conn.reader.read()

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await hiscore.AsyncClient.connect(srv.host, srv.port, timeout=5) as c:
                assert c.hello.server_version == "fake-9"
                got = await asyncio.gather(*(c.ping(p) for p in (b"a", b"b", b"c")))
                assert got == [b"a", b"b", b"c"]
    run(main())


def test_request_fields_and_call_ids() -> None:
    seen: List[pb.Request] = []

    async def handler(conn: FakeConn) -> None:
        await conn.hello()
        while (req := await conn.recv()) is not None:
            seen.append(req)
            await conn.send(pb.Response(call_id=req.call_id, status=pb.Status(
                code=pb.STATUS_CODE_NOT_FOUND, message="no such board")))

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await hiscore.AsyncClient.connect(srv.host, srv.port,
                                                         auth_token="tok") as c:
                with pytest.raises(hiscore.NotFound) as ei:
                    await c.rank("b", "p", deadline=1.5)
                assert ei.value.message == "no such board" and ei.value.code == StatusCode.NOT_FOUND
                with pytest.raises(hiscore.NotFound):
                    await c.top("b", 5, offset=0)
                with pytest.raises(hiscore.NotFound):
                    await c.count("b", min_score=0)
                with pytest.raises(hiscore.NotFound):
                    await c.list_boards()
    run(main())
    assert [r.call_id for r in seen] == [1, 2, 3, 4]
    assert seen[0].deadline_ms == 1500 and seen[0].auth_token == "tok"
    assert seen[0].get_rank.player_id == "p"
    assert seen[1].top.HasField("offset") and seen[1].top.limit == 5
    assert seen[2].count.HasField("min_score") and not seen[2].count.HasField("max_score")
    assert seen[3].WhichOneof("method") == "list_boards"  # empty body still names the method
    assert seen[1].deadline_ms == 0


def test_local_deadline_sends_cancel() -> None:
    got_cancel: List[int] = []

    async def handler(conn: FakeConn) -> None:
        await conn.hello()
        submit = await conn.recv()
        assert submit is not None and submit.deadline_ms == 50
        cancel = await conn.recv()  # never answered the submit: the client cancels it
        assert cancel is not None and cancel.WhichOneof("method") == "cancel"
        got_cancel.append(cancel.cancel.call_id)
        await conn.send(pb.Response(call_id=submit.call_id, status=pb.Status(
            code=pb.STATUS_CODE_CANCELLED)))
        await conn.send(pb.Response(call_id=cancel.call_id,
                                    cancel=pb.CancelResponse(cancelled=True)))
        ping = await conn.recv()
        assert ping is not None
        await conn.send(pb.Response(call_id=ping.call_id, ping=pb.PingResponse(payload=b"ok")))
        await conn.reader.read()

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await hiscore.AsyncClient.connect(srv.host, srv.port,
                                                         deadline_grace=0.05) as c:
                t0 = time.monotonic()
                with pytest.raises(hiscore.DeadlineExceeded):
                    await c.submit("b", "p", 1, deadline=0.05)
                assert time.monotonic() - t0 < 2
                for _ in range(200):  # the cancel goes out in the background
                    if got_cancel:
                        break
                    await asyncio.sleep(0.01)
                assert got_cancel == [1]
                assert await c.ping(b"x") == b"ok"  # the connection is still usable
    run(main())


def test_task_cancellation_cancels_on_server() -> None:
    cancelled_ids: List[int] = []

    async def handler(conn: FakeConn) -> None:
        await conn.hello()
        top = await conn.recv()
        cancel = await conn.recv()
        assert top is not None and cancel is not None
        cancelled_ids.append(cancel.cancel.call_id)
        await conn.send(pb.Response(call_id=top.call_id, status=pb.Status(code=1)))
        await conn.send(pb.Response(call_id=cancel.call_id, cancel=pb.CancelResponse(cancelled=True)))
        await conn.reader.read()

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await hiscore.AsyncClient.connect(srv.host, srv.port) as c:
                task = asyncio.ensure_future(c.top("b"))
                await asyncio.sleep(0.1)
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                for _ in range(100):
                    if cancelled_ids:
                        break
                    await asyncio.sleep(0.02)
                assert cancelled_ids == [1]
    run(main())


def test_connection_level_error_during_hello() -> None:
    async def handler(conn: FakeConn) -> None:
        await conn.read_preface()
        await conn.send(pb.Response(call_id=0, status=pb.Status(
            code=pb.STATUS_CODE_UNIMPLEMENTED, message="protocol version 1 not spoken")))

    async def main() -> None:
        async with fake_server(handler) as srv:
            with pytest.raises(hiscore.Unimplemented, match="not spoken"):
                await hiscore.AsyncClient.connect(srv.host, srv.port, timeout=5)
    run(main())


def test_server_close_fails_pending_calls() -> None:
    async def handler(conn: FakeConn) -> None:
        await conn.hello()
        await conn.recv()
        await conn.send(pb.Response(call_id=0, status=pb.Status(
            code=pb.STATUS_CODE_RESOURCE_EXHAUSTED, message="frame too large")))

    async def main() -> None:
        async with fake_server(handler) as srv:
            c = await hiscore.AsyncClient.connect(srv.host, srv.port)
            with pytest.raises(hiscore.ConnectionLost) as ei:
                await c.ping(b"x")
            assert ei.value.code == StatusCode.UNAVAILABLE
            assert isinstance(ei.value.cause, hiscore.ResourceExhausted)
            assert isinstance(c.server_error, hiscore.ResourceExhausted)
            assert c.closed
            with pytest.raises(hiscore.ConnectionLost):
                await c.ping(b"y")
            await c.close()
    run(main())


def test_responses_split_and_coalesced_then_cut_mid_frame() -> None:
    """The client's own read path (not just FrameDecoder): a response trickled a byte at a time,
    two responses in one write, then a frame cut short by the close: its call fails with
    ConnectionLost instead of hanging or reading garbage."""
    async def handler(conn: FakeConn) -> None:
        await conn.hello()
        reqs = [await conn.recv() for _ in range(4)]
        assert all(r is not None for r in reqs)
        frames = [framing.encode_frame(pb.Response(
            call_id=r.call_id, ping=pb.PingResponse(payload=r.ping.payload)).SerializeToString())
            for r in reqs if r is not None]
        for i in range(len(frames[0])):  # one byte per write
            conn.writer.write(frames[0][i:i + 1])
            await conn.writer.drain()
            await asyncio.sleep(0.002)
        conn.writer.write(frames[1] + frames[2])  # two frames in one write
        conn.writer.write(frames[3][:-2])  # the last one cut short
        await conn.writer.drain()
        await asyncio.sleep(0.05)

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await hiscore.AsyncClient.connect(srv.host, srv.port) as c:
                calls = [asyncio.ensure_future(c.ping(bytes([i]) * 40)) for i in range(4)]
                done = await asyncio.gather(*calls, return_exceptions=True)
                assert done[:3] == [bytes([i]) * 40 for i in range(3)]
                assert isinstance(done[3], hiscore.ConnectionLost)
    run(main())


def test_bad_frame_flag_from_server_is_protocol_error() -> None:
    async def handler(conn: FakeConn) -> None:
        await conn.hello()
        await conn.recv()
        conn.writer.write(b"\x01\x00\x00\x00\x00")
        await conn.writer.drain()
        await conn.reader.read()

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await hiscore.AsyncClient.connect(srv.host, srv.port) as c:
                with pytest.raises(hiscore.ProtocolError):
                    await c.ping()
    run(main())


def test_inflight_limit_is_respected() -> None:
    max_outstanding = [0]

    async def handler(conn: FakeConn) -> None:
        await conn.hello(max_inflight_calls=3)
        outstanding: List[pb.Request] = []
        answered = 0
        while answered < 20:
            # Collect what the client sends within a short window, then answer one.
            try:
                req = await asyncio.wait_for(conn.recv(), 0.05)
                assert req is not None
                outstanding.append(req)
                max_outstanding[0] = max(max_outstanding[0], len(outstanding))
                continue
            except asyncio.TimeoutError:
                pass
            if outstanding:
                req = outstanding.pop(0)
                await conn.send(pb.Response(call_id=req.call_id, ping=pb.PingResponse(
                    payload=req.ping.payload)))
                answered += 1
        await conn.reader.read()

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await hiscore.AsyncClient.connect(srv.host, srv.port) as c:
                got = await asyncio.gather(*(c.ping(str(i).encode()) for i in range(20)))
                assert got == [str(i).encode() for i in range(20)]
    run(main())
    assert max_outstanding[0] == 3


def test_oversize_request_refused_locally() -> None:
    async def handler(conn: FakeConn) -> None:
        await conn.hello(max_frame_bytes=64)
        req = await conn.recv()
        assert req is not None and len(req.ping.payload) == 10
        await conn.send(pb.Response(call_id=req.call_id, ping=pb.PingResponse(payload=b"ok")))
        await conn.reader.read()

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await hiscore.AsyncClient.connect(srv.host, srv.port) as c:
                with pytest.raises(hiscore.ResourceExhausted, match="max_frame_bytes"):
                    await c.ping(b"x" * 100)
                assert await c.ping(b"y" * 10) == b"ok"
    run(main())


def test_subscription_events_then_final_status() -> None:
    async def handler(conn: FakeConn) -> None:
        await conn.hello()
        for final in (pb.Status(), pb.Status(code=pb.STATUS_CODE_NOT_FOUND, message="board deleted")):
            sub = await conn.recv()
            assert sub is not None and sub.subscribe.top == 3
            for v in (1, 2):
                await conn.send(pb.Response(call_id=sub.call_id, event=pb.RankEvent(
                    board_version=v, snapshot=v == 1, window=pb.WindowUpdate(window_size=v))))
            await conn.send(pb.Response(call_id=sub.call_id, status=final))
        # Third: cancelled by the client.
        sub = await conn.recv()
        cancel = await conn.recv()
        assert sub is not None and cancel is not None and cancel.cancel.call_id == sub.call_id
        await conn.send(pb.Response(call_id=sub.call_id, event=pb.RankEvent(board_version=1)))
        await conn.send(pb.Response(call_id=cancel.call_id, cancel=pb.CancelResponse(cancelled=True)))
        await conn.send(pb.Response(call_id=sub.call_id, status=pb.Status(code=1)))
        await conn.reader.read()

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await hiscore.AsyncClient.connect(srv.host, srv.port) as c:
                events = [e async for e in c.subscribe("b", top=3)]
                assert [e.board_version for e in events] == [1, 2] and events[0].snapshot
                got = []
                with pytest.raises(hiscore.NotFound, match="board deleted"):
                    async for e in c.subscribe("b", top=3):
                        got.append(e.window.window_size)
                assert got == [1, 2]
                sub = c.subscribe("b", player_id="p")
                await sub.start()
                assert await sub.cancel() is True
                assert [e.board_version async for e in sub] == [1]
                with pytest.raises(ValueError):
                    c.subscribe("b")
    run(main())


def test_out_of_range_score_is_invalid_argument():
    """A score outside int64 is refused as the server would refuse it, not with protobuf's
    ValueError."""
    import pytest
    from hiscore import errors
    from hiscore.client import make_submit
    with pytest.raises(errors.InvalidArgument, match="score"):
        make_submit(("b", "p", 2 ** 63))
    with pytest.raises(errors.InvalidArgument, match="subscore"):
        make_submit(("b", "p", 1, -(2 ** 63) - 1))
    assert make_submit(("b", "p", 2 ** 63 - 1)).score == 2 ** 63 - 1
