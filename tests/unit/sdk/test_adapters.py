"""Both HTTP adapters, served for real on 127.0.0.1: ``AsgiApp`` under uvicorn and
``make_app`` under aiohttp. They must answer every case with the same status."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator

import aiohttp
import pytest
import uvicorn
from aiohttp import web
from support.wire import to_function, typed

from pystatefun.protocol import FromFunction, TypedValue
from pystatefun.sdk import (
    Context,
    IntType,
    Message,
    StatefulFunctions,
    ValueSpec,
    message_builder,
)
from pystatefun.sdk.aiohttp import make_app
from pystatefun.sdk.asgi import AsgiApp

LIMIT = 4096


def _functions() -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("x/echo", specs=[ValueSpec("n", IntType)])
    async def echo(context: Context, message: Message) -> None:
        await asyncio.sleep(0)
        context.storage.n = message.as_int()
        context.send(message_builder("x/sink", "1", int_value=message.as_int()))

    @functions.bind("x/fails")
    def fails(context: Context, message: Message) -> None:
        raise ValueError("the function failed on purpose")

    @functions.bind("x/reads-garbage")
    def reads_garbage(context: Context, message: Message) -> None:
        message.as_int()  # the message carries bytes that are not an IntWrapper

    return functions


async def _serve_asgi() -> tuple[str, object]:
    # Listening before uvicorn starts means clients queue in the backlog: no readiness polling.
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    config = uvicorn.Config(
        AsgiApp(_functions(), max_request_bytes=LIMIT), log_level="warning", lifespan="on"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))

    async def stop() -> None:
        server.should_exit = True
        await task
        sock.close()

    return f"http://127.0.0.1:{sock.getsockname()[1]}/statefun", stop


async def _serve_aiohttp() -> tuple[str, object]:
    runner = web.AppRunner(make_app(_functions(), max_request_bytes=LIMIT))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return f"http://{host}:{port}/statefun", runner.cleanup


@pytest.fixture(params=["asgi", "aiohttp"])
async def endpoint(request: pytest.FixtureRequest) -> AsyncIterator[str]:
    url, stop = await (_serve_asgi() if request.param == "asgi" else _serve_aiohttp())
    yield url
    await stop()  # type: ignore[operator]


async def _post(url: str, body: bytes) -> tuple[int, str, bytes]:
    async with aiohttp.ClientSession() as session, session.post(url, data=body) as response:
        return response.status, response.headers["Content-Type"], await response.read()


async def test_a_request_gets_a_from_function(endpoint: str) -> None:
    request = to_function("x/echo", "a", {"n": None}, [(typed(IntType, 5), None)])
    status, content_type, body = await _post(endpoint, request.SerializeToString())
    assert (status, content_type) == (200, "application/octet-stream")
    reply = FromFunction.FromString(body)
    assert len(reply.invocation_result.outgoing_messages) == 1


async def test_the_handshake_goes_over_http(endpoint: str) -> None:
    request = to_function("x/echo", "a", {}, [(typed(IntType, 5), None)])
    status, _, body = await _post(endpoint, request.SerializeToString())
    assert status == 200
    assert (
        FromFunction.FromString(body).incomplete_invocation_context.missing_values[0].state_name
        == "n"
    )


@pytest.mark.parametrize(
    ("body", "status", "says"),
    [
        (b"\xff\x00garbage", 400, "not a StateFun ToFunction message"),
        (
            to_function("x/nobody", "a", {}, [(typed(IntType, 1), None)]).SerializeToString(),
            404,
            "bound types: x/echo, x/fails",
        ),
        (
            to_function("x/fails", "a", {}, [(typed(IntType, 1), None)]).SerializeToString(),
            500,
            "the function failed on purpose (while invoking x/fails/a with message 1 of 1)",
        ),
        (
            to_function(
                "x/reads-garbage",
                "a",
                {},
                [
                    (
                        TypedValue(
                            typename="io.statefun.types/int", has_value=True, value=b"\xff\xff"
                        ),
                        None,
                    )
                ],
            ).SerializeToString(),
            500,
            "bytes are not a valid io.statefun.types/int",
        ),
        (b"\x00" * (LIMIT + 1), 413, f"exceeds the limit of {LIMIT} bytes"),
    ],
    ids=["garbage", "unknown-function", "function-raises", "function-reads-garbage", "too-large"],
)
async def test_errors_get_a_status_and_a_reason(
    endpoint: str, body: bytes, status: int, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    got_status, content_type, got_body = await _post(endpoint, body)
    assert got_status == status
    assert content_type.startswith("text/plain")
    assert says in got_body.decode()
    failures = [r for r in caplog.records if r.getMessage() == "function invocation failed"]
    assert len(failures) == (1 if status == 500 else 0)
    if failures:
        assert failures[0].exc_info is not None  # the traceback is in the server's log


async def test_only_post_is_served(endpoint: str) -> None:
    async with aiohttp.ClientSession() as session, session.get(endpoint) as response:
        assert response.status == 405
        assert response.headers["Allow"] == "POST"
