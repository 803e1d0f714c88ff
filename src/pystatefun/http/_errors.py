"""What can go wrong with one client request, as a small tree callers can catch by cause::

    HttpClientError
    ├── HttpConnectError           cannot open a connection (refused, unreachable, TLS failed)
    ├── HttpTimeoutError           connect, read, total or pool-wait time ran out (a TimeoutError)
    ├── HttpConnectionClosedError  the server closed the connection before the response ended
    ├── HttpProtocolError          the server's bytes are not an HTTP/1.1 response
    └── HttpBodyTooLargeError      the response body is over ``max_body_bytes``

None of them says whether the server acted on the request: only HttpConnectError (nothing was
sent) makes that certain.
"""

from __future__ import annotations

from typing import final

__all__ = [
    "HttpBodyTooLargeError",
    "HttpClientError",
    "HttpConnectError",
    "HttpConnectionClosedError",
    "HttpProtocolError",
    "HttpTimeoutError",
]


class HttpClientError(Exception):
    """A request failed; the subclass says how."""


@final
class HttpConnectError(HttpClientError):
    """No connection could be opened (``os_error`` is the cause)."""

    def __init__(self, message: str, os_error: OSError) -> None:
        super().__init__(message)
        self.os_error = os_error


@final
class HttpTimeoutError(HttpClientError, TimeoutError):
    """A time limit of the request ran out; the message says which."""


@final
class HttpConnectionClosedError(HttpClientError):
    """The server closed the connection before its response was complete."""


@final
class HttpProtocolError(HttpClientError):
    """The server answered something that is not a valid HTTP/1.1 response."""


@final
class HttpBodyTooLargeError(HttpClientError):
    """The response body exceeds ``limit`` bytes; ``status`` is the response's status."""

    def __init__(self, status: int, limit: int, detail: str) -> None:
        super().__init__(f"HTTP {status} response body exceeds {limit} bytes ({detail})")
        self.status = status
        self.limit = limit
