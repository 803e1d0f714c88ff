"""State TTLs, delayed messages across restarts, recovery and graceful shutdown, with an
injected clock (wall-clock milliseconds that move only when the test says so)."""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from support.counting_functions import emit
from support.inprocess import FakeClock, function_server, post, records, running, wait_for
from support.inprocess import write_module as module_file

from pystatefun.module import load_module
from pystatefun.runtime import Runtime, RuntimeOptions
from pystatefun.sdk import Context, IntType, Message, StatefulFunctions, ValueSpec, message_builder

PYSTATEFUN = Path(sys.executable).parent / "pystatefun"


def _ttl_functions() -> StatefulFunctions:
    functions = StatefulFunctions()
    specs = [
        ValueSpec("w", IntType, expire_after_write=timedelta(seconds=1)),
        ValueSpec("c", IntType, expire_after_call=timedelta(seconds=1)),
    ]

    @functions.bind("ttl/fn", specs=specs)
    def fn(context: Context, message: Message) -> None:
        if message.as_string() == "set":
            context.storage.w = context.storage.c = 1
        emit(context, f"{context.storage.w},{context.storage.c}")

    return functions


async def test_ttl_after_write_and_after_invoke(tmp_path: Path) -> None:
    clock = FakeClock()
    async with function_server(_ttl_functions()) as url:
        module = module_file(tmp_path / "m.yaml", {"ttl/*": url})
        async with running(module, tmp_path / "data", clock_ms=clock) as runtime:
            ingress = f"{runtime.ingress_url}/ttl/fn/a"

            async def read_after(advance_ms: int) -> str:
                clock.now_ms += advance_ms
                await post(ingress, b"read")
                [record] = await records(runtime, "out", 1)
                return record

            await post(ingress, b"set")
            assert await records(runtime, "out", 1) == ["1,1"]
            assert await read_after(800) == "1,1"  # this invocation restarts c's TTL
            assert await read_after(400) == "None,1"  # w: 1.2 s after its write; c: 0.4 s
            assert await read_after(2000) == "None,None"
            assert (await runtime.engine.counts())["state"] == 0  # expired values were deleted


def _delay_functions() -> StatefulFunctions:
    functions = StatefulFunctions()

    @functions.bind("d/fn")
    def fn(context: Context, message: Message) -> None:
        text = message.as_string()
        if text == "schedule":
            later = message_builder("d/fn", context.address.id, str_value="fire")
            context.send_after(timedelta(seconds=10), later, "t")
        elif text == "cancel":
            context.cancel_delayed_message("t")
        else:
            caller = context.caller
            emit(context, f"{text} from {caller and caller.typename}/{caller and caller.id}")

    return functions


async def test_delayed_messages_survive_a_restart_and_cancel(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock()
    async with function_server(_delay_functions()) as url:
        module = module_file(tmp_path / "m.yaml", {"d/*": url})
        async with running(module, tmp_path / "data", clock_ms=clock) as runtime:
            await post(f"{runtime.ingress_url}/d/fn/a", b"schedule")
            await post(f"{runtime.ingress_url}/d/fn/b", b"schedule")
            await post(f"{runtime.ingress_url}/d/fn/b", b"cancel")
            await wait_for(lambda: _timers_are(runtime, 1))
        with caplog.at_level(logging.INFO, logger="pystatefun.runtime"):
            async with running(module, tmp_path / "data", clock_ms=clock) as runtime:
                assert runtime.recovered["timers"] == 1
                assert "1 timer(s)" in caplog.text
                clock.now_ms += 10_000
                runtime._timers.wake()  # the clock jumped; real time did not
                assert await records(runtime, "out", 1) == ["fire from d/fn/a"]
                await wait_for(lambda: _timers_are(runtime, 0))


async def _timers_are(runtime: Runtime, count: int) -> bool:
    """Every message processed, and ``count`` delayed messages pending."""
    counts = await runtime.engine.counts()
    return counts["inbox"] == 0 and counts["timers"] == count


async def test_graceful_stop_finishes_in_flight_work_and_refuses_new(tmp_path: Path) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    functions = StatefulFunctions()

    @functions.bind("g/fn")
    async def slow(context: Context, message: Message) -> None:
        entered.set()
        await release.wait()
        emit(context, "finished")

    async with function_server(functions) as url:
        module = module_file(tmp_path / "m.yaml", {"g/*": url}, transport="call: 30s")
        options = RuntimeOptions(data_dir=tmp_path / "data", durability="os")
        runtime = Runtime(load_module(module), options)
        await runtime.start()
        await post(f"{runtime.ingress_url}/g/fn/1", b"work")
        await entered.wait()
        ask = {"Pystatefun-Request-Reply": "true"}  # g/fn never answers its caller
        waiting = asyncio.create_task(post(f"{runtime.ingress_url}/g/fn/3", b"ask", ask))
        await wait_for(lambda: len(runtime._replies) == 1)
        stopping = asyncio.create_task(runtime.stop())
        await wait_for(lambda: runtime._stopping)
        status, _, body = await post(f"{runtime.ingress_url}/g/fn/2", b"late")
        assert (status, b"the runtime is stopping" in body) == (503, True)
        release.set()
        await stopping
        status, _, body = await waiting
        assert (status, b"was accepted, but no reply came" in body) == (504, True)
        async with running(module, tmp_path / "data") as again:
            assert again.recovered["pending_messages"] == 0  # both in-flight batches committed
            assert await records(again, "out", 2) == ["finished", "finished"]


def test_run_reports_a_bad_module_with_file_line_and_field(tmp_path: Path) -> None:
    module = tmp_path / "bad.yaml"
    module.write_text(
        "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: ex/*\n"
        "  urlPathTemplate: http://127.0.0.1:1/statefun\n  transport:\n    call: 2 fortnights\n"
    )
    result = subprocess.run(
        [PYSTATEFUN, "run", module, "--data-dir", tmp_path / "data"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    assert "bad.yaml:6" in result.stderr
    assert "spec.transport.call" in result.stderr
    assert not (tmp_path / "data").exists()  # nothing was created for a module that is wrong


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--min-inflight", "0"),
        ("--state-cache-addresses", "-1"),
        ("--function-error-attempts", "0"),
        ("--function-error-backoff", "0"),
    ],
)
def test_run_refuses_out_of_range_limits_by_name(tmp_path: Path, option: str, value: str) -> None:
    module = module_file(tmp_path / "m.yaml", {"d/*": "http://127.0.0.1:1/statefun"})
    result = subprocess.run(
        [PYSTATEFUN, "run", module, "--data-dir", tmp_path / "data", option, value],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert f"Invalid value for '{option}'" in result.stderr
    assert not (tmp_path / "data").exists()


async def test_one_process_per_data_dir(tmp_path: Path) -> None:
    async with function_server(_delay_functions()) as url:
        module = module_file(tmp_path / "m.yaml", {"d/*": url})
        async with running(module, tmp_path / "data"):
            result = await asyncio.to_thread(
                subprocess.run,
                [PYSTATEFUN, "run", module, "--data-dir", tmp_path / "data"],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert result.returncode == 1
            assert "is in use by another pystatefun process" in result.stderr


async def test_one_port_for_ingress_and_egress_is_refused(tmp_path: Path) -> None:
    from pystatefun.errors import DataDirError

    module = tmp_path / "m.yaml"
    module.write_text(
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 18981\n---\n"
        "kind: io.statefun.playground.v1/egress\nspec:\n  port: 18981\n  topics: [out]\n"
    )
    runtime = Runtime(load_module(module), RuntimeOptions(data_dir=tmp_path / "data"))
    with pytest.raises(DataDirError, match="both ask for port 18981"):
        await runtime.start()
    await runtime.stop()
