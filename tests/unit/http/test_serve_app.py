"""``pystatefun serve`` on HttpServer answers as the aiohttp adapter does (docs/sdk.md, "HTTP
statuses"): 404 for another path, 405 for another method, 413 over the limit, and the SDK's
200/400/404/500 for a POST to the path."""

from __future__ import annotations

from typing import Any

import pytest
from support.wire import to_function, typed

from pystatefun.cli._serve import _app
from pystatefun.http import HttpClientPool, HttpResponse, HttpServer
from pystatefun.protocol import FromFunction
from pystatefun.sdk import Context, Message, StatefulFunctions, StringType

# A broken server or pool must fail a test quickly, not hang it.
pytestmark = pytest.mark.timeout(30)

functions = StatefulFunctions()


@functions.bind("t/fn")
def fn(context: Context, message: Message) -> None:
    if message.as_string() == "raise":
        raise ValueError("asked to")


async def _ask(method: str, path: str, body: bytes, max_request_bytes: int = 1000) -> HttpResponse:
    handle, too_large = _app(functions, "/statefun", max_request_bytes)
    server = HttpServer(handle, max_body_bytes=max_request_bytes, too_large=too_large)
    await server.start("127.0.0.1", 0)
    pool = HttpClientPool("127.0.0.1", server.port, pool_size=1, keepalive_s=0)
    try:
        return await pool.request(
            method,
            path,
            body,
            connect_timeout_s=5,
            read_timeout_s=5,
            total_timeout_s=5,
            max_body_bytes=1 << 20,
        )
    finally:
        await pool.close()
        await server.stop(1.0)


def _invocation(text: str, typename: str = "t/fn") -> bytes:
    return to_function(typename, "1", {}, [(typed(StringType, text), None)]).SerializeToString()


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "says"),
    [
        ("POST", "/statefun", _invocation("hi"), 200, b""),
        ("POST", "/statefun", b"\xff not protobuf", 400, b"ToFunction"),
        ("POST", "/statefun", _invocation("hi", "t/other"), 404, b"no function is bound"),
        ("POST", "/statefun", _invocation("raise"), 500, b"ValueError: asked to"),
        ("POST", "/elsewhere", b"", 404, b"404: Not Found"),
        ("GET", "/statefun", b"", 405, b"405: Method Not Allowed"),
        ("POST", "/statefun", b"x" * 1001, 413, b"request body of 1001 bytes exceeds the limit"),
        ("POST", "/elsewhere", b"x" * 1001, 404, b"404: Not Found"),
    ],
    ids=["ok", "not-statefun", "unbound", "raises", "path", "method", "too-large", "path-first"],
)
async def test_statuses(
    method: str, path: str, body: bytes, status: int, says: bytes, caplog: Any
) -> None:
    caplog.set_level("CRITICAL", "pystatefun.sdk")  # the 500's traceback is expected
    response = await _ask(method, path, body)
    assert (response.status, says in response.body) == (status, True), response.body
    if status == 200:
        assert response.headers["content-type"] == "application/octet-stream"
        FromFunction.FromString(response.body)
    if status == 405:
        assert response.headers["allow"] == "POST"
