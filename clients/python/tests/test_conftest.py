"""The test servers themselves: they start next to another hiscored, and die with the test run
(a `timeout` that signals pytest's process group, or SIGTERM to pytest alone)."""
from __future__ import annotations

import errno
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import Iterator, Optional

import pytest

import hiscore
from conftest import ServerInfo, ServerProcess, require_server_binary, wait_until

VICTIM_PIDFILE = "PYTEST_HISCORE_VICTIM_PIDFILE"  # not HISCORE_*: hiscored reads those as options
DEFAULT_ADMIN_PORT = 7451


def _binary(tmp: Path) -> Path:
    return require_server_binary()


@pytest.fixture
def admin_port_taken() -> Iterator[None]:
    """127.0.0.1:7451 in use, as when a `make run` server is up."""
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", DEFAULT_ADMIN_PORT))
        s.listen()
    except OSError as e:
        if e.errno != errno.EADDRINUSE:  # in use already is just as good
            raise
    try:
        yield
    finally:
        s.close()


def test_server_starts_while_the_default_admin_port_is_taken(admin_port_taken: None,
                                                             tmp_path: Path) -> None:
    proc = ServerProcess(_binary(tmp_path), tmp_path / "data", tmp_path / "hiscored.log")
    try:
        assert proc.wait_ready(30) > 0
    finally:
        proc.stop()


def _alive(pid: int) -> bool:
    """Running (a zombie nobody reaped yet counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True


@pytest.mark.skipif(not os.environ.get(VICTIM_PIDFILE),
                    reason="run in a child pytest by test_server_dies_with_the_test_run")
def test_victim_holds_a_server(server: ServerInfo) -> None:
    assert server.pid is not None
    path = Path(os.environ[VICTIM_PIDFILE])
    tmp = path.with_suffix(".tmp")
    tmp.write_text(str(server.pid))
    tmp.rename(path)
    threading.Event().wait(120)  # until the parent test signals this run


@pytest.mark.parametrize("how", ["process group", "pytest alone"])
def test_server_dies_with_the_test_run(how: str, tmp_path: Path) -> None:
    _binary(tmp_path)
    pidfile = tmp_path / "server.pid"
    env = dict(os.environ, **{VICTIM_PIDFILE: str(pidfile)})
    env.pop("HISCORE_SERVER", None)  # the child must start its own server
    src = str(Path(hiscore.__file__).resolve().parents[1])  # the package under test
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    child = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         f"{__file__}::test_victim_holds_a_server"],
        env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True)  # its own group, as under `timeout`
    server_pid: Optional[int] = None
    try:
        if not wait_until(lambda: pidfile.exists() or child.poll() is not None, 60) or \
                not pidfile.exists():
            child.kill()
            out, _ = child.communicate(timeout=30)
            raise AssertionError(f"the child pytest did not start its server:\n{out.decode()[-3000:]}")
        server_pid = int(pidfile.read_text())
        assert _alive(server_pid)
        if how == "process group":
            os.killpg(child.pid, signal.SIGTERM)  # what `timeout` does
        else:
            child.send_signal(signal.SIGTERM)  # `kill <pytest>`
        out, _ = child.communicate(timeout=60)
        assert wait_until(lambda: not _alive(server_pid), 30), \
            f"hiscored {server_pid} outlived the test run; child output:\n{out.decode()[-3000:]}"
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)
        if server_pid is not None and _alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)
