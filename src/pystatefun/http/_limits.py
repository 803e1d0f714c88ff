"""``HttpLimits``: how much one client can make a server hold, and for how long.

Why: without bounds one client can make the server buffer an 8 MB header line, hold a
connection by sending its head a byte at a time, or open connections until the process runs
out of file descriptors. Each bound is refused with its own status and a one-line text that
names the limit, its value and the option that changes it (``refusal``).

How a connection checks them (``_connection``): as bytes arrive, so a head holds at most the
limit and one socket read. The target (``on_url`` gets each piece) and each complete header
are counted; a header line being built up is held inside ``httptools``, so a read that ends
mid-request and gave no callback counts whole. A request that comes in one read (the common
case) starts no timer; one that spans reads starts one, which moves itself to the next deadline
rather than being re-armed per read. After a refusal the connection half-closes and drops input
for a moment: closing with unread input makes the kernel reset it, and the client could lose
the answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

from pystatefun.http._messages import HttpResponse, text_response

__all__ = ["COUNTERS", "HttpLimits", "RefusedError", "body_too_large", "refusal"]

#: The refusal counters of ``HttpServer.statistics()``: what was refused, and how often.
COUNTERS = (
    "bad_requests",  # 400: not HTTP/1.1 (or an upgrade)
    "body_too_large",  # 413: over max_body_bytes
    "url_too_long",  # 414: the request target alone is over max_head_bytes
    "head_too_large",  # 431: over max_head_bytes
    "too_many_headers",  # 431: over max_headers
    "head_timeouts",  # 408: the head took longer than head_timeout_s
    "body_timeouts",  # 408: the body went silent for body_timeout_s
    "refused_connections",  # 503: max_connections were open already
)

# Per counter: status, what was refused, the limit (an HttpLimits field) and its unit.
_REFUSALS = {
    "url_too_long": (414, "request target too long: over", "max_head_bytes", "bytes"),
    "head_too_large": (431, "request head too large: over", "max_head_bytes", "bytes"),
    "too_many_headers": (431, "too many header fields: over", "max_headers", "fields"),
    "head_timeouts": (408, "request head too slow: not complete within", "head_timeout_s", "s"),
    "body_timeouts": (408, "request body too slow: no data for", "body_timeout_s", "s"),
    "refused_connections": (503, "too many connections: at", "max_connections", "open"),
}
_OPTIONS = {
    "max_head_bytes": "--http-max-head-bytes",
    "max_headers": "--http-max-headers",
    "head_timeout_s": "--http-head-timeout",
    "body_timeout_s": "--http-body-timeout",
    "max_connections": "--http-max-connections",
}


@final
@dataclass(frozen=True, slots=True)
class HttpLimits:
    """The bounds ``HttpServer`` puts on each client; defaults suit a server facing the network.

    Memory per connection is bounded by ``max_head_bytes`` (plus one socket read, at most
    256 KiB) and the server's ``max_body_bytes``; time by the two timeouts and the server's
    ``idle_timeout_s``; the number of connections by ``max_connections``. Raises ValueError for
    a bound that is not positive.
    """

    #: Request line plus header fields (and a chunked body's trailers), in bytes, counted as
    #: they arrive: 64 KiB holds large cookies and tokens (nginx allows 32 KiB, Go 1 MiB), and
    #: a head in progress holds at most that plus one read. Over it: 431 (414: the target).
    max_head_bytes: int = 64 * 1024
    #: Header fields (repeats counted) per request: 100, as Apache httpd's LimitRequestFields;
    #: real clients send a dozen. Over it: 431.
    max_headers: int = 100
    #: Seconds from the first byte of a request to the end of its head: 10 s is ages for a
    #: client on any network, and short enough that a slow-loris holds few sockets. Then 408.
    head_timeout_s: float = 10.0
    #: Seconds a request body may go without a byte (a silence, not a deadline: a large body
    #: on a slow link is fine while it moves): 30 s, as a client's read timeout. Then 408.
    body_timeout_s: float = 30.0
    #: Connections open at once on one server; one more is answered 503 and closed: 1,024 is
    #: more than the clients of one runtime need, and few enough that a flood meets a 503
    #: rather than the process running out of file descriptors (with ``ulimit -n`` above it).
    max_connections: int = 1024

    def __post_init__(self) -> None:
        bad = [
            f"{name} must be positive, got {value!r}"
            for name, value in (
                ("max_head_bytes", self.max_head_bytes),
                ("max_headers", self.max_headers),
                ("head_timeout_s", self.head_timeout_s),
                ("body_timeout_s", self.body_timeout_s),
                ("max_connections", self.max_connections),
            )
            if not value > 0
        ]
        if bad:
            raise ValueError("invalid HttpLimits: " + "; ".join(bad) + "; give positive values")


@final
class RefusedError(Exception):
    """Raised inside a parser callback to stop parsing; carries the answer to send and the
    counter (``COUNTERS``) it adds to."""

    def __init__(self, counter: str, response: HttpResponse) -> None:
        super().__init__(response.status)
        self.counter = counter
        self.response = response


def refusal(counter: str, limits: HttpLimits) -> HttpResponse:
    """The answer for a limit hit: its status and one line naming the limit, its value and the
    option that changes it (the ``HttpLimits`` field; ``pystatefun run``'s flag)."""
    status, what, field, unit = _REFUSALS[counter]
    value = getattr(limits, field)
    shown = f"{value:g}" if isinstance(value, float) else str(value)
    message = f"{what} {shown} {unit} (HttpLimits.{field}; pystatefun run {_OPTIONS[field]})"
    if status == 503:
        return text_response(status, message + "; retry later", {"Retry-After": "1"})
    return text_response(status, message)


def body_too_large(size: int | None, limit: int) -> HttpResponse:
    """The 413 answer when the server is given no ``too_large`` of its own."""
    described = "a chunked body" if size is None else f"a body of {size} bytes"
    return text_response(413, f"{described} exceeds the limit of {limit} bytes")
