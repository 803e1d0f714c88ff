"""One client-side HTTP/1.1 connection: send a request, parse the response with ``httptools``.

A connection carries one request at a time (no pipelining). Its life: open -> (request ->
response)* -> closed. Between requests it is idle in its pool; data arriving while idle means
the server broke the protocol (or closed), and the connection is closed.

Timeouts: one timer per connection enforces both the total deadline and the read timeout (no
data for ``read_timeout_s``). It is armed for the earlier of the two, and is not cancelled when
a response arrives in time: a timer that fires finds the request done and lapses, or finds the
next request and re-arms for it. A new request re-arms only when the timer would fire too late
for it. Arming and cancelling a timer per request cost about a tenth of a request's CPU, and
requests take much less than their timeouts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import cast, final

import httptools

from pystatefun.http._errors import (
    HttpBodyTooLargeError,
    HttpClientError,
    HttpConnectionClosedError,
    HttpProtocolError,
    HttpTimeoutError,
)
from pystatefun.http._messages import HttpResponse, add_header

__all__ = ["ClientConnection"]

_NO_BODY = frozenset({204, 304})


@final
class _StopParsingError(Exception):
    """Raised in a parser callback to stop parsing; carries the error for the caller."""

    def __init__(self, error: HttpClientError) -> None:
        super().__init__(str(error))
        self.error = error


@final
class ClientConnection(asyncio.Protocol):
    """The protocol object of one pooled connection (see the module docstring)."""

    __slots__ = (
        "_body",
        "_body_size",
        "_deadline",
        "_head_only",
        "_headers",
        "_headers_done",
        "_limit",
        "_loop",
        "_on_lost",
        "_parser",
        "_read_timeout_s",
        "_status",
        "_timer",
        "_timer_when",
        "_total_timeout_s",
        "_transport",
        "_waiter",
        "closed",
        "idle_since",
        "last_active",
        "reusable",
    )

    def __init__(
        self, loop: asyncio.AbstractEventLoop, on_lost: Callable[[ClientConnection], None]
    ) -> None:
        self._on_lost = on_lost
        self._loop = loop
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._waiter: asyncio.Future[HttpResponse] | None = None
        self._timer: asyncio.TimerHandle | None = None
        self._timer_when = 0.0
        self._deadline = 0.0
        self._total_timeout_s = 0.0
        self._read_timeout_s: float | None = None
        self._limit = 0
        self._head_only = False
        self._status = 0
        self._headers: dict[str, str] = {}
        self._body: list[bytes] = []
        self._body_size = 0
        self._headers_done = False
        self.last_active = 0.0
        self.closed = False
        self.reusable = False  # set when a response completes on a connection kept alive
        self.idle_since = 0.0

    # -- asyncio.Protocol ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.attach(transport)

    def attach(self, transport: asyncio.BaseTransport) -> None:
        """Know the transport (from connection_made or from create_connection's answer)."""
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self._transport = cast("asyncio.Transport", transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.reusable = False
        if self._timer is not None:
            self._timer.cancel()  # the loop need not keep a dead connection until it fires
            self._timer = None
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            if exc is None and self._headers_done and self._ends_at_eof():
                self._complete()  # a body delimited by the (clean) end of the connection
            else:
                self._fail(HttpConnectionClosedError("Server disconnected"))
        self._on_lost(self)

    def eof_received(self) -> bool:
        self.closed = True
        return False  # close the transport; connection_lost follows

    def data_received(self, data: bytes) -> None:
        waiter = self._waiter
        if waiter is None or waiter.done():
            # Bytes nobody asked for: the connection cannot be trusted for another request.
            self.reusable = False
            self.abort()
            return
        self.last_active = self._loop.time()
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(HttpProtocolError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            stop = exc.__context__
            if isinstance(stop, _StopParsingError):
                self._fail(stop.error)
            else:
                self._fail(HttpProtocolError(f"malformed HTTP response: {exc}"))

    # -- httptools callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        if self._waiter is None or self._waiter.done():
            self.reusable = False  # a response to no request: do not trust what follows
        self._status = 0
        self._headers = {}
        self._body = []
        self._body_size = 0
        self._headers_done = False

    def on_header(self, name: bytes, value: bytes) -> None:
        add_header(self._headers, name, value)

    def on_headers_complete(self) -> None:
        self._status = status = self._parser.get_status_code()
        if status < 200:
            return  # an interim answer (100 Continue): the real one follows
        self._headers_done = True
        declared = self._headers.get("content-length")
        if declared is not None and int(declared) > self._limit:
            raise _StopParsingError(
                HttpBodyTooLargeError(status, self._limit, f"Content-Length is {declared}")
            )
        if self._head_only and self._waiter is not None and not self._waiter.done():
            # llhttp would wait for the body a Content-Length announces; the connection is
            # given up instead of parsed past it.
            self._complete()
            self.abort()

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self._limit:
            raise _StopParsingError(
                HttpBodyTooLargeError(self._status, self._limit, "the body passed it")
            )
        self._body.append(body)

    def on_message_complete(self) -> None:
        if self._status < 200:
            return
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            self._complete()
            self.reusable = self._parser.should_keep_alive()

    # -- requests ------------------------------------------------------------------------------

    def request(
        self,
        buffers: tuple[bytes, ...],
        *,
        deadline: float,
        total_timeout_s: float,
        read_timeout_s: float | None,
        max_body_bytes: int,
        head_only: bool,
    ) -> asyncio.Future[HttpResponse] | None:
        """Send a request; the future answers its response. None: the connection turned out to
        be closed before anything was sent (safe to send elsewhere)."""
        transport = self._transport
        assert transport is not None
        assert self._waiter is None or self._waiter.done(), "one request at a time"
        if self.closed or transport.is_closing():
            return None
        try:
            if len(buffers) == 1:
                transport.write(buffers[0])
            else:
                transport.writelines(buffers)
        except (OSError, RuntimeError):
            return None  # the write failed outright: nothing reached the server
        self.reusable = False
        self._waiter = waiter = self._loop.create_future()
        self._deadline = deadline
        self._total_timeout_s = total_timeout_s
        self._read_timeout_s = read_timeout_s
        self._limit = max_body_bytes
        self._head_only = head_only
        self._headers_done = False
        self.last_active = self._loop.time()
        self._arm()
        return waiter

    def _arm(self) -> None:
        """Make sure the timer fires no later than the next check of the request in flight."""
        when = self._next_check()
        timer = self._timer
        if timer is not None:
            if self._timer_when <= when:
                return  # it fires early enough, and re-arms then
            timer.cancel()
        self._timer = self._loop.call_at(when, self._check_time)
        self._timer_when = when

    def _next_check(self) -> float:
        if self._read_timeout_s is None:
            return self._deadline
        return min(self._deadline, self.last_active + self._read_timeout_s)

    def _check_time(self) -> None:
        self._timer = None
        if self._waiter is None or self._waiter.done():
            return  # the request it was armed for is done, and none is in flight: lapse
        now = self._loop.time()
        if now >= self._deadline:
            self._fail(HttpTimeoutError(f"no complete response within {self._total_timeout_s:g}s"))
        elif self._read_timeout_s is not None and now >= self.last_active + self._read_timeout_s:
            self._fail(
                HttpTimeoutError(
                    f"Timeout on reading data from socket: nothing for {self._read_timeout_s:g}s"
                )
            )
        else:
            self._arm()

    def _ends_at_eof(self) -> bool:
        headers = self._headers
        return (
            "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "").lower()
            and self._status not in _NO_BODY
        )

    def _complete(self) -> None:
        waiter = self._waiter
        assert waiter is not None
        body = self._body
        waiter.set_result(
            HttpResponse(self._status, body[0] if len(body) == 1 else b"".join(body), self._headers)
        )

    def _fail(self, error: HttpClientError) -> None:
        """End the request in progress with ``error``; the connection is not reused."""
        self.reusable = False
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_exception(error)
        self.abort()

    def give_up(self) -> None:
        """The caller stopped waiting (cancelled): drop the request and the connection."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.cancel()
        self.abort()

    def abort(self) -> None:
        """Close at once, dropping anything unsent."""
        self.reusable = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.abort()

    def close(self) -> None:
        """Close politely (an idle connection that is no longer wanted)."""
        self.reusable = False
        if self._transport is not None and not self._transport.is_closing():
            self._transport.close()
