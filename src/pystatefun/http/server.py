"""A small HTTP/1.1 server: ``httptools`` parses, an asyncio Protocol handles the connection.

Why not aiohttp: the runtime's ingress, egress and ``pystatefun serve`` answer small requests
at high rates, and aiohttp's per-request machinery costs several times the CPU of this
(``bench/http_stack.py``). What it does, and no more:

- keep-alive (HTTP/1.1 unless ``Connection: close``; HTTP/1.0 always closes);
- one request at a time per connection, answered in order: when more arrives while a handler
  runs, reading pauses, so pipelined requests wait in the socket rather than in memory;
- a body over ``max_body_bytes`` is refused with 413 before it is read (by its Content-Length)
  or as soon as it passes the limit (chunked), and the connection closes;
- a malformed request gets 400 and the connection closes; a handler that raises gets 500 with
  the exception's text (logged with its traceback) and the server carries on;
- ``HttpLimits`` bound the head (431, 414), its time and the body's silences (408), and the
  connections open at once (503); each refusal is counted in ``statistics()``;
- ``Expect: 100-continue`` is answered, so ``curl`` does not wait a second before large bodies;
- ``stop(timeout_s)``: stop listening, close idle connections at once, let requests in progress
  finish for up to ``timeout_s``, then close what is left.

Every answer carries Content-Length (but 1xx, 204 and 304, which have no body); there is no
Date or Server header and no streaming.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Awaitable, Callable
from typing import final

from pystatefun.http._connection import ServerConnection
from pystatefun.http._limits import COUNTERS, HttpLimits, refusal
from pystatefun.http._messages import HttpRequest, HttpResponse, encode_response
from pystatefun.http._settings import Settings

__all__ = ["HttpServer"]

_log = logging.getLogger("pystatefun.http")
_DEFAULT_LIMITS = HttpLimits()
# Connections refused over max_connections are logged at most this often (with their count).
_REFUSALS_LOGGED_EVERY_S = 10.0


@final
class HttpServer:
    """Serves ``handler`` on a TCP host and port, or on a Unix socket path.

    ``handler`` takes an ``HttpRequest`` and returns an ``HttpResponse``. ``too_large(request,
    size)`` builds the 413 answer for a body over ``max_body_bytes`` (``request.body`` is empty;
    ``size`` is the declared Content-Length, or None for a chunked body); without it the answer
    is a plain-text 413. A connection idle for ``idle_timeout_s`` is closed, so clients that
    vanish do not hold sockets forever. ``limits`` bounds what each client can make the server
    hold, and for how long (``HttpLimits``: its docstring says why each default).
    """

    def __init__(
        self,
        handler: Callable[[HttpRequest], Awaitable[HttpResponse]],
        *,
        max_body_bytes: int,
        too_large: Callable[[HttpRequest, int | None], HttpResponse] | None = None,
        idle_timeout_s: float = 75.0,
        limits: HttpLimits = _DEFAULT_LIMITS,
    ) -> None:
        assert max_body_bytes >= 0
        assert idle_timeout_s > 0
        self.limits = limits
        self._counts = dict.fromkeys(COUNTERS, 0)
        self._unlogged_refusals = 0
        self._refusals_log: asyncio.TimerHandle | None = None
        self._connections: set[ServerConnection] = set()
        self._handler = handler
        self._max_body_bytes = max_body_bytes
        self._too_large = too_large
        self._idle_timeout_s = idle_timeout_s
        self._sweeper: asyncio.TimerHandle | None = None
        self._all_closed: asyncio.Event | None = None
        self._server: asyncio.Server | None = None
        self._accepted = 0
        self.port = 0
        self.host = ""

    def statistics(self) -> dict[str, int]:
        """Connections open now and accepted in all (the refused among them too), and how many
        times each limit refused (``_limits.COUNTERS``: ``head_too_large``, ``head_timeouts``,
        ``refused_connections``, ...)."""
        return {"open": len(self._connections), "accepted": self._accepted, **self._counts}

    async def start(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        path: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        """Listen on ``host:port`` (``port`` 0 picks a free one: see ``.port``), or on the Unix
        socket ``path``; with TLS when ``ssl_context`` is given. Raises OSError when the address
        cannot be bound (a port in use)."""
        assert self._server is None, "started twice"
        loop = asyncio.get_running_loop()
        settings = Settings(
            self._handler,
            self._max_body_bytes,
            self._too_large,
            _log,
            self._connections,
            self._on_closed,
            loop,
            self.limits,
            self._counts,
            self._on_refused,
            b"".join(
                encode_response(
                    refusal("refused_connections", self.limits), close=True, head_only=False
                )
            ),
        )

        def factory() -> ServerConnection:
            self._accepted += 1
            return ServerConnection(settings)

        if path is not None:
            self._server = await loop.create_unix_server(factory, path, ssl=ssl_context)
            self.host = path
        else:
            self._server = await loop.create_server(factory, host, port, ssl=ssl_context)
            self.host = host
            self.port = self._server.sockets[0].getsockname()[1]
        self._sweeper = loop.call_later(self._idle_timeout_s / 2, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle for longer than the idle timeout; runs every half of it."""
        loop = asyncio.get_running_loop()
        cutoff = loop.time() - self._idle_timeout_s
        for connection in list(self._connections):
            # Not idle() alone: a client that sent a request head and stalls is dropped too.
            if not connection.busy and connection.last_active < cutoff:
                connection.close()
        self._sweeper = loop.call_later(self._idle_timeout_s / 2, self._sweep)

    def _on_refused(self) -> None:
        """A connection over ``max_connections`` was refused: log it now, and the ones that
        follow at most every ``_REFUSALS_LOGGED_EVERY_S``, counted (a flood, one line)."""
        self._counts["refused_connections"] += 1
        self._unlogged_refusals += 1
        if self._refusals_log is None:
            self._log_refusals()

    def _log_refusals(self) -> None:
        if not self._unlogged_refusals:
            self._refusals_log = None
            return
        _log.warning(
            "refused %d connection(s) on %s:%s: %d open is the limit "
            "(HttpLimits.max_connections; pystatefun run --http-max-connections)",
            self._unlogged_refusals,
            self.host,
            self.port,
            self.limits.max_connections,
        )
        self._unlogged_refusals = 0
        loop = asyncio.get_running_loop()
        self._refusals_log = loop.call_later(_REFUSALS_LOGGED_EVERY_S, self._log_refusals)

    def _on_closed(self) -> None:
        if not self._connections and self._all_closed is not None:
            self._all_closed.set()

    async def stop(self, timeout_s: float) -> None:
        """Stop listening; requests in progress get up to ``timeout_s`` to finish."""
        server, self._server = self._server, None
        if server is None:
            return
        for timer in (self._sweeper, self._refusals_log):
            if timer is not None:
                timer.cancel()
        self._refusals_log = None
        server.close()
        self._all_closed = asyncio.Event()
        for connection in list(self._connections):
            connection.shut_down()
        if self._connections:
            try:
                await asyncio.wait_for(self._all_closed.wait(), timeout_s)
            except TimeoutError:
                _log.warning(
                    "%d connection(s) still busy after %gs; closing them",
                    len(self._connections),
                    timeout_s,
                )
                for connection in list(self._connections):
                    connection.abort()
                await self._all_closed.wait()  # abort() calls connection_lost promptly
        await server.wait_closed()
