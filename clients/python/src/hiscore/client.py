"""`AsyncClient`: an asyncio client for the Hiscore wire protocol (docs/protocol.md).

One TCP connection, many concurrent calls: every request gets a fresh call id and a reader task
matches responses (which may arrive in any order) to the waiting callers by call id.
"""
from __future__ import annotations

import asyncio
import collections
import math
import ssl as _ssl
from typing import (Any, AsyncIterator, Deque, Dict, Iterable, Mapping, Optional, Sequence, Set,
                    Tuple, Union, cast)

from google.protobuf.message import DecodeError, Message

from . import framing, tls
from ._proto import hiscore_pb2 as pb
from .errors import (ConnectionLost, DeadlineExceeded, HiscoreError, Internal, InvalidArgument,
                     ProtocolError, ResourceExhausted, StatusCode, SubscriptionLagged,
                     Unavailable)
from .types import RankMode, SortOrder, WriteOperator

#: What `submit_batch` accepts per item: a SubmitRequest, a mapping of its fields (e.g.
#: `{"board_id": …, "player_id": …, "score": …, "skip_ranks": True}`), or a tuple
#: (board_id, player_id, score[, subscore[, metadata]]).
SubmitItem = Union[pb.SubmitRequest, Mapping[str, Any], Tuple[Any, ...]]

_MAX_CALL_ID = (1 << 64) - 1
_DEFAULT_MAX_INBOUND = 64 * 1024 * 1024  # refuse absurd frames from a broken peer
_CANCEL_DEADLINE = 5.0  # seconds given to the cancels the client sends on its own
# The server's bound on an answer's entries (AnswerBound): per entry 64 bytes besides its player
# id (at most 128) and metadata (at most the board's max_metadata_bytes, at most 4096); 256 per answer.
_ANSWER_ENTRY_OVERHEAD = 64
_ANSWER_OVERHEAD = 256
_MAX_ID_BYTES = 128
_METADATA_CEILING = 4096

#: Events a subscription queues for a consumer that is not keeping up, by default (see
#: `AsyncClient.subscribe`). The server coalesces events (at most one per `min_interval_ms`, 100 ms
#: by default), so this is minutes of not reading; past it the client ends the subscription with
#: `SubscriptionLagged` rather than let its memory grow without bound.
DEFAULT_MAX_QUEUED_EVENTS = 10_000


class _Pending:
    """Book-keeping for one call id the server still owes an answer to."""

    __slots__ = ("kind", "future", "queue", "holds_slot", "max_events")

    def __init__(self, kind: str, holds_slot: bool) -> None:
        # "unary", "stream", "abandoned" (unary whose caller gave up: waiting for the answer) or
        # "closed" (stream whose consumer is gone or overflowed: events are dropped, and the id
        # stays reserved until the final status)
        self.kind = kind
        self.holds_slot = holds_slot
        self.future: Optional[asyncio.Future[pb.Response]] = None
        self.queue: Optional[asyncio.Queue[Any]] = None
        self.max_events = 0


class _Slots:
    """The local in-flight limit (`hello.max_inflight_calls`): a FIFO counting semaphore whose
    waits end at the caller's deadline, and all at once when the connection closes.

    Not asyncio.Semaphore: its waiters cannot be woken to fail when the connection is gone, and
    bounding its acquire() with wait_for can drop a slot granted just as the wait is cancelled
    (depending on the Python version).
    """

    def __init__(self, limit: int) -> None:
        self._free = limit
        self._waiters: Deque[asyncio.Future[bool]] = collections.deque()
        self._closed = False

    async def acquire(self, timeout: Optional[float]) -> bool:
        """Take a slot: True; False when none freed up within `timeout` seconds (None = wait as
        long as it takes) or the connection closed."""
        if self._closed:
            return False
        if self._free > 0 and not self._waiters:
            self._free -= 1
            return True
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[bool] = loop.create_future()
        self._waiters.append(fut)
        timer = None
        if timeout is not None:
            timer = loop.call_later(max(0.0, timeout), self._expire, fut)
        try:
            return await fut
        except asyncio.CancelledError:
            if fut.done() and not fut.cancelled() and fut.result():
                self.release()  # handed over just as the caller was cancelled: pass it on
            raise
        finally:
            if timer is not None:
                timer.cancel()
            if fut in self._waiters:  # timed out, cancelled or closed (else release popped it)
                self._waiters.remove(fut)

    def _expire(self, fut: "asyncio.Future[bool]") -> None:
        if not fut.done():
            fut.set_result(False)

    def release(self) -> None:
        """Give a slot back: to the longest waiter, else to the pool."""
        while self._waiters:
            fut = self._waiters.popleft()
            if not fut.done():
                fut.set_result(True)
                return
        self._free += 1

    def close(self) -> None:
        """The connection is gone: every waiter (and later caller) gets False."""
        self._closed = True
        for fut in self._waiters:
            if not fut.done():
                fut.set_result(False)


class _Final:
    """End of a stream: its final status."""

    __slots__ = ("code", "message")

    def __init__(self, code: int, message: str) -> None:
        self.code = code
        self.message = message


def _deadline_ms(deadline: Optional[float]) -> int:
    if deadline is None:
        return 0
    if deadline <= 0:
        raise ValueError("deadline must be positive seconds (None = no deadline)")
    return max(1, math.ceil(deadline * 1000))


def _check_result(resp: pb.Response, method: str) -> Message:
    """The result of a unary response, or the error its status carries."""
    if resp.HasField("status") and resp.status.code != 0:
        raise HiscoreError.from_status(resp.status.code, resp.status.message, call_id=resp.call_id)
    kind = resp.WhichOneof("result")
    if kind is not None and kind != method:
        raise Internal(f"server answered a {method} call with a {kind} result", call_id=resp.call_id)
    return getattr(resp, method)  # an absent result reads as the empty message (all defaults)


class AsyncClient:
    """A connection to a Hiscore server. Create it with `await AsyncClient.connect(...)`.

    Every method is a coroutine that may be called concurrently from many tasks. Failed calls
    raise `HiscoreError` (subclasses per status code, e.g. `NotFound`); a broken connection
    raises `ConnectionLost` (code UNAVAILABLE).

    `deadline` (seconds) bounds the whole call, from the moment it is made: a call queued locally
    for an in-flight slot gives up at its deadline without being sent; once sent, what is left of
    the deadline goes out as `deadline_ms`, and the client waits at most that plus
    `deadline_grace` before it cancels the call on the server. Writing the request counts too:
    when the server stops reading (socket buffers full), the call stops waiting at its deadline;
    the request goes out when the server reads again, followed by a cancel. Either way it raises
    `DeadlineExceeded`. Cancelling the awaiting task also cancels the call on the server.
    """

    hello: pb.ServerHello

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *,
                 auth_token: str = "", default_deadline: Optional[float] = None,
                 deadline_grace: float = 0.5, limit_inflight: bool = True,
                 max_inbound_frame_bytes: int = _DEFAULT_MAX_INBOUND,
                 max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS) -> None:
        """Low level: use `connect`. Takes over an open stream that has not sent the preface."""
        self._reader = reader
        self._writer = writer
        self.auth_token = auth_token
        self.default_deadline = default_deadline
        self.deadline_grace = deadline_grace
        self.max_queued_events = _check_max_queued_events(max_queued_events)
        self._limit_inflight = limit_inflight
        self._max_inbound = max_inbound_frame_bytes
        self._max_request_bytes = framing.DEFAULT_MAX_FRAME_BYTES
        self._pending: Dict[int, _Pending] = {}
        self._next_id = 1
        self._slots: Optional[_Slots] = None
        self._write_lock = asyncio.Lock()
        self._closed: Optional[ConnectionLost] = None
        self._server_error: Optional[HiscoreError] = None
        self._tasks: Set[asyncio.Task[Any]] = set()
        self._hello_future: asyncio.Future[pb.ServerHello] = asyncio.get_running_loop().create_future()
        self._reader_task: Optional[asyncio.Task[None]] = None

    # ------------------------------------------------------------------------------------------
    # Connection

    @classmethod
    async def connect(cls, host: str = "127.0.0.1", port: int = framing.DEFAULT_PORT, *,
                      timeout: Optional[float] = 10.0, auth_token: str = "",
                      default_deadline: Optional[float] = None, deadline_grace: float = 0.5,
                      limit_inflight: bool = True, ssl: tls.SSLOption = None,
                      server_hostname: Optional[str] = None,
                      max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS) -> "AsyncClient":
        """Open a connection, send the preface and wait for the server's hello.

        `timeout` bounds the TCP connect (and TLS handshake) plus the hello. `limit_inflight`
        makes the client queue calls locally instead of exceeding the server's
        `max_inflight_calls`. `max_queued_events` bounds each subscription's event queue (see
        `subscribe`). `ssl` turns on TLS: an `ssl.SSLContext` (see `hiscore.tls_context`) or True
        for the system trust store; a certificate the context does not trust raises
        `ssl.SSLCertVerificationError`. `server_hostname` is the name checked against the
        server's certificate (default: `host`).
        """
        context = tls.resolve(ssl)
        if context is None and server_hostname is not None:
            raise ValueError("server_hostname needs ssl")
        tls_args: Dict[str, Any] = {}
        if context is not None:
            tls_args = {"ssl": context, "server_hostname": server_hostname or host}
        try:
            reader, writer = await asyncio.wait_for(
                asyncio.open_connection(host, port, **tls_args), timeout)
        except _ssl.SSLError as err:
            if getattr(err, "reason", None) == "WRONG_VERSION_NUMBER":
                raise Unavailable(
                    f"TLS with {host}:{port}: the server did not answer with TLS; is it started "
                    "with --tls-cert? [WRONG_VERSION_NUMBER]") from err
            raise
        client = cls(reader, writer, auth_token=auth_token, default_deadline=default_deadline,
                     deadline_grace=deadline_grace, limit_inflight=limit_inflight,
                     max_queued_events=max_queued_events)
        try:
            await asyncio.wait_for(client._handshake(), timeout)
        except BaseException:
            await client.close()
            raise
        return client

    async def _handshake(self) -> None:
        self._writer.write(framing.PREFACE)
        await self._writer.drain()
        self._reader_task = asyncio.get_running_loop().create_task(self._read_loop())
        self.hello = await asyncio.shield(self._hello_future)
        if self.hello.max_frame_bytes:
            self._max_request_bytes = self.hello.max_frame_bytes
        if self._limit_inflight and self.hello.max_inflight_calls:
            self._slots = _Slots(self.hello.max_inflight_calls)

    @property
    def closed(self) -> bool:
        return self._closed is not None

    @property
    def server_error(self) -> Optional[HiscoreError]:
        """The connection-level error the server sent before closing, if any."""
        return self._server_error

    async def close(self) -> None:
        """Close the connection; pending calls fail with `ConnectionLost`."""
        if self._reader_task is not None and self._reader_task is not asyncio.current_task():
            self._reader_task.cancel()
        self._shutdown(ConnectionLost("client closed the connection"))
        try:
            await asyncio.wait_for(self._writer.wait_closed(), 2.0)
        except asyncio.TimeoutError:
            # Bytes the server is not reading keep the transport open (and every drain waiting
            # on it): drop them.
            self._writer.transport.abort()
        except (Exception, asyncio.CancelledError):  # already broken: nothing to flush
            pass
        for task in list(self._tasks):
            task.cancel()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _shutdown(self, exc: ConnectionLost) -> None:
        if self._closed is not None:
            return
        self._closed = exc
        try:
            self._writer.close()
        except Exception:
            pass
        if not self._hello_future.done():
            self._hello_future.set_exception(self._server_error or exc)
            self._hello_future.exception()  # mark retrieved when nobody awaits it
        if self._slots is not None:
            self._slots.close()  # calls still waiting for a slot wake up and fail too
        pending, self._pending = self._pending, {}
        for call_id, p in pending.items():
            if p.future is not None and not p.future.done():
                p.future.set_exception(type(exc)(exc.message, call_id=call_id, cause=exc.cause))
                p.future.exception()  # mark retrieved: a call still in _send raises on its own
            if p.queue is not None and p.kind == "stream":
                p.queue.put_nowait(type(exc)(exc.message, call_id=call_id, cause=exc.cause))

    async def _read_loop(self) -> None:
        exc: ConnectionLost
        try:
            while True:
                body = await framing.read_frame(self._reader, self._max_inbound)
                if body is None:
                    msg = "connection closed by the server"
                    if self._server_error is not None:
                        msg += f" after a connection-level error: {self._server_error}"
                    exc = ConnectionLost(msg, cause=self._server_error)
                    break
                resp = pb.Response()
                try:
                    resp.ParseFromString(body)
                except DecodeError as e:
                    exc = ProtocolError(f"undecodable Response frame: {e}")
                    break
                self._dispatch(resp)
        except framing.FramingError as e:
            exc = ProtocolError(str(e))
        except asyncio.CancelledError:
            exc = ConnectionLost("client closed the connection")
        except (OSError, EOFError) as e:
            exc = ConnectionLost(f"connection broken: {e}")
        self._shutdown(exc)

    def _dispatch(self, resp: pb.Response) -> None:
        if resp.call_id == 0:  # connection-level: the hello, or an error before a close
            if resp.WhichOneof("result") == "hello":
                if not self._hello_future.done():
                    self._hello_future.set_result(resp.hello)
            elif resp.HasField("status") and resp.status.code != 0:
                self._server_error = HiscoreError.from_status(resp.status.code, resp.status.message)
                if not self._hello_future.done():
                    self._hello_future.set_exception(self._server_error)
            return
        p = self._pending.get(resp.call_id)
        if p is None:  # a call we stopped tracking: ignore
            return
        if p.kind in ("stream", "closed"):
            assert p.queue is not None
            if resp.WhichOneof("result") == "event":
                if p.kind == "closed":
                    return
                if p.queue.qsize() >= p.max_events:
                    self._overflow(resp.call_id, p)
                    return
                p.queue.put_nowait(resp.event)
                return
            del self._pending[resp.call_id]
            if p.kind == "stream":
                p.queue.put_nowait(_Final(resp.status.code, resp.status.message))
            return
        del self._pending[resp.call_id]
        if p.holds_slot and self._slots is not None:
            self._slots.release()
        if p.future is not None and not p.future.done():
            p.future.set_result(resp)

    def _overflow(self, call_id: int, p: _Pending) -> None:
        """A subscription's consumer fell `max_events` behind: rather than buffer without bound
        (the server cannot see a reader that keeps up with the socket but not with the events),
        end it. The consumer gets what is queued, then SubscriptionLagged."""
        self._close_stream(call_id)
        assert p.queue is not None
        p.queue.put_nowait(SubscriptionLagged(
            f"subscription fell behind: {p.max_events} events queued and not consumed "
            "(max_queued_events); it was cancelled and later events dropped; resubscribe for a "
            "fresh snapshot", call_id=call_id))
        self._cancel_in_background(call_id)

    def _close_stream(self, call_id: int) -> bool:
        """Stop delivering a stream's events; its id stays reserved until its final status.
        False when it is not running (already ended, closed or never started)."""
        p = self._pending.get(call_id)
        if p is None or p.kind != "stream":
            return False
        p.kind = "closed"
        return True

    # ------------------------------------------------------------------------------------------
    # Calls

    def _alloc_id(self) -> int:
        while True:
            call_id = self._next_id
            self._next_id = 1 if call_id >= _MAX_CALL_ID else call_id + 1
            if call_id not in self._pending:
                return call_id

    async def _send(self, method: str, body: Message, deadline: Optional[float], kind: str,
                    max_events: int = DEFAULT_MAX_QUEUED_EVENTS
                    ) -> Tuple[int, _Pending, Optional[float]]:
        """Send one request; returns its call id, its book-keeping and, with a deadline, the loop
        time at which the caller should stop waiting for the answer."""
        _deadline_ms(deadline)  # validate before waiting for anything
        if self._closed is not None:
            raise type(self._closed)(self._closed.message, cause=self._closed.cause)
        loop = asyncio.get_running_loop()
        start = loop.time()
        # A cancel does not count against the server's max_inflight_calls, and must not wait
        # behind the very calls it is meant to end.
        holds_slot = kind == "unary" and method != "cancel" and self._slots is not None
        if holds_slot:
            assert self._slots is not None
            if not await self._slots.acquire(deadline):
                if self._closed is not None:
                    raise type(self._closed)(self._closed.message, cause=self._closed.cause)
                raise DeadlineExceeded(
                    f"no in-flight slot free within the {deadline}s deadline (max_inflight_calls "
                    f"{self.hello.max_inflight_calls} busy); not sent")
        try:
            if self._closed is not None:
                raise type(self._closed)(self._closed.message, cause=self._closed.cause)
            remaining = None if deadline is None else deadline - (loop.time() - start)
            if remaining is not None and remaining <= 0:
                raise DeadlineExceeded(f"the {deadline}s deadline passed waiting for an in-flight "
                                       "slot; not sent")
            call_id = self._alloc_id()
            req = pb.Request(call_id=call_id, deadline_ms=_deadline_ms(remaining),
                             auth_token=self.auth_token)
            getattr(req, method).CopyFrom(body)
            getattr(req, method).SetInParent()
            data = req.SerializeToString()
            if len(data) > self._max_request_bytes:
                # The server would drop the whole connection; refuse this one call instead.
                raise ResourceExhausted(f"request of {len(data)} bytes exceeds max_frame_bytes "
                                        f"({self._max_request_bytes})")
            p = _Pending(kind, holds_slot)
            if kind == "stream":
                p.queue = asyncio.Queue()  # unbounded; _dispatch keeps it to max_events
                p.max_events = max_events
            else:
                p.future = asyncio.get_running_loop().create_future()
            self._pending[call_id] = p
        except BaseException:
            if holds_slot:
                assert self._slots is not None
                self._slots.release()
            raise
        drained = True
        try:
            self._writer.write(framing.encode_frame(data))
            if deadline is None:  # wait as long as it takes
                async with self._write_lock:
                    await self._writer.drain()
            else:
                # A server that stops reading fills the socket buffers, and drain() then waits
                # until it reads again: wait for that only until the deadline. The drain goes on
                # in a task that keeps the write lock until it ends (one drain at a time).
                drain = self._start_drain()
                left = max(0.0, start + deadline - loop.time())
                done, _ = await asyncio.wait((drain,), timeout=left)
                if drain not in done:
                    drained = False
                elif drain.cancelled():  # close() ended it
                    closed = self._closed or ConnectionLost("client closed the connection")
                    raise type(closed)(closed.message, call_id=call_id, cause=closed.cause)
                else:
                    drain.result()  # raises what the drain failed with
        except (OSError, RuntimeError) as e:
            self._shutdown(ConnectionLost(f"connection broken: {e}"))
            raise ConnectionLost(f"connection broken: {e}", call_id=call_id) from e
        except asyncio.CancelledError:  # the request is out; its answer will be ignored
            if kind == "stream":
                self._close_stream(call_id)
            else:
                self._abandon(call_id)
            self._cancel_in_background(call_id)
            raise
        if not drained:
            # The request is in the transport (part of it maybe already sent) and will go out
            # when the server reads again: treat it as sent. No cancel for a cancel, though: it
            # would only queue behind it, and so on every few seconds while the server is stuck.
            if kind == "stream":
                self._close_stream(call_id)
            else:
                self._abandon(call_id)
            if method != "cancel":
                self._cancel_in_background(call_id)
            raise DeadlineExceeded(f"the {deadline}s deadline passed while the request was still "
                                   "being written (the server is not reading); cancel queued",
                                   call_id=call_id)
        expires = None if remaining is None else loop.time() + remaining + self.deadline_grace
        return call_id, p, expires

    def _start_drain(self) -> "asyncio.Task[None]":
        """Wait in a task, under the write lock, until the transport has drained what was written
        (or the connection fails), so that a caller can stop waiting without ending the drain."""
        task = asyncio.get_running_loop().create_task(self._locked_drain())
        self._tasks.add(task)
        task.add_done_callback(self._drain_done)
        return task

    async def _locked_drain(self) -> None:
        async with self._write_lock:
            await self._writer.drain()

    def _drain_done(self, task: "asyncio.Task[None]") -> None:
        self._tasks.discard(task)
        if task.cancelled():
            return
        e = task.exception()  # retrieved here too: its caller may have stopped waiting
        if isinstance(e, (OSError, RuntimeError)):
            self._shutdown(ConnectionLost(f"connection broken: {e}"))

    def _abandon(self, call_id: int) -> None:
        """The caller gave up: keep the id reserved (and its slot) until the server answers."""
        p = self._pending.get(call_id)
        if p is not None:
            p.kind = "abandoned"
            p.future = None

    def _cancel_in_background(self, call_id: int) -> None:
        if self._closed is not None:
            return
        task = asyncio.get_running_loop().create_task(self._quiet_cancel(call_id))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _quiet_cancel(self, call_id: int) -> None:
        try:
            await self.cancel(call_id, deadline=_CANCEL_DEADLINE)
        except (HiscoreError, OSError):
            pass

    async def start_call(self, method: str, body: Message, *,
                         deadline: Optional[float] = None) -> "PendingCall":
        """Low level: send `Request.<method> = body` now and return a handle to await later.

        `method` is the Request oneof field name (`"submit"`, `"get_rank"`, ...). The handle's
        `call_id` can be passed to `cancel`. Not `"subscribe"` (a stream): use `subscribe`.
        """
        if method == "subscribe":
            raise ValueError("subscribe is a stream, not a unary call: use AsyncClient.subscribe")
        if deadline is None:
            deadline = self.default_deadline
        call_id, p, expires = await self._send(method, body, deadline, "unary")
        assert p.future is not None
        return PendingCall(self, method, call_id, p.future, deadline, expires)

    async def call(self, method: str, body: Message, *, deadline: Optional[float] = None) -> Message:
        """Low level: one unary call; returns the `Response.result` message for `method`."""
        pending = await self.start_call(method, body, deadline=deadline)
        return await pending.result()

    async def ping(self, payload: bytes = b"", *, deadline: Optional[float] = None) -> bytes:
        """Round trip; returns the echoed payload (at most 1024 bytes)."""
        res = cast(pb.PingResponse, await self.call("ping", pb.PingRequest(payload=payload),
                                                     deadline=deadline))
        return bytes(res.payload)

    async def cancel(self, call_id: int, *, deadline: Optional[float] = None) -> bool:
        """Cancel call `call_id` on this connection; True when it was still running (False for a
        running backup or reset_board, which cannot be stopped and is answered with its result).
        A cancel does not wait for an in-flight slot (the server does not count cancels)."""
        res = cast(pb.CancelResponse, await self.call("cancel", pb.CancelRequest(call_id=call_id),
                                                       deadline=deadline))
        return bool(res.cancelled)

    async def submit(self, board_id: str, player_id: str, score: int, subscore: int = 0, *,
                     metadata: Optional[bytes] = None, skip_ranks: bool = False,
                     deadline: Optional[float] = None) -> pb.SubmitResponse:
        """Write a score (with the board's operator). `metadata=None` keeps the stored metadata.
        `skip_ranks=True`: no ranks in the response (`entry.rank` and `previous_rank` are 0;
        `created`/`changed` as usual), which is cheaper on a board split over shards."""
        req = pb.SubmitRequest(board_id=board_id, player_id=player_id, score=_int64(score, "score"),
                               subscore=_int64(subscore, "subscore"), skip_ranks=skip_ranks)
        if metadata is not None:
            req.metadata = metadata
        return cast(pb.SubmitResponse, await self.call("submit", req, deadline=deadline))

    async def submit_batch(self, items: Iterable[SubmitItem], *,
                           deadline: Optional[float] = None) -> pb.SubmitBatchResponse:
        """Many submits in one call; `results[i].status` says whether item i was applied."""
        req = pb.SubmitBatchRequest(submits=[make_submit(item) for item in items])
        return cast(pb.SubmitBatchResponse, await self.call("submit_batch", req, deadline=deadline))

    async def rank(self, board_id: str, player_id: str, *, rank_mode: int = RankMode.DEFAULT,
                   period_id: int = 0, deadline: Optional[float] = None) -> pb.GetRankResponse:
        """A player's entry and rank (`get_rank`). NotFound when the player is not on the board.
        `period_id`: an archived season (`describe_board(...).periods`); 0 = the live board."""
        req = pb.GetRankRequest(board_id=board_id, player_id=player_id, rank_mode=rank_mode,
                                period_id=period_id)
        return cast(pb.GetRankResponse, await self.call("get_rank", req, deadline=deadline))

    get_rank = rank

    async def top(self, board_id: str, limit: int = 0, *, offset: Optional[int] = None,
                  cursor: Optional[bytes] = None, rank_mode: int = RankMode.DEFAULT,
                  period_id: int = 0, deadline: Optional[float] = None) -> pb.TopResponse:
        """One page of the board, best first. Page with `cursor=resp.next_cursor` (stable) or
        `offset` (not stable under writes), not both. `limit` 0 = server default (10).
        `period_id`: an archived season; 0 = the live board."""
        if offset is not None and cursor is not None:
            raise ValueError("give offset or cursor, not both")
        req = pb.TopRequest(board_id=board_id, limit=limit, rank_mode=rank_mode,
                            period_id=period_id)
        if offset is not None:
            req.offset = offset
        elif cursor is not None:
            req.cursor = cursor
        return cast(pb.TopResponse, await self.call("top", req, deadline=deadline))

    def page_size_within_limit(self, page_size: int) -> int:
        """`page_size`, at most the server's `max_page_entries` (a larger page is OUT_OF_RANGE)."""
        limit = self.hello.max_page_entries
        return max(1, min(page_size, limit)) if limit else page_size

    def entries_per_answer(self, max_metadata_bytes: int) -> int:
        """Entries one answer can carry on a board allowing `max_metadata_bytes` of metadata:
        the server refuses (RESOURCE_EXHAUSTED) a top, around or entries call that could need
        more than its `max_frame_bytes` (docs/protocol.md, "Limits")."""
        frame = self.hello.max_frame_bytes
        if not frame:
            return 1 << 31
        entry = _ANSWER_ENTRY_OVERHEAD + _MAX_ID_BYTES + max_metadata_bytes
        return max(1, (frame - _ANSWER_OVERHEAD) // entry)

    async def fitted_page_size(self, board_id: str, page_size: int, *,
                               deadline: Optional[float] = None) -> int:
        """`page_size`, at most the server's `max_page_entries` and what one answer can carry on
        this board (`entries_per_answer`; its `max_metadata_bytes` is asked only when a page
        this large could be refused for it)."""
        page_size = self.page_size_within_limit(page_size)
        if page_size > self.entries_per_answer(_METADATA_CEILING):
            info = await self.describe_board(board_id, deadline=deadline)
            page_size = min(page_size, self.entries_per_answer(info.config.limits.max_metadata_bytes))
        return page_size

    async def iter_top(self, board_id: str, *, page_size: int = 100,
                       rank_mode: int = RankMode.DEFAULT, period_id: int = 0,
                       deadline: Optional[float] = None) -> AsyncIterator[pb.Entry]:
        """Every entry of the board (or of archived season `period_id`), best first, paging by
        cursor (pages of `page_size`, at most the server's `max_page_entries`)."""
        cursor: Optional[bytes] = None
        page_size = await self.fitted_page_size(board_id, page_size, deadline=deadline)
        while True:
            page = await self.top(board_id, page_size, cursor=cursor, rank_mode=rank_mode,
                                  period_id=period_id, deadline=deadline)
            for entry in page.entries:
                yield entry
            if not page.next_cursor or not page.entries:
                return
            cursor = page.next_cursor

    async def around(self, board_id: str, player_id: str, before: int = 5, after: int = 5, *,
                     rank_mode: int = RankMode.DEFAULT, period_id: int = 0,
                     deadline: Optional[float] = None) -> pb.AroundResponse:
        """Up to `before` better entries, the player, up to `after` worse ones. `period_id`: an
        archived season; 0 = the live board."""
        req = pb.AroundRequest(board_id=board_id, player_id=player_id, before=before, after=after,
                               rank_mode=rank_mode, period_id=period_id)
        return cast(pb.AroundResponse, await self.call("around", req, deadline=deadline))

    async def entries(self, board_id: str, player_ids: Sequence[str], *,
                      rank_mode: int = RankMode.DEFAULT, period_id: int = 0,
                      deadline: Optional[float] = None) -> pb.EntriesResponse:
        """Entries of the given players (e.g. friends), best first; `missing_player_ids`.
        `period_id`: an archived season; 0 = the live board."""
        req = pb.EntriesRequest(board_id=board_id, player_ids=list(player_ids), rank_mode=rank_mode,
                                period_id=period_id)
        return cast(pb.EntriesResponse, await self.call("entries", req, deadline=deadline))

    async def count(self, board_id: str, min_score: Optional[int] = None,
                    max_score: Optional[int] = None, *, period_id: int = 0,
                    deadline: Optional[float] = None) -> pb.CountResponse:
        """Players with min_score <= score <= max_score (None = unbounded); also board_size.
        `period_id`: an archived season; 0 = the live board."""
        req = pb.CountRequest(board_id=board_id, period_id=period_id)
        if min_score is not None:
            req.min_score = min_score
        if max_score is not None:
            req.max_score = max_score
        return cast(pb.CountResponse, await self.call("count", req, deadline=deadline))

    async def create_board(self, board_id: str, *, score_order: int = SortOrder.DESCENDING,
                           subscore_order: int = SortOrder.DESCENDING,
                           write_operator: int = WriteOperator.BEST,
                           rank_mode: int = RankMode.DEFAULT, max_entries: int = 0,
                           max_metadata_bytes: int = 0, client_writes: bool = False,
                           reset: Optional[pb.ResetSchedule] = None,
                           config: Optional[pb.BoardConfig] = None,
                           deadline: Optional[float] = None) -> pb.BoardInfo:
        """Create a board (idempotent for the same config; AlreadyExists for another one).
        Pass either keyword fields or a complete `config` (then `board_id` must match it or be "").
        `reset`: a season schedule (e.g. `pb.ResetSchedule(period=ResetPeriod.DAILY,
        minute_of_day=120)`), absent = never; `client_writes`: player tokens may submit their
        own scores (docs/security.md)."""
        if config is None:
            config = pb.BoardConfig(
                board_id=board_id, score_order=score_order, subscore_order=subscore_order,
                write_operator=write_operator, rank_mode=rank_mode, client_writes=client_writes,
                limits=pb.BoardLimits(max_entries=max_entries, max_metadata_bytes=max_metadata_bytes))
            if reset is not None:
                config.reset.CopyFrom(reset)
        elif board_id and config.board_id != board_id:
            raise ValueError("board_id does not match config.board_id")
        elif reset is not None or client_writes:
            raise ValueError("with config=, set reset and client_writes in the config itself")
        res = cast(pb.CreateBoardResponse, await self.call(
            "create_board", pb.CreateBoardRequest(config=config), deadline=deadline))
        return cast(pb.BoardInfo, res.board)

    async def describe_board(self, board_id: str, *,
                             deadline: Optional[float] = None) -> pb.BoardInfo:
        """A board's config, size and version."""
        res = cast(pb.DescribeBoardResponse, await self.call(
            "describe_board", pb.DescribeBoardRequest(board_id=board_id), deadline=deadline))
        return cast(pb.BoardInfo, res.board)

    async def list_boards(self, after_board_id: str = "", limit: int = 0, *,
                          deadline: Optional[float] = None) -> pb.ListBoardsResponse:
        """Boards sorted by id after `after_board_id`; `more` when the page was cut."""
        req = pb.ListBoardsRequest(after_board_id=after_board_id, limit=limit)
        return cast(pb.ListBoardsResponse, await self.call("list_boards", req, deadline=deadline))

    async def delete_board(self, board_id: str, *, deadline: Optional[float] = None) -> int:
        """Delete a board; returns the number of entries it held."""
        res = cast(pb.DeleteBoardResponse, await self.call(
            "delete_board", pb.DeleteBoardRequest(board_id=board_id), deadline=deadline))
        return int(res.removed_entries)

    async def reset_board(self, board_id: str, *,
                          deadline: Optional[float] = None) -> pb.ResetBoardResponse:
        """End the board's season now: its standings become archived period
        `archived_period_id` (queried with `period_id=`) and the live board starts empty.
        Admin only. Not cancellable once sent: a deadline that expires first leaves it running
        on the server."""
        return cast(pb.ResetBoardResponse, await self.call(
            "reset_board", pb.ResetBoardRequest(board_id=board_id), deadline=deadline))

    async def remove_player(self, board_id: str, player_id: str, *,
                            deadline: Optional[float] = None) -> pb.Entry:
        """Remove a player; returns the removed entry with the rank it had."""
        res = cast(pb.RemovePlayerResponse, await self.call(
            "remove_player", pb.RemovePlayerRequest(board_id=board_id, player_id=player_id),
            deadline=deadline))
        return cast(pb.Entry, res.entry)

    async def erase_player(self, player_id: str, *, deadline: Optional[float] = None) -> int:
        """Remove a player from every board and from every archived period (season) of every
        board, e.g. to honour a data-deletion request; returns the entries removed (one per
        board or archived period that held the player; 0 when none did). Admin only
        (PermissionDenied for other keys and for player tokens); InvalidArgument for an invalid
        player id. Covers the boards that exist when the call starts. Idempotent: after a
        failure (e.g. DeadlineExceeded or a lost connection, when some boards may already have
        been erased) call it again."""
        res = cast(pb.ErasePlayerResponse, await self.call(
            "erase_player", pb.ErasePlayerRequest(player_id=player_id), deadline=deadline))
        return int(res.removed_entries)

    async def authenticate(self, token: str, *,
                           deadline: Optional[float] = None) -> pb.AuthenticateResponse:
        """Present an API key or a player token for the rest of the connection; returns the
        role it grants (and, for a player token, its player, boards and expiry).
        Unauthenticated for a key or token the server does not accept (the server closes the
        connection after `max_failed_authentications` of those). A token passed to `connect`
        is sent with every call instead; use this to switch to a refreshed one."""
        return cast(pb.AuthenticateResponse, await self.call(
            "authenticate", pb.AuthenticateRequest(token=token), deadline=deadline))

    async def backup(self, destination: str, *,
                     deadline: Optional[float] = None) -> pb.BackupResponse:
        """Copy the server's data directory, consistently, into `destination`: a directory on
        the server's machine that does not exist or is empty. Admin only; FailedPrecondition
        for a non-empty destination or a failed copy (what it wrote is removed), and on a
        server without a data directory. Returns the files written, how many were hard-linked
        and the bytes copied."""
        return cast(pb.BackupResponse, await self.call(
            "backup", pb.BackupRequest(destination=destination), deadline=deadline))

    def subscribe(self, board_id: str, *, player_id: Optional[str] = None,
                  top: Optional[int] = None, around: Optional[Tuple[str, int, int]] = None,
                  feed: bool = False, min_interval_ms: int = 0,
                  rank_mode: int = RankMode.DEFAULT,
                  max_queued_events: Optional[int] = None) -> "Subscription":
        """A rank-change stream. Give exactly one target: `player_id`, `top` (N), `around`
        (player_id, before, after) or `feed=True`. Use as

            async with client.subscribe("b", top=10) as sub:
                async for event in sub:      # hiscore.pb.RankEvent
                    ...

        The first event is a snapshot. Iteration ends when the server ends the stream with OK
        or after `await sub.cancel()`; any other final status raises (e.g. NotFound when the
        board is deleted, Unavailable when the server shuts down, Unimplemented on servers
        without streams). Leaving `async with` (or `await sub.aclose()`) cancels the stream on
        the server.

        Events are read off the connection as they arrive and queued until consumed, at most
        `max_queued_events` of them (None = the client's `max_queued_events`, by default
        `DEFAULT_MAX_QUEUED_EVENTS`). A consumer that falls further behind loses the stream: the
        client cancels it, drops its later events, and iteration raises `SubscriptionLagged`
        after the queued events. Subscribe again for a fresh snapshot.
        """
        req = pb.SubscribeRequest(board_id=board_id, min_interval_ms=min_interval_ms,
                                  rank_mode=rank_mode)
        targets = sum(x is not None for x in (player_id, top, around)) + int(feed)
        if targets != 1:
            raise ValueError("give exactly one of player_id, top, around, feed")
        if player_id is not None:
            req.player_id = player_id
        elif top is not None:
            req.top = top
        elif around is not None:
            pid, before, after = around
            req.around.CopyFrom(pb.SubscribeAround(player_id=pid, before=before, after=after))
        else:
            req.feed.SetInParent()
        limit = self.max_queued_events if max_queued_events is None else max_queued_events
        return Subscription(self, req, _check_max_queued_events(limit))


class PendingCall:
    """A unary call that has been sent (see `AsyncClient.start_call`)."""

    def __init__(self, client: AsyncClient, method: str, call_id: int,
                 future: "asyncio.Future[pb.Response]", deadline: Optional[float],
                 expires: Optional[float] = None) -> None:
        self.method = method
        self.call_id = call_id
        self.deadline = deadline
        self._client = client
        self._future = future
        self._expires = expires  # loop time to stop waiting (None: deadline + grace from result())

    def done(self) -> bool:
        return self._future.done()

    async def result(self) -> Message:
        """Wait for the answer: the result message, or the call's error raised."""
        client, call_id = self._client, self.call_id
        try:
            if self.deadline is None or self._future.done():
                resp = await asyncio.shield(self._future)
            else:
                wait = self.deadline + client.deadline_grace
                if self._expires is not None:
                    wait = self._expires - asyncio.get_running_loop().time()
                resp = await asyncio.wait_for(asyncio.shield(self._future), max(0.0, wait))
        except asyncio.TimeoutError:
            client._abandon(call_id)
            client._cancel_in_background(call_id)
            raise DeadlineExceeded(f"no answer within {self.deadline}s "
                                   f"(+{client.deadline_grace}s grace); cancel sent",
                                   call_id=call_id) from None
        except asyncio.CancelledError:
            if not self._future.done():
                client._abandon(call_id)
                client._cancel_in_background(call_id)
            raise
        return _check_result(resp, self.method)


class Subscription:
    """A server stream of `RankEvent`s (see `AsyncClient.subscribe`)."""

    def __init__(self, client: AsyncClient, request: pb.SubscribeRequest,
                 max_queued_events: int = DEFAULT_MAX_QUEUED_EVENTS) -> None:
        self._client = client
        self.request = request
        self.max_queued_events = max_queued_events
        self.call_id = 0
        self._pending: Optional[_Pending] = None
        self._cancel_requested = False
        self._done = False
        # Made on first use, on the client's loop: hiscore.Client creates subscriptions in the
        # caller's thread, where (Python < 3.10) a Lock would bind to the wrong or no loop.
        self._start_lock: Optional[asyncio.Lock] = None

    async def start(self) -> None:
        """Send the subscribe request (done by the first iteration or `async with`)."""
        if self._start_lock is None:
            self._start_lock = asyncio.Lock()
        async with self._start_lock:
            if self._pending is None:
                self.call_id, self._pending, _ = await self._client._send(
                    "subscribe", self.request, None, "stream", self.max_queued_events)

    def __aiter__(self) -> "Subscription":
        return self

    async def __anext__(self) -> pb.RankEvent:
        if self._pending is None:
            await self.start()
        if self._done:
            raise StopAsyncIteration
        assert self._pending is not None and self._pending.queue is not None
        item = await self._pending.queue.get()
        if isinstance(item, pb.RankEvent):
            return item
        self._done = True
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, _Final)
        if item.code == StatusCode.OK:
            raise StopAsyncIteration
        if item.code == StatusCode.CANCELLED and self._cancel_requested:
            raise StopAsyncIteration
        raise HiscoreError.from_status(item.code, item.message, call_id=self.call_id)

    async def cancel(self) -> bool:
        """Ask the server to end the stream; iteration then ends after the final CANCELLED."""
        if self._pending is None or self._done:
            return False
        self._cancel_requested = True
        return await self._client.cancel(self.call_id)

    async def aclose(self) -> None:
        """Cancel the stream on the server (if it is still running) and wait for that to be
        acknowledged (at most 5 s); iteration ends, and queued or later events are dropped."""
        if self._pending is None or self._done:
            return
        self._done = True
        # Late events are dropped from now on; the call id stays reserved until the final status.
        if self._client._close_stream(self.call_id):
            self._cancel_requested = True
            assert self._pending.queue is not None  # wakes a consumer waiting in another task
            self._pending.queue.put_nowait(_Final(StatusCode.CANCELLED, "closed by the client"))
            try:
                await self._client.cancel(self.call_id, deadline=_CANCEL_DEADLINE)
            except HiscoreError:  # e.g. the connection is gone: so is the stream
                pass

    async def __aenter__(self) -> "Subscription":
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.aclose()


def _check_max_queued_events(n: int) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"max_queued_events must be a positive int, got {n!r}")
    return n


_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1


def _int64(value: int, field: str) -> int:
    """`value` if it fits the wire's int64; InvalidArgument (as the server would answer) if not,
    rather than protobuf's bare ValueError."""
    if not _INT64_MIN <= value <= _INT64_MAX:
        raise InvalidArgument(f"{field}: {value} is outside int64 ({_INT64_MIN} ... {_INT64_MAX})")
    return value


def make_submit(item: SubmitItem) -> pb.SubmitRequest:
    """A SubmitRequest from a SubmitRequest, a mapping of its fields (any SubmitRequest field,
    `skip_ranks` included; an unknown key raises ValueError), or a tuple
    (board_id, player_id, score[, subscore[, metadata]])."""
    if isinstance(item, pb.SubmitRequest):
        return item
    if isinstance(item, Mapping):
        return pb.SubmitRequest(**item)
    if isinstance(item, tuple) and 3 <= len(item) <= 5:
        req = pb.SubmitRequest(board_id=item[0], player_id=item[1], score=_int64(item[2], "score"))
        if len(item) > 3:
            req.subscore = _int64(item[3], "subscore")
        if len(item) > 4 and item[4] is not None:
            req.metadata = item[4]
        return req
    raise TypeError(f"cannot make a SubmitRequest from {item!r}")


__all__ = ["AsyncClient", "PendingCall", "Subscription", "SubmitItem", "make_submit",
           "DEFAULT_MAX_QUEUED_EVENTS"]
