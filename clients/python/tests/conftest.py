"""Shared fixtures: a real hiscored (started once per session), a scriptable fake server, and a
recording proxy.

The real server is `$HISCORED_BIN` or `<repo>/.build/debug/hiscored`, started as
`hiscored --host 127.0.0.1 --port 0 --admin-port=-1 --data-dir <tmp> --shards 2`; the port is
parsed from its `listening on 127.0.0.1:<PORT>` log line. `HISCORE_SERVER=host:port` uses a running
server instead. When no binary exists the end-to-end tests are skipped, unless
`HISCORE_REQUIRE_SERVER=1` (set by clients/run-tests.sh), which makes that a failure.

Servers started here die with the test run: they stay in pytest's process group (so `timeout`,
which signals the whole group, stops them too), and SIGTERM to pytest alone ends the run like
Ctrl-C, tearing the fixtures down (see pytest_configure).
"""
from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import (Any, AsyncIterator, Awaitable, Callable, Coroutine, Iterator, List, Optional,
                    Set, TypeVar)

import pytest

from hiscore import framing, pb

REPO = Path(__file__).resolve().parents[3]
T = TypeVar("T")
LISTEN_RE = re.compile(r"listening on (\S+):(\d+)")


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config: pytest.Config) -> None:
    """SIGTERM (`timeout`, `kill`) ends the run as Ctrl-C does: pytest tears the fixtures down,
    which stops the hiscored children instead of leaving them running. Python's default for
    SIGTERM is to die at once, finalizers unrun."""
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _sigterm)


def pytest_unconfigure(config: pytest.Config) -> None:
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) is _sigterm:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def run(coro: Coroutine[Any, Any, T], timeout: float = 60.0) -> T:
    """Run one test coroutine on a fresh event loop, bounded."""
    async def bounded() -> T:
        return await asyncio.wait_for(coro, timeout)
    return asyncio.run(bounded())


def unique(prefix: str = "b") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@dataclass
class ServerInfo:
    host: str
    port: int
    log_path: Optional[Path] = None
    pid: Optional[int] = None


class ServerProcess:
    """A hiscored child process; stop() sends SIGTERM, then SIGKILL after a timeout.

    The admin HTTP port is off (`--admin-port=-1`) unless `extra` sets one: its default, 7451, is
    fixed and would clash with any other hiscored on the machine (`--admin-port=0` picks a free
    one). The child stays in pytest's session and process group, so signals sent to the group (by
    `timeout`, or Ctrl-C) reach it too.
    """

    def __init__(self, binary: Path, data_dir: Path, log_path: Path, *extra: str) -> None:
        self.log_path = log_path
        self._log = open(log_path, "w", encoding="utf-8", errors="replace")
        self._port: Optional[int] = None
        self._ready = threading.Event()
        if not any(arg.startswith("--admin-port") for arg in extra):
            extra = ("--admin-port=-1", *extra)
        self.proc = subprocess.Popen(
            [str(binary), "--host", "127.0.0.1", "--port", "0", "--data-dir", str(data_dir),
             "--shards", "2", *extra],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            # A test run killed before it could stop its servers takes them along.
            env={**os.environ, "HISCORE_EXIT_WITH_PROCESS": str(os.getpid())})
        self._pump = threading.Thread(target=self._read_log, daemon=True)
        self._pump.start()

    def _read_log(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace")
            self._log.write(line)
            self._log.flush()
            m = LISTEN_RE.search(line)
            if m and self._port is None:
                self._port = int(m.group(2))
                self._ready.set()
        self._ready.set()  # exited

    def wait_ready(self, timeout: float = 60.0) -> int:
        self._ready.wait(timeout)
        if self._port is None:
            self.stop()
            log = self.log_path.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"hiscored did not report its port within {timeout}s; log:\n{log}")
        return self._port

    def stop(self, timeout: float = 15.0) -> Optional[int]:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._pump.join(5)
        self._log.close()
        return self.proc.returncode


def server_binary() -> Optional[Path]:
    env = os.environ.get("HISCORED_BIN")
    path = Path(env) if env else REPO / ".build" / "debug" / "hiscored"
    return path if path.is_file() and os.access(path, os.X_OK) else None


def require_server_binary() -> Path:
    """The hiscored to test against; skips the test without one (fails it under
    HISCORE_REQUIRE_SERVER=1, as `make test` runs)."""
    binary = server_binary()
    if binary is None:
        msg = "hiscored not built (.build/debug/hiscored); run `swift build` or set HISCORED_BIN"
        if os.environ.get("HISCORE_REQUIRE_SERVER") == "1":
            pytest.fail(msg)
        pytest.skip(msg)
    return binary


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    addr = os.environ.get("HISCORE_SERVER")
    if addr:
        host, _, port = addr.rpartition(":")
        yield ServerInfo(host or "127.0.0.1", int(port))
        return
    binary = require_server_binary()
    tmp = tmp_path_factory.mktemp("hiscored")
    # Run a private copy: a concurrent `swift build` may replace the binary mid-session.
    copy = tmp / "hiscored"
    shutil.copy2(binary, copy)
    proc = ServerProcess(copy, tmp / "data", tmp / "hiscored.log")
    try:
        port = proc.wait_ready()
        yield ServerInfo("127.0.0.1", port, proc.log_path, proc.proc.pid)
    finally:
        proc.stop()


# ---------------------------------------------------------------------------------------------
# Fake server for client unit tests

class FakeConn:
    """The server side of one fake connection: read requests, write responses."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def read_preface(self) -> bytes:
        return await self.reader.readexactly(len(framing.PREFACE))

    async def recv(self) -> Optional[pb.Request]:
        body = await framing.read_frame(self.reader, 1 << 24)
        if body is None:
            return None
        return pb.Request.FromString(body)

    async def send(self, resp: pb.Response) -> None:
        self.writer.write(framing.encode_frame(resp.SerializeToString()))
        await self.writer.drain()

    async def hello(self, **limits: int) -> None:
        fields = dict(protocol_version=1, server_version="fake", max_frame_bytes=1 << 20,
                      max_inflight_calls=256, max_batch_submits=1000, max_page_entries=1000,
                      max_players_per_query=1000, max_subscriptions=1000, max_metadata_bytes=256)
        fields.update(limits)
        preface = await self.read_preface()
        assert preface == framing.PREFACE
        await self.send(pb.Response(call_id=0, hello=pb.ServerHello(**fields)))


@contextlib.asynccontextmanager
async def fake_server(handler: Callable[[FakeConn], Awaitable[None]]) -> AsyncIterator[ServerInfo]:
    """Serve `handler` on 127.0.0.1:<ephemeral>; handler failures fail the test."""
    errors: List[BaseException] = []

    async def on_conn(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handler(FakeConn(reader, writer))
        except (asyncio.CancelledError, ConnectionError, asyncio.IncompleteReadError):
            pass
        except BaseException as e:  # reported after the test body
            errors.append(e)
        finally:
            writer.close()

    srv = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    try:
        yield ServerInfo("127.0.0.1", port)
    finally:
        srv.close()
        await srv.wait_closed()
    if errors:
        raise errors[0]


def wait_until(pred: Callable[[], bool], timeout: float = 5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.01)
    return pred()


# ---------------------------------------------------------------------------------------------
# Recording proxy for end-to-end tests

class RecordingProxy:
    """A TCP relay in front of a server, on its own thread and event loop: it records every
    request the clients send and every response the server sends (decoded), and withholds the
    server's answers to the requests `hold` picks. Shows what a client puts on the wire, and how
    it copes with answers that never come, against the real server.

        with RecordingProxy(server) as proxy:
            client connects to proxy.info; proxy.wait_for_request(lambda r: ...)
    """

    def __init__(self, upstream: ServerInfo,
                 hold: Callable[[pb.Request], bool] = lambda req: False) -> None:
        self.upstream = upstream
        self._hold = hold
        self.requests: List[pb.Request] = []
        self.responses: List[pb.Response] = []
        self._cond = threading.Condition()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="recording-proxy",
                                        daemon=True)
        self._conns: Set["asyncio.Task[None]"] = set()
        self._server: Optional[asyncio.AbstractServer] = None
        self.info = ServerInfo("127.0.0.1", 0)

    def __enter__(self) -> "RecordingProxy":
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._on_conn, "127.0.0.1", 0), self._loop).result(10)
        self.info = ServerInfo("127.0.0.1", self._server.sockets[0].getsockname()[1])
        return self

    def __exit__(self, *exc: Any) -> None:
        asyncio.run_coroutine_threadsafe(self._close(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _close(self) -> None:
        assert self._server is not None
        self._server.close()
        for task in list(self._conns):
            task.cancel()
        await asyncio.gather(*self._conns, return_exceptions=True)
        await self._server.wait_closed()

    def _record(self, into: List[Any], message: Any) -> None:
        with self._cond:
            into.append(message)
            self._cond.notify_all()

    def wait_for_request(self, pred: Callable[[pb.Request], bool],
                         timeout: float = 10.0) -> pb.Request:
        """The first recorded request matching pred, waiting for it up to `timeout` seconds."""
        return self._wait(self.requests, pred, timeout)

    def wait_for_response(self, pred: Callable[[pb.Response], bool],
                          timeout: float = 10.0) -> pb.Response:
        return self._wait(self.responses, pred, timeout)

    def _wait(self, messages: List[Any], pred: Callable[[Any], bool], timeout: float) -> Any:
        found: List[Any] = []

        def match() -> bool:
            found[:] = [m for m in messages if pred(m)][:1]
            return bool(found)
        with self._cond:
            if not self._cond.wait_for(match, timeout):
                raise AssertionError(f"no matching message within {timeout}s")
        return found[0]

    async def _on_conn(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._conns.add(task)
        held: Set[int] = set()  # call ids (per connection) whose answers are withheld
        up_reader, up_writer = await asyncio.open_connection(self.upstream.host, self.upstream.port)

        async def client_to_server() -> None:
            up_writer.write(await reader.readexactly(len(framing.PREFACE)))
            while (body := await framing.read_frame(reader, 1 << 26)) is not None:
                req = pb.Request.FromString(body)
                if self._hold(req):
                    held.add(req.call_id)  # before the server can answer it
                self._record(self.requests, req)
                up_writer.write(framing.encode_frame(body))
                await up_writer.drain()

        async def server_to_client() -> None:
            while (body := await framing.read_frame(up_reader, 1 << 26)) is not None:
                resp = pb.Response.FromString(body)
                self._record(self.responses, resp)
                if resp.call_id in held:
                    continue
                writer.write(framing.encode_frame(body))
                await writer.drain()

        relays = [asyncio.ensure_future(client_to_server()), asyncio.ensure_future(server_to_client())]
        try:
            await asyncio.wait(relays, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            pass
        finally:
            for relay in relays:
                relay.cancel()
            await asyncio.gather(*relays, return_exceptions=True)
            writer.close()
            up_writer.close()
            self._conns.discard(task)
