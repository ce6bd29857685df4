"""End-to-end tests of hiscore.AsyncClient / hiscore.Client against a real hiscored."""
from __future__ import annotations

import asyncio
import gc
import os
import socket
import struct
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import List, Optional, Tuple, cast

import pytest

import hiscore
from hiscore import RankMode, SortOrder, StatusCode, WriteOperator, framing, pb

from conftest import RecordingProxy, ServerInfo, run, unique, wait_until

I64_MAX = (1 << 63) - 1
I64_MIN = -(1 << 63)


async def connect(server: ServerInfo, **kw: object) -> hiscore.AsyncClient:
    return await hiscore.AsyncClient.connect(server.host, server.port, timeout=10, **kw)  # type: ignore[arg-type]


def ids(entries: object) -> List[str]:
    return [e.player_id for e in entries]  # type: ignore[attr-defined]


def ranks(entries: object) -> List[int]:
    return [e.rank for e in entries]  # type: ignore[attr-defined]


def test_hello(server: ServerInfo) -> None:
    async def main() -> None:
        async with await connect(server) as c:
            h = c.hello
            assert h.protocol_version == 1 and h.server_version
            assert h.max_frame_bytes == 1_048_576 and h.max_inflight_calls == 256
            assert h.max_batch_submits == 1000 and h.max_page_entries == 1000
            assert h.max_players_per_query == 1000 and h.max_metadata_bytes == 256
    run(main())


def test_ping(server: ServerInfo) -> None:
    async def main() -> None:
        async with await connect(server) as c:
            assert await c.ping(b"hi") == b"hi"
            assert await c.ping() == b""
            assert await c.ping(b"x" * 1024) == b"x" * 1024
            with pytest.raises(hiscore.InvalidArgument):
                await c.ping(b"x" * 1025)
            assert await c.ping(b"still open") == b"still open"
    run(main())


def test_submit_rank_descending_best(server: ServerInfo) -> None:
    b = unique()

    async def main() -> None:
        async with await connect(server) as c:
            r = await c.submit(b, "alice", 100)
            assert r.created and r.changed and r.previous_rank == 0 and r.entry.rank == 1
            assert r.entry.player_id == "alice" and r.entry.score == 100 and r.entry.reached_at_us > 0
            await c.submit(b, "bob", 200)
            await c.submit(b, "carol", 150)
            g = await c.get_rank(b, "alice")
            assert g.entry.rank == 3 and g.board_size == 3 and g.entry.score == 100
            # best: a worse score is ignored, a better one replaces it
            r = await c.submit(b, "alice", 50)
            assert not r.changed and not r.created and r.entry.score == 100 and r.previous_rank == 3
            r = await c.submit(b, "alice", 300)
            assert r.changed and r.previous_rank == 3 and r.entry.rank == 1
            top = await c.top(b)
            assert ids(top.entries) == ["alice", "bob", "carol"] and ranks(top.entries) == [1, 2, 3]
            assert top.board_size == 3 and top.next_cursor == b""
            info = await c.describe_board(b)  # auto-created with the documented defaults
            assert info.size == 3 and info.version >= 4
            cfg = info.config
            assert cfg.board_id == b and cfg.score_order == SortOrder.DESCENDING
            assert cfg.write_operator == WriteOperator.BEST
    run(main())


def test_ascending_board(server: ServerInfo) -> None:
    b = unique("laps")

    async def main() -> None:
        async with await connect(server) as c:
            info = await c.create_board(b, score_order=SortOrder.ASCENDING,
                                        subscore_order=SortOrder.ASCENDING)
            assert info.config.score_order == SortOrder.ASCENDING and info.size == 0
            for p, t in (("slow", 90_000), ("fast", 61_000), ("mid", 75_000)):
                await c.submit(b, p, t)
            assert ids((await c.top(b)).entries) == ["fast", "mid", "slow"]
            r = await c.submit(b, "slow", 95_000)  # best = lower on an ascending board
            assert not r.changed
            r = await c.submit(b, "slow", 60_000)
            assert r.changed and r.entry.rank == 1 and r.previous_rank == 3
            # ascending subscore breaks equal scores
            await c.submit(b, "tie_hi", 70_000, 9)
            await c.submit(b, "tie_lo", 70_000, 1)
            assert ids((await c.top(b)).entries) == ["slow", "fast", "tie_lo", "tie_hi", "mid"]
            cnt = await c.count(b, 61_000, 70_000)
            assert cnt.count == 3 and cnt.board_size == 5
    run(main())


def test_write_operators(server: ServerInfo) -> None:
    async def main() -> None:
        async with await connect(server) as c:
            s, i, d = unique("set"), unique("inc"), unique("dec")
            await c.create_board(s, write_operator=WriteOperator.SET)
            await c.create_board(i, write_operator=WriteOperator.INCREMENT)
            await c.create_board(d, write_operator=WriteOperator.DECREMENT)
            await c.submit(s, "p", 100)
            r = await c.submit(s, "p", 10)
            assert r.entry.score == 10 and r.changed
            r = await c.submit(s, "p", 10)
            assert not r.changed  # same (score, subscore)
            r = await c.submit(i, "p", 5, 7)
            assert r.created and r.entry.score == 5 and r.entry.subscore == 7
            r = await c.submit(i, "p", 3, 1)
            assert r.entry.score == 8 and r.entry.subscore == 1
            r = await c.submit(i, "p", I64_MAX)
            assert r.entry.score == I64_MAX  # saturates
            r = await c.submit(d, "p", 4)
            assert r.entry.score == -4  # from 0
            r = await c.submit(d, "p", I64_MAX)
            r = await c.submit(d, "p", I64_MAX)
            assert r.entry.score == I64_MIN
    run(main())


def test_ties_and_rank_modes(server: ServerInfo) -> None:
    async def main() -> None:
        async with await connect(server) as c:
            b, dense = unique(), unique("dense")
            await c.create_board(dense, rank_mode=RankMode.DENSE)
            for board in (b, dense):
                for p, sc in (("a", 100), ("b", 90), ("c", 90), ("d", 80)):
                    await c.submit(board, p, sc)
            # ties broken by who reached the score first
            top = await c.top(b)
            assert ids(top.entries) == ["a", "b", "c", "d"] and ranks(top.entries) == [1, 2, 3, 4]
            comp = await c.top(b, rank_mode=RankMode.COMPETITION)
            assert ranks(comp.entries) == [1, 2, 2, 4]
            assert (await c.rank(b, "c", rank_mode=RankMode.COMPETITION)).entry.rank == 2
            assert (await c.rank(b, "d", rank_mode=RankMode.ORDINAL)).entry.rank == 4
            with pytest.raises(hiscore.FailedPrecondition):
                await c.top(b, rank_mode=RankMode.DENSE)
            with pytest.raises(hiscore.FailedPrecondition):
                await c.rank(b, "d", rank_mode=RankMode.DENSE)
            assert ranks((await c.top(dense, rank_mode=RankMode.DENSE)).entries) == [1, 2, 2, 3]
            assert ranks((await c.top(dense)).entries) == [1, 2, 2, 3]  # board default
            assert ranks((await c.top(dense, rank_mode=RankMode.ORDINAL)).entries) == [1, 2, 3, 4]
            assert (await c.rank(dense, "d")).entry.rank == 3
            # a later equal score ranks behind; the same score again keeps reached_at_us
            r1 = await c.submit(b, "e", 90)
            assert r1.entry.rank == 4
            again = await c.submit(b, "b", 90)
            assert not again.changed
            assert ids((await c.top(b)).entries) == ["a", "b", "c", "e", "d"]
            # subscore breaks equal scores (descending: higher subscore first)
            await c.submit(b, "f", 80, 5)
            assert ids((await c.top(b, 3, offset=4)).entries) == ["f", "d"]
    run(main())


def test_top_paging_offset_and_cursor(server: ServerInfo) -> None:
    b = unique()

    async def main() -> None:
        async with await connect(server) as c:
            await c.submit_batch([(b, f"p{i:02d}", 1000 - i) for i in range(25)])
            want = [f"p{i:02d}" for i in range(25)]
            assert ids((await c.top(b)).entries) == want[:10]  # limit 0 -> 10
            assert ids((await c.top(b, 10, offset=20)).entries) == want[20:]
            assert (await c.top(b, 10, offset=30)).entries == []
            got: List[str] = []
            cursor: Optional[bytes] = None
            pages = 0
            while True:
                page = await c.top(b, 10, cursor=cursor)
                pages += 1
                got += ids(page.entries)
                assert page.board_size == 25
                if not page.next_cursor:
                    break
                cursor = page.next_cursor
            assert got == want and pages == 3
            assert [e.player_id async for e in c.iter_top(b, page_size=5)] == want
            # cursor paging is stable under concurrent writes
            first = await c.top(b, 10)
            await c.submit(b, "newtop", 10_000)
            second = await c.top(b, 10, cursor=first.next_cursor)
            assert ids(second.entries) == want[10:20]
            assert ranks(second.entries) == list(range(12, 22))
            with pytest.raises(hiscore.InvalidArgument):
                await c.top(b, 10, cursor=b"\xffgarbage")
    run(main())


def test_around_entries_count(server: ServerInfo) -> None:
    b = unique()

    async def main() -> None:
        async with await connect(server) as c:
            await c.submit_batch([(b, f"p{i}", 100 - i) for i in range(10)])
            a = await c.around(b, "p5", 2, 3)
            assert ids(a.entries) == ["p3", "p4", "p5", "p6", "p7", "p8"] and a.board_size == 10
            a = await c.around(b, "p1", 5, 1)  # fewer near the top
            assert ids(a.entries) == ["p0", "p1", "p2"] and ranks(a.entries) == [1, 2, 3]
            a = await c.around(b, "p9", 1, 5)
            assert ids(a.entries) == ["p8", "p9"]
            e = await c.entries(b, ["p7", "nobody", "p2", "p7", "ghost"])
            assert ids(e.entries) == ["p2", "p7"] and ranks(e.entries) == [3, 8]
            assert list(e.missing_player_ids) == ["ghost", "nobody"] and e.board_size == 10
            assert (await c.count(b)).count == 10
            assert (await c.count(b, 95, 98)).count == 4  # 95..98 inclusive
            assert (await c.count(b, min_score=97)).count == 4
            assert (await c.count(b, max_score=91)).count == 1
            with pytest.raises(hiscore.InvalidArgument):
                await c.count(b, 10, 5)
    run(main())


def test_board_admin(server: ServerInfo) -> None:
    prefix = unique("adm")

    async def main() -> None:
        async with await connect(server) as c:
            names = [f"{prefix}-{i}" for i in range(5)]
            for n in names:
                info = await c.create_board(n, max_entries=100)
                assert info.config.board_id == n and info.config.limits.max_entries == 100
            again = await c.create_board(names[0], max_entries=100)  # same config: OK
            assert again.config.board_id == names[0]
            with pytest.raises(hiscore.AlreadyExists):
                await c.create_board(names[0], score_order=SortOrder.ASCENDING)
            listed = await c.list_boards(names[0], 2)
            assert [x.config.board_id for x in listed.boards] == names[1:3] and listed.more
            rest = await c.list_boards(names[2], 1000)
            assert [x.config.board_id for x in rest.boards][:2] == names[3:5]
            await c.submit(names[1], "x", 1)
            await c.submit(names[1], "y", 2)
            info = await c.describe_board(names[1])
            assert info.size == 2 and info.version >= 2
            assert await c.delete_board(names[1]) == 2
            with pytest.raises(hiscore.NotFound):
                await c.describe_board(names[1])
            with pytest.raises(hiscore.NotFound):
                await c.delete_board(names[1])
            with pytest.raises(hiscore.InvalidArgument):
                await c.create_board(unique(), max_metadata_bytes=5000)
    run(main())


def test_remove_player_and_metadata(server: ServerInfo) -> None:
    b = unique()

    async def main() -> None:
        async with await connect(server) as c:
            await c.submit(b, "a", 10, metadata=b"\x00meta")
            await c.submit(b, "b", 20)
            assert (await c.rank(b, "a")).entry.metadata == b"\x00meta"
            await c.submit(b, "a", 30)  # metadata absent: kept
            assert (await c.rank(b, "a")).entry.metadata == b"\x00meta"
            await c.submit(b, "a", 40, metadata=b"")  # present and empty: replaced
            assert (await c.rank(b, "a")).entry.metadata == b""
            await c.submit(b, "a", 40, metadata=b"x" * 256)
            with pytest.raises(hiscore.InvalidArgument):
                await c.submit(b, "a", 50, metadata=b"x" * 257)
            removed = await c.remove_player(b, "b")
            assert removed.player_id == "b" and removed.rank == 2 and removed.score == 20
            with pytest.raises(hiscore.NotFound):
                await c.remove_player(b, "b")
            with pytest.raises(hiscore.NotFound):
                await c.rank(b, "b")
            assert (await c.describe_board(b)).size == 1
            big = unique("big")
            await c.create_board(big, max_metadata_bytes=4096)
            r = await c.submit(big, "p", 1, metadata=b"m" * 4096)
            assert r.entry.metadata == b"m" * 4096
    run(main())


def test_erase_player(server: ServerInfo) -> None:
    # Unique ids: the session server is shared, and erase_player reaches every board on it.
    player, other = unique("erase"), unique("keep")
    plain, dense, seasonal = unique("er"), unique("er-dense"), unique("er-season")

    async def main() -> None:
        async with await connect(server) as c:
            await c.create_board(dense, rank_mode=RankMode.DENSE)  # lives on one shard
            for b in (plain, dense, seasonal):
                await c.submit(b, player, 10)
                await c.submit(b, other, 20)
            # the seasonal board's standings are archived as a period; the player plays again
            reset = cast(pb.ResetBoardResponse, await c.call(
                "reset_board", pb.ResetBoardRequest(board_id=seasonal)))
            period = reset.archived_period_id
            assert period > 0 and reset.archived_entries == 2
            await c.submit(seasonal, player, 30)

            async def rank_in_period(b: str, p: str) -> pb.GetRankResponse:
                return cast(pb.GetRankResponse, await c.call("get_rank", pb.GetRankRequest(
                    board_id=b, player_id=p, period_id=period)))

            assert (await rank_in_period(seasonal, player)).entry.score == 10
            assert (await rank_in_period(seasonal, other)).board_size == 2
            # 3 live boards + 1 archived period
            assert await c.erase_player(player) == 4
            for b in (plain, dense, seasonal):
                with pytest.raises(hiscore.NotFound):
                    await c.rank(b, player)
            with pytest.raises(hiscore.NotFound):
                await rank_in_period(seasonal, player)
            # the other player is untouched, live and archived
            for b in (plain, dense):
                g = await c.rank(b, other)
                assert g.entry.score == 20 and g.entry.rank == 1 and g.board_size == 1
            assert (await c.rank(dense, other, rank_mode=RankMode.DENSE)).entry.rank == 1
            archived = await rank_in_period(seasonal, other)
            assert archived.entry.score == 20 and archived.entry.rank == 1 and archived.board_size == 1
            info = await c.describe_board(seasonal)  # `other` is only archived there
            assert info.size == 0 and [x.size for x in info.periods if x.period_id == period] == [1]
            # idempotent: nothing left to remove
            assert await c.erase_player(player) == 0
            assert await c.erase_player(unique("never")) == 0  # a player on no board
            for bad in ("", "bad id!", "x" * 129):
                with pytest.raises(hiscore.InvalidArgument):
                    await c.erase_player(bad)
            assert await c.ping(b"ok") == b"ok"
    run(main())
    # The blocking client, with a deadline.
    with hiscore.Client(server.host, server.port, timeout=10) as sc:
        sc.submit(plain, player, 5)
        assert sc.erase_player(player, deadline=10) == 1
        with pytest.raises(hiscore.NotFound):
            sc.rank(plain, player)
        assert sc.erase_player(player) == 0
        with pytest.raises(hiscore.InvalidArgument):
            sc.erase_player("")
    # Not checked here: PermissionDenied for a non-admin key or a player token; the suite's
    # server runs without API keys (every caller is admin).


def test_seasons_reset_and_archived_periods(server: ServerInfo) -> None:
    board, scheduled = unique("season"), unique("season-sched")

    async def main() -> None:
        async with await connect(server) as c:
            info = await c.create_board(
                scheduled, client_writes=True,
                reset=pb.ResetSchedule(period=hiscore.ResetPeriod.WEEKLY, minute_of_day=90,
                                       weekday=3, keep_periods=4))
            assert info.config.client_writes
            assert info.config.reset.period == hiscore.ResetPeriod.WEEKLY
            assert (info.config.reset.minute_of_day, info.config.reset.weekday,
                    info.config.reset.keep_periods) == (90, 3, 4)
            # the same config again is idempotent, another schedule is not
            await c.create_board(scheduled, client_writes=True, reset=pb.ResetSchedule(
                period=hiscore.ResetPeriod.WEEKLY, minute_of_day=90, weekday=3, keep_periods=4))
            with pytest.raises(hiscore.AlreadyExists):
                await c.create_board(scheduled, reset=pb.ResetSchedule(
                    period=hiscore.ResetPeriod.DAILY))
            with pytest.raises(ValueError):  # not silently dropped next to a complete config
                await c.create_board("", config=info.config, client_writes=True)

            for i in range(5):
                await c.submit(board, f"p{i}", 10 * (i + 1))
            reset = await c.reset_board(board)
            period = reset.archived_period_id
            assert period > 0 and reset.archived_entries == 5
            await c.submit(board, "p0", 1000)  # the live season starts empty
            await c.submit(board, "new", 1)
            live = await c.describe_board(board)
            assert live.size == 2 and live.current_period_id == period + 1
            assert [(x.period_id, x.size) for x in live.periods] == [(period, 5)]

            # every query reads the archived period by its id, the live board without it
            got = await c.rank(board, "p0", period_id=period)
            assert (got.entry.score, got.entry.rank, got.board_size) == (10, 5, 5)
            assert (await c.rank(board, "p0")).entry.rank == 1
            assert ids((await c.top(board, 3, period_id=period)).entries) == ["p4", "p3", "p2"]
            assert ids((await c.top(board, 2, offset=3, period_id=period)).entries) == ["p1", "p0"]
            assert [e.player_id async for e in c.iter_top(board, page_size=2, period_id=period)] \
                == ["p4", "p3", "p2", "p1", "p0"]
            around = await c.around(board, "p2", 1, 1, period_id=period)
            assert ids(around.entries) == ["p3", "p2", "p1"]
            ent = await c.entries(board, ["p1", "new", "p3"], period_id=period)
            assert ids(ent.entries) == ["p3", "p1"] and list(ent.missing_player_ids) == ["new"]
            cnt = await c.count(board, 20, 40, period_id=period)
            assert (cnt.count, cnt.board_size) == (3, 5)
            assert (await c.count(board, 20, 40)).count == 0
            # archived periods are read-only history; an unknown one is NotFound
            with pytest.raises(hiscore.NotFound):
                await c.rank(board, "p0", period_id=period + 7)
            with pytest.raises(hiscore.NotFound):
                await c.reset_board(unique("no-such-board"))
    run(main())
    with hiscore.Client(server.host, server.port, timeout=10) as sc:
        again = sc.reset_board(board, deadline=10)
        assert again.archived_entries == 2 and again.archived_period_id > 0
        p = again.archived_period_id
        assert sc.rank(board, "new", period_id=p).entry.rank == 2
        assert ids(sc.top(board, 10, period_id=p).entries) == ["p0", "new"]
        assert [e.player_id for e in sc.iter_top(board, period_id=p)] == ["p0", "new"]
        assert ids(sc.around(board, "new", 1, 0, period_id=p).entries) == ["p0", "new"]
        assert ids(sc.entries(board, ["new"], period_id=p).entries) == ["new"]
        assert sc.count(board, period_id=p).count == 2
        assert sc.create_board(scheduled, client_writes=True, reset=pb.ResetSchedule(
            period=hiscore.ResetPeriod.WEEKLY, minute_of_day=90, weekday=3,
            keep_periods=4)).config.client_writes


def test_error_statuses(server: ServerInfo) -> None:
    b = unique()

    async def main() -> None:
        async with await connect(server) as c:
            await c.submit(b, "a", 1)
            for coro in (c.rank(unique("none"), "a"), c.top(unique("none")),
                         c.describe_board(unique("none")), c.around(unique("none"), "a"),
                         c.count(unique("none")), c.rank(b, "ghost"), c.around(b, "ghost")):
                with pytest.raises(hiscore.NotFound) as ei:
                    await coro
                assert ei.value.code == StatusCode.NOT_FOUND and ei.value.message
            for bad in ("bad id!", "x" * 129, "", "Zoë"):
                with pytest.raises(hiscore.InvalidArgument):
                    await c.submit(b, bad, 1)
                with pytest.raises(hiscore.InvalidArgument):
                    await c.submit(bad, "a", 1)
            ok_id = "A-z_0.9:" + "x" * 120
            assert len(ok_id) == 128
            assert (await c.submit(b, ok_id, 1)).created
            with pytest.raises(hiscore.ResourceExhausted):
                await c.submit_batch([(b, f"p{i}", i) for i in range(1001)])
            with pytest.raises(hiscore.ResourceExhausted):
                await c.entries(b, [f"p{i}" for i in range(1001)])
            with pytest.raises(hiscore.OutOfRange):
                await c.top(b, 1001)
            with pytest.raises(hiscore.OutOfRange):
                await c.around(b, "a", 1001, 0)
            with pytest.raises(hiscore.OutOfRange):
                await c.list_boards("", 1001)
            with pytest.raises(hiscore.OutOfRange):
                await c.top(b, 10, offset=2**31)
            assert len((await c.top(b, 1000)).entries) == 2
            assert await c.ping(b"ok") == b"ok"  # all of these left the connection open
    run(main())


def test_submit_batch(server: ServerInfo) -> None:
    b1, b2 = unique(), unique()

    async def main() -> None:
        async with await connect(server) as c:
            res = await c.submit_batch([
                (b1, "a", 10), {"board_id": b2, "player_id": "b", "score": 5},
                (b1, "bad id!", 1), pb.SubmitRequest(board_id=b1, player_id="c", score=20),
                (b1, "a", 30, 0, b"m")])
            codes = [r.status.code for r in res.results]
            assert codes == [0, 0, StatusCode.INVALID_ARGUMENT, 0, 0]
            assert res.results[2].status.message
            # Items for different players may be applied concurrently (shards), so their ranks
            # depend on timing; items for one player apply in order.
            assert res.results[0].result.created and res.results[3].result.entry.rank in (1, 2)
            assert res.results[4].result.entry.score == 30 and not res.results[4].result.created
            assert res.results[4].result.entry.metadata == b"m"
            assert ranks((await c.top(b1)).entries) == [1, 2]
            assert (await c.describe_board(b2)).size == 1
            assert (await c.submit_batch([])).results == []
            full = await c.submit_batch([(b1, f"q{i}", i) for i in range(1000)])
            assert len(full.results) == 1000 and all(r.status.code == 0 for r in full.results)
    run(main())


def test_submit_skip_ranks(server: ServerInfo) -> None:
    # The fixture runs hiscored with --shards 2, so these (non-dense) boards are split over both
    # shards: an unranked submit is done by the player's shard alone. Board u gets the unranked
    # writes, board r the same writes ranked; afterwards both must rank everyone alike.
    u, r = unique("unranked"), unique("ranked")
    scores = {f"p{i:02}": (i * 37) % 101 for i in range(16)}  # distinct scores

    async def main() -> None:
        async with await connect(server) as c:
            for p, s in scores.items():
                res = await c.submit(u, p, s, skip_ranks=True)
                assert res.created and res.changed
                assert res.entry.rank == 0 and res.previous_rank == 0
                assert res.entry.player_id == p and res.entry.score == s
                ranked = await c.submit(r, p, s)
                assert ranked.created and ranked.entry.rank >= 1
            # best: a better score moves the entry, a worse one is ignored; still no ranks
            res = await c.submit(u, "p03", 500, 2, metadata=b"m", skip_ranks=True)
            assert res.changed and not res.created and res.entry.rank == res.previous_rank == 0
            assert res.entry.score == 500 and res.entry.subscore == 2 and res.entry.metadata == b"m"
            res = await c.submit(u, "p05", -1, skip_ranks=True)
            assert not res.changed and not res.created and res.entry.rank == res.previous_rank == 0
            assert res.entry.score == scores["p05"]
            await c.submit(r, "p03", 500, 2, metadata=b"m")
            await c.submit(r, "p05", -1)

            top_u, top_r = await c.top(u, 100), await c.top(r, 100)
            assert [(e.player_id, e.score, e.rank) for e in top_u.entries] == \
                [(e.player_id, e.score, e.rank) for e in top_r.entries]
            assert ranks(top_u.entries) == list(range(1, 17)) and top_u.board_size == 16
            assert top_u.entries[0].player_id == "p03"
            for p in scores:
                assert (await c.rank(u, p)).entry.rank == (await c.rank(r, p)).entry.rank
            # A ranked submit after unranked ones gets both ranks, as on the ranked board.
            worst = top_r.entries[-1].player_id
            a, b = await c.submit(u, worst, 250), await c.submit(r, worst, 250)
            assert a.previous_rank == b.previous_rank == 16 and a.entry.rank == b.entry.rank == 2
    run(main())


def test_submit_batch_mixing_skip_ranks(server: ServerInfo) -> None:
    b = unique()

    async def main() -> None:
        async with await connect(server) as c:
            res = await c.submit_batch([
                {"board_id": b, "player_id": "a", "score": 10, "skip_ranks": True},
                (b, "b", 20),
                pb.SubmitRequest(board_id=b, player_id="c", score=30, skip_ranks=True),
                {"board_id": b, "player_id": "a", "score": 40, "skip_ranks": False},
                {"board_id": b, "player_id": "a", "score": 5, "skip_ranks": True},
                {"board_id": b, "player_id": "bad id!", "score": 1, "skip_ranks": True}])
            assert [x.status.code for x in res.results] == [0, 0, 0, 0, 0,
                                                             StatusCode.INVALID_ARGUMENT]
            one, two, three, four, five = (x.result for x in res.results[:5])
            assert one.created and one.changed and one.entry.rank == one.previous_rank == 0
            assert three.created and three.changed and three.entry.rank == three.previous_rank == 0
            # Ranked items: other players' items may apply concurrently (shards), so only what
            # does not depend on that is fixed; one player's items apply in order.
            assert two.created and two.entry.rank in (1, 2, 3) and two.previous_rank == 0
            assert four.changed and not four.created and four.entry.rank == 1
            assert four.previous_rank in (1, 2, 3)
            assert not five.changed and not five.created and five.entry.score == 40
            assert five.entry.rank == five.previous_rank == 0
            top = await c.top(b)
            assert ids(top.entries) == ["a", "c", "b"] and ranks(top.entries) == [1, 2, 3]
            # A mapping is still checked against SubmitRequest's fields (nothing is sent).
            with pytest.raises(ValueError):
                await c.submit_batch([{"board_id": b, "player_id": "d", "score": 1,
                                       "skip_rank": True}])
            assert (await c.describe_board(b)).size == 3
    run(main())


def test_sync_client_skip_ranks(server: ServerInfo) -> None:
    b = unique()
    with hiscore.Client(server.host, server.port, timeout=10) as c:
        r = c.submit(b, "x", 5, skip_ranks=True)
        assert r.created and r.changed and r.entry.rank == r.previous_rank == 0
        assert c.submit(b, "y", 7).entry.rank == 1
        r = c.submit(b, "x", 9, skip_ranks=True)
        assert r.changed and not r.created and r.entry.rank == r.previous_rank == 0
        assert c.rank(b, "x").entry.rank == 1 and c.rank(b, "y").entry.rank == 2
        r = c.submit(b, "y", 8)
        assert r.changed and r.previous_rank == 2 and r.entry.rank == 2


def test_pipelining_many_concurrent_calls(server: ServerInfo) -> None:
    b = unique()

    async def main() -> None:
        async with await connect(server) as c:
            n = 1500  # above max_inflight_calls: the client queues locally
            coros = []
            for i in range(n):
                if i % 3 == 0:
                    coros.append(c.ping(str(i).encode()))
                elif i % 3 == 1:
                    coros.append(c.submit(b, f"p{i}", i))
                else:
                    coros.append(c.count(b))
            results = await asyncio.gather(*coros)
            for i, r in enumerate(results):
                if i % 3 == 0:
                    assert r == str(i).encode()
                elif i % 3 == 1:
                    assert r.entry.player_id == f"p{i}" and r.entry.score == i
            # writes to one player on one connection apply in the order sent
            inc = unique("inc")
            await c.create_board(inc, write_operator=WriteOperator.SET)
            await asyncio.gather(*(c.submit(inc, "p", v) for v in range(200)))
            assert (await c.rank(inc, "p")).entry.score == 199
            # without the local limit, the excess gets RESOURCE_EXHAUSTED (or passes) per call
        async with await connect(server, limit_inflight=False) as raw:
            out = await asyncio.gather(*(raw.ping(b"z") for _ in range(600)),
                                       return_exceptions=True)
            for r in out:
                assert r == b"z" or isinstance(r, hiscore.ResourceExhausted), r
            assert await raw.ping(b"alive") == b"alive"
    run(main(), timeout=120)


def _method(r: pb.Request) -> str:
    return str(r.WhichOneof("method"))


def test_deadlines(server: ServerInfo) -> None:
    """deadline= goes out as deadline_ms; with no answer (the proxy withholds the server's) the
    client gives up at deadline + grace and cancels the call on the server."""
    b = unique()
    withheld = b"withheld"

    def hold(r: pb.Request) -> bool:
        return _method(r) == "ping" and r.ping.payload == withheld

    with RecordingProxy(server, hold=hold) as proxy:
        async def main() -> None:
            loop = asyncio.get_running_loop()
            async with await connect(proxy.info, deadline_grace=0.1) as c:
                assert (await c.submit(b, "a", 1, deadline=5.0)).created
                assert (await c.top(b, deadline=0.5)).board_size == 1
                assert await c.ping(b"no deadline") == b"no deadline"
                t0 = loop.time()
                with pytest.raises(hiscore.DeadlineExceeded) as ei:
                    await c.ping(withheld, deadline=0.2)
                assert 0.2 <= loop.time() - t0 < 5
                held_id = ei.value.call_id
                cancel = await loop.run_in_executor(None, proxy.wait_for_request, lambda r: (
                    _method(r) == "cancel" and r.cancel.call_id == held_id))
                answer = await loop.run_in_executor(None, proxy.wait_for_response, lambda r: (
                    r.call_id == cancel.call_id))
                assert not answer.cancel.cancelled  # the server had answered the ping already
                # A tiny deadline on a big batch: the server answers DEADLINE_EXCEEDED, unless it
                # was quicker than 1 ms.
                items = [(b, f"p{i}", i) for i in range(1000)]
                outcomes = await asyncio.gather(*(c.submit_batch(items, deadline=0.001)
                                                  for _ in range(10)), return_exceptions=True)
                for o in outcomes:
                    assert isinstance(o, (pb.SubmitBatchResponse, hiscore.DeadlineExceeded)), o
                print("batches past their 1 ms deadline:",
                      sum(isinstance(o, hiscore.DeadlineExceeded) for o in outcomes), "of 10")
                assert await c.ping(b"x") == b"x"
            async with await connect(proxy.info, default_deadline=2.0) as c2:
                assert await c2.ping(b"default") == b"default"
        run(main())

    sent = {}
    for r in proxy.requests:
        key = r.ping.payload if _method(r) == "ping" else _method(r).encode()
        sent.setdefault(bytes(key), []).append(r.deadline_ms)
    assert 4900 <= sent[b"submit"][0] <= 5000 and 400 <= sent[b"top"][0] <= 500
    assert sent[b"no deadline"] == [0] and 100 <= sent[withheld][0] <= 200
    assert sent[b"submit_batch"] == [1] * 10
    assert 1900 <= sent[b"default"][0] <= 2000


def test_cancel(server: ServerInfo) -> None:
    b = unique()

    async def main() -> None:
        async with await connect(server) as c:
            assert await c.cancel(987654) is False  # nothing in flight with that id
            items = [(b, f"p{i}", i) for i in range(1000)]
            saw = set()
            for _ in range(5):
                body = pb.SubmitBatchRequest(submits=[hiscore.make_submit(x) for x in items])
                call = await c.start_call("submit_batch", body)
                cancelled = await c.cancel(call.call_id)
                if cancelled:
                    with pytest.raises(hiscore.Cancelled):
                        await call.result()
                else:
                    assert len((await call.result()).results) == 1000  # type: ignore[attr-defined]
                saw.add(cancelled)
            print("cancel outcomes seen:", saw)
            # cancelling an awaiting task cancels the call and leaves the connection usable
            task = asyncio.ensure_future(c.submit_batch(items))
            await asyncio.sleep(0)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            assert await c.ping(b"after") == b"after"
    run(main())


def test_subscribe_receives_live_changes(server: ServerInfo) -> None:
    b = unique()

    async def main() -> None:
        async with await connect(server) as c:
            await c.submit(b, "a", 10)
            sub = c.subscribe(b, player_id="a")
            first = await asyncio.wait_for(sub.__anext__(), 10)
            assert first.snapshot and first.WhichOneof("change") == "player"
            assert first.player.entry.rank == 1
            await c.submit(b, "b", 20)
            nxt = await asyncio.wait_for(sub.__anext__(), 10)
            assert nxt.player.entry.rank == 2
            await sub.cancel()
            async for _ in sub:  # drains until the final CANCELLED, then ends
                pass
    run(main())


def test_sync_client(server: ServerInfo) -> None:
    b = unique()
    with RecordingProxy(server) as proxy, \
            hiscore.Client(proxy.info.host, proxy.info.port, timeout=10) as c:
        assert c.hello.protocol_version == 1
        assert c.ping(b"s") == b"s"
        c.submit_batch((b, f"p{i}", i) for i in range(30))
        assert c.submit(b, "top", 100).entry.rank == 1
        assert c.rank(b, "p0").entry.rank == 31
        assert len(list(c.iter_top(b, page_size=7))) == 31
        assert ids(c.around(b, "p29", 1, 1).entries) == ["top", "p29", "p28"]
        assert c.count(b, 0, 9).count == 10
        assert ids(c.entries(b, ["p1"]).entries) == ["p1"]
        assert c.describe_board(b).size == 31
        assert c.remove_player(b, "p0").rank == 31
        with pytest.raises(hiscore.NotFound):
            c.rank(b, "p0")
        with c.subscribe(b, top=5) as sub:
            ev = next(sub)
            assert ev.snapshot
            assert len(ev.window.entries) == 5
        # leaving `with` cancelled the stream on the server (and waited for the answer)
        cancel = proxy.wait_for_request(lambda r: (_method(r) == "cancel" and
                                                   r.cancel.call_id == sub.call_id), 0)
        assert proxy.wait_for_response(lambda r: r.call_id == cancel.call_id).cancel.cancelled
        final = proxy.wait_for_response(lambda r: (r.call_id == sub.call_id and
                                                   not r.HasField("event")))
        assert final.status.code == StatusCode.CANCELLED
        assert list(sub) == []
        assert c.delete_board(b) == 30


def test_sync_subscription_next_with_a_timeout(server: ServerInfo) -> None:
    """`SyncSubscription.next(timeout=...)` waits at most `timeout` seconds for the next event:
    when none comes it raises DeadlineExceeded, and the subscription stays open (the next event
    still arrives, none is lost); an event already queued comes back even with timeout 0.
    Before, a blocking consumer could only wait without a bound (`next(sub)`)."""
    b = unique()
    with hiscore.Client(server.host, server.port, timeout=10) as c:
        c.submit(b, "a", 10)
        with c.subscribe(b, player_id="a") as sub:
            first = sub.next(timeout=10)
            assert first.snapshot and first.player.entry.rank == 1

            started = time.monotonic()
            with pytest.raises(hiscore.DeadlineExceeded) as err:
                sub.next(timeout=0.2)  # nothing changed: no event comes
            waited = time.monotonic() - started
            assert 0.15 <= waited < 5, waited  # (the loop's timers may fire a little early)
            assert err.value.call_id == sub.call_id
            assert "no event within 0.2s" in err.value.message
            assert "still open" in err.value.message

            c.submit(b, "b", 20)  # passes "a": its event comes after the timed-out wait
            nxt = sub.next(timeout=10)
            assert not nxt.snapshot and nxt.player.entry.rank == 2 and nxt.player.previous_rank == 1

            c.submit(b, "c", 30)
            queue = sub._sub._pending.queue  # type: ignore[union-attr]
            assert queue is not None and wait_until(lambda: queue.qsize() == 1, 10)
            assert sub.next(timeout=0).player.entry.rank == 3  # queued: no wait needed

            with pytest.raises(ValueError):
                sub.next(timeout=-1)
        # the stream ended (leaving `with` cancelled it): next() ends iteration, as next(sub) does
        with pytest.raises(StopIteration):
            sub.next(timeout=1)


def test_sync_client_after_close_raises_connection_lost(server: ServerInfo) -> None:
    """A closed blocking client fails its calls with ConnectionLost, as AsyncClient does (it
    raised RuntimeError('Event loop is closed') and warned of a coroutine never awaited, which
    code catching HiscoreError to reconnect would not catch)."""
    c = hiscore.Client(server.host, server.port, timeout=10)
    c.close()
    c.close()  # twice is fine
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # "coroutine ... was never awaited" fails the test
        with pytest.raises(hiscore.ConnectionLost):
            c.ping(b"x")
        with pytest.raises(hiscore.ConnectionLost):
            c.subscribe(unique(), top=3).start()
        gc.collect()


def test_sync_client_left_open_closes_at_exit(server: ServerInfo) -> None:
    """A script that never closes its blocking client exits cleanly: the client is closed at
    exit (it printed "Task was destroyed but it is pending!" for the connection's read task)."""
    script = (
        "import hiscore, sys\n"
        f"c = hiscore.Client({server.host!r}, {server.port}, timeout=10)\n"
        "c.submit(sys.argv[1], 'alice', 10)\n"
        "print('submitted')\n"
    )
    env = dict(os.environ, PYTHONPATH=str(Path(hiscore.__file__).resolve().parents[1]))
    done = subprocess.run([sys.executable, "-X", "dev", "-c", script, unique()], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "submitted"
    assert done.stderr == "", done.stderr


def test_sync_client_dropped_is_closed(server: ServerInfo) -> None:
    """A blocking client dropped without close() closes its connection and stops its thread
    when collected, instead of keeping both for the life of the process."""
    c = hiscore.Client(server.host, server.port, timeout=10)
    thread = c._thread
    assert thread.is_alive()
    del c
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive()


def test_sync_client_raw_call(server: ServerInfo, tmp_path: Path) -> None:
    """The blocking client sends methods without a wrapper (docs/clients.md: `call`), e.g.
    authenticate or backup, as AsyncClient.call does."""
    with hiscore.Client(server.host, server.port, timeout=10) as c:
        res = c.call("authenticate", pb.AuthenticateRequest(token="any"), deadline=5)
        assert isinstance(res, pb.AuthenticateResponse)
        assert res.role == pb.ROLE_ADMIN  # no keys configured: loopback is open
        with pytest.raises(hiscore.InvalidArgument):
            c.call("ping", pb.PingRequest(payload=bytes(1025)))
        if server.pid is not None:  # our own server, with a data directory on this machine
            c.submit(unique(), "p", 1)
            backup = c.call("backup", pb.BackupRequest(destination=str(tmp_path / "bk")))
            assert isinstance(backup, pb.BackupResponse) and backup.files > 0


def test_authenticate_and_backup_wrappers(server: ServerInfo, tmp_path: Path) -> None:
    """authenticate and backup have typed wrappers on both clients (they were reachable only
    through `call`)."""
    async def main() -> None:
        async with await connect(server) as c:
            res = await c.authenticate("any")
            assert res.role == pb.ROLE_ADMIN  # no keys configured: loopback is open
            if server.pid is not None:  # our own server, with a data directory on this machine
                await c.submit(unique(), "p", 1)
                backup = await c.backup(str(tmp_path / "async"))
                assert backup.files > 0 and backup.destination == str(tmp_path / "async")
                with pytest.raises(hiscore.FailedPrecondition):  # not empty any more
                    await c.backup(str(tmp_path / "async"))
    asyncio.run(main())
    with hiscore.Client(server.host, server.port, timeout=10) as sc:
        assert sc.authenticate("any").role == pb.ROLE_ADMIN
        if server.pid is not None:
            assert sc.backup(str(tmp_path / "sync")).files > 0


# ---------------------------------------------------------------------------------------------
# Protocol faults on raw sockets

def _raw(server: ServerInfo) -> socket.socket:
    s = socket.create_connection((server.host, server.port), timeout=10)
    return s


def _read_exact(s: socket.socket, n: int) -> bytes:
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"closed after {len(buf)} of {n} bytes")
        buf += chunk
    return buf


def _read_response(s: socket.socket) -> pb.Response:
    flag, length = struct.unpack(">BI", _read_exact(s, 5))
    assert flag == 0
    return pb.Response.FromString(_read_exact(s, length))


def _assert_closed(s: socket.socket) -> None:
    s.settimeout(10)
    try:
        assert s.recv(1) == b""
    except ConnectionResetError:
        pass


def _error_then_close(server: ServerInfo, data: bytes, after_hello: bool) -> Tuple[int, str]:
    with _raw(server) as s:
        if after_hello:
            s.sendall(framing.PREFACE)
            assert _read_response(s).WhichOneof("result") == "hello"
        s.sendall(data)
        resp = _read_response(s)
        assert resp.call_id == 0 and resp.WhichOneof("result") is None
        _assert_closed(s)
        return resp.status.code, resp.status.message


def test_fault_wrong_preface(server: ServerInfo) -> None:
    code, msg = _error_then_close(server, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", after_hello=False)
    assert code == StatusCode.INVALID_ARGUMENT and msg
    code, _ = _error_then_close(server, b"HISCORE\x02", after_hello=False)  # unknown version
    assert code in (StatusCode.INVALID_ARGUMENT, StatusCode.UNIMPLEMENTED)


def test_fault_compressed_flag(server: ServerInfo) -> None:
    code, _ = _error_then_close(server, b"\x01\x00\x00\x00\x00", after_hello=True)
    assert code == StatusCode.UNIMPLEMENTED


def test_fault_oversize_frame(server: ServerInfo) -> None:
    code, _ = _error_then_close(server, struct.pack(">BI", 0, 1_048_577), after_hello=True)
    assert code == StatusCode.RESOURCE_EXHAUSTED


def test_call_level_faults_keep_connection(server: ServerInfo) -> None:
    with _raw(server) as s:
        s.sendall(framing.PREFACE)
        assert _read_response(s).hello.protocol_version == 1
        # undecodable protobuf in a well-formed frame
        s.sendall(framing.encode_frame(b"\xff\xff\xff"))
        r = _read_response(s)
        assert r.status.code == StatusCode.INVALID_ARGUMENT
        # call_id 0
        s.sendall(framing.encode_frame(pb.Request(call_id=0, ping=pb.PingRequest()).SerializeToString()))
        r = _read_response(s)
        assert r.status.code == StatusCode.INVALID_ARGUMENT
        # no method
        s.sendall(framing.encode_frame(pb.Request(call_id=5).SerializeToString()))
        r = _read_response(s)
        assert r.call_id == 5 and r.status.code == StatusCode.UNIMPLEMENTED
        # an empty frame is an empty Request: call_id 0
        s.sendall(framing.encode_frame(b""))
        assert _read_response(s).status.code == StatusCode.INVALID_ARGUMENT
        s.sendall(framing.encode_frame(pb.Request(call_id=6, ping=pb.PingRequest(
            payload=b"ok")).SerializeToString()))
        r = _read_response(s)
        assert r.call_id == 6 and r.ping.payload == b"ok"
