"""Client flow control against a fake server: in-flight slots (connection loss, deadlines,
cancels), closing subscriptions, and the bounded per-subscription event queue."""
from __future__ import annotations

import asyncio
from typing import List, Optional

import pytest

import hiscore
from hiscore import pb

from conftest import FakeConn, fake_server, run


async def connect(port: int, **kw: object) -> hiscore.AsyncClient:
    return await hiscore.AsyncClient.connect("127.0.0.1", port, timeout=5, **kw)  # type: ignore[arg-type]


async def recv(conn: FakeConn, timeout: float = 5.0) -> pb.Request:
    """The next request; fails the handler (and so the test) when none comes in time."""
    req = await asyncio.wait_for(conn.recv(), timeout)
    assert req is not None, "the client closed the connection"
    return req


def method(req: pb.Request) -> str:
    return str(req.WhichOneof("method"))


async def grant_cancel(conn: FakeConn, cancel: pb.Request, target_id: int) -> None:
    """Answers `cancel` (cancelled = true), then ends its target call with CANCELLED."""
    await conn.send(pb.Response(call_id=cancel.call_id, cancel=pb.CancelResponse(cancelled=True)))
    await conn.send(pb.Response(call_id=target_id, status=pb.Status(code=1)))


class Signal:
    """An asyncio.Event made on first use, inside the test's loop: before Python 3.10 an Event
    binds to the loop current when it is made, and the tests make these before run() starts one."""

    def __init__(self) -> None:
        self._event: Optional[asyncio.Event] = None

    def _get(self) -> asyncio.Event:
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    def set(self) -> None:
        self._get().set()

    def is_set(self) -> bool:
        return self._get().is_set()

    async def wait(self) -> None:
        await self._get().wait()


# ---------------------------------------------------------------------------------------------
# In-flight slots

def test_connection_loss_wakes_calls_waiting_for_a_slot() -> None:
    """A lost connection fails the calls queued for a slot too, not only those sent."""
    queued = Signal()

    async def handler(conn: FakeConn) -> None:
        await conn.hello(max_inflight_calls=1)
        assert method(await recv(conn)) == "ping"  # holds the only slot; never answered
        await asyncio.wait_for(queued.wait(), 5)
        # returning closes the connection

    async def main() -> None:
        async with fake_server(handler) as srv:
            c = await connect(srv.port)
            first = asyncio.ensure_future(c.ping(b"1"))
            waiting = [asyncio.ensure_future(c.ping(str(i).encode())) for i in range(2, 5)]
            await asyncio.sleep(0)  # let every call run up to its send / slot wait
            assert not any(t.done() for t in waiting)
            queued.set()
            done = await asyncio.wait_for(
                asyncio.gather(first, *waiting, return_exceptions=True), 5)
            assert all(isinstance(r, hiscore.ConnectionLost) for r in done), done
            with pytest.raises(hiscore.ConnectionLost):
                await c.ping(b"after")
            await c.close()
    run(main(), timeout=20)


def test_deadline_covers_the_wait_for_a_slot() -> None:
    """A call queued behind max_inflight_calls gives up at its deadline without being sent; one
    that gets its slot late is sent with what is left of its deadline."""
    seen: List[pb.Request] = []
    got_first, release_first = Signal(), Signal()

    async def handler(conn: FakeConn) -> None:
        await conn.hello(max_inflight_calls=1)
        first = await recv(conn)
        seen.append(first)
        got_first.set()
        await asyncio.wait_for(release_first.wait(), 5)
        await conn.send(pb.Response(call_id=first.call_id, ping=pb.PingResponse(payload=b"1")))
        while (req := await conn.recv()) is not None:
            seen.append(req)
            await conn.send(pb.Response(call_id=req.call_id,
                                        ping=pb.PingResponse(payload=req.ping.payload)))

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await connect(srv.port, deadline_grace=0.05) as c:
                loop = asyncio.get_running_loop()
                first = asyncio.ensure_future(c.ping(b"1"))
                await asyncio.wait_for(got_first.wait(), 5)  # it holds the only slot
                t0 = loop.time()
                with pytest.raises(hiscore.DeadlineExceeded, match="slot"):
                    await asyncio.wait_for(c.ping(b"starved", deadline=0.1), 5)
                assert 0.09 <= loop.time() - t0 < 2
                late = asyncio.ensure_future(c.ping(b"late", deadline=3.0))
                await asyncio.sleep(0.2)  # time spent waiting for the slot (not synchronization)
                release_first.set()
                assert await asyncio.wait_for(first, 5) == b"1"
                assert await asyncio.wait_for(late, 5) == b"late"
                assert await c.ping(b"again", deadline=1.0) == b"again"  # no slot was lost
    run(main(), timeout=20)
    assert [r.ping.payload for r in seen] == [b"1", b"late", b"again"]  # "starved" never sent
    assert 1 <= seen[1].deadline_ms <= 2800, seen[1].deadline_ms  # 3 s minus the slot wait
    assert seen[2].deadline_ms == 1000


def test_cancel_needs_no_slot() -> None:
    """Cancels are not counted against max_inflight_calls (the server does not count them), so
    they go out while every slot is taken: the one sent for a timed-out call, and explicit ones."""
    cancels: List[int] = []

    async def handler(conn: FakeConn) -> None:
        await conn.hello(max_inflight_calls=1)
        held = await recv(conn)  # never answered: the client times out and cancels it
        cancel = await recv(conn)
        assert method(cancel) == "cancel" and cancel.cancel.call_id == held.call_id
        cancels.append(cancel.cancel.call_id)
        await conn.send(pb.Response(call_id=held.call_id, status=pb.Status(code=1)))
        await conn.send(pb.Response(call_id=cancel.call_id, cancel=pb.CancelResponse(cancelled=True)))
        held = await recv(conn)  # started with start_call, cancelled explicitly
        cancel = await recv(conn)
        assert method(cancel) == "cancel" and cancel.cancel.call_id == held.call_id
        cancels.append(cancel.cancel.call_id)
        await grant_cancel(conn, cancel, held.call_id)
        await conn.reader.read()

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await connect(srv.port, deadline_grace=0.05) as c:
                with pytest.raises(hiscore.DeadlineExceeded):
                    await asyncio.wait_for(c.ping(b"held", deadline=0.05), 5)
                call = await asyncio.wait_for(c.start_call("ping", pb.PingRequest()), 5)
                assert await asyncio.wait_for(c.cancel(call.call_id), 5) is True
                with pytest.raises(hiscore.Cancelled):
                    await asyncio.wait_for(call.result(), 5)
    run(main(), timeout=20)
    assert cancels == [1, 3]


def test_deadline_covers_writing_the_request() -> None:
    """A server that stops reading cannot hold a call past its deadline: the request fills the
    socket buffers, the client stops waiting for them to drain at the deadline and raises
    DeadlineExceeded. The request is (partly) out, so its id stays reserved and a cancel follows
    it once the server reads again; the connection stays usable."""
    failed, got_cancel = Signal(), Signal()
    seen: List[str] = []

    async def handler(conn: FakeConn) -> None:
        await conn.hello(max_frame_bytes=64 << 20)
        await asyncio.wait_for(failed.wait(), 10)  # not reading until the client gave up
        big = await recv(conn)
        seen.append(method(big))
        cancel = await recv(conn)
        assert method(cancel) == "cancel" and cancel.cancel.call_id == big.call_id
        await conn.send(pb.Response(call_id=big.call_id, status=pb.Status(code=1)))
        await conn.send(pb.Response(call_id=cancel.call_id, cancel=pb.CancelResponse(cancelled=True)))
        got_cancel.set()
        ping = await recv(conn)
        await conn.send(pb.Response(call_id=ping.call_id, ping=pb.PingResponse(payload=b"ok")))
        await conn.reader.read()

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await connect(srv.port, deadline_grace=0.1) as c:
                loop = asyncio.get_running_loop()
                # ~12 MB: far more than loopback socket buffers hold, under the fake server's
                # 16 MiB frame limit
                players = [f"{i:08d}" + "p" * 992 for i in range(12_000)]
                t0 = loop.time()
                with pytest.raises(hiscore.DeadlineExceeded) as ei:
                    await asyncio.wait_for(c.entries("b", players, deadline=0.3), 5)
                assert loop.time() - t0 < 2
                call_id = ei.value.call_id
                assert c._pending[call_id].kind == "abandoned"  # reserved until answered
                failed.set()
                await asyncio.wait_for(got_cancel.wait(), 5)
                assert await asyncio.wait_for(c.ping(b"ok"), 5) == b"ok"
                assert call_id not in c._pending
    run(main(), timeout=30)
    assert seen == ["entries"]


# ---------------------------------------------------------------------------------------------
# Closing subscriptions

def test_leaving_async_with_cancels_the_subscription() -> None:
    got_cancel = Signal()
    after: List[str] = []

    async def handler(conn: FakeConn) -> None:
        await conn.hello()
        sub = await recv(conn)
        await conn.send(pb.Response(call_id=sub.call_id, event=pb.RankEvent(snapshot=True)))
        cancel = await recv(conn)
        assert method(cancel) == "cancel" and cancel.cancel.call_id == sub.call_id
        got_cancel.set()
        await conn.send(pb.Response(call_id=sub.call_id, event=pb.RankEvent(board_version=9)))
        await grant_cancel(conn, cancel, sub.call_id)
        ping = await recv(conn)
        after.append(method(ping))
        await conn.send(pb.Response(call_id=ping.call_id, ping=pb.PingResponse(payload=b"ok")))
        await conn.reader.read()

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await connect(srv.port) as c:
                async with c.subscribe("b", top=3) as sub:
                    first = await asyncio.wait_for(sub.__anext__(), 5)
                    assert first.snapshot
                # aclose waited for the cancel's answer: the server has the cancel
                assert got_cancel.is_set()
                assert [e async for e in sub] == []  # closed: nothing more is delivered
                assert await c.ping() == b"ok"  # the late event and final status were dropped
                assert sub.call_id not in c._pending
    run(main(), timeout=20)
    assert after == ["ping"]


def test_aclose_ends_a_consumer_waiting_in_another_task() -> None:
    async def handler(conn: FakeConn) -> None:
        await conn.hello()
        sub = await recv(conn)
        await conn.send(pb.Response(call_id=sub.call_id, event=pb.RankEvent(snapshot=True)))
        cancel = await recv(conn)
        assert cancel.cancel.call_id == sub.call_id
        await grant_cancel(conn, cancel, sub.call_id)
        await conn.reader.read()

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await connect(srv.port) as c:
                sub = c.subscribe("b", player_id="p")
                got: List[pb.RankEvent] = []
                first = asyncio.Event()

                async def consume() -> None:
                    async for e in sub:
                        got.append(e)
                        first.set()
                consumer = asyncio.ensure_future(consume())
                await asyncio.wait_for(first.wait(), 5)  # the consumer now waits for more
                await asyncio.wait_for(sub.aclose(), 5)
                await asyncio.wait_for(consumer, 5)  # ended, without an error
                assert len(got) == 1
    run(main(), timeout=20)


# ---------------------------------------------------------------------------------------------
# Bounded event queue

def test_slow_subscriber_overflow_cancels_and_raises() -> None:
    """Events beyond max_queued_events: the client cancels the stream on the server, drops the
    rest, and the consumer gets the queued events, then SubscriptionLagged."""
    got_cancel = Signal()

    async def handler(conn: FakeConn) -> None:
        await conn.hello()
        sub = await recv(conn)
        for v in range(1, 9):  # 8 events for a queue of 5: overflow at the 6th
            await conn.send(pb.Response(call_id=sub.call_id, event=pb.RankEvent(
                board_version=v, snapshot=v == 1)))
        cancel = await recv(conn)
        assert method(cancel) == "cancel" and cancel.cancel.call_id == sub.call_id
        got_cancel.set()
        await conn.send(pb.Response(call_id=sub.call_id, event=pb.RankEvent(board_version=99)))
        await grant_cancel(conn, cancel, sub.call_id)
        ping = await recv(conn)
        await conn.send(pb.Response(call_id=ping.call_id, ping=pb.PingResponse(payload=b"ok")))
        await conn.reader.read()

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await connect(srv.port) as c:
                sub = c.subscribe("b", top=3, max_queued_events=5)
                await sub.start()
                await asyncio.wait_for(got_cancel.wait(), 5)  # nobody has read an event yet
                assert await c.ping() == b"ok"  # after the final status: no longer tracked
                assert sub.call_id not in c._pending
                got = []
                with pytest.raises(hiscore.SubscriptionLagged, match="resubscribe") as ei:
                    async for e in sub:
                        got.append(e.board_version)
                assert got == [1, 2, 3, 4, 5]
                assert isinstance(ei.value, hiscore.ResourceExhausted)
                assert ei.value.call_id == sub.call_id
                assert [e async for e in sub] == []  # ended
                await sub.aclose()
    run(main(), timeout=20)


def test_queued_events_limit_defaults() -> None:
    assert hiscore.DEFAULT_MAX_QUEUED_EVENTS == 10_000
    got_cancel = Signal()

    async def handler(conn: FakeConn) -> None:
        await conn.hello()
        sub = await recv(conn)
        for v in range(1, 5):
            await conn.send(pb.Response(call_id=sub.call_id, event=pb.RankEvent(board_version=v)))
        cancel = await recv(conn)  # the client-wide limit is 3
        assert cancel.cancel.call_id == sub.call_id
        got_cancel.set()
        await grant_cancel(conn, cancel, sub.call_id)
        await conn.reader.read()

    async def main() -> None:
        async with fake_server(handler) as srv:
            async with await connect(srv.port, max_queued_events=3) as c:
                assert c.max_queued_events == 3
                sub = c.subscribe("b", feed=True)
                await sub.start()
                await asyncio.wait_for(got_cancel.wait(), 5)
                got = []
                with pytest.raises(hiscore.SubscriptionLagged):
                    async for e in sub:
                        got.append(e.board_version)
                assert got == [1, 2, 3]
            with pytest.raises(ValueError):
                c.subscribe("b", feed=True, max_queued_events=0)
    run(main(), timeout=20)


# ---------------------------------------------------------------------------------------------
# Paging within the server's limits

def test_iter_top_pages_within_a_large_metadata_boards_answer_bound() -> None:
    """A page that could exceed max_frame_bytes on its board is refused: iter_top asks the
    board's max_metadata_bytes when its page could, and pages within the answer's bound."""
    seen: List[str] = []

    async def handler(conn: FakeConn) -> None:
        await conn.hello(max_page_entries=1000, max_frame_bytes=1 << 20)
        while True:
            req = await recv(conn)
            seen.append(method(req))
            if method(req) == "describe_board":
                config = pb.BoardConfig(board_id="b", limits=pb.BoardLimits(max_metadata_bytes=4096))
                await conn.send(pb.Response(call_id=req.call_id, describe_board=pb.DescribeBoardResponse(
                    board=pb.BoardInfo(config=config))))
                continue
            seen.append(str(req.top.limit))
            entries = [pb.Entry(player_id="p0", score=1, rank=1)]
            await conn.send(pb.Response(call_id=req.call_id, top=pb.TopResponse(entries=entries)))
            return

    async def main() -> None:
        async with fake_server(handler) as srv:
            c = await connect(srv.port)
            got = [e.player_id async for e in c.iter_top("b", page_size=1000)]
            assert got == ["p0"]
            await c.close()
    run(main(), timeout=20)
    # (1,048,576 - 256) // (64 + 128 + 4096)
    assert seen == ["describe_board", "top", "244"]


def test_iter_top_pages_within_max_page_entries() -> None:
    """iter_top's default page (100) is cut to the server's max_page_entries: a larger limit is
    OUT_OF_RANGE, which would end the iteration with an error on such a server."""
    limits: List[int] = []

    async def handler(conn: FakeConn) -> None:
        await conn.hello(max_page_entries=5)
        req = await recv(conn)
        assert method(req) == "top"
        limits.append(req.top.limit)
        if req.top.limit > 5:
            await conn.send(pb.Response(call_id=req.call_id, status=pb.Status(
                code=pb.STATUS_CODE_OUT_OF_RANGE, message="limit exceeds max_page_entries")))
            return
        entries = [pb.Entry(player_id=f"p{i}", score=10 - i, rank=i + 1) for i in range(3)]
        await conn.send(pb.Response(call_id=req.call_id, top=pb.TopResponse(entries=entries)))

    async def main() -> None:
        async with fake_server(handler) as srv:
            c = await connect(srv.port)
            got = [e.player_id async for e in c.iter_top("b")]
            assert got == ["p0", "p1", "p2"]
            await c.close()
    run(main(), timeout=20)
    assert limits == [5]


def test_sync_iter_top_pages_within_a_large_metadata_boards_answer_bound() -> None:
    """The blocking client's iter_top pages within the answer bound as the async one does: on a
    4 KiB-metadata board a page of 1000 is refused with RESOURCE_EXHAUSTED by the server."""
    seen: List[str] = []

    async def handler(conn: FakeConn) -> None:
        await conn.hello(max_page_entries=1000, max_frame_bytes=1 << 20)
        while True:
            req = await asyncio.wait_for(conn.recv(), 10)
            if req is None:
                return
            kind = str(req.WhichOneof("method"))
            seen.append(kind)
            if kind == "describe_board":
                config = pb.BoardConfig(board_id="b", limits=pb.BoardLimits(max_metadata_bytes=4096))
                await conn.send(pb.Response(call_id=req.call_id, describe_board=pb.DescribeBoardResponse(
                    board=pb.BoardInfo(config=config))))
                continue
            seen.append(str(req.top.limit))
            entries = [pb.Entry(player_id="p0", score=1, rank=1)]
            await conn.send(pb.Response(call_id=req.call_id, top=pb.TopResponse(entries=entries)))

    def iterate(port: int) -> List[str]:
        with hiscore.Client("127.0.0.1", port, timeout=5) as c:
            return [e.player_id for e in c.iter_top("b", page_size=1000)]

    async def main() -> None:
        async with fake_server(handler) as srv:
            got = await asyncio.to_thread(iterate, srv.port)
            assert got == ["p0"]
    run(main(), timeout=30)
    # What the server admits on that board: (1,048,576 - 256) // (64 + 128 + 4096) = 244.
    assert "top" in seen and seen[seen.index("top") + 1] == "244", seen


def test_call_refuses_subscribe() -> None:
    """`call`/`start_call` are unary: a subscribe sent through them got its first event back as
    an INTERNAL error while the stream went on on the server, out of the client's sight (events
    dropped, counted against max_subscriptions, never cancelled). They refuse it unsent and point
    to subscribe()."""
    seen: List[str] = []

    async def handler(conn: FakeConn) -> None:
        await conn.hello()
        req = await recv(conn)
        seen.append(method(req))
        await conn.send(pb.Response(call_id=req.call_id, ping=pb.PingResponse(payload=b"ok")))

    async def main() -> None:
        async with fake_server(handler) as srv:
            c = await connect(srv.port)
            with pytest.raises(ValueError, match="subscribe"):
                await c.call("subscribe", pb.SubscribeRequest(board_id="b", top=3))
            with pytest.raises(ValueError, match="subscribe"):
                await c.start_call("subscribe", pb.SubscribeRequest(board_id="b", top=3))
            assert await c.ping(b"ok") == b"ok"
            await c.close()
    run(main(), timeout=20)
    assert seen == ["ping"]
