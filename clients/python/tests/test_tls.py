"""TLS end to end: hiscored started with --tls-cert/--tls-key (and --tls-client-ca), certificates
made here with the `openssl` CLI (Debian package `openssl`): a CA that signs the server's
certificate (localhost, 127.0.0.1) and a client certificate, and a second CA nobody trusts."""
from __future__ import annotations

import shutil
import ssl
import subprocess
from pathlib import Path
from typing import Iterator

import pytest

import hiscore

from conftest import ServerInfo, ServerProcess, run, server_binary, unique


def _openssl(cwd: Path, *args: str) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _make_ca(d: Path, stem: str, name: str) -> None:
    _openssl(d, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{stem}.key", "-out", f"{stem}.pem", "-days", "2",
             "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")


def _make_leaf(d: Path, stem: str, name: str, ca: str, extensions: str) -> None:
    _openssl(d, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{stem}.key", "-out", f"{stem}.csr", "-subj", f"/CN={name}")
    (d / f"{stem}.ext").write_text(extensions + "basicConstraints=CA:FALSE\n")
    _openssl(d, "x509", "-req", "-in", f"{stem}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
             "-CAcreateserial", "-out", f"{stem}.pem", "-days", "2", "-extfile", f"{stem}.ext")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.fail("the openssl CLI is missing (Debian package openssl)")
    d = tmp_path_factory.mktemp("pki")
    _make_ca(d, "ca", "Hiscore Test CA")
    _make_ca(d, "other-ca", "Some Other CA")
    _make_leaf(d, "server", "localhost", "ca",
               "subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n")
    _make_leaf(d, "client", "test client", "ca", "extendedKeyUsage=clientAuth\n")
    return d


def _binary(tmp: Path) -> Path:
    binary = server_binary()
    if binary is None:
        pytest.fail("hiscored not built (.build/debug/hiscored); run `swift build` or set HISCORED_BIN")
    copy = tmp / "hiscored"
    shutil.copy2(binary, copy)
    return copy


def _start(tmp: Path, *flags: str) -> Iterator[ServerInfo]:
    proc = ServerProcess(_binary(tmp), tmp / "data", tmp / "hiscored.log", "--admin-port=-1",
                         "--durability", "memory", *flags)
    try:
        yield ServerInfo("127.0.0.1", proc.wait_ready(), proc.log_path)
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def tls_server(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    yield from _start(tmp_path_factory.mktemp("tls"), "--tls-cert", str(pki / "server.pem"),
                      "--tls-key", str(pki / "server.key"))


@pytest.fixture(scope="module")
def mtls_server(pki: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerInfo]:
    yield from _start(tmp_path_factory.mktemp("mtls"), "--tls-cert", str(pki / "server.pem"),
                      "--tls-key", str(pki / "server.key"), "--tls-client-ca", str(pki / "ca.pem"))


def test_async_client_over_tls(pki: Path, tls_server: ServerInfo) -> None:
    b = unique()
    ctx = hiscore.tls_context(ca_file=str(pki / "ca.pem"))

    async def main() -> None:
        for host in ("127.0.0.1", "localhost"):
            async with await hiscore.AsyncClient.connect(host, tls_server.port, timeout=10,
                                                         ssl=ctx) as c:
                await c.submit(b, f"p-{host}", 10 if host == "localhost" else 5)
        async with await hiscore.AsyncClient.connect("127.0.0.1", tls_server.port, ssl=ctx) as c:
            page = await c.top(b, 10)
            assert [e.player_id for e in page.entries] == ["p-localhost", "p-127.0.0.1"]
    run(main())


def test_sync_client_over_tls(pki: Path, tls_server: ServerInfo) -> None:
    b = unique()
    ctx = hiscore.tls_context(ca_file=str(pki / "ca.pem"))
    with hiscore.Client("127.0.0.1", tls_server.port, ssl=ctx) as c:
        assert c.submit(b, "alice", 42).entry.rank == 1


def test_untrusted_certificate_is_refused(pki: Path, tls_server: ServerInfo) -> None:
    async def main() -> None:
        for option in (True, hiscore.tls_context(ca_file=str(pki / "other-ca.pem"))):
            with pytest.raises(ssl.SSLCertVerificationError):
                await hiscore.AsyncClient.connect("127.0.0.1", tls_server.port, timeout=10,
                                                  ssl=option)
        with pytest.raises(ssl.SSLCertVerificationError):  # the certificate does not name it
            await hiscore.AsyncClient.connect(
                "127.0.0.1", tls_server.port, timeout=10, server_hostname="scores.example.com",
                ssl=hiscore.tls_context(ca_file=str(pki / "ca.pem")))
    run(main())


def test_plain_client_gets_no_service(pki: Path, tls_server: ServerInfo) -> None:
    async def main() -> None:
        # The server's TLS alert is read as a frame header: the error says it is a TLS record.
        with pytest.raises(hiscore.ProtocolError, match="TLS record.*ssl="):
            await hiscore.AsyncClient.connect("127.0.0.1", tls_server.port, timeout=10)
        ctx = hiscore.tls_context(ca_file=str(pki / "ca.pem"))
        async with await hiscore.AsyncClient.connect("127.0.0.1", tls_server.port, ssl=ctx) as c:
            assert await c.ping(b"still serving") == b"still serving"
    run(main())


def test_tls_client_on_a_plain_port_is_told_so(pki: Path, server: ServerInfo) -> None:
    """A TLS client pointed at a plain hiscored gets UNAVAILABLE saying the server does not speak
    TLS (it was ssl.SSLError WRONG_VERSION_NUMBER)."""
    async def main() -> None:
        ctx = hiscore.tls_context(ca_file=str(pki / "ca.pem"))
        with pytest.raises(hiscore.Unavailable, match="did not answer with TLS.*--tls-cert") as raised:
            await hiscore.AsyncClient.connect(server.host, server.port, timeout=10, ssl=ctx)
        assert isinstance(raised.value.__cause__, ssl.SSLError)
    run(main())


def test_client_certificate_required(pki: Path, mtls_server: ServerInfo) -> None:
    b = unique()

    async def main() -> None:
        anonymous = hiscore.tls_context(ca_file=str(pki / "ca.pem"))
        with pytest.raises((ssl.SSLError, hiscore.ConnectionLost, ConnectionError)):
            c = await hiscore.AsyncClient.connect("127.0.0.1", mtls_server.port, timeout=10,
                                                  ssl=anonymous)
            await c.submit(b, "anonymous", 1)  # TLS 1.3: refused right after the handshake
        ctx = hiscore.tls_context(ca_file=str(pki / "ca.pem"), cert_file=str(pki / "client.pem"),
                                  key_file=str(pki / "client.key"))
        async with await hiscore.AsyncClient.connect("127.0.0.1", mtls_server.port, ssl=ctx) as c:
            assert (await c.submit(b, "alice", 7)).entry.rank == 1
    run(main())


def test_bad_certificate_file_stops_the_server(pki: Path, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    proc = subprocess.run(
        [str(_binary(tmp_path)), "--host", "127.0.0.1", "--port", "0", "--admin-port=-1",
         "--durability", "memory", "--data-dir", str(tmp_path / "data"),
         "--tls-cert", str(missing), "--tls-key", str(pki / "server.key")],
        capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert str(missing) in proc.stderr


def test_ssl_option_is_checked() -> None:
    async def main() -> None:
        with pytest.raises(TypeError):
            await hiscore.AsyncClient.connect("127.0.0.1", 1, ssl="yes")  # type: ignore[arg-type]
        with pytest.raises(ValueError):
            await hiscore.AsyncClient.connect("127.0.0.1", 1, server_hostname="x")
    run(main())
