"""Requests and responses as plain values, and the bytes of a response head.

Both sides of ``pystatefun.http`` share these, so a handler and a client see the same shape:
header names lower-cased, bodies whole ``bytes`` (every body the runtime handles is bounded).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import final
from urllib.parse import urlsplit

__all__ = ["HttpRequest", "HttpResponse"]

_STATUS_LINES = {
    status.value: f"HTTP/1.1 {status.value} {status.phrase}\r\n" for status in HTTPStatus
}
# RFC 9110: 1xx, 204 and 304 answers have no body, and their Content-Length could not describe
# one; they are sent without it.
_NO_BODY_STATUSES = frozenset({204, 304})
_FRAMING = frozenset({"content-length", "connection", "transfer-encoding"})
# Below this a body is copied behind the head (one send); above it the copy costs more.
_JOIN_MAX_BYTES = 64 * 1024


def split_target(url: bytes) -> tuple[str, str]:
    """The path and the query (``""`` when absent) of a request target as sent."""
    target = url.decode("latin-1")
    if not target.startswith("/") and target != "*":
        # Absolute form (http://host/path?query), as sent to proxies: keep path and query.
        parts = urlsplit(target)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    path, _, query = target.partition("?")
    return path, query


def add_header(headers: dict[str, str], name: bytes, value: bytes) -> None:
    """A header as the parser hands it over: name lower-cased, a repeated one joined (RFC 9110)."""
    key = name.decode("latin-1").lower()
    text = value.decode("utf-8", "replace")
    previous = headers.get(key)
    headers[key] = text if previous is None else f"{previous}, {text}"


@final
@dataclass(slots=True)
class HttpRequest:
    """One request as the server hands it to its handler.

    ``path`` is the request target as sent (percent-encoded), without the query string, which is
    ``query`` (``""`` when absent). Header names are lower-cased; a repeated header's values are
    joined with ``", "``.
    """

    method: str
    path: str
    query: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""


@final
@dataclass(slots=True)
class HttpResponse:
    """A status, a body and headers: what a handler returns and what the client answers.

    The server adds ``Content-Length`` (and ``Connection: close`` when it closes); headers the
    client received have lower-cased names.
    """

    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


def text_response(status: int, message: str, headers: dict[str, str] | None = None) -> HttpResponse:
    """A ``text/plain`` answer; messages end with a newline so ``curl`` output stays tidy."""
    return HttpResponse(
        status,
        (message + "\n").encode(),
        {"Content-Type": "text/plain; charset=utf-8", **(headers or {})},
    )


def encode_response(response: HttpResponse, *, close: bool, head_only: bool) -> list[bytes]:
    """The bytes of ``response`` on the wire, as buffers to write in order.

    Adds Content-Length (kept on an answer to HEAD, whose body is left out, ``head_only``) and
    ``Connection: close`` when ``close``. A small body shares one buffer with the head, so one
    send carries both. Raises ValueError for a header that would split the response (CR or LF).
    """
    status = response.status
    body = response.body
    lines = [_STATUS_LINES.get(status) or f"HTTP/1.1 {status} Unknown\r\n"]
    for name, value in response.headers.items():
        if name.lower() not in _FRAMING:  # framing is the server's business
            lines.append(f"{name}: {value}\r\n")
    if status in _NO_BODY_STATUSES or status < 200:
        body = b""
    else:
        lines.append(f"Content-Length: {len(body)}\r\n")
    if close:
        lines.append("Connection: close\r\n")
    lines.append("\r\n")
    text = "".join(lines)
    # Each line ends with the one CR LF put there above: any other is in a name or a value.
    if text.count("\n") != len(lines) or text.count("\r") != len(lines):
        raise ValueError(f"a header holds a line break: {response.headers!r}")
    head = text.encode("latin-1")
    if head_only or not body:
        return [head]
    return [head + body] if len(body) <= _JOIN_MAX_BYTES else [head, body]
