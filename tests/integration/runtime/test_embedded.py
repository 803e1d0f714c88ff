"""Embedded functions (``io.pystatefun.endpoints.v1/embedded``) in a real runtime: real SQLite
files, real HTTP ingress and egress on 127.0.0.1, functions imported from real files.

The function files are written per test into ``tmp_path`` under a module name of their own, and
the test imports the same module (``sys.path``) to reach the events a blocked function waits on.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import textwrap
from pathlib import Path

import pytest
from support.inprocess import function_server, pop, post, running, wait_for

from pystatefun.errors import ModuleError
from pystatefun.module import load_module
from pystatefun.runtime import Runtime, RuntimeOptions
from pystatefun.sdk import StatefulFunctions, StringType, ValueSpec, message_builder

STRING = {"Content-Type": "application/vnd.io.statefun.types/string"}

COUNTERS = """\
import asyncio
import threading

from pystatefun.sdk import (
    IntType, StatefulFunctions, ValueSpec, egress_message_builder, make_json_type,
    message_builder,
)

RECORD = make_json_type("io.statefun.playground/EgressRecord")
functions = StatefulFunctions()
release = threading.Event()   # what a blocked plain function waits for
released = None               # an asyncio.Event, made on the runtime's loop by the test


def emit(context, text):
    record = {"topic": "out", "payload": text}
    context.send_egress(egress_message_builder("io.statefun.playground/egress", record, RECORD))


@functions.bind("local/first", specs=[ValueSpec("seen", IntType)])
def first(context, message):
    text = message.as_string()
    if text == "raise":
        raise RuntimeError("asked to raise")
    if text == "block":
        assert release.wait(30), "never released"
    context.storage.seen = (context.storage.seen or 0) + 1
    target = "remote/echo" if text.startswith("via-remote") else "local/second"
    context.send(message_builder(target, context.address.id, str_value=text))
    if context.caller is not None:
        context.send(message_builder(context.caller.typename, context.caller.id,
                                     int_value=context.storage.seen))


@functions.bind("local/second", specs=[ValueSpec("seen", IntType)])
def second(context, message):
    context.storage.seen = (context.storage.seen or 0) + 1
    emit(context, f"{context.address.id}:{message.as_string()}:{context.storage.seen}")


@functions.bind("local/waits")
async def waits(context, message):
    await released.wait()
    emit(context, f"waited:{message.as_string()}")
"""


def _module(tmp_path: Path, name: str, extra_spec: str = "", extra_docs: str = "") -> Path:
    (tmp_path / f"{name}.py").write_text(COUNTERS)
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: local/*\n"
        f"  import: {name}.py:functions\n{extra_spec}---\n"
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n---\n"
        "kind: io.statefun.playground.v1/egress\nspec:\n  port: 0\n  topics: [out]\n"
        f"{extra_docs}"
    )
    return module


async def _records(runtime: Runtime, count: int) -> list[str]:
    records: list[str] = []

    async def enough() -> bool:
        while (record := await pop(runtime, "out")) is not None:
            records.append(record)
        return len(records) >= count

    await wait_for(enough)
    return records


async def _send(runtime: Runtime, path: str, text: str, **headers: str) -> int:
    status, _, _ = await post(f"{runtime.ingress_url}{path}", text.encode(), {**STRING, **headers})
    return status


async def test_a_chain_commits_state_messages_and_egress_exactly_once_and_survives_a_restart(
    tmp_path: Path,
) -> None:
    module = _module(tmp_path, "chain_fns")
    data_dir = tmp_path / "data"
    async with running(module, data_dir) as runtime:
        for n in range(20):
            assert await _send(runtime, f"/local/first/id{n % 4}", f"m{n}") == 202
        records = await _records(runtime, 20)
        assert runtime.statistics()["embedded_batches"] >= 2
    # Per id, the second function saw its five messages in order, each exactly once.
    for n in range(4):
        mine = [r for r in records if r.startswith(f"id{n}:")]
        assert mine == [f"id{n}:m{n + 4 * k}:{k + 1}" for k in range(5)]
    async with running(module, data_dir) as runtime:
        assert await _send(runtime, "/local/first/id0", "again") == 202
        assert await _records(runtime, 1) == ["id0:again:6"]


async def test_request_reply_reaches_an_embedded_function(tmp_path: Path) -> None:
    async with running(_module(tmp_path, "reply_fns"), tmp_path / "data") as runtime:
        for expected in (b"1", b"2"):
            status, headers, body = await post(
                f"{runtime.ingress_url}/local/first/ann",
                b"hi",
                {**STRING, "Pystatefun-Request-Reply": "true"},
            )
            assert (status, body) == (200, expected)
            assert headers["Content-Type"] == "application/vnd.io.statefun.types/int"


async def test_a_function_that_raises_is_retried_quickly_then_dead_lettered_while_others_flow(
    tmp_path: Path,
) -> None:
    options = {"function_error_attempts": 2, "function_error_backoff_s": 0.01}
    async with running(_module(tmp_path, "raise_fns"), tmp_path / "data", **options) as runtime:
        assert await _send(runtime, "/local/first/bad", "raise") == 202
        assert await _send(runtime, "/local/first/good", "fine") == 202
        assert await _records(runtime, 1) == ["good:fine:1"]
        letters = await wait_for(runtime.engine.dead_letters)
    (letter,) = letters  # type: ignore[misc]
    assert (letter.target.id, letter.attempts) == ("bad", 2)
    assert "RuntimeError: asked to raise" in letter.error
    assert "embedded raise_fns.py:functions" in letter.error
    (message,) = letter.messages
    assert message.payload.typename == "io.statefun.types/string"
    assert message.payload.value is not None
    assert message.payload.value.endswith(b"raise")


async def test_a_blocking_function_on_threads_holds_up_only_its_own_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    module = _module(tmp_path, "threads_fns", "  execution: threads\n  threads: 2\n")
    module.write_text(
        module.read_text().replace("threads_fns.py:functions", "threads_fns:functions")
    )
    functions = importlib.import_module("threads_fns")
    async with running(module, tmp_path / "data") as runtime:
        assert await _send(runtime, "/local/first/slow", "block") == 202
        await wait_for(lambda: runtime.statistics()["running"] == 1)
        assert await _send(runtime, "/local/first/quick", "go") == 202
        assert await _records(runtime, 1) == ["quick:go:1"]  # while slow is still blocked
        functions.release.set()
        assert await _records(runtime, 1) == ["slow:block:1"]


async def test_an_async_function_awaiting_on_the_loop_holds_up_only_its_own_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(tmp_path))
    module = _module(tmp_path, "async_fns")
    module.write_text(module.read_text().replace("async_fns.py:", "async_fns:"))
    functions = importlib.import_module("async_fns")
    functions.released = asyncio.Event()
    async with running(module, tmp_path / "data") as runtime:
        assert await _send(runtime, "/local/waits/w", "one") == 202
        await wait_for(lambda: runtime.statistics()["running"] == 1)
        assert await _send(runtime, "/local/first/other", "go") == 202
        assert await _records(runtime, 1) == ["other:go:1"]
        functions.released.set()
        assert await _records(runtime, 1) == ["waited:one"]


async def test_embedded_and_remote_functions_message_each_other(tmp_path: Path) -> None:
    remote = StatefulFunctions()

    @remote.bind("remote/echo", specs=[ValueSpec("last", StringType)])
    def echo(context, message):  # type: ignore[no-untyped-def]
        context.storage.last = message.as_string()
        back = message_builder("local/second", context.address.id, str_value="back")
        context.send(back)

    async with function_server(remote) as url:
        http = (
            "---\nkind: io.statefun.endpoints.v2/http\nspec:\n  functions: remote/*\n"
            f"  urlPathTemplate: {url}\n"
        )
        async with running(
            _module(tmp_path, "mixed_fns", extra_docs=http), tmp_path / "data"
        ) as rt:
            assert await _send(rt, "/local/first/x", "via-remote") == 202
            assert await _records(rt, 1) == ["x:back:1"]
            assert rt.statistics()["calls"] == 2  # the missing-state handshake, then the call


@pytest.mark.parametrize(
    ("spec", "field", "says"),
    [
        ("  import: missing.py:functions\n", "spec.import", "no such file"),
        ("  import: broken.py:functions\n", "spec.import", "ZeroDivisionError"),
        ("  import: wrong.py:functions\n", "spec.import", "not a StatefulFunctions"),
        ("  import: chain_fns.py:nothing\n", "spec.import", "NoneType"),
    ],
)
def test_an_import_that_fails_names_the_module_file_line_and_field(
    tmp_path: Path, spec: str, field: str, says: str
) -> None:
    (tmp_path / "broken.py").write_text("1 / 0\n")
    (tmp_path / "wrong.py").write_text("functions = 42\n")
    (tmp_path / "chain_fns.py").write_text(COUNTERS)
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n---\n"
        f"kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: local/*\n{spec}"
    )
    with pytest.raises(ModuleError) as error:
        Runtime(load_module(module), RuntimeOptions(data_dir=tmp_path / "data"))
    assert (error.value.line, error.value.field) == (8, field)  # the line of `import:`
    assert says in str(error.value)
    assert str(error.value).startswith(f"{module}:8: {field}:")
    assert not (tmp_path / "data").exists()


def test_an_exact_type_the_object_does_not_bind_is_refused_at_start(tmp_path: Path) -> None:
    (tmp_path / "fns.py").write_text(COUNTERS)
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: local/third\n"
        "  import: fns.py:functions\n"
    )
    with pytest.raises(ModuleError, match="binds local/first, local/second, local/waits") as err:
        Runtime(load_module(module), RuntimeOptions(data_dir=tmp_path / "data"))
    assert err.value.field == "spec.functions"


async def test_an_unbound_type_of_the_namespace_is_dead_lettered(tmp_path: Path) -> None:
    async with running(_module(tmp_path, "unbound_fns"), tmp_path / "data") as runtime:
        assert await _send(runtime, "/local/nobody/1", "hello") == 202
        letters = await wait_for(runtime.engine.dead_letters)
    (letter,) = letters  # type: ignore[misc]
    assert letter.attempts == 1  # terminal: retrying cannot help
    assert "local/nobody" in letter.error
    assert json.dumps(letter.error)  # a plain string, printable by `dead-letters list`


def test_the_module_check_describes_an_embedded_endpoint(tmp_path: Path) -> None:
    from pystatefun.cli._module import describe

    module = _module(tmp_path, "described_fns", "  execution: threads\n  threads: 3\n")
    (line,) = [text for text in describe(load_module(module), "m.yaml") if "embedded" in text]
    assert line == textwrap.dedent(
        "m.yaml:1: embedded endpoint local/* -> described_fns.py:functions "
        "(plain functions on the 3 threads; batches of up to 1000)"
    )
