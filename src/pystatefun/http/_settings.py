"""``Settings``: what every connection of one ``HttpServer`` shares."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, final

from pystatefun.http._limits import HttpLimits
from pystatefun.http._messages import HttpRequest, HttpResponse

if TYPE_CHECKING:
    from pystatefun.http._connection import ServerConnection

__all__ = ["Settings"]


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
    limits: HttpLimits
    #: Refusals by cause (``_limits.COUNTERS``); the server reports them.
    counts: dict[str, int]
    #: A connection over ``max_connections``: the server counts (and logs) it.
    on_refused: Callable[[], None]
    #: The whole 503 answer to a connection over ``max_connections``, encoded once.
    at_capacity: bytes
