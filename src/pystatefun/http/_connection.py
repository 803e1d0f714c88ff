"""One server-side HTTP/1.1 connection: parse with ``httptools``, answer in order, keep alive.

Reading: a connection reads while no request of its own is being answered. When data arrives
while one is (a client that pipelines), reading pauses until every queued request is answered,
so such a client cannot make the server buffer more than about two socket reads of requests.
Pausing only then keeps the two system calls of a pause off the common path. Answers are
written in request order by one task per burst of requests (``_run``; on Python 3.12+ an eager
task, so a handler that does not wait answers within the read that completed its request). A
refusal (400, 413, 414, 431) is queued like a request, so it is answered after the requests
before it, then the connection closes; input after a refusal is ignored.

Stopping (``shut_down``): an idle connection closes at once; one with a request begun (its head
read) or being answered closes after answering it, with ``Connection: close``.

Limits (``HttpLimits``): how they are checked is in ``_limits``. A client that half-closes
(sends all, then shuts its side) is answered, then the connection closes.
"""

from __future__ import annotations

import asyncio
import sys
from collections import deque
from typing import cast, final

import httptools

from pystatefun.http._limits import RefusedError, refusal
from pystatefun.http._messages import (
    HttpRequest,
    HttpResponse,
    encode_response,
    split_target,
    text_response,
)
from pystatefun.http._settings import Settings

__all__ = ["ServerConnection"]

_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_EAGER = sys.version_info >= (3, 12)
# After a refusal: how long the input is drained before the connection closes.
_LINGER_S = 2.0
# A timer may run this much before its time (the loop's clock resolution) and count as due.
_EARLY_S = 0.001
# Where a connection is in the request it reads.
_BETWEEN, _HEAD, _BODY = 0, 1, 2


@final
class ServerConnection(asyncio.Protocol):
    """The protocol object of one accepted connection (see the module docstring)."""

    __slots__ = (
        "_began",
        "_body",
        "_body_size",
        "_eof",
        "_fields_left",
        "_head_left",
        "_headers",
        "_limits",
        "_linger",
        "_loop",
        "_parser",
        "_paused",
        "_phase",
        "_progress",
        "_queue",
        "_refused",
        "_request",
        "_settings",
        "_shutting_down",
        "_silent",
        "_task",
        "_timer",
        "_transport",
        "_url",
        "last_active",
    )

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._loop = settings.loop
        self._limits = settings.limits
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
        self._refused = False  # a refusal is queued or sent: ignore further input
        self._shutting_down = False
        self._eof = False  # the client half-closed: answer what is queued, then close
        self.last_active = 0.0
        self._phase, self._began = _BETWEEN, 0.0  # where in the request being read; since when
        # What its head may still hold: bytes (the target; per header field, its name and value
        # and 4 for ": " and CR LF) and fields. Counted down, so each check is a compare with 0.
        self._head_left = self._fields_left = 0
        self._silent = 0  # bytes of reads that gave no callback: held inside httptools
        self._progress = False  # this read gave a callback with bytes in it
        self._timer: asyncio.TimerHandle | None = None
        self._linger: asyncio.TimerHandle | None = None

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast("asyncio.Transport", transport)
        settings = self._settings
        if len(settings.connections) >= self._limits.max_connections:
            # Before a byte is read: 503 (nothing was processed), then close; cheap, for floods.
            self._refused = True
            self._transport.write(settings.at_capacity)
            self._transport.close()
            settings.on_refused()
            return
        settings.connections.add(self)
        self.last_active = self._loop.time()

    def connection_lost(self, exc: Exception | None) -> None:
        # A handler in progress runs to its end (its answer is dropped), as aiohttp's default:
        # cancelling the ingress half-way through accepting a message helps nobody.
        self._queue.clear()
        for timer in (self._timer, self._linger):
            if timer is not None:
                timer.cancel()
        self._settings.connections.discard(self)
        self._settings.on_closed()

    def eof_received(self) -> bool | None:
        if not self.busy:
            return None  # nothing to answer (a request begun cannot be finished): close
        self._eof = True
        return True  # keep the transport open to write the answers

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # draining after a refusal
        transport = self._transport
        assert transport is not None
        loop = self._loop
        self.last_active = loop.time()
        if self._task is not None:
            # Pipelined: the client sent more while a handler runs. Stop reading until the
            # queue is answered (pausing costs system calls, so only when it is needed).
            transport.pause_reading()
            self._paused = True
        self._progress = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # Protocol upgrades (WebSocket, h2c) are not served: answer what was asked, then close.
            self._refuse("bad_requests", text_response(400, "protocol upgrades are not supported"))
        except httptools.HttpParserError as exc:
            refused = exc.__context__
            if isinstance(refused, RefusedError):
                self._refuse(refused.counter, refused.response)
            else:
                self._refuse("bad_requests", text_response(400, f"malformed HTTP request: {exc}"))
        if self._phase and not self._refused:
            self._partial(len(data))
        if self._queue and self._task is None:
            if _EAGER:
                # Python 3.12+: run the handler now, in this call; no loop round trip when it
                # answers without waiting (the task may be done before it is assigned).
                task = asyncio.Task(self._run(), loop=loop, eager_start=True)  # type: ignore[call-arg,unused-ignore]
                if not task.done():
                    self._task = task
            else:
                self._task = loop.create_task(self._run())

    def _partial(self, size: int) -> None:
        """A read ended inside a request: bound what httptools holds unseen; start its clock."""
        if self._progress:
            self._silent = 0  # what was held came out in a callback, and is counted there
        else:
            self._silent += size
            if self._silent > self._head_left:
                self._refuse("head_too_large", refusal("head_too_large", self._limits))
                return
        if self._timer is None:
            self._timer = self._loop.call_at(self._deadline(), self._expire)

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._phase = _HEAD
        self._began = self.last_active  # the time of the read with the request's first byte
        self._head_left = self._limits.max_head_bytes
        self._fields_left = self._limits.max_headers
        self._silent = 0

    def on_url(self, url: bytes) -> None:
        self._progress = True
        self._url += url
        self._head_left -= len(url)
        if self._head_left < 0:
            raise RefusedError("url_too_long", refusal("url_too_long", self._limits))

    def on_header(self, name: bytes, value: bytes) -> None:
        self._progress = True
        self._fields_left -= 1
        self._head_left -= len(name) + len(value) + 4
        if self._head_left < 0 or self._fields_left < 0:
            counter = "too_many_headers" if self._fields_left < 0 else "head_too_large"
            raise RefusedError(counter, refusal(counter, self._limits))
        # add_header(), inlined: a call per header field costs more than the limits' checks.
        key = name.decode("latin-1").lower()
        text = value.decode("utf-8", "replace")
        previous = self._headers.get(key)
        self._headers[key] = text if previous is None else f"{previous}, {text}"

    def on_headers_complete(self) -> None:
        self._phase = _BODY
        url = self._url
        if url[:1] == b"/":  # the origin form, as nearly every client sends: no call
            path, _, query = url.decode("latin-1").partition("?")
        else:
            path, query = split_target(url)
        request = HttpRequest(
            self._parser.get_method().decode("latin-1"), path, query, self._headers, b""
        )
        self._request = request
        limit = self._settings.max_body_bytes
        declared = self._headers.get("content-length")
        if declared is not None and int(declared) > limit:  # llhttp checked it is a number
            raise RefusedError("body_too_large", self._settings.too_large(request, int(declared)))
        expect = self._headers.get("expect")
        if expect is not None and expect.lower() == "100-continue" and not self.busy:
            assert self._transport is not None
            self._transport.write(_CONTINUE)

    def on_body(self, body: bytes) -> None:
        self._progress = True
        self._body_size += len(body)
        if self._body_size > self._settings.max_body_bytes:
            assert self._request is not None
            raise RefusedError("body_too_large", self._settings.too_large(self._request, None))
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
        # Ready for the next message.
        self._phase = _BETWEEN
        self._request = None
        self._url = b""
        self._headers = {}
        self._body = []
        self._body_size = 0

    # -- limits --------------------------------------------------------------------------------

    def _refuse(self, counter: str, response: HttpResponse) -> None:
        """Queue ``response`` after the requests before it; then the connection closes."""
        self._settings.counts[counter] += 1
        self._refused = True
        self._queue.append(response)

    def _deadline(self) -> float:
        """When the request being read is late: its head, counted from its first byte; its
        body, after a silence of ``body_timeout_s``."""
        if self._phase == _HEAD:
            return self._began + self._limits.head_timeout_s
        return self.last_active + self._limits.body_timeout_s

    def _expire(self) -> None:
        """The request's timer: 408 and close if it is late, else wait for its deadline."""
        self._timer = None
        transport = self._transport
        if self._refused or not self._phase or transport is None or transport.is_closing():
            return  # refused, closed, or the request it was started for is complete
        loop = self._loop
        # Busy answering an earlier request (reading maybe paused), the client is not late: its
        # clock restarts once that is answered (``_run``); look again then.
        deadline = loop.time() + self._limits.head_timeout_s if self.busy else self._deadline()
        if loop.time() + _EARLY_S < deadline:
            self._timer = loop.call_at(deadline, self._expire)
            return
        counter = "head_timeouts" if self._phase == _HEAD else "body_timeouts"
        self._settings.counts[counter] += 1
        self._write(transport, refusal(counter, self._limits), close=True, head_only=False)
        self._close_lingering(transport)

    def _close_lingering(self, transport: asyncio.Transport) -> None:
        """After a refusal: half-close, drop input, close when the client does or after
        ``_LINGER_S`` (see ``_limits``). Closes now after the client's half-close, or on TLS
        (which cannot half-close)."""
        self._refused = True
        if self._eof or not transport.can_write_eof():
            transport.close()
            return
        transport.write_eof()
        if self._paused:
            self._paused = False
            transport.resume_reading()
        self._linger = self._loop.call_later(_LINGER_S, transport.close)

    # -- answering -----------------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """A request is being answered, or waits its turn."""
        return self._task is not None or bool(self._queue)

    @property
    def idle(self) -> bool:
        """Nothing to answer, and no request begun (its head received, its body coming)."""
        return not self.busy and self._request is None

    async def _run(self) -> None:
        """Answer queued requests in order; then read again, or close."""
        transport = self._transport
        assert transport is not None
        try:
            while self._queue:
                item = self._queue.popleft()
                if isinstance(item, HttpResponse):  # a refusal: answer it, then close
                    self._write(transport, item, close=True, head_only=False)
                    self._close_lingering(transport)
                    return
                request, keep_alive = item
                try:
                    response = await self._settings.handler(request)
                except Exception as exc:  # noqa: BLE001 - one failing request must not stop the server
                    response = self._settings.failed(request, exc)
                # Closing: the server stops, or the client half-closed and this is the last.
                keep_alive &= not self._shutting_down and not (self._eof and not self._queue)
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
        # The clock of a request begun meanwhile starts now: the client was not being read.
        self._began = self.last_active = self._loop.time()

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
        """The server stops: close now if idle or refused, else after answering the request."""
        self._shutting_down = True
        done = not self.busy and (self._request is None or self._refused)
        if self._transport is not None and done:
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
