"""One server-side HTTP/1.1 connection: parse with ``httptools``, answer in order, keep alive.

Reading: a connection reads while no request of its own is being answered. When data arrives
while one is (a client that pipelines), reading pauses until every queued request is answered,
so such a client cannot make the server buffer more than about two socket reads of requests.
Pausing only then keeps the two system calls of a pause off the common path. Answers are
written in request order by one task per burst of requests (``_run``; on Python 3.12+ an eager
task, so a handler that does not wait answers within the read that completed its request). A
refusal (413, 400) is queued like a request, so it is answered after the requests before it,
then the connection closes; input after a refusal is ignored.

Stopping (``shut_down``): an idle connection closes at once; one with a request begun (its head
read) or being answered closes after answering it, with ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import cast, final
from urllib.parse import urlsplit

import httptools

from pystatefun.http._messages import (
    HttpRequest,
    HttpResponse,
    add_header,
    encode_response,
    text_response,
)

__all__ = ["ServerConnection", "Settings"]

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_EAGER = sys.version_info >= (3, 12)


@final
@dataclass(slots=True)
class Settings:
    """What every connection of one server shares."""

    handler: Callable[[HttpRequest], Awaitable[HttpResponse]]
    max_body_bytes: int
    too_large: Callable[[HttpRequest, int | None], HttpResponse] | None
    log: logging.Logger
    connections: set[ServerConnection]
    on_closed: Callable[[], None]
    # Cached: asyncio.get_running_loop() makes a getpid() system call on every call.
    loop: asyncio.AbstractEventLoop


@final
class _RefusedError(Exception):
    """Raised inside a parser callback to stop parsing; carries the answer to send."""

    def __init__(self, response: HttpResponse) -> None:
        super().__init__(response.status)
        self.response = response


def _default_too_large(request: HttpRequest, size: int | None, limit: int) -> HttpResponse:
    described = "a chunked body" if size is None else f"a body of {size} bytes"
    return text_response(413, f"{described} exceeds the limit of {limit} bytes")


@final
class ServerConnection(asyncio.Protocol):
    """The protocol object of one accepted connection (see the module docstring)."""

    __slots__ = (
        "_body",
        "_body_size",
        "_headers",
        "_loop",
        "_parser",
        "_paused",
        "_queue",
        "_refused",
        "_request",
        "_settings",
        "_shutting_down",
        "_task",
        "_transport",
        "_url",
        "last_active",
    )

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop = settings.loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpRequestParser(self)
        self._url = b""
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._request: HttpRequest | None = None
        # Complete requests (with their keep-alive flag) and refusals, in arrival order.
        self._queue: deque[tuple[HttpRequest, bool] | HttpResponse] = deque()
        self._task: asyncio.Task[None] | None = None
        self._paused = False
        self._refused = False  # a refusal is queued: ignore further input
        self._shutting_down = False
        self.last_active = 0.0

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast("asyncio.Transport", transport)
        self._settings.connections.add(self)
        self.last_active = self._loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        # A handler in progress runs to its end (its answer is dropped), as aiohttp's default:
        # cancelling the ingress half-way through accepting a message helps nobody.
        self._queue.clear()
        self._settings.connections.discard(self)
        self._settings.on_closed()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        transport = self._transport
        assert transport is not None
        loop = self._loop
        self.last_active = loop.time()
        if self._task is not None:
            # Pipelined: the client sent more while a handler runs. Stop reading until the
            # queue is answered (pausing costs system calls, so only when it is needed).
            transport.pause_reading()
            self._paused = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Protocol upgrades (WebSocket, h2c) are not served: answer what was asked, then close.
            self._refused = True
            self._queue.append(text_response(400, "protocol upgrades are not supported"))
        except httptools.HttpParserError as exc:
            self._refused = True
            refusal = exc.__context__
            if isinstance(refusal, _RefusedError):
                self._queue.append(refusal.response)
            else:
                self._queue.append(text_response(400, f"malformed HTTP request: {exc}"))
        if self._queue and self._task is None:
            if _EAGER:
                # Python 3.12+: run the handler now, in this call; no loop round trip when it
                # answers without waiting (the task may be done before it is assigned).
                task = asyncio.Task(self._run(), loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
                if not task.done():
                    self._task = task
            else:
                self._task = loop.create_task(self._run())

    # -- httptools callbacks -------------------------------------------------------------------

    def on_url(self, url: bytes) -> None:
        self._url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        add_header(self._headers, name, value)

    def on_headers_complete(self) -> None:
        target = self._url.decode("latin-1")
        if not target.startswith("/") and target != "*":
            # Absolute form (http://host/path?query), as sent to proxies: keep path and query.
            parts = urlsplit(target)
            target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        path, query = target.partition("?")[::2] if "?" in target else (target, "")
        parser = self._parser
        request = HttpRequest(
            parser.get_method().decode("latin-1"),
            path,
            query,
            self._headers,
            b"",
        )
        self._request = request
        limit = self._settings.max_body_bytes
        declared = self._headers.get("content-length")
        if declared is not None and int(declared) > limit:  # llhttp checked it is a number
            raise _RefusedError(self._too_large(request, int(declared)))
        expect = self._headers.get("expect")
        if expect is not None and expect.lower() == "100-continue" and not self.busy:
            assert self._transport is not None
            self._transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._settings.max_body_bytes:
            assert self._request is not None
            raise _RefusedError(self._too_large(self._request, None))
        self._body.append(body)

    def on_message_complete(self) -> None:
        request = self._request
        assert request is not None
        body = self._body
        request.body = body[0] if len(body) == 1 else b"".join(body)
        parser = self._parser
        keep_alive = parser.should_keep_alive()
        if keep_alive and "connection" in request.headers:
            # llhttp keeps an HTTP/1.0 connection alive on "Connection: keep-alive"; this server
            # closes every HTTP/1.0 one (its clients are rare and expect it).
            keep_alive = parser.get_http_version() != "1.0"
        self._queue.append((request, keep_alive))
        # Ready for the next message (no on_message_begin callback: one call less each).
        self._request = None
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0

    # -- answering -----------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A request is being answered, or waits its turn."""
        return self._task is not None or bool(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing to answer, and no request begun (its head received, its body coming)."""
        return not self.busy and self._request is None

    def _too_large(self, request: HttpRequest, size: int | None) -> HttpResponse:
        settings = self._settings
        if settings.too_large is None:
            return _default_too_large(request, size, settings.max_body_bytes)
        return settings.too_large(request, size)

    async def _run(self) -> None:
        """Answer queued requests in order; then read again, or close."""
        transport = self._transport
        assert transport is not None
        try:
            while self._queue:
                item = self._queue.popleft()
                if isinstance(item, HttpResponse):  # a refusal: answer it, then close
                    self._write(transport, item, close=True, head_only=False)
                    transport.close()
                    return
                request, keep_alive = item
                try:
                    response = await self._settings.handler(request)
                except Exception as exc:  # noqa: BLE001 - one failing request must not stop the server
                    response = self._failed(request, exc)
                keep_alive = keep_alive and not self._shutting_down
                self._write(
                    transport, response, close=not keep_alive, head_only=request.method == "HEAD"
                )
                if not keep_alive:
                    transport.close()
                    return
        finally:
            self._task = None
        if self._paused and not transport.is_closing():
            self._paused = False
            transport.resume_reading()
        self.last_active = self._loop.time()

    def _failed(self, request: HttpRequest, exc: Exception) -> HttpResponse:
        self._settings.log.error(
            "%s %s: the handler raised", request.method, request.path, exc_info=exc
        )
        return text_response(500, f"{type(exc).__name__}: {exc}")

    def _write(
        self, transport: asyncio.Transport, response: HttpResponse, *, close: bool, head_only: bool
    ) -> None:
        if transport.is_closing():
            return
        try:
            buffers = encode_response(response, close=close, head_only=head_only)
        except ValueError as exc:
            self._settings.log.error("cannot send the handler's answer: %s", exc)
            buffers = encode_response(
                text_response(500, f"invalid response: {exc}"), close=close, head_only=head_only
            )
        if len(buffers) == 1:
            transport.write(buffers[0])
        else:
            transport.writelines(buffers)

    # -- the server's side ---------------------------------------------------------------------

    def shut_down(self) -> None:
        """The server stops: close now if idle, else after answering the request begun."""
        self._shutting_down = True
        if self._transport is not None and self.idle:
            self._transport.close()

    def close(self) -> None:
        """Close now, politely (buffered output is flushed)."""
        if self._transport is not None:
            self._transport.close()

    def abort(self) -> None:
        """Close now, dropping buffered output, and cancel the handler in progress."""
        if self._task is not None:
            self._task.cancel()
        if self._transport is not None:
            self._transport.abort()
