"""A keep-alive HTTP/1.1 connection pool for one origin (host and port, or a Unix socket).

Why not aiohttp: the runtime sends one POST per function invocation, and aiohttp's client costs
several times the CPU of this per call (``bench/http_stack.py``). This pool does what the runtime
needs and nothing else: whole bodies (bounded by ``max_body_bytes``), connect/read/total
timeouts, at most ``pool_size`` connections with the rest of the callers waiting in turn.

Reuse and retry: idle connections are reused newest first and closed after ``keepalive_s`` idle
(0: a connection per request, sent with ``Connection: close``). A reused connection that turns
out to be closed before the request is written (the server closed it while idle) is replaced
by a fresh one, once. Nothing is retried after a byte of the request may have left: the caller
decides whether its request is safe to repeat.
"""

from __future__ import annotations

import asyncio
import ssl
from collections import deque
from typing import final

from pystatefun.http._client_connection import ClientConnection
from pystatefun.http._errors import (
    HttpConnectError,
    HttpConnectionClosedError,
    HttpTimeoutError,
)
from pystatefun.http._messages import HttpResponse

__all__ = ["HttpClientPool"]

# Below this a body is copied behind the head (one send); above it the copy costs more.
_JOIN_MAX_BYTES = 64 * 1024
# A waiter is handed a connection, or None: "a slot is free, open one".
_Handoff = ClientConnection | None


@final
class HttpClientPool:
    """Pooled connections to ``host:port`` (TLS with ``ssl_context``), or to ``unix_path``."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        ssl_context: ssl.SSLContext | None = None,
        unix_path: str | None = None,
        pool_size: int,
        keepalive_s: float,
    ) -> None:
        assert pool_size >= 1
        assert keepalive_s >= 0
        self._host, self._port = host, port
        self._ssl_context = ssl_context
        self._unix_path = unix_path
        self._pool_size = pool_size
        self._keepalive_s = keepalive_s
        self._idle: list[ClientConnection] = []
        self._open = 0  # connections open or opening; never above pool_size
        self._waiters: deque[asyncio.Future[_Handoff]] = deque()
        self._sweeper: asyncio.TimerHandle | None = None
        self._closed = False
        # Bound at the first request. Cached: asyncio.get_running_loop() makes a getpid()
        # system call on every call.
        self._loop: asyncio.AbstractEventLoop | None = None
        authority = "localhost" if unix_path is not None else _authority(host, port, ssl_context)
        close = "Connection: close\r\n" if keepalive_s == 0 else ""
        self._fixed_headers = f"Host: {authority}\r\n{close}"
        # The request line's and the fixed headers' CR LFs, and the blank line's.
        self._fixed_line_breaks = self._fixed_headers.count("\n") + 1
        self.connections_opened = 0

    def statistics(self) -> dict[str, int]:
        """Connections open (``open``), idle among them, callers waiting for one, and opened
        in total."""
        return {
            "open": self._open,
            "idle": len(self._idle),
            "waiting": len(self._waiters),
            "opened": self.connections_opened,
        }

    async def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        *,
        connect_timeout_s: float,
        read_timeout_s: float | None,
        total_timeout_s: float,
        max_body_bytes: int,
    ) -> HttpResponse:
        """Send one request and return the whole response (any status).

        ``total_timeout_s`` bounds everything, waiting for a free connection included;
        ``connect_timeout_s`` one connection attempt; ``read_timeout_s`` (None: no limit) a
        silence while waiting for the response. Raises an ``HttpClientError``, or ValueError
        for a line break in ``path`` or a header (nothing is sent).
        """
        if self._closed:
            raise HttpConnectionClosedError(f"the connection pool to {self._where()} is closed")
        loop = self._loop
        if loop is None:
            loop = self._loop = asyncio.get_running_loop()
        deadline = loop.time() + total_timeout_s
        lines = [f"{method} {path} HTTP/1.1\r\n{self._fixed_headers}"]
        if headers:
            lines.extend(f"{name}: {value}\r\n" for name, value in headers.items())
        lines.append(f"Content-Length: {len(body)}\r\n\r\n")
        text = "".join(lines)
        # Each line ends with the CR LF put there above (the last with two): any other would
        # smuggle a header or a second request.
        breaks = self._fixed_line_breaks + len(lines)
        if text.count("\n") != breaks or text.count("\r") != breaks:
            raise ValueError(f"a line break in the request line or a header: {text!r}")
        head = text.encode("latin-1")
        buffers = (head + body,) if len(body) <= _JOIN_MAX_BYTES else (head, body)
        if self._idle and not self._waiters and self._usable(self._idle[-1], loop.time()):
            connection, fresh = self._idle.pop(), False  # the common case, without a coroutine
        else:
            connection, fresh = await self._acquire(deadline, total_timeout_s, connect_timeout_s)
        while True:
            waiter = connection.request(
                buffers,
                deadline=deadline,
                total_timeout_s=total_timeout_s,
                read_timeout_s=read_timeout_s,
                max_body_bytes=max_body_bytes,
                head_only=method == "HEAD",
            )
            if waiter is not None:
                break
            # Closed before anything was sent: the request is untouched; use a fresh one, once.
            self._discard(connection)
            if fresh:
                raise HttpConnectionClosedError(
                    f"{self._where()} closed the new connection before the request was sent"
                )
            connection, fresh = await self._acquire(
                deadline, total_timeout_s, connect_timeout_s, fresh_only=True
            )
        try:
            response = await waiter
        except BaseException:
            connection.give_up()
            self._discard(connection)
            raise
        self._release(connection)
        return response

    async def close(self) -> None:
        """Close every connection; requests in progress fail, callers waiting for a turn too."""
        self._closed = True
        if self._sweeper is not None:
            self._sweeper.cancel()
            self._sweeper = None
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_exception(HttpConnectionClosedError("the connection pool was closed"))
        idle, self._idle = self._idle, []
        self._open -= len(idle)
        for connection in idle:
            connection.close()
        await asyncio.sleep(0)  # let the transports run connection_lost

    # -- the pool ------------------------------------------------------------------------------
    #
    # ``_open`` counts connections open or being opened, idle ones included, and never exceeds
    # ``pool_size``. A caller that finds neither an idle connection nor room waits in
    # ``_waiters`` (first come, first served) and is handed either a connection or a slot
    # (None): a freed slot is not uncounted but passed on, so a newcomer cannot take it first.

    async def _acquire(
        self,
        deadline: float,
        total_timeout_s: float,
        connect_timeout_s: float,
        *,
        fresh_only: bool = False,
    ) -> tuple[ClientConnection, bool]:
        """A live connection and whether it is new; waits in turn when the pool is full."""
        loop = self._running_loop()
        if not self._waiters:  # callers already waiting go first
            while self._idle and not fresh_only:
                connection = self._idle.pop()
                if self._usable(connection, loop.time()):
                    return connection, False
                self._open -= 1
                connection.abort()
            if self._open < self._pool_size:
                self._open += 1
                return await self._connect(deadline, connect_timeout_s), True
        handed = await self._wait_for_turn(deadline, total_timeout_s)
        if handed is not None:
            if self._usable(handed, loop.time()) and not fresh_only:
                return handed, False
            handed.abort()  # its slot is this caller's now
        return await self._connect(deadline, connect_timeout_s), True

    async def _wait_for_turn(self, deadline: float, total_timeout_s: float) -> _Handoff:
        waiter: asyncio.Future[_Handoff] = self._running_loop().create_future()
        self._waiters.append(waiter)
        try:
            async with asyncio.timeout_at(deadline):
                return await waiter
        except BaseException as exc:
            if waiter.done() and not waiter.cancelled() and waiter.exception() is None:
                # Handed over just as this caller gave up: pass it on.
                handed = waiter.result()
                if handed is None:
                    self._free_slot()
                else:
                    self._release(handed)
            else:
                waiter.cancel()
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            if isinstance(exc, TimeoutError):
                raise HttpTimeoutError(
                    f"no free connection to {self._where()} within {total_timeout_s:g}s: all "
                    f"{self._pool_size} are busy (pool_size)"
                ) from None
            raise

    def _usable(self, connection: ClientConnection, now: float) -> bool:
        return (
            connection.reusable
            and not connection.closed
            and now - connection.idle_since < self._keepalive_s
        )

    async def _connect(self, deadline: float, connect_timeout_s: float) -> ClientConnection:
        """Open a connection in a slot already counted in ``_open``."""
        loop = self._running_loop()
        try:
            async with asyncio.timeout_at(min(deadline, loop.time() + connect_timeout_s)):
                if self._unix_path is not None:
                    transport, connection = await loop.create_unix_connection(
                        self._new_connection,
                        self._unix_path,
                        ssl=self._ssl_context,
                        server_hostname="localhost" if self._ssl_context else None,
                    )
                else:
                    transport, connection = await loop.create_connection(
                        self._new_connection, self._host, self._port, ssl=self._ssl_context
                    )
        except TimeoutError as exc:
            self._free_slot()
            raise HttpTimeoutError(
                f"Connection timeout to {self._where()}: not connected within "
                f"{min(connect_timeout_s, max(deadline - loop.time(), 0)):g}s"
            ) from exc
        except OSError as exc:
            self._free_slot()
            raise HttpConnectError(
                f"Cannot connect to {self._where()} ssl:default [{exc.strerror or exc}]", exc
            ) from exc
        except BaseException:
            self._free_slot()
            raise
        # uvloop may run connection_made after create_connection returns.
        connection.attach(transport)
        self.connections_opened += 1
        return connection

    def _running_loop(self) -> asyncio.AbstractEventLoop:
        assert self._loop is not None, "used before its first request"
        return self._loop

    def _new_connection(self) -> ClientConnection:
        return ClientConnection(self._running_loop(), self._lost)

    def _where(self) -> str:
        if self._unix_path is not None:
            return f"unix socket {self._unix_path}"
        return f"host {self._host}:{self._port}"

    def _release(self, connection: ClientConnection) -> None:
        """A request ended well: keep the connection for the next one, or close it."""
        if self._closed or not connection.reusable or self._keepalive_s == 0:
            self._discard(connection)
            return
        loop = self._running_loop()
        connection.idle_since = loop.time()
        if self._hand_over(connection):
            return
        self._idle.append(connection)
        if self._sweeper is None:
            self._sweeper = loop.call_later(self._keepalive_s, self._sweep)

    def _discard(self, connection: ClientConnection) -> None:
        """Close a connection that is not idle and free its slot."""
        connection.abort()
        self._free_slot()

    def _free_slot(self) -> None:
        if not self._hand_over(None):
            self._open -= 1
            assert self._open >= 0

    def _hand_over(self, handed: _Handoff) -> bool:
        """Give a connection or a slot to the first caller still waiting; False: none waits."""
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(handed)
                return True
        return False

    def _lost(self, connection: ClientConnection) -> None:
        """A connection closed (either side). An idle one leaves the pool at once."""
        if connection in self._idle:
            self._idle.remove(connection)
            self._free_slot()

    def _sweep(self) -> None:
        """Close idle connections past ``keepalive_s``; re-arm while any are left."""
        loop = self._running_loop()
        self._sweeper = None
        now = loop.time()
        for connection in [c for c in self._idle if not self._usable(c, now)]:
            self._idle.remove(connection)
            connection.abort()
            self._free_slot()
        if self._idle:
            oldest = min(c.idle_since for c in self._idle)
            self._sweeper = loop.call_at(oldest + self._keepalive_s, self._sweep)


def _authority(host: str, port: int, ssl_context: ssl.SSLContext | None) -> str:
    """The Host header: the port is left out when it is the scheme's default."""
    shown = f"[{host}]" if ":" in host else host
    default_port = 443 if ssl_context is not None else 80
    return shown if port == default_port else f"{shown}:{port}"
