"""The playground ingress and egress on HttpServer, against a recording RuntimeHandle: the
wire details the runtime's integration tests do not reach (escapes, method and path refusals,
limits, the order of refusals)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from pystatefun.errors import DataDirError
from pystatefun.http import HttpClientPool, HttpResponse
from pystatefun.io.api import IngestOutcome, IngestResult
from pystatefun.io.playground import (
    PlaygroundEgressServer,
    PlaygroundIngressServer,
    encode_text,
)
from pystatefun.store import Position
from pystatefun.types import Address

pytestmark = pytest.mark.timeout(30)


class Handle:
    """Records what the ingress hands over; answers pops from a list."""

    def __init__(self, result: IngestResult | None = None) -> None:
        self.ingested: list[tuple[Address, str, bytes, str | None, bool]] = []
        self.records: list[bytes] = []
        self.result = result or IngestResult(IngestOutcome.ACCEPTED)

    async def ingest(
        self,
        target: Address,
        typename: str,
        value: bytes,
        *,
        idempotency_key: str | None = None,
        wait_for_reply: bool = False,
        position: Position | None = None,
        trace: str | None = None,
    ) -> IngestResult:
        assert position is None  # the playground reads from no log
        self.ingested.append((target, typename, value, idempotency_key, wait_for_reply))
        return self.result

    async def positions(self, source: str) -> dict[str, str]:
        return {}

    async def pop_egress(self, egress: str, topic: str) -> bytes | None:
        assert egress == "io.statefun.playground/egress"
        return self.records.pop(0) if self.records else None


def ingress(limit: int = 100, port: int = 0) -> PlaygroundIngressServer:
    return PlaygroundIngressServer(host="127.0.0.1", port=port, max_body_bytes=limit)


@asynccontextmanager
async def client(server: Any, handle: Handle) -> AsyncIterator[Any]:
    await server.start(handle)
    pool = HttpClientPool("127.0.0.1", server.port, pool_size=2, keepalive_s=5)

    async def send(
        method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> HttpResponse:
        return await pool.request(
            method,
            path,
            body,
            headers,
            connect_timeout_s=5,
            read_timeout_s=5,
            total_timeout_s=5,
            max_body_bytes=1 << 20,
        )

    try:
        yield send
    finally:
        await pool.close()
        await server.stop()


async def test_the_ingress_hands_over_decoded_targets_typed_values_and_headers() -> None:
    handle = Handle()
    async with client(ingress(), handle) as send:
        headers = {
            "Content-Type": "application/vnd.io.statefun.types/int; charset=x",
            "Idempotency-Key": "k1",
            "Pystatefun-Request-Reply": "TRUE",
        }
        answer = await send("PUT", "/ns/fn/an%20id?ignored=1", b" 42 ", headers)
        assert (answer.status, answer.body) == (202, b"")
        answer = await send("POST", "/ns/fn/x", b"raw", {"Content-Type": "application/vnd.a/B"})
        assert answer.status == 202
    [(target, typename, value, key, wait), other] = handle.ingested
    assert (target, typename, key, wait) == (
        Address("ns", "fn", "an id"),
        "io.statefun.types/int",
        "k1",
        True,
    )
    assert value == encode_text("io.statefun.types/int", "42")
    assert other == (Address("ns", "fn", "x"), "a/B", b"raw", None, False)


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "says"),
    [
        ("/a%2Fb/fn/x", {}, b"x", 404, "'/a/b/fn/x' is not /<namespace>/<type>/<id>"),
        ("/a/b/c", {"Content-Type": "application/vnd.flat"}, b"x" * 101, 415, "namespace/name"),
        ("/a/b/c", {}, b"x" * 101, 413, "message to a/b/c of 101 bytes exceeds the ingress limit"),
        ("/a//c", {}, b"x" * 101, 404, "is not /<namespace>/<type>/<id>"),  # path comes first
    ],
    ids=["escaped-slash", "type-before-size", "too-large", "path-before-size"],
)
async def test_ingress_refusals(
    path: str, headers: dict[str, str], body: bytes, status: int, says: str
) -> None:
    handle = Handle()
    async with client(ingress(), handle) as send:
        answer = await send("POST", path, body, headers)
    assert (answer.status, says in answer.body.decode()) == (status, True), answer.body
    assert answer.headers["content-type"] == "text/plain; charset=utf-8"
    assert handle.ingested == []


@pytest.mark.parametrize(
    ("result", "status", "says"),
    [
        (IngestResult(IngestOutcome.DUPLICATE), 202, ""),
        (IngestResult(IngestOutcome.STOPPING), 503, "the runtime is stopping"),
        (IngestResult(IngestOutcome.UNAVAILABLE), 503, "nothing was added: send it again"),
        (IngestResult(IngestOutcome.UNANSWERED), 504, "may or may not have been processed"),
        (IngestResult(IngestOutcome.REPLY_TIMEOUT), 504, "it is processed all the same"),
        (IngestResult(IngestOutcome.WITHDRAWN), 504, "nothing happened; send it again"),
        (
            IngestResult(IngestOutcome.UNANSWERED, error="an fsync of d failed"),
            504,
            "the message for a/b/c may or may not have been stored: an fsync of d failed. Check "
            "before sending it again",
        ),
        (
            IngestResult(IngestOutcome.UNWRITABLE, error="the data dir d cannot be written: full"),
            503,
            "the message for a/b/c was not stored: the data dir d cannot be written: full. "
            "Nothing was added; send it again later",
        ),
        (
            IngestResult(IngestOutcome.DEAD_LETTERED, dead_letter_id=7, error="boom"),
            422,
            "is in the dead letters as dead letter 7: boom. After fixing the cause, re-drive "
            "it: pystatefun dead-letters redrive --id 7",
        ),
        (
            IngestResult(IngestOutcome.REPLIED, "io.statefun.types/bool", b"\x08\x01"),
            200,
            "true",
        ),
    ],
    ids=[
        "duplicate",
        "stopping",
        "unavailable",
        "unanswered",
        "reply-timeout",
        "withdrawn",
        "fsync-failed",
        "unwritable",
        "dead-lettered",
        "replied",
    ],
)
async def test_ingress_outcomes(result: IngestResult, status: int, says: str) -> None:
    async with client(ingress(), Handle(result)) as send:
        answer = await send("POST", "/a/b/c", b"x")
    assert (answer.status, says in answer.body.decode()) == (status, True), answer.body
    if result.outcome is IngestOutcome.DUPLICATE:
        assert answer.headers["pystatefun-duplicate"] == "true"
    if result.outcome is IngestOutcome.REPLIED:
        assert answer.headers["content-type"] == "application/vnd.io.statefun.types/bool"
    if result.outcome is IngestOutcome.DEAD_LETTERED:
        assert answer.headers["pystatefun-dead-letter"] == "7"
    if result.outcome in (IngestOutcome.STOPPING, IngestOutcome.UNAVAILABLE):
        assert answer.headers["retry-after"] == "1"
    if result.outcome is IngestOutcome.UNWRITABLE:
        assert answer.headers["retry-after"] == "2"


async def test_an_egress_pop_on_a_full_disk_is_503_and_pops_nothing() -> None:
    class FullDisk(Handle):
        async def pop_egress(self, egress: str, topic: str) -> bytes | None:
            raise DataDirError("the data dir d cannot be written: the disk is full")

    server = PlaygroundEgressServer(host="127.0.0.1", port=0, topics=("out",))
    async with client(server, FullDisk()) as send:
        got = await send("GET", "/out")
    assert (got.status, got.headers["retry-after"]) == (503, "2")
    assert got.body == b"the data dir d cannot be written: the disk is full [PSF-RT0003]\n"


@pytest.mark.parametrize("method", ["GET", "HEAD", "DELETE", "PATCH", "OPTIONS"])
async def test_only_post_and_put_send_a_message(method: str) -> None:
    handle = Handle()
    async with client(ingress(), handle) as send:
        answer = await send(method, "/a/b/c", b"")
    assert answer.status == 405
    assert answer.headers["allow"] == "POST, PUT"
    if method != "HEAD":
        assert (
            answer.body
            == (
                f"{method} does not send a message; send it to a/b/c with POST or PUT (the body "
                "is the message)\n"
            ).encode()
        )
    assert handle.ingested == []


async def test_the_egress_pops_with_get_only() -> None:
    handle = Handle()
    handle.records = [b"first", b"second"]
    server = PlaygroundEgressServer(host="127.0.0.1", port=0, topics=("out",))
    async with client(server, handle) as send:
        got = await send("GET", "/out")
        assert (got.status, got.body, got.headers["content-type"]) == (200, b"first", "text/plain")
        head = await send("HEAD", "/out")
        assert (head.status, head.headers["allow"]) == (405, "GET")
        post = await send("POST", "/out")
        assert (post.status, post.body) == (405, b"405: Method Not Allowed\n")
        assert (await send("GET", "/nope")).body == b"topic 'nope' is not declared; topics: out\n"
        for path in ("/", "/out/", "/out/more"):
            assert (await send("GET", path)).status == 404
        assert (await send("GET", "/out")).body == b"second"  # HEAD and POST took nothing
        empty = await send("GET", "/out")
        assert (empty.status, empty.body) == (404, b"")


async def test_a_port_in_use_is_a_data_dir_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = ingress(port=port)
        with pytest.raises(DataDirError, match=f"cannot listen on 127.0.0.1:{port}: .*in use"):
            await server.start(Handle())


async def test_a_chunked_body_over_the_ingress_limit(raw: Any) -> None:
    handle = Handle()
    server = ingress()
    await server.start(handle)
    try:
        connection = await raw(server.port)
        await connection.send(
            b"POST /a/b/c HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"65\r\n"
            + b"x" * 101
            + b"\r\n"
        )
        status, _, body = await connection.response()
    finally:
        await server.stop()
    assert (status, handle.ingested) == (413, [])
    assert body.startswith(b"message to a/b/c of over 100 bytes exceeds the ingress limit")
