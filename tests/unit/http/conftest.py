"""Every test here runs on both event loops the runtime may use: asyncio's and uvloop's.

Fixtures: ``serve`` (an HttpServer on 127.0.0.1, stopped at the end), ``echo`` (a handler that
answers with what it got) and ``raw`` (a byte-level client, to test the wire itself)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any

import pytest

from pystatefun.http import HttpRequest, HttpResponse, HttpServer

Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Callable[[], asyncio.AbstractEventLoop]]:
    factories: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {
        "asyncio": asyncio.new_event_loop
    }
    try:
        import uvloop
    except ImportError:
        return factories
    factories["uvloop"] = uvloop.new_event_loop
    return factories


async def _echo(request: HttpRequest) -> HttpResponse:
    """Answers with what it got: the body, and the request line and headers in headers."""
    return HttpResponse(
        200,
        request.body,
        {
            "Content-Type": "application/octet-stream",
            "X-Method": request.method,
            "X-Path": request.path,
            "X-Query": request.query,
            "X-Header-Names": ",".join(sorted(request.headers)),
        },
    )


@asynccontextmanager
async def _serving(
    handler: Handler = _echo, max_body_bytes: int = 1 << 20, **options: Any
) -> AsyncIterator[HttpServer]:
    """An HttpServer on 127.0.0.1 (or on ``path=``), stopped at the end."""
    start = {k: options.pop(k) for k in ("path", "ssl_context") if k in options}
    server = HttpServer(handler, max_body_bytes=max_body_bytes, **options)
    await server.start("127.0.0.1", 0, **start)
    try:
        yield server
    finally:
        await server.stop(1.0)


class RawClient:
    """A client that writes bytes as given and reads what comes back, to test the server's
    handling of the wire itself (pipelining, malformed requests, framing)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def connect(cls, port: int) -> RawClient:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        return cls(reader, writer)

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    async def response(self) -> tuple[int, dict[str, str], bytes]:
        """One response: status, headers (lower-case names), body (by Content-Length)."""
        head = await self.reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")[:-2]
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        length = int(headers.get("content-length", "0"))
        body = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), headers, body

    async def at_eof(self) -> bool:
        """True once the server closed the connection (reads until then)."""
        return await self.reader.read() == b""

    async def close(self) -> None:
        self.writer.close()
        with suppress(ConnectionError):
            await self.writer.wait_closed()


@pytest.fixture
def echo() -> Handler:
    return _echo


@pytest.fixture
def serve() -> Callable[..., Any]:
    """``async with serve(handler, max_body_bytes=..., path=..., ssl_context=...) as server``."""
    return _serving


@pytest.fixture
async def raw() -> AsyncIterator[Callable[[int], Awaitable[RawClient]]]:
    """``client = await raw(port)``: a byte-level connection to the server, closed at the end."""
    clients: list[RawClient] = []

    async def connect(port: int) -> RawClient:
        client = await RawClient.connect(port)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()
