"""``Settings``: what every connection of one ``HttpServer`` shares, and the answers built
from it (413, 500)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from pystatefun.http._limits import HttpLimits, body_too_large
from pystatefun.http._messages import HttpRequest, HttpResponse, text_response

if TYPE_CHECKING:
    from pystatefun.http._connection import ServerConnection

__all__ = ["Settings"]


@final
@dataclass(slots=True)
class Settings:
    """What every connection of one server shares."""

    handler: Callable[[HttpRequest], Awaitable[HttpResponse]]
    max_body_bytes: int
    #: The server's ``too_large``: builds the 413 answer (None: the plain-text one).
    make_too_large: Callable[[HttpRequest, int | None], HttpResponse] | None
    log: logging.Logger
    connections: set[ServerConnection]
    on_closed: Callable[[], None]
    # Cached: asyncio.get_running_loop() makes a getpid() system call on every call.
    loop: asyncio.AbstractEventLoop
    limits: HttpLimits
    #: Refusals by cause (``_limits.COUNTERS``); the server reports them.
    counts: dict[str, int]
    #: A connection over ``max_connections``: the server counts (and logs) it.
    on_refused: Callable[[], None]
    #: The whole 503 answer to a connection over ``max_connections``, encoded once.
    at_capacity: bytes

    def too_large(self, request: HttpRequest, size: int | None) -> HttpResponse:
        """The answer to a body over ``max_body_bytes`` (``size``: its Content-Length)."""
        if self.make_too_large is None:
            return body_too_large(size, self.max_body_bytes)
        return self.make_too_large(request, size)

    def failed(self, request: HttpRequest, exc: Exception) -> HttpResponse:
        """The 500 answer for a handler that raised ``exc``; logged with its traceback."""
        self.log.error("%s %s: the handler raised", request.method, request.path, exc_info=exc)
        return text_response(500, f"{type(exc).__name__}: {exc}")
