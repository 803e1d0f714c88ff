"""HttpClientPool against real servers: reuse, limits, timeouts, failures, TLS."""

from __future__ import annotations

import asyncio
import shutil
import socket
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from support.certificates import make_certificates

from pystatefun.http import (
    HttpBodyTooLargeError,
    HttpClientPool,
    HttpConnectError,
    HttpConnectionClosedError,
    HttpProtocolError,
    HttpRequest,
    HttpResponse,
    HttpTimeoutError,
)

# A broken server or pool must fail a test quickly, not hang it.
pytestmark = pytest.mark.timeout(30)

LIMITS: dict[str, Any] = {
    "connect_timeout_s": 5.0,
    "read_timeout_s": 5.0,
    "total_timeout_s": 10.0,
    "max_body_bytes": 1 << 20,
}


@asynccontextmanager
async def pool_for(port: int, **options: Any) -> AsyncIterator[HttpClientPool]:
    settings = {"pool_size": 4, "keepalive_s": 30.0, **options}
    pool = HttpClientPool("127.0.0.1", port, **settings)
    try:
        yield pool
    finally:
        await pool.close()


async def _get(pool: HttpClientPool, body: bytes = b"", **limits: Any) -> HttpResponse:
    return await pool.request("POST", "/p?q=1", body, {"X-A": "1"}, **{**LIMITS, **limits})


@asynccontextmanager
async def raw_server(
    answer: Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]],
) -> AsyncIterator[tuple[int, list[int]]]:
    """A server that runs ``answer`` per connection; yields its port and a list that counts
    the connections it accepted."""
    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(1)
        try:
            await answer(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1], accepted
    finally:
        server.close()
        await server.wait_closed()


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return head + await reader.readexactly(length)


async def test_a_request_and_its_response(serve: Any) -> None:
    async with serve() as server, pool_for(server.port) as pool:
        response = await _get(pool, b"payload")
    assert (response.status, response.body) == (200, b"payload")
    assert response.headers["x-path"] == "/p"
    assert response.headers["x-query"] == "q=1"
    assert response.headers["x-header-names"] == "content-length,host,x-a"


async def test_connections_are_reused(serve: Any) -> None:
    async with serve() as server, pool_for(server.port) as pool:
        for n in range(5):
            assert (await _get(pool, b"%d" % n)).body == b"%d" % n
        assert server.statistics()["accepted"] == 1
        assert pool.statistics() == {"open": 1, "idle": 1, "waiting": 0, "opened": 1}


async def test_keepalive_0_opens_a_connection_per_request(serve: Any, echo: Any) -> None:
    headers: list[dict[str, str]] = []

    async def handler(request: HttpRequest) -> HttpResponse:
        headers.append(request.headers)
        return await echo(request)

    async with serve(handler) as server, pool_for(server.port, keepalive_s=0) as pool:
        for _ in range(3):
            await _get(pool)
        assert server.statistics()["accepted"] == 3
        assert pool.statistics()["open"] == 0
    assert all(h["connection"] == "close" for h in headers)


async def test_idle_connections_expire_after_keepalive(serve: Any) -> None:
    async with serve() as server, pool_for(server.port, keepalive_s=0.01) as pool:
        await _get(pool)
        expired = asyncio.get_running_loop().time() + 0.02
        while asyncio.get_running_loop().time() < expired:  # past keepalive_s, by the clock
            await asyncio.sleep(0.01)
        await _get(pool)
        assert server.statistics()["accepted"] == 2


async def test_the_pool_never_opens_more_than_pool_size(serve: Any) -> None:
    entered = asyncio.Semaphore(0)
    release = asyncio.Event()
    running = [0, 0]  # now, peak

    async def handler(request: HttpRequest) -> HttpResponse:
        running[0] += 1
        running[1] = max(running)
        entered.release()
        await release.wait()
        running[0] -= 1
        return HttpResponse(200, request.body)

    async with serve(handler) as server, pool_for(server.port, pool_size=2) as pool:
        calls = [asyncio.create_task(_get(pool, b"%d" % n)) for n in range(6)]
        for _ in range(2):
            await entered.acquire()
        assert pool.statistics()["waiting"] == 4
        release.set()
        bodies = [(await call).body for call in calls]
        assert bodies == [b"%d" % n for n in range(6)]
        assert (server.statistics()["accepted"], running[1]) == (2, 2)


async def test_waiting_for_a_free_connection_is_bounded_by_the_total_timeout(
    serve: Any,
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        entered.set()
        await release.wait()
        return HttpResponse(200)

    async with serve(handler) as server, pool_for(server.port, pool_size=1) as pool:
        first = asyncio.create_task(_get(pool))
        await entered.wait()
        with pytest.raises(HttpTimeoutError, match=r"all 1 are busy \(pool_size\)"):
            await _get(pool, total_timeout_s=0.05)
        assert pool.statistics()["waiting"] == 0
        release.set()
        assert (await first).status == 200
        assert (await _get(pool)).status == 200  # the slot was not lost


@pytest.mark.parametrize(
    ("limits", "says"),
    [
        ({"read_timeout_s": 0.05}, "Timeout on reading data from socket: nothing for 0.05s"),
        ({"read_timeout_s": None, "total_timeout_s": 0.05}, "no complete response within 0.05s"),
    ],
    ids=["read", "total"],
)
async def test_a_server_that_never_answers_times_out(
    serve: Any, limits: dict[str, Any], says: str
) -> None:
    entered = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        entered.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async with serve(handler) as server, pool_for(server.port) as pool:
        with pytest.raises(HttpTimeoutError, match=says) as caught:
            await _get(pool, **limits)
        assert entered.is_set()
        assert isinstance(caught.value, TimeoutError)
        assert pool.statistics()["open"] == 0  # a timed-out connection is not reused


async def test_the_read_timeout_is_a_silence_not_a_total() -> None:
    async def trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n")
        for byte in b"slow!":  # 5 x 40 ms: longer than the read timeout, each gap shorter
            await asyncio.sleep(0.04)
            writer.write(bytes([byte]))
            await writer.drain()

    async with raw_server(trickle) as (port, _), pool_for(port) as pool:
        response = await _get(pool, read_timeout_s=0.15)
    assert response.body == b"slow!"


async def test_nothing_listening_is_a_connect_error() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nobody listens there
    async with pool_for(port) as pool:
        with pytest.raises(HttpConnectError, match=f"Cannot connect to host 127.0.0.1:{port}"):
            await _get(pool)
        assert pool.statistics()["open"] == 0


async def test_a_connect_that_hangs_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()
    if not isinstance(loop, asyncio.BaseEventLoop):
        pytest.skip("uvloop's loop methods cannot be replaced")

    async def hang(*args: object, **kwargs: object) -> Any:
        await asyncio.Event().wait()

    monkeypatch.setattr(loop, "create_connection", hang)
    async with pool_for(1) as pool:
        with pytest.raises(HttpTimeoutError, match="not connected within 0.05s"):
            await _get(pool, connect_timeout_s=0.05)
        assert pool.statistics()["open"] == 0


async def test_a_closed_idle_connection_is_replaced_not_reused() -> None:
    """The server answers, then closes the kept-alive connection; the next request must go
    over a new one (and succeed), not fail on the dead one."""
    closed = asyncio.Event()

    async def answer_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()
        await writer.wait_closed()
        closed.set()

    async with raw_server(answer_once) as (port, accepted), pool_for(port) as pool:
        assert (await _get(pool)).body == b"ok"
        await closed.wait()
        while pool.statistics()["idle"]:  # the client reads the close on its next turn
            await asyncio.sleep(0)
        assert (await _get(pool)).body == b"ok"
        assert len(accepted) == 2


async def test_a_connection_found_closed_before_sending_is_retried_on_a_fresh_one(
    serve: Any,
) -> None:
    async with serve() as server, pool_for(server.port) as pool:
        await _get(pool)
        [idle] = pool._idle  # white box: close it under the pool, as a dying peer would
        assert idle._transport is not None
        idle._transport.close()
        assert (await _get(pool, b"again")).body == b"again"
        assert server.statistics()["accepted"] == 2


async def test_a_server_that_hangs_up_mid_request_is_not_retried() -> None:
    requests: list[bytes] = []

    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await _read_request(reader))

    async with raw_server(hang_up) as (port, accepted), pool_for(port) as pool:
        with pytest.raises(HttpConnectionClosedError, match="Server disconnected"):
            await _get(pool)
    assert (len(requests), len(accepted)) == (1, 1)


@pytest.mark.parametrize(
    ("reply", "error", "says"),
    [
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\n\r\n",
            HttpBodyTooLargeError,
            r"HTTP 200 response body exceeds 10 bytes \(Content-Length is 11\)",
        ),
        (
            b"HTTP/1.1 503 No\r\nTransfer-Encoding: chunked\r\n\r\n8\r\n12345678\r\n8\r\nabcdefgh",
            HttpBodyTooLargeError,
            "HTTP 503 response body exceeds 10 bytes",
        ),
        (b"SMTP ready\r\n\r\n", HttpProtocolError, "malformed HTTP response"),
    ],
    ids=["content-length", "chunked", "not-http"],
)
async def test_a_response_that_cannot_be_taken_is_an_error(
    reply: bytes, error: type[Exception], says: str
) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(reply)
        await writer.drain()
        await reader.read()  # until the client gives up the connection

    async with raw_server(answer) as (port, _), pool_for(port) as pool:
        with pytest.raises(error, match=says):
            await _get(pool, max_body_bytes=10)
        assert pool.statistics()["open"] == 0


async def test_a_body_delimited_by_the_end_of_the_connection() -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end")

    async with raw_server(answer) as (port, _), pool_for(port) as pool:
        response = await _get(pool)
        assert response.body == b"until the end"
        assert pool.statistics()["open"] == 0


@pytest.mark.parametrize(
    ("path", "headers"),
    [("/a HTTP/1.1\r\nX-Smuggled: 1\r\n\r\nGET /b", {}), ("/", {"X-A": "1\r\nX-B: 2"})],
    ids=["path", "header"],
)
async def test_a_line_break_in_the_request_is_refused_before_sending(
    serve: Any, path: str, headers: dict[str, str]
) -> None:
    async with serve() as server, pool_for(server.port) as pool:
        with pytest.raises(ValueError, match="a line break"):
            await pool.request("GET", path, b"", headers, **LIMITS)
        assert server.statistics()["accepted"] == 0


async def test_cancelling_a_request_frees_its_connection(serve: Any) -> None:
    entered = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.body == b"stuck":
            entered.set()
            await asyncio.Event().wait()
        return HttpResponse(200, request.body)

    async with serve(handler) as server, pool_for(server.port, pool_size=1) as pool:
        stuck = asyncio.create_task(_get(pool, b"stuck"))
        await entered.wait()
        stuck.cancel()
        with pytest.raises(asyncio.CancelledError):
            await stuck
        assert (await _get(pool, b"next")).body == b"next"


async def test_close_closes_idle_connections(serve: Any) -> None:
    async with serve() as server:
        pool = HttpClientPool("127.0.0.1", server.port, pool_size=2, keepalive_s=30)
        await _get(pool)
        assert server.statistics()["open"] == 1
        await pool.close()
        while server.statistics()["open"]:  # the server reads the close on its next turn
            await asyncio.sleep(0)
        assert pool.statistics()["open"] == 0


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl CLI")
    path = tmp_path_factory.mktemp("tls")
    make_certificates(path)
    return path


async def test_tls_with_a_trusted_ca_and_a_client_certificate(
    serve: Any, certificates: Path
) -> None:
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certificates / "ca.pem")
    server_tls.load_cert_chain(certificates / "server.pem", certificates / "server.key")
    server_tls.verify_mode = ssl.CERT_REQUIRED
    client_tls = ssl.create_default_context(cafile=certificates / "ca.pem")
    client_tls.load_cert_chain(certificates / "client.pem", certificates / "client.key")
    async with serve(ssl_context=server_tls) as server:
        async with pool_for(server.port, ssl_context=client_tls) as pool:
            assert (await _get(pool, b"secret")).body == b"secret"
            assert (await _get(pool, b"again")).body == b"again"
            assert server.statistics()["accepted"] == 1
        async with pool_for(server.port, ssl_context=ssl.create_default_context()) as untrusting:
            with pytest.raises(HttpConnectError, match="CERTIFICATE_VERIFY_FAILED"):
                await _get(untrusting)
