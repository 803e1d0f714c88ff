"""Failures never take the database down: misbehaving endpoints are retried with backoff and
dead-lettered by policy while other addresses flow; terminal errors are dead-lettered at once;
dead letters can be listed and re-driven. Each case checks the error it must produce and that
nothing was lost."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from aiohttp import web
from support.counting_functions import counting, emit
from support.inprocess import function_server, post, raw_server, records, running, wait_for
from support.inprocess import write_module as module_file

from pystatefun.sdk import (
    Context,
    IntType,
    Message,
    StatefulFunctions,
    StringType,
    ValueSpec,
    egress_message_builder,
    message_builder,
)
from pystatefun.types import Address

PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
FAST_POLICY = {
    "dead_letter_after_attempts": 2,
    "retry_backoff_initial_s": 0.05,
    "rescan_interval_s": 0.1,
}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def test_a_down_endpoint_is_retried_dead_lettered_and_re_driven(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    down_url = f"http://127.0.0.1:{port}/statefun"
    async with function_server(counting("good/fn")) as good:
        module = module_file(
            tmp_path / "m.yaml", {"good/*": good, "bad/*": down_url}, transport="call: 300ms"
        )
        async with running(module, tmp_path / "data", **FAST_POLICY) as runtime:
            assert (await post(f"{runtime.ingress_url}/bad/fn/x", b"kept"))[0] == 202
            assert (await post(f"{runtime.ingress_url}/good/fn/y", b"hello"))[0] == 202
            assert await records(runtime, "out", 1) == ["y:hello:1"]  # flows meanwhile
            [letter] = await wait_for(runtime.engine.dead_letters)  # type: ignore[misc]
            assert letter.target == Address("bad", "fn", "x")
            assert letter.attempts == 2
            assert f"bad/fn/x at {down_url}: {down_url} failed" in letter.error
            assert [m.payload.value for m in letter.messages] == [b"\n\x04kept"]
            warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
            assert any("bad/fn/x" in w and down_url in w for w in warnings)
            listed = subprocess.run(
                [PYSTATEFUN, "dead-letters", "list", "--data-dir", tmp_path / "data"],
                capture_output=True,
                text=True,
                check=True,
            )
            record = json.loads(listed.stdout)
            assert (record["address"], record["messages"][0]["value"]) == ("bad/fn/x", "kept")
            async with function_server(counting("bad/fn"), port=port):
                redriven = subprocess.run(
                    [
                        PYSTATEFUN,
                        "dead-letters",
                        "redrive",
                        "--all",
                        "--data-dir",
                        tmp_path / "data",
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                assert redriven.stdout.strip() == "1"
                assert await records(runtime, "out", 1) == ["x:kept:1"]
            assert await runtime.engine.dead_letters() == []


async def _hang(request: web.Request) -> web.Response:
    await asyncio.Event().wait()  # never answers: the call timeout must fire
    raise AssertionError("unreachable")


async def _garbage(request: web.Request) -> web.Response:
    return web.Response(body=b"\xff\xfenot protobuf", content_type="application/octet-stream")


async def _error(request: web.Request) -> web.Response:
    return web.Response(status=503, text="overloaded")


async def _html(request: web.Request) -> web.Response:
    return web.Response(text="<html>login</html>", content_type="text/html")


async def _hang_up(request: web.Request) -> web.Response:
    assert request.transport is not None
    request.transport.close()
    return web.Response()


@pytest.mark.parametrize(
    ("handler", "reason"),
    [
        (_hang, "TimeoutError"),
        (_garbage, "is not a StateFun FromFunction message"),
        (_error, "HTTP 503: overloaded"),
        (_html, "answered Content-Type 'text/html; charset=utf-8'"),
        (_hang_up, "ServerDisconnectedError"),
    ],
    ids=["slow", "garbage", "5xx", "not-octet-stream", "hangs-up"],
)
async def test_misbehaving_endpoints_are_retried_then_dead_lettered(
    tmp_path: Path, handler: object, reason: str
) -> None:
    async with raw_server(handler) as bad, function_server(counting("good/fn")) as good:  # type: ignore[arg-type]
        module = module_file(
            tmp_path / "m.yaml", {"bad/*": bad, "good/*": good}, transport="call: 300ms"
        )
        async with running(module, tmp_path / "data", **FAST_POLICY) as runtime:
            await post(f"{runtime.ingress_url}/bad/fn/1", b"a")
            await post(f"{runtime.ingress_url}/good/fn/2", b"b")
            assert await records(runtime, "out", 1) == ["2:b:1"]
            [letter] = await wait_for(runtime.engine.dead_letters)  # type: ignore[misc]
            assert reason in letter.error
            assert letter.attempts == 2


def _terminal(kind: str) -> StatefulFunctions:
    functions = StatefulFunctions()

    def fn(context: Context, message: Message) -> None:
        if kind == "unknown-egress":
            context.send_egress(egress_message_builder("nope/egress", "x", StringType))
        elif kind == "undeclared-topic":
            emit(context, "x", topic="elsewhere")
        else:  # the same cancellation token twice, with no cancellation between
            later = message_builder("t/fn", "1", str_value="later")
            context.send_after(timedelta(hours=1), later, "token")
            context.send_after(timedelta(hours=1), later, "token")

    functions.register("t/fn", fn)
    return functions


@pytest.mark.parametrize(
    ("kind", "reason"),
    [
        ("unknown-egress", "egress 'nope/egress', which the module does not declare"),
        ("undeclared-topic", "playground topic 'elsewhere', which the egress does not declare"),
        ("duplicate-token", "reuses the cancellation token"),
    ],
)
async def test_terminal_failures_are_dead_lettered_at_once(
    tmp_path: Path, kind: str, reason: str
) -> None:
    async with function_server(_terminal(kind)) as url:
        module = module_file(tmp_path / "m.yaml", {"t/*": url})
        async with running(module, tmp_path / "data", **FAST_POLICY) as runtime:
            await post(f"{runtime.ingress_url}/t/fn/1", b"go")
            [letter] = await wait_for(runtime.engine.dead_letters)  # type: ignore[misc]
            assert reason in letter.error
            assert letter.attempts == 1
            assert (await runtime.engine.counts())["timers"] == 0  # the step wrote nothing


async def test_a_state_whose_type_changed_is_a_clear_error(tmp_path: Path) -> None:
    def with_type(tpe: object) -> StatefulFunctions:
        functions = StatefulFunctions()
        functions.register(
            "s/fn",
            lambda c, m: setattr(c.storage, "n", (tpe is IntType and 1) or "1"),
            [ValueSpec("n", tpe)],
        )  # type: ignore[arg-type]
        return functions

    async with (
        function_server(with_type(IntType)) as v1,
        running(
            module_file(tmp_path / "m.yaml", {"s/*": v1}), tmp_path / "data", **FAST_POLICY
        ) as runtime,
    ):
        await post(f"{runtime.ingress_url}/s/fn/a", b"")
        await wait_for(lambda: _state_count(runtime))
    async with (
        function_server(with_type(StringType)) as v2,
        running(
            module_file(tmp_path / "m.yaml", {"s/*": v2}), tmp_path / "data", **FAST_POLICY
        ) as runtime,
    ):
        await post(f"{runtime.ingress_url}/s/fn/a", b"")
        [letter] = await wait_for(runtime.engine.dead_letters)  # type: ignore[misc]
        assert (
            "s/fn/a: stored state 'n' has type 'io.statefun.types/int', but the function "
            "declares 'io.statefun.types/string'"
        ) in letter.error


async def _state_count(runtime: object) -> int:
    return (await runtime.engine.counts())["state"]  # type: ignore[attr-defined]
