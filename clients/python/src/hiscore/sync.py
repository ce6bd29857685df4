"""`Client`: a blocking wrapper around `AsyncClient` for scripts.

It runs a private event loop in a daemon thread; each method submits the coroutine to that loop
and waits for it. A Client may be used from several threads at once (calls are multiplexed on the
one connection). Interrupting a call (KeyboardInterrupt) cancels it on the server.
"""
from __future__ import annotations

import asyncio
import threading
import weakref
from typing import Any, Coroutine, Iterator, Optional, Sequence, Tuple, TypeVar, Iterable

from ._proto import hiscore_pb2 as pb
from google.protobuf.message import Message

from .client import AsyncClient, SubmitItem, Subscription
from .errors import ConnectionLost, DeadlineExceeded
from .framing import DEFAULT_PORT
from .types import RankMode, SortOrder, WriteOperator

T = TypeVar("T")


def _close_abandoned(loop: asyncio.AbstractEventLoop, thread: threading.Thread,
                     client: AsyncClient) -> None:
    """Closes a `Client` that was not closed (its finalizer: holds no reference to it)."""
    if loop.is_closed() or threading.current_thread() is thread:
        return
    try:
        asyncio.run_coroutine_threadsafe(client.close(), loop).result(timeout=5)
    except BaseException:  # best effort: the process may be exiting
        pass
    if loop.is_running():
        loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout=5)
    if not loop.is_running():
        loop.close()


class Client:
    """Blocking client: `with hiscore.Client("127.0.0.1", 7450) as c: c.submit(...)`.

    Methods, arguments, results and errors are those of `AsyncClient`; so are the connect options
    (e.g. `Client(host, port, ssl=hiscore.tls_context(ca_file="ca.pem"))` for TLS).
    """

    def __init__(self, host: str = "127.0.0.1", port: int = DEFAULT_PORT, *,
                 timeout: Optional[float] = 10.0, **options: Any) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="hiscore-client",
                                        daemon=True)
        self._thread.start()
        try:
            self._client: AsyncClient = self._run(
                AsyncClient.connect(host, port, timeout=timeout, **options))
        except BaseException:
            self._stop_loop()
            raise
        self.hello: pb.ServerHello = self._client.hello
        # A client never closed (a short script, or one dropped without `with`) is closed when it
        # is collected or at interpreter exit, instead of its loop being torn down under a pending
        # read task ("Task was destroyed but it is pending!") and its socket left to the OS.
        self._finalizer = weakref.finalize(self, _close_abandoned, self._loop, self._thread,
                                           self._client)

    def _run(self, coro: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("hiscore.Client called from its own event loop; use AsyncClient")
        try:
            fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        except RuntimeError:  # the loop is closed: close() ran
            coro.close()
            if self._loop.is_closed():
                raise ConnectionLost("client closed the connection") from None
            raise
        try:
            return fut.result()
        except BaseException:
            fut.cancel()  # e.g. KeyboardInterrupt: cancels the call on the server too
            raise

    def _stop_loop(self) -> None:
        if self._loop.is_running():
            self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        if not self._loop.is_running():
            self._loop.close()

    def close(self) -> None:
        if self._loop.is_closed():
            return
        self._finalizer.detach()
        try:
            self._run(self._client.close())
        finally:
            self._stop_loop()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    @property
    def async_client(self) -> AsyncClient:
        return self._client

    def call(self, method: str, body: Message, *, deadline: Optional[float] = None) -> Message:
        """`AsyncClient.call`: one call of any method, e.g. those without a wrapper
        (`c.call("backup", pb.BackupRequest(destination=...))`, `"authenticate"`); returns the
        `Response.result` message for `method`."""
        return self._run(self._client.call(method, body, deadline=deadline))

    def ping(self, payload: bytes = b"", *, deadline: Optional[float] = None) -> bytes:
        return self._run(self._client.ping(payload, deadline=deadline))

    def cancel(self, call_id: int, *, deadline: Optional[float] = None) -> bool:
        return self._run(self._client.cancel(call_id, deadline=deadline))

    def submit(self, board_id: str, player_id: str, score: int, subscore: int = 0, *,
               metadata: Optional[bytes] = None, skip_ranks: bool = False,
               deadline: Optional[float] = None) -> pb.SubmitResponse:
        """`AsyncClient.submit`. `skip_ranks=True`: no ranks in the response (`entry.rank` and
        `previous_rank` are 0), which is cheaper on a board split over shards."""
        return self._run(self._client.submit(board_id, player_id, score, subscore,
                                             metadata=metadata, skip_ranks=skip_ranks,
                                             deadline=deadline))

    def submit_batch(self, items: Iterable[SubmitItem], *,
                     deadline: Optional[float] = None) -> pb.SubmitBatchResponse:
        return self._run(self._client.submit_batch(list(items), deadline=deadline))

    def rank(self, board_id: str, player_id: str, *, rank_mode: int = RankMode.DEFAULT,
             period_id: int = 0, deadline: Optional[float] = None) -> pb.GetRankResponse:
        return self._run(self._client.rank(board_id, player_id, rank_mode=rank_mode,
                                           period_id=period_id, deadline=deadline))

    get_rank = rank

    def top(self, board_id: str, limit: int = 0, *, offset: Optional[int] = None,
            cursor: Optional[bytes] = None, rank_mode: int = RankMode.DEFAULT,
            period_id: int = 0, deadline: Optional[float] = None) -> pb.TopResponse:
        return self._run(self._client.top(board_id, limit, offset=offset, cursor=cursor,
                                          rank_mode=rank_mode, period_id=period_id,
                                          deadline=deadline))

    def iter_top(self, board_id: str, *, page_size: int = 100, rank_mode: int = RankMode.DEFAULT,
                 period_id: int = 0, deadline: Optional[float] = None) -> Iterator[pb.Entry]:
        cursor: Optional[bytes] = None
        page_size = self._run(self._client.fitted_page_size(board_id, page_size, deadline=deadline))
        while True:
            page = self.top(board_id, page_size, cursor=cursor, rank_mode=rank_mode,
                            period_id=period_id, deadline=deadline)
            yield from page.entries
            if not page.next_cursor or not page.entries:
                return
            cursor = page.next_cursor

    def around(self, board_id: str, player_id: str, before: int = 5, after: int = 5, *,
               rank_mode: int = RankMode.DEFAULT, period_id: int = 0,
               deadline: Optional[float] = None) -> pb.AroundResponse:
        return self._run(self._client.around(board_id, player_id, before, after,
                                             rank_mode=rank_mode, period_id=period_id,
                                             deadline=deadline))

    def entries(self, board_id: str, player_ids: Sequence[str], *,
                rank_mode: int = RankMode.DEFAULT, period_id: int = 0,
                deadline: Optional[float] = None) -> pb.EntriesResponse:
        return self._run(self._client.entries(board_id, player_ids, rank_mode=rank_mode,
                                              period_id=period_id, deadline=deadline))

    def count(self, board_id: str, min_score: Optional[int] = None,
              max_score: Optional[int] = None, *, period_id: int = 0,
              deadline: Optional[float] = None) -> pb.CountResponse:
        return self._run(self._client.count(board_id, min_score, max_score, period_id=period_id,
                                            deadline=deadline))

    def create_board(self, board_id: str, *, score_order: int = SortOrder.DESCENDING,
                     subscore_order: int = SortOrder.DESCENDING,
                     write_operator: int = WriteOperator.BEST, rank_mode: int = RankMode.DEFAULT,
                     max_entries: int = 0, max_metadata_bytes: int = 0,
                     client_writes: bool = False, reset: Optional[pb.ResetSchedule] = None,
                     config: Optional[pb.BoardConfig] = None,
                     deadline: Optional[float] = None) -> pb.BoardInfo:
        return self._run(self._client.create_board(
            board_id, score_order=score_order, subscore_order=subscore_order,
            write_operator=write_operator, rank_mode=rank_mode, max_entries=max_entries,
            max_metadata_bytes=max_metadata_bytes, client_writes=client_writes, reset=reset,
            config=config, deadline=deadline))

    def describe_board(self, board_id: str, *, deadline: Optional[float] = None) -> pb.BoardInfo:
        return self._run(self._client.describe_board(board_id, deadline=deadline))

    def list_boards(self, after_board_id: str = "", limit: int = 0, *,
                    deadline: Optional[float] = None) -> pb.ListBoardsResponse:
        return self._run(self._client.list_boards(after_board_id, limit, deadline=deadline))

    def delete_board(self, board_id: str, *, deadline: Optional[float] = None) -> int:
        return self._run(self._client.delete_board(board_id, deadline=deadline))

    def reset_board(self, board_id: str, *,
                    deadline: Optional[float] = None) -> pb.ResetBoardResponse:
        """`AsyncClient.reset_board`: archive the live standings as a period and start empty.
        Admin only."""
        return self._run(self._client.reset_board(board_id, deadline=deadline))

    def remove_player(self, board_id: str, player_id: str, *,
                      deadline: Optional[float] = None) -> pb.Entry:
        return self._run(self._client.remove_player(board_id, player_id, deadline=deadline))

    def erase_player(self, player_id: str, *, deadline: Optional[float] = None) -> int:
        """`AsyncClient.erase_player`: remove a player from every board and every archived
        period; returns the entries removed. Admin only; idempotent (call again after a
        failure)."""
        return self._run(self._client.erase_player(player_id, deadline=deadline))

    def authenticate(self, token: str, *,
                     deadline: Optional[float] = None) -> pb.AuthenticateResponse:
        """`AsyncClient.authenticate`: present an API key or a player token for the rest of
        the connection; returns the role it grants."""
        return self._run(self._client.authenticate(token, deadline=deadline))

    def backup(self, destination: str, *, deadline: Optional[float] = None) -> pb.BackupResponse:
        """`AsyncClient.backup`: copy the server's data directory into `destination` (on the
        server's machine; absent or empty). Admin only."""
        return self._run(self._client.backup(destination, deadline=deadline))

    def subscribe(self, board_id: str, *, player_id: Optional[str] = None,
                  top: Optional[int] = None, around: Optional[Tuple[str, int, int]] = None,
                  feed: bool = False, min_interval_ms: int = 0,
                  rank_mode: int = RankMode.DEFAULT,
                  max_queued_events: Optional[int] = None) -> "SyncSubscription":
        sub = self._client.subscribe(board_id, player_id=player_id, top=top, around=around,
                                     feed=feed, min_interval_ms=min_interval_ms,
                                     rank_mode=rank_mode, max_queued_events=max_queued_events)
        return SyncSubscription(self, sub)


class SyncSubscription:
    """Blocking iterator over a subscription's `RankEvent`s; `with` (or `close()`) cancels it on
    the server. Events queue up in the background (at most `max_queued_events`, then
    `SubscriptionLagged`), as with `AsyncClient.subscribe`. `next(sub)` waits as long as it
    takes; `sub.next(timeout=...)` waits at most that long."""

    def __init__(self, client: Client, sub: Subscription) -> None:
        self._client = client
        self._sub = sub

    @property
    def call_id(self) -> int:
        return self._sub.call_id

    def start(self) -> None:
        self._client._run(self._sub.start())

    def __iter__(self) -> "SyncSubscription":
        return self

    def __next__(self) -> pb.RankEvent:
        return self.next()

    def next(self, timeout: Optional[float] = None) -> pb.RankEvent:
        """The next event, waiting at most `timeout` seconds for it (None = as long as it takes,
        as `next(sub)`; 0 = only an event already queued). Raises `DeadlineExceeded` when none
        came in time: the subscription stays open, and a later `next()` returns the events that
        arrive after (none is lost). Raises `StopIteration` once the stream has ended, and the
        stream's error as `next(sub)` does. The subscription is started first if `with` or
        `start()` has not (that part is not bounded by `timeout`)."""
        if timeout is not None and timeout < 0:
            raise ValueError(f"timeout must be >= 0 seconds (None = no limit), got {timeout!r}")
        try:
            if timeout is None:
                return self._client._run(self._sub.__anext__())
            self.start()  # sends the subscribe request once; then a no-op
            return self._client._run(_next_within(self._sub, timeout))
        except StopAsyncIteration:
            raise StopIteration from None

    def cancel(self) -> bool:
        return self._client._run(self._sub.cancel())

    def close(self) -> None:
        self._client._run(self._sub.aclose())

    def __enter__(self) -> "SyncSubscription":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


async def _next_within(sub: Subscription, timeout: float) -> pb.RankEvent:
    """`sub.__anext__()`, given up after `timeout` seconds with `DeadlineExceeded`. The wait is
    cancelled, which leaves the subscription's queue as it was; an event (or the stream's end)
    that arrived just as the time ran out is returned (raised) rather than dropped."""
    task = asyncio.ensure_future(sub.__anext__())
    try:
        await asyncio.wait((task,), timeout=timeout)
        if not task.done():
            task.cancel()
            await asyncio.wait((task,))  # until the cancel lands, or the task finished first
    except BaseException:  # the caller gave up (e.g. KeyboardInterrupt): stop waiting too
        task.cancel()
        raise
    if task.cancelled():
        raise DeadlineExceeded(f"no event within {timeout}s; the subscription is still open "
                               "(call next() again, or close() it)", call_id=sub.call_id)
    return task.result()
