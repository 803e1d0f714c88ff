"""HttpLimits on real sockets: head size and header count (431, 414), slow heads and bodies
(408), open connections (503), on fresh and kept-alive connections, with what each counts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import pytest

from pystatefun.http import HttpLimits, HttpRequest, HttpResponse, HttpServer

pytestmark = pytest.mark.timeout(30)

# Bounds every wait on the server: a limit that does not hold fails the test, never hangs it.
_WAIT_S = 10.0


def _head(*headers: str, target: str = "/", length: int | None = 0) -> bytes:
    framing = "" if length is None else f"Content-Length: {length}\r\n"
    lines = "".join(f"{h}\r\n" for h in headers)
    return f"POST {target} HTTP/1.1\r\nHost: t\r\n{framing}{lines}\r\n".encode("latin-1")


def _headers(count: int) -> list[str]:
    return [f"X-Field-{i}: v" for i in range(count)]


async def _answer(client: Any) -> tuple[int, dict[str, str], bytes]:
    status, headers, body = await asyncio.wait_for(client.response(), _WAIT_S)
    return int(status), headers, body


async def _closed(client: Any) -> bool:
    return bool(await asyncio.wait_for(client.at_eof(), _WAIT_S))


async def _until(condition: Callable[[], bool]) -> None:
    """Wait (yielding to the loop) until the server's state says so; bounded."""

    async def poll() -> None:
        while not condition():
            await asyncio.sleep(0)

    await asyncio.wait_for(poll(), _WAIT_S)


def test_limits_refuse_values_that_are_not_positive() -> None:
    with pytest.raises(ValueError, match=r"max_headers must be positive, got 0.*give positive"):
        HttpLimits(max_headers=0)
    with pytest.raises(ValueError, match="head_timeout_s must be positive, got -1"):
        HttpLimits(head_timeout_s=-1)


async def test_5000_headers_get_431_naming_the_limit(serve: Any, raw: Any) -> None:
    async with serve() as server:  # the default limits
        client = await raw(server.port)
        await client.send(_head(*_headers(5000)))
        status, headers, body = await _answer(client)
        assert (status, headers["connection"]) == (431, "close")
        assert body == (
            b"too many header fields: over 100 fields "
            b"(HttpLimits.max_headers; pystatefun run --http-max-headers)\n"
        )
        assert await _closed(client)
        assert server.statistics()["too_many_headers"] == 1


async def test_an_8_mib_header_line_is_refused_long_before_it_is_all_sent(
    serve: Any, raw: Any
) -> None:
    total, piece = 8 * 1024 * 1024, b"a" * 65536
    async with serve() as server:
        client = await raw(server.port)
        answer = asyncio.ensure_future(client.response())
        await client.send(b"GET / HTTP/1.1\r\nHost: t\r\nX-Big: ")
        sent = 0
        while not answer.done() and sent < total:
            await client.send(piece)
            sent += len(piece)
            await asyncio.sleep(0)  # a turn for the server to read, and for the answer
        status, _, body = await asyncio.wait_for(answer, _WAIT_S)
        assert status == 431
        assert body.startswith(b"request head too large: over 65536 bytes")
        assert b"--http-max-head-bytes" in body
        # Answered by its first MiB at the latest: the server held at most the limit and a read.
        assert sent <= 1024 * 1024, sent
        assert await _closed(client)
        assert server.statistics()["head_too_large"] == 1


async def test_a_head_at_the_limit_is_served_and_one_byte_more_is_431(serve: Any, raw: Any) -> None:
    # Counted: the target, and each header's name and value with 4 bytes for ": " and CR LF.
    fixed = len("/") + len("Host") + len("t") + 4 + len("Content-Length") + len("0") + 4
    value = "v" * (200 - fixed - len("X") - 4)
    async with serve(limits=HttpLimits(max_head_bytes=200)) as server:
        fits = await raw(server.port)
        await fits.send(_head(f"X: {value}"))
        assert (await _answer(fits))[0] == 200
        over = await raw(server.port)
        await over.send(_head(f"X: {value}v"))
        status, _, body = await _answer(over)
        assert (status, body.split(b"(")[0]) == (431, b"request head too large: over 200 bytes ")


async def test_a_url_over_the_head_limit_gets_414(serve: Any, raw: Any) -> None:
    async with serve(limits=HttpLimits(max_head_bytes=1000)) as server:
        client = await raw(server.port)
        await client.send(_head(target="/" + "a" * 1000))
        status, _, body = await _answer(client)
        assert status == 414
        assert body.startswith(b"request target too long: over 1000 bytes (HttpLimits.max_head")
        assert await _closed(client)
        assert server.statistics()["url_too_long"] == 1


async def test_a_head_sent_byte_by_byte_past_the_head_timeout_gets_408(
    serve: Any, raw: Any
) -> None:
    limit_s = 0.3
    head = _head(*_headers(10))
    async with serve(limits=HttpLimits(head_timeout_s=limit_s)) as server:
        client = await raw(server.port)
        loop = asyncio.get_running_loop()
        answer = asyncio.ensure_future(client.response())
        started, sent = loop.time(), 0
        while not answer.done() and sent < len(head):
            await client.send(head[sent : sent + 1])
            sent += 1
            # A byte every 20 ms: the whole head would take seconds. Each byte is progress,
            # yet the head's clock runs from its first byte.
            await asyncio.wait([answer], timeout=0.02)
        status, _, body = await asyncio.wait_for(answer, _WAIT_S)
        elapsed = loop.time() - started
        assert sent < len(head)
        assert status == 408
        assert body.startswith(b"request head too slow: not complete within 0.3 s")
        assert b"--http-head-timeout" in body
        assert limit_s - 0.01 <= elapsed < limit_s + 5, elapsed
        assert await _closed(client)
        assert server.statistics()["head_timeouts"] == 1


async def test_a_body_that_stalls_gets_408(serve: Any, raw: Any) -> None:
    async with serve(limits=HttpLimits(body_timeout_s=0.2)) as server:
        client = await raw(server.port)
        await client.send(_head(length=10) + b"abc")
        status, _, body = await _answer(client)
        assert status == 408
        assert body.startswith(b"request body too slow: no data for 0.2 s")
        assert await _closed(client)
        assert server.statistics()["body_timeouts"] == 1


async def test_a_body_that_keeps_coming_is_not_timed_out(serve: Any, raw: Any) -> None:
    # The body takes longer than both timeouts, but it is never silent for body_timeout_s, and
    # the head's clock stopped when the head was complete.
    limits = HttpLimits(head_timeout_s=0.3, body_timeout_s=1.0)
    async with serve(limits=limits) as server:
        client = await raw(server.port)
        await client.send(_head(length=12))
        for piece in (b"ab", b"cd", b"ef", b"gh", b"ij", b"kl"):
            await asyncio.sleep(0.1)  # the client is slow: that is the point
            await client.send(piece)
        assert (await _answer(client))[::2] == (200, b"abcdefghijkl")
        stats = server.statistics()
        assert (stats["head_timeouts"], stats["body_timeouts"]) == (0, 0)


async def test_limits_hold_for_every_request_of_a_kept_alive_connection(
    serve: Any, raw: Any
) -> None:
    async with serve(limits=HttpLimits(max_headers=10, head_timeout_s=0.2)) as server:
        client = await raw(server.port)
        for _ in range(3):  # 8 + Host + Content-Length: at the limit, on every request
            await client.send(_head(*_headers(8)))
            assert (await _answer(client))[0] == 200
        await client.send(_head(*_headers(9)))
        assert (await _answer(client))[0] == 431
        assert await _closed(client)
        slow = await raw(server.port)
        await slow.send(_head())
        assert (await _answer(slow))[0] == 200
        await slow.send(b"POST / HTTP/1.1\r\nHost:")  # the second request's head stalls
        assert (await _answer(slow))[0] == 408
        assert await _closed(slow)


async def test_a_head_waiting_behind_a_slow_answer_is_not_timed_out(raw: Any) -> None:
    release = asyncio.Event()

    async def handler(request: HttpRequest) -> HttpResponse:
        if request.body == b"slow":
            await release.wait()
        return HttpResponse(200, request.body)

    server = HttpServer(handler, max_body_bytes=100, limits=HttpLimits(head_timeout_s=0.2))
    await server.start("127.0.0.1", 0)
    try:
        client = await raw(server.port)
        # Pipelined: the second head is incomplete while the first request is being answered.
        await client.send(_head(length=4) + b"slow" + b"POST / HTTP/1.1\r\n")
        await asyncio.sleep(0.5)  # longer than the head timeout, all of it the server's time
        release.set()
        assert (await _answer(client))[::2] == (200, b"slow")
        await client.send(b"Host: t\r\nContent-Length: 4\r\n\r\nnext")
        assert (await _answer(client))[::2] == (200, b"next")
    finally:
        await server.stop(1.0)


async def test_connections_over_the_limit_get_503_until_one_closes(
    serve: Any, raw: Any, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve(limits=HttpLimits(max_connections=3)) as server:
        clients = [await raw(server.port) for _ in range(3)]
        for client in clients:  # each is accepted and served
            await client.send(_head())
            assert (await _answer(client))[0] == 200
        with caplog.at_level(logging.WARNING, "pystatefun.http"):
            for _ in range(4):
                refused = await raw(server.port)
                status, headers, body = await _answer(refused)
                assert (status, headers["retry-after"], headers["connection"]) == (
                    503,
                    "1",
                    "close",
                )
                assert body.startswith(b"too many connections: at 3 open (HttpLimits.max_con")
                assert await _closed(refused)
        stats = server.statistics()
        assert (stats["open"], stats["refused_connections"]) == (3, 4)
        # Logged once, not once per connection; the others are counted into the next line.
        [record] = [r for r in caplog.records if "refused" in r.getMessage()]
        assert "refused 1 connection(s)" in record.getMessage()
        await clients[0].close()
        await _until(lambda: server.statistics()["open"] == 2)
        again = await raw(server.port)
        await again.send(_head())
        assert (await _answer(again))[0] == 200


async def test_a_refusal_reaches_a_client_that_is_still_sending(serve: Any, raw: Any) -> None:
    # Closing with the body unread would reset the connection, and the client could lose the
    # 413: the server half-closes and drains instead.
    async with serve(max_body_bytes=1000) as server:
        client = await raw(server.port)
        answer = asyncio.ensure_future(client.response())
        await client.send(_head(length=4 * 1024 * 1024))
        while not answer.done():
            await client.send(b"x" * 65536)
            await asyncio.sleep(0)
        status, _, body = await asyncio.wait_for(answer, _WAIT_S)
        assert (status, body) == (413, b"a body of 4194304 bytes exceeds the limit of 1000 bytes\n")
        assert await _closed(client)
        assert server.statistics()["body_too_large"] == 1
