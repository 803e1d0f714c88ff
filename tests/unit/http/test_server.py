"""HttpServer on real sockets: framing, keep-alive, ordering, limits, errors and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from pathlib import Path
from typing import Any

import pytest

from pystatefun.http import HttpClientPool, HttpRequest, HttpResponse, HttpServer

# A broken server or pool must fail a test quickly, not hang it.
pytestmark = pytest.mark.timeout(30)


def _post(path: str, body: bytes, *headers: str, version: str = "1.1") -> bytes:
    extra = "".join(f"{h}\r\n" for h in headers)
    head = f"POST {path} HTTP/{version}\r\nHost: t\r\nContent-Length: {len(body)}\r\n{extra}\r\n"
    return head.encode() + body


async def test_a_request_reaches_the_handler_whole(serve: Any, echo: Any, raw: Any) -> None:
    seen: list[HttpRequest] = []

    async def handler(request: HttpRequest) -> HttpResponse:
        seen.append(request)
        return await echo(request)

    async with serve(handler) as server:
        assert server.port > 0  # port 0 asked: the bound one is known
        client = await raw(server.port)
        await client.send(_post("/a%20b/c?x=1&y=2", b"hello", "X-Thing: One", "x-thing: two"))
        status, headers, body = await client.response()
    assert (status, body, headers["content-length"]) == (200, b"hello", "5")
    [request] = seen
    assert (request.method, request.path, request.query) == ("POST", "/a%20b/c", "x=1&y=2")
    assert request.headers["x-thing"] == "One, two"  # names lower-cased, repeats joined
    assert request.headers["content-length"] == "5"


async def test_an_absolute_form_target_keeps_its_path_and_query(serve: Any, raw: Any) -> None:
    async with serve() as server:
        client = await raw(server.port)
        await client.send(_post("http://example.com/a/b?c=d", b""))
        _, headers, _ = await client.response()
    assert (headers["x-path"], headers["x-query"]) == ("/a/b", "c=d")


async def test_keep_alive_answers_in_order_on_one_connection(serve: Any, raw: Any) -> None:
    async with serve() as server:
        client = await raw(server.port)
        for body in (b"one", b"two", b"three"):
            await client.send(_post("/", body))
            assert (await client.response())[2] == body
        stats = server.statistics()
        assert (stats["open"], stats["accepted"]) == (1, 1)


async def test_pipelined_requests_wait_for_the_one_in_progress(serve: Any, raw: Any) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    running: list[bytes] = []

    async def handler(request: HttpRequest) -> HttpResponse:
        running.append(request.body)
        assert len(running) == 1, "two requests of one connection ran at once"
        if request.body == b"first":
            entered.set()
            await release.wait()
        running.remove(request.body)
        return HttpResponse(200, request.body)

    async with serve(handler) as server:
        client = await raw(server.port)
        await client.send(_post("/", b"first") + _post("/", b"second"))  # one read
        await entered.wait()
        await client.send(_post("/", b"third"))  # another read, while "first" runs
        [connection] = server._connections  # white box: wait until the server read it
        while not connection._paused:  # it stops reading until "first" is answered
            await asyncio.sleep(0)
        await asyncio.sleep(0)  # a turn for anything (wrongly) started by that read
        release.set()
        answers = [(await client.response())[2] for _ in range(3)]
    assert answers == [b"first", b"second", b"third"]


@pytest.mark.parametrize(
    ("request_bytes", "close_header"),
    [
        (_post("/", b"x", "Connection: close"), True),
        (_post("/", b"x", version="1.0"), True),
        (_post("/", b"x", "Connection: keep-alive", version="1.0"), True),
    ],
    ids=["connection-close", "http-1.0", "http-1.0-keep-alive"],
)
async def test_the_server_closes_when_asked_and_for_http_1_0(
    serve: Any, raw: Any, request_bytes: bytes, close_header: bool
) -> None:
    async with serve() as server:
        client = await raw(server.port)
        await client.send(request_bytes)
        status, headers, body = await client.response()
        assert (status, body, headers.get("connection")) == (200, b"x", "close")
        assert await client.at_eof()


async def test_a_body_over_the_limit_by_content_length_is_refused_unread(
    serve: Any, raw: Any
) -> None:
    calls: list[HttpRequest] = []
    sizes: list[int | None] = []

    async def handler(request: HttpRequest) -> HttpResponse:
        calls.append(request)
        return HttpResponse(200)

    def too_large(request: HttpRequest, size: int | None) -> HttpResponse:
        sizes.append(size)
        return HttpResponse(413, f"{request.path} is too big".encode())

    async with serve(handler, max_body_bytes=10, too_large=too_large) as server:
        client = await raw(server.port)
        # Only the head is sent: the answer must not wait for a body it will not read.
        await client.send(b"POST /big HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\n\r\n")
        assert await client.response() == (
            413,
            {"content-length": "15", "connection": "close"},
            b"/big is too big",
        )
        assert await client.at_eof()
        exact = await raw(server.port)
        await exact.send(_post("/", b"x" * 10))  # at the limit: fine
        assert (await exact.response())[0] == 200
    assert (len(calls), sizes) == (1, [11])


async def test_a_chunked_body_is_counted_as_it_arrives(serve: Any, raw: Any) -> None:
    async with serve(max_body_bytes=10) as server:
        client = await raw(server.port)
        head = b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        await client.send(head + b"6\r\nabcdef\r\n6\r\nghijkl\r\n")  # 12 bytes, no end yet
        status, _, body = await client.response()
        assert (status, body) == (413, b"a chunked body exceeds the limit of 10 bytes\n")
        assert await client.at_eof()
        within = await raw(server.port)
        await within.send(head + b"5\r\nabcde\r\n5\r\nfghij\r\n0\r\n\r\n")
        assert (await within.response())[::2] == (200, b"abcdefghij")


async def test_a_malformed_request_gets_400_and_the_connection_closes(serve: Any, raw: Any) -> None:
    async with serve() as server:
        client = await raw(server.port)
        await client.send(b"GARBAGE\x00 / HTTP/1.1\r\n\r\n")
        status, _, body = await client.response()
        assert (status, body.startswith(b"malformed HTTP request")) == (400, True)
        assert await client.at_eof()


async def test_a_client_that_half_closes_is_answered_then_closed(serve: Any, raw: Any) -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        await asyncio.sleep(0)  # the half-close arrives while the handler waits
        return HttpResponse(200, request.body)

    async with serve(handler) as server:
        client = await raw(server.port)
        await client.send(_post("/", b"one") + _post("/", b"two"))
        client.writer.write_eof()  # as `nc -N` does: all sent, now waiting for the answers
        first, second = await client.response(), await client.response()
        assert (first[0], first[2], first[1].get("connection")) == (200, b"one", None)
        assert (second[0], second[2], second[1].get("connection")) == (200, b"two", "close")
        assert await client.at_eof()


async def test_a_handler_that_raises_gets_500_and_the_server_carries_on(
    serve: Any, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        if request.body == b"boom":
            raise RuntimeError("it broke")
        return HttpResponse(200, b"fine")

    async with serve(handler) as server:
        client = await raw(server.port)
        with caplog.at_level(logging.ERROR, "pystatefun.http"):
            await client.send(_post("/", b"boom"))
            assert (await client.response())[::2] == (500, b"RuntimeError: it broke\n")
        assert "the handler raised" in caplog.text
        assert "it broke" in caplog.text  # with the traceback
        await client.send(_post("/", b"again"))  # the same connection still serves
        assert (await client.response())[::2] == (200, b"fine")


async def test_a_header_that_would_split_the_response_is_a_500(serve: Any, raw: Any) -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, b"", {"X-Evil": "a\r\nSet-Cookie: stolen=1"})

    async with serve(handler) as server:
        client = await raw(server.port)
        await client.send(_post("/", b""))
        status, headers, body = await client.response()
    assert (status, "set-cookie" in headers) == (500, False)
    assert body.startswith(b"invalid response: a header holds a line break")


async def test_head_is_passed_on_and_answered_without_a_body(serve: Any, raw: Any) -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, f"{request.method} body".encode())

    async with serve(handler) as server:
        client = await raw(server.port)
        await client.send(b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n")
        head = await client.reader.readuntil(b"\r\n\r\n")
        assert b"Content-Length: 9\r\n" in head  # the length of the body it leaves out
        await client.send(_post("/", b""))  # the next answer starts right after the head
        assert (await client.response())[::2] == (200, b"POST body")


async def test_expect_100_continue_is_answered_before_the_body(serve: Any, raw: Any) -> None:
    async with serve() as server:
        client = await raw(server.port)
        await client.send(
            b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        assert await client.reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        await client.send(b"body")
        assert (await client.response())[::2] == (200, b"body")


async def test_statuses_without_a_body_have_no_content_length(serve: Any, raw: Any) -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(204, b"ignored")

    async with serve(handler) as server:
        client = await raw(server.port)
        await client.send(_post("/", b"") + _post("/", b""))
        assert await client.response() == (204, {}, b"")
        assert await client.response() == (204, {}, b"")  # framing intact


async def test_stop_lets_a_request_in_progress_finish_and_closes_idle_ones(
    echo: Any, raw: Any
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.body == b"slow":
            entered.set()
            await release.wait()
        return HttpResponse(200, request.body)

    server = HttpServer(handler, max_body_bytes=100)
    await server.start("127.0.0.1", 0)
    idle = await raw(server.port)
    await idle.send(_post("/", b"warm"))
    assert (await idle.response())[2] == b"warm"
    busy = await raw(server.port)
    await busy.send(_post("/", b"slow"))
    await entered.wait()
    stopping = asyncio.create_task(server.stop(30.0))
    assert await idle.at_eof()  # the idle keep-alive connection is closed at once
    with pytest.raises(ConnectionRefusedError):  # and nothing new is accepted
        await asyncio.open_connection("127.0.0.1", server.port)
    assert not stopping.done()
    release.set()
    status, headers, body = await busy.response()
    assert (status, body, headers.get("connection")) == (200, b"slow", "close")
    await stopping
    assert server.statistics()["open"] == 0


async def test_stop_waits_for_a_request_whose_body_is_still_coming(serve: Any, raw: Any) -> None:
    async with serve() as server:
        client = await raw(server.port)
        await client.send(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\n\r\nha")
        [connection] = server._connections  # white box: wait until the server read the head
        while connection.idle:
            await asyncio.sleep(0)
        stopping = asyncio.create_task(server.stop(30.0))
        await client.send(b"lf")
        status, headers, body = await client.response()
        assert (status, body, headers.get("connection")) == (200, b"half", "close")
        await stopping


async def test_stop_closes_what_is_still_busy_after_the_timeout(raw: Any) -> None:
    entered = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        entered.set()
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    server = HttpServer(handler, max_body_bytes=100)
    await server.start("127.0.0.1", 0)
    client = await raw(server.port)
    await client.send(_post("/", b"x"))
    await entered.wait()
    await server.stop(0.05)
    assert server.statistics()["open"] == 0
    with contextlib.suppress(ConnectionResetError):  # an aborted connection may reset
        assert await client.reader.read() == b""


async def test_a_port_in_use_raises_oserror() -> None:
    async def handler(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200)

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = HttpServer(handler, max_body_bytes=1)
        with pytest.raises(OSError, match="in use"):
            await server.start("127.0.0.1", taken.getsockname()[1])


async def test_idle_connections_are_closed_after_the_idle_timeout(serve: Any, raw: Any) -> None:
    async with serve(idle_timeout_s=0.05) as server:
        client = await raw(server.port)
        await client.send(_post("/", b"x"))
        assert (await client.response())[2] == b"x"
        assert await client.at_eof()


async def test_a_unix_socket_server(serve: Any, tmp_path: Path) -> None:
    path = str(tmp_path / "s.sock")
    async with serve(path=path) as server:
        pool = HttpClientPool("localhost", 0, unix_path=path, pool_size=1, keepalive_s=5)
        try:
            response = await pool.request(
                "PUT",
                "/over/unix",
                b"data",
                connect_timeout_s=5,
                read_timeout_s=5,
                total_timeout_s=5,
                max_body_bytes=100,
            )
        finally:
            await pool.close()
        assert server.statistics()["accepted"] == 1
    assert (response.status, response.body) == (200, b"data")
    assert (response.headers["x-method"], response.headers["x-path"]) == ("PUT", "/over/unix")
