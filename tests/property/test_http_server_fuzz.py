"""HttpServer under Hypothesis, over real sockets on 127.0.0.1, on each event loop.

(a) Valid requests, pipelined, split into chunks at random boundaries, are parsed and answered
exactly as when sent whole. (b) Malformed heads (random bytes, mutations of a valid head) get a
4xx or a clean close, never a 500 and never a hang, and the server still serves afterwards.
(c) Truncated bodies (a Content-Length longer than what comes, then a close) neither hang the
server nor leak the connection. (d) The head limit is exact however the head is split. Every
wait is bounded.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import string
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pystatefun.http import HttpLimits, HttpRequest, HttpResponse, HttpServer

pytestmark = pytest.mark.timeout(120)

_WAIT_S = 10.0  # no single read or close may take this long: it would be a hang
_MAX_BODY = 2048
# Small, so that "huge" values are cheap to send; timeouts long enough never to fire here.
_LIMITS = HttpLimits(max_head_bytes=4096, max_headers=32, head_timeout_s=30, body_timeout_s=30)
_FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LOOPS: dict[str, Callable[[], asyncio.AbstractEventLoop]] = {"asyncio": asyncio.new_event_loop}
try:
    import uvloop
except ImportError:  # pragma: no cover - uvloop is in the dev extra
    pass
else:
    LOOPS["uvloop"] = uvloop.new_event_loop


def _run(loop: str, main: Coroutine[Any, Any, None]) -> None:
    with asyncio.Runner(loop_factory=LOOPS[loop]) as runner:
        runner.run(main)


@dataclass(frozen=True)
class Request:
    method: str
    target: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    chunks: tuple[int, ...] | None  # chunk sizes of a chunked body; None: Content-Length

    def encode(self) -> bytes:
        lines = [f"{self.method} {self.target} HTTP/1.1", "Host: fuzz"]
        lines += [f"{name}: {value}" for name, value in self.headers]
        if self.chunks is None:
            lines.append(f"Content-Length: {len(self.body)}")
            return ("\r\n".join(lines) + "\r\n\r\n").encode() + self.body
        lines.append("Transfer-Encoding: chunked")
        out, at = [("\r\n".join(lines) + "\r\n\r\n").encode()], 0
        for size in self.chunks:
            out.append(b"%x\r\n%s\r\n" % (size, self.body[at : at + size]))
            at += size
        out.append(b"0\r\n\r\n")
        return b"".join(out)


_TOKEN = string.ascii_letters + string.digits + "!#$%&'*+-.^_`|~"
_PATH = string.ascii_letters + string.digits + "-._~!$&'()*+,;=:@/%"
_VALUE = "".join(chr(c) for c in range(0x21, 0x7F))
_FRAMING = {"host", "content-length", "transfer-encoding", "connection", "expect", "upgrade"}


@st.composite
def requests(draw: st.DrawFn) -> Request:
    body = draw(st.binary(max_size=300))
    chunks = None
    if body and draw(st.booleans()):
        inner = (
            st.sets(st.integers(1, len(body) - 1), max_size=4) if len(body) > 1 else st.just(set())
        )
        cuts = sorted(draw(inner) | {0, len(body)})
        chunks = tuple(b - a for a, b in itertools.pairwise(cuts))
    name = st.text(_TOKEN, min_size=1, max_size=12).filter(lambda n: n.lower() not in _FRAMING)
    value = st.text(_VALUE + " ", max_size=20).map(str.strip)
    query = draw(st.text(_PATH + "?=", max_size=15))
    return Request(
        draw(st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"])),
        "/" + draw(st.text(_PATH, max_size=30)) + (f"?{query}" if query else ""),
        tuple(draw(st.lists(st.tuples(name, value), max_size=6))),
        body,
        chunks,
    )


Seen = tuple[str, str, str, tuple[tuple[str, str], ...], bytes]


def _seen(request: HttpRequest) -> Seen:
    headers = tuple(sorted(request.headers.items()))
    return (request.method, request.path, request.query, headers, request.body)


def _expected(request: Request) -> Seen:
    """What the handler must be given: names lower-cased, repeats joined with ", "."""
    headers: dict[str, str] = {"host": "fuzz"}
    for name, value in request.headers:
        key = name.lower()
        headers[key] = value if key not in headers else f"{headers[key]}, {value}"
    framing = ("content-length", str(len(request.body)))
    if request.chunks is not None:
        framing = ("transfer-encoding", "chunked")
    headers[framing[0]] = framing[1]
    path, _, query = request.target.partition("?")
    return (request.method, path, query, tuple(sorted(headers.items())), request.body)


class Served:
    """A server whose handler records what it is given and answers with the body."""

    def __init__(self, limits: HttpLimits = _LIMITS) -> None:
        self.seen: list[Seen] = []
        self.server = HttpServer(self._handle, max_body_bytes=_MAX_BODY, limits=limits)

    async def _handle(self, request: HttpRequest) -> HttpResponse:
        self.seen.append(_seen(request))
        return HttpResponse(200, request.body, {"X-Seen": str(len(self.seen))})

    async def __aenter__(self) -> Served:
        await self.server.start("127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.server.stop(1.0)

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.server.port)

    async def no_connections(self) -> None:
        """Until the server has closed every connection (it reads the close on its next turns)."""

        async def poll() -> None:
            while self.server.statistics()["open"]:
                await asyncio.sleep(0)

        await asyncio.wait_for(poll(), _WAIT_S)


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def _bounded(step: Awaitable[bytes]) -> bytes:
    return await asyncio.wait_for(step, _WAIT_S)


async def _responses(reader: asyncio.StreamReader, count: int) -> list[bytes]:
    """``count`` whole responses (head and body, by Content-Length), as bytes."""
    out = []
    for _ in range(count):
        head = await _bounded(reader.readuntil(b"\r\n\r\n"))
        length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
        out.append(head + await _bounded(reader.readexactly(length)))
    return out


async def _send_in_pieces(writer: asyncio.StreamWriter, data: bytes, cuts: list[int]) -> None:
    for start, end in zip([0, *cuts], [*cuts, len(data)], strict=True):
        writer.write(data[start:end])
        await writer.drain()
        await asyncio.sleep(0)  # a turn for the server to read this piece on its own
        await asyncio.sleep(0)


@pytest.mark.parametrize("loop", LOOPS)
@_FUZZ
@given(batch=st.lists(requests(), min_size=1, max_size=4), data=st.data())
def test_requests_split_anywhere_are_served_as_if_whole(
    loop: str, batch: list[Request], data: st.DataObject
) -> None:
    stream = b"".join(request.encode() for request in batch)
    cuts = sorted(data.draw(st.sets(st.integers(1, len(stream) - 1), max_size=30)))

    async def main() -> None:
        answers = []
        for pieces in ([], cuts):  # whole, then split
            async with Served() as served:
                reader, writer = await served.connect()
                await _send_in_pieces(writer, stream, pieces)
                answers.append((served.seen, await _responses(reader, len(batch))))
                await _close(writer)
        assert answers[0] == answers[1]
        assert answers[0][0] == [_expected(request) for request in batch]

    _run(loop, main())


_BAD_VERSIONS = ["HTTP/1.2", "HTTP/2.0", "HTTP/0.9", "HTTP/1", "http/1.1", "HTTX/1.1", "", "H"]
_BAD_LINES = [
    "NoColon",
    " Leading: space",
    "Name : v",
    "Na me: v",
    "N\x00: v",
    "N: v\x00w",
    "N: v\rX",
    "N: v\nX: w",
    "N: v\r\n folded",
    "X: " + "a" * 5000,  # over max_head_bytes
    "\r\n".join(f"X-{i}: v" for i in range(40)),  # over max_headers
    "Content-Length: abc",
    "Content-Length: -1",
    "Content-Length: 1, 2",
    "Content-Length: 99999999999999999999999",
    "Content-Length: 3\r\nContent-Length: 4",
    "Content-Length: 3\r\nTransfer-Encoding: chunked",
    "Transfer-Encoding: gzip",
    "Transfer-Encoding: chunked, gzip",
    "Content-Length: 99999",  # over max_body_bytes
    "Upgrade: websocket\r\nConnection: upgrade",
]
_VALID_HEAD = b"POST /a?b=c HTTP/1.1\r\nHost: fuzz\r\nX-A: 1\r\nContent-Length: 2\r\n\r\nok"


@st.composite
def malformed(draw: st.DrawFn) -> bytes:
    kind = draw(st.sampled_from(["bytes", "method", "version", "line", "mutate"]))
    if kind == "bytes":
        return draw(st.binary(min_size=1, max_size=300))
    method, target, version = "POST", "/a", "HTTP/1.1"
    lines = ["Host: fuzz", "Content-Length: 2"]
    if kind == "method":
        method = draw(st.sampled_from(["", "G ET", "GET\x00", "ПОСТ", "get", "X" * 40]))
    elif kind == "version":
        version = draw(st.sampled_from(_BAD_VERSIONS))
    elif kind == "line":
        lines.insert(draw(st.integers(0, 2)), draw(st.sampled_from(_BAD_LINES)))
    head = f"{method} {target} {version}\r\n" + "".join(f"{line}\r\n" for line in lines)
    data = head.encode("utf-8") + b"\r\nok"
    if kind == "mutate":
        data = bytearray(_VALID_HEAD)
        for _ in range(draw(st.integers(1, 4))):
            at = draw(st.integers(0, len(data) - 1))
            data[at : at + draw(st.integers(0, 3))] = draw(st.binary(max_size=4))
        data = bytes(data)
    return data


_ANSWERS = {200, 400, 413, 414, 431}


@pytest.mark.parametrize("loop", LOOPS)
@_FUZZ
@given(garbage=malformed())
def test_malformed_heads_get_a_4xx_or_a_close_and_the_server_carries_on(
    loop: str, garbage: bytes
) -> None:
    async def main() -> None:
        async with Served() as served:
            reader, writer = await served.connect()
            writer.write(garbage)
            writer.write_eof()  # all sent: what comes back, then EOF, is the whole answer
            try:
                answer = await _bounded(reader.read())
            except ConnectionResetError:
                answer = b""  # a reset is a close too
            statuses = [int(line.split()[1]) for line in _status_lines(answer)]
            assert set(statuses) <= _ANSWERS, (statuses, answer)
            await _close(writer)
            reader, writer = await served.connect()  # the server still serves
            writer.write(_VALID_HEAD)
            [good] = await _responses(reader, 1)
            assert good.startswith(b"HTTP/1.1 200 OK\r\n")
            await _close(writer)
            await served.no_connections()

    _run(loop, main())


def _status_lines(answer: bytes) -> list[bytes]:
    """The status line of each response in ``answer`` (a 200's body is ``ok`` or empty)."""
    return [line for line in answer.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")]


@pytest.mark.parametrize("loop", LOOPS)
@_FUZZ
@given(
    request=requests().filter(lambda r: len(r.body) > 0),
    keep=st.floats(0, 1, exclude_max=True),
    how=st.sampled_from(["half-close", "close", "abort"]),
)
def test_truncated_bodies_neither_hang_nor_leak_connections(
    loop: str, request: Request, keep: float, how: str
) -> None:
    whole = request.encode()
    head_end = whole.index(b"\r\n\r\n") + 4
    sent = whole[: head_end + int((len(whole) - head_end) * keep)]

    async def main() -> None:
        async with Served() as served:
            reader, writer = await served.connect()
            writer.write(sent)
            await writer.drain()
            if how == "half-close":
                writer.write_eof()
                assert await _bounded(reader.read()) == b""  # nothing to answer: closed
            elif how == "abort":
                writer.transport.abort()  # a reset rather than a FIN
            await _close(writer)
            await served.no_connections()
            assert served.seen == []  # no handler saw a truncated body
            reader, writer = await served.connect()
            writer.write(whole)
            assert len(await _responses(reader, 1)) == 1
            await _close(writer)

    _run(loop, main())


_HEAD_LIMIT = 512


@pytest.mark.parametrize("loop", LOOPS)
@_FUZZ
@given(request=requests(), over=st.sampled_from([0, 1]), data=st.data())
def test_the_head_limit_is_exact_however_the_head_is_split(
    loop: str, request: Request, over: int, data: st.DataObject
) -> None:
    # Counted: the target, and each header's name and value with 4 bytes for ": " and CR LF.
    counted = len(request.target) + len("Host") + len("fuzz") + 4
    counted += sum(len(name) + len(value) + 4 for name, value in request.headers)
    counted += len("Content-Length") + len(str(len(request.body))) + 4
    pad = _HEAD_LIMIT + over - counted - len("X-Pad") - 4
    if request.chunks is not None or pad < 0:
        return  # (chunked framing counts differently; a head already over is not this test)
    padded = Request(
        request.method, request.target, (*request.headers, ("X-Pad", "p" * pad)), request.body, None
    )
    stream = padded.encode()
    cuts = sorted(data.draw(st.sets(st.integers(1, len(stream) - 1), max_size=30)))

    async def main() -> None:
        async with Served(HttpLimits(max_head_bytes=_HEAD_LIMIT)) as served:
            reader, writer = await served.connect()
            await _send_in_pieces(writer, stream, cuts)
            [answer] = await _responses(reader, 1)
            await _close(writer)
        assert answer.startswith(b"HTTP/1.1 431 " if over else b"HTTP/1.1 200 "), answer

    _run(loop, main())
