"""One message a function cannot take costs only itself: failures no retry can fix are
dead-lettered at once, and a poison message is isolated from the batch it travels in.

The functions run in real function servers (``support/functions/poison_functions.py``) behind
pystatefun's SDK and the official ``apache-flink-statefun`` 3.3.0 SDK, as subprocesses on
127.0.0.1; the runtime runs in-process on a real data dir.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.function_servers import FUNCTIONS, PATH, serving
from support.inprocess import post, running, wait_for
from support.processes import ListeningProcess

from pystatefun.runtime import Runtime
from pystatefun.store import DeadLetter, StateValue
from pystatefun.types import Address

pytestmark = pytest.mark.timeout(120)
ORDER = {"Content-Type": "application/vnd.poison/Order"}
STRING = {"Content-Type": "application/vnd.io.statefun.types/string"}


POISON_FUNCTIONS = FUNCTIONS / "poison_functions.py"


@pytest.fixture(scope="module")
def ours() -> Iterator[ListeningProcess]:
    yield from serving("ours", POISON_FUNCTIONS)


@pytest.fixture(scope="module")
def official() -> Iterator[ListeningProcess]:
    yield from serving("official-python", POISON_FUNCTIONS)


def _module(tmp_path: Path, server: ListeningProcess) -> Path:
    url = server.url + PATH  # ours answers there; the official server answers on any path
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: poison/*\n"
        f"  urlPathTemplate: {url}\n  transport:\n    call: 10s\n---\n"
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n"
    )
    return module


async def _seen(runtime: Runtime, address_id: str) -> str:
    values: dict[str, StateValue] = await runtime.engine.read_state(
        Address("poison", "counter", address_id)
    )
    value = values.get("seen")
    return "" if value is None or value.payload.value is None else value.payload.value[2:].decode()


@pytest.mark.interop
@pytest.mark.parametrize("sdk", ["ours", "official"])
async def test_a_poison_message_is_dead_lettered_alone_and_the_rest_of_its_batch_applied(
    sdk: str, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    server = request.getfixturevalue(sdk)
    hold = tmp_path / "hold"
    hold.mkdir()
    async with running(_module(tmp_path, server), tmp_path / "data") as runtime:
        url = f"{runtime.ingress_url}/poison/counter/c"
        assert (await post(url, f"hold:{hold}".encode(), STRING))[0] == 202
        await wait_for((hold / "held").exists)
        # Queued behind the held invocation, these ten reach the function as one batch.
        for n in range(10):
            body = b"this is not JSON" if n == 6 else json.dumps({"n": n}).encode()
            assert (await post(url, body, ORDER))[0] == 202
        started = time.monotonic()
        (hold / "release").touch()
        letters = await wait_for(runtime.engine.dead_letters, timeout_s=30)
        took = time.monotonic() - started
        await wait_for(lambda: _seen_all(runtime))
        seen = await _seen(runtime, "c")
    assert seen == "0,1,2,3,4,5,7,8,9,", seen  # every other message, in order
    [letter] = letters  # type: ignore[misc]
    assert isinstance(letter, DeadLetter)
    assert [m.payload.value for m in letter.messages] == [b"this is not JSON"]
    assert letter.target.id == "c"
    # Every failed call carried the poison message; a dead letter counts them.
    if sdk == "ours":  # the SDK names the message and says no retry helps: cut right there
        assert letter.attempts == 2  # the batch of 10, then the rest from the poison on
        assert "with message" in letter.error
    else:  # three tries of the batch of 10, then halving: 10, 5, 2 and the poison alone
        assert letter.attempts == 7
    assert "[PSF-RT0005]" in letter.error
    print(f"{sdk}: poison isolated in {took:.2f} s")


async def _seen_all(runtime: Runtime) -> bool:
    return (await _seen(runtime, "c")).count(",") == 9


async def test_an_unbound_type_is_dead_lettered_at_once(
    tmp_path: Path, ours: ListeningProcess
) -> None:
    async with running(_module(tmp_path, ours), tmp_path / "data") as runtime:
        calls = runtime.statistics()["calls"]
        assert (await post(f"{runtime.ingress_url}/poison/unbound/x", b"hi", STRING))[0] == 202
        [letter] = await wait_for(runtime.engine.dead_letters)  # type: ignore[misc]
        assert runtime.statistics()["calls"] == calls + 1  # one call: no retry
    assert letter.attempts == 1
    assert "HTTP 404" in letter.error
    assert "no function is bound to type 'poison/unbound'" in letter.error
    assert "[PSF-RT0002]" in letter.error


async def test_a_message_of_the_wrong_type_is_dead_lettered_at_once_and_others_flow(
    tmp_path: Path, ours: ListeningProcess
) -> None:
    def failures_logged() -> int:
        return sum("function invocation failed" in line for line in list(ours.stderr_tail))

    logged = failures_logged()
    async with running(_module(tmp_path, ours), tmp_path / "data") as runtime:
        ingress = runtime.ingress_url
        assert (await post(f"{ingress}/poison/typed/t", b"not a number", STRING))[0] == 202
        [letter] = await wait_for(runtime.engine.dead_letters)  # type: ignore[misc]
        await wait_for(lambda: failures_logged() > logged)  # the server's log is read apart
        assert failures_logged() == logged + 1  # one traceback in the function server: no retry
        int_type = {"Content-Type": "application/vnd.io.statefun.types/int"}
        assert (await post(f"{ingress}/poison/typed/t", b"5", int_type))[0] == 202
        await wait_for(lambda: runtime.statistics()["batches_committed"] >= 1)
    assert letter.attempts == 1
    assert "[PSF-SDK0004]" in letter.error


async def test_a_request_reply_call_is_answered_as_soon_as_its_message_is_dead_lettered(
    tmp_path: Path, ours: ListeningProcess
) -> None:
    async with running(_module(tmp_path, ours), tmp_path / "data") as runtime:
        asked = time.monotonic()
        status, headers, body = await asyncio.wait_for(
            post(
                f"{runtime.ingress_url}/poison/typed/r",
                b"not a number",
                {**STRING, "Pystatefun-Request-Reply": "true"},
            ),
            timeout=20,  # the reply timeout is 30 s: an answer before it is the point
        )
        took = time.monotonic() - asked
        [letter] = await runtime.engine.dead_letters()
    assert status == 422
    assert headers["Pystatefun-Dead-Letter"] == str(letter.dead_letter_id)
    text = body.decode()
    assert f"is in the dead letters as dead letter {letter.dead_letter_id}" in text
    assert f"pystatefun dead-letters redrive --id {letter.dead_letter_id}" in text
    assert took < 20
