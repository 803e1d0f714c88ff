"""The playground ingress contract: validation (with nothing stored on a refusal),
idempotency keys, request-reply, and back-pressure at maxNumBatchRequests."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from support.counting_functions import counting, emit
from support.inprocess import function_server, post, records, running, wait_for
from support.inprocess import write_module as module_file

from pystatefun.sdk import Context, IntType, Message, StatefulFunctions, ValueSpec, message_builder


@pytest.mark.parametrize(
    ("path", "headers", "body", "status", "says"),
    [
        ("/only/two", {}, b"x", 404, "is not /<namespace>/<type>/<id>"),
        (
            "/c/fn/1",
            {"Content-Type": "application/vnd.noslash"},
            b"x",
            415,
            "the typename must be namespace/name",
        ),
        (
            "/c/fn/1",
            {"Content-Type": "application/vnd.io.statefun.types/int"},
            b"abc",
            400,
            "message to c/fn/1: the body is not a io.statefun.types/int",
        ),
        (
            "/c/fn/1",
            {"Content-Type": "application/vnd.io.statefun.types/bool"},
            b"maybe",
            400,
            "'maybe' is not a bool",
        ),
        ("/c/fn/1", {}, b"\xff\xfe", 400, "the body is not a io.statefun.types/string"),
        (
            "/c/fn/1",
            {},
            b"x" * 2048,
            413,
            "message to c/fn/1 of 2048 bytes exceeds the ingress limit of 1024 bytes",
        ),
    ],
    ids=["bad-path", "bad-content-type", "not-an-int", "not-a-bool", "not-utf8", "too-large"],
)
async def test_malformed_requests_are_refused_and_store_nothing(
    tmp_path: Path, path: str, headers: dict[str, str], body: bytes, status: int, says: str
) -> None:
    async with function_server(counting("c/fn")) as url:
        module = module_file(tmp_path / "m.yaml", {"c/*": url})
        async with running(module, tmp_path / "data", ingress_max_bytes=1024) as runtime:
            got, _, text = await post(f"{runtime.ingress_url}{path}", body, headers)
            assert (got, says in text.decode()) == (status, True), text
            assert (await runtime.engine.counts())["inbox"] == 0


async def test_an_idempotency_key_makes_retries_safe(tmp_path: Path) -> None:
    async with function_server(counting("c/fn")) as url:
        module = module_file(tmp_path / "m.yaml", {"c/*": url})
        async with running(module, tmp_path / "data") as runtime:
            key = {"Idempotency-Key": "order-17"}
            first = await post(f"{runtime.ingress_url}/c/fn/1", b"pay", key)
            again = await post(f"{runtime.ingress_url}/c/fn/1", b"pay", key)
            assert (first[0], first[1].get("Pystatefun-Duplicate")) == (202, None)
            assert (again[0], again[1].get("Pystatefun-Duplicate")) == (202, "true")
            await post(f"{runtime.ingress_url}/c/fn/1", b"next")
            # The duplicate added nothing: the next message is the second one, not the third.
            assert await records(runtime, "out", 2) == ["1:pay:1", "1:next:2"]


async def test_request_reply_answers_or_times_out_with_the_message_processed(
    tmp_path: Path,
) -> None:
    functions = StatefulFunctions()

    @functions.bind("r/fn", specs=[ValueSpec("n", IntType)])
    def answer(context: Context, message: Message) -> None:
        context.storage.n = (context.storage.n or 0) + 1
        emit(context, message.as_string() or "")
        if context.caller is not None and message.as_string() == "ask":
            context.send(
                message_builder(
                    context.caller.typename, context.caller.id, int_value=context.storage.n
                )
            )

    async with function_server(functions) as url:
        module = module_file(tmp_path / "m.yaml", {"r/*": url})
        async with running(module, tmp_path / "data", reply_timeout_s=0.3) as runtime:
            wait = {"Pystatefun-Request-Reply": "true"}
            status, headers, body = await post(f"{runtime.ingress_url}/r/fn/1", b"ask", wait)
            assert (status, body) == (200, b"1")
            assert headers["Content-Type"] == "application/vnd.io.statefun.types/int"
            status, _, body = await post(f"{runtime.ingress_url}/r/fn/1", b"silent", wait)
            assert status == 504
            assert b"it is processed all the same" in body
            assert await records(runtime, "out", 2) == ["ask", "silent"]


async def test_a_full_mailbox_back_pressures_the_ingress(tmp_path: Path) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    seen: list[str] = []
    functions = StatefulFunctions()

    @functions.bind("b/fn")
    async def slow(context: Context, message: Message) -> None:
        entered.set()
        await release.wait()
        seen.append(message.as_string() or "")

    async with function_server(functions) as url:
        module = module_file(tmp_path / "m.yaml", {"b/*": url}, max_batch=2)
        async with running(module, tmp_path / "data") as runtime:
            ingress = f"{runtime.ingress_url}/b/fn/1"
            assert (await post(ingress, b"m1"))[0] == 202
            await entered.wait()  # m1 is in flight; the mailbox holds up to 2 more
            assert [(await post(ingress, m))[0] for m in (b"m2", b"m3")] == [202, 202]
            fourth = asyncio.create_task(post(ingress, b"m4"))
            dispatcher = runtime._dispatcher  # white box: the ingress waits for room
            await wait_for(
                lambda: any(a.id == "1" for a in dispatcher.mailboxes.waiting_for_room())
            )
            assert not fourth.done()
            release.set()
            assert (await fourth)[0] == 202
            await wait_for(lambda: len(seen) == 4)
            assert seen == ["m1", "m2", "m3", "m4"]  # FIFO per address


async def test_egress_head_does_not_consume_and_unknown_topics_are_refused(
    tmp_path: Path,
) -> None:
    async with function_server(counting("c/fn")) as url:
        module = module_file(tmp_path / "m.yaml", {"c/*": url})
        async with running(module, tmp_path / "data") as runtime:
            await post(f"{runtime.ingress_url}/c/fn/1", b"x")
            await wait_for(lambda: _egress_rows(runtime))
            head = await post(f"{runtime.egress_url}/out", method="HEAD")
            assert head[0] == 405  # a HEAD would remove a record it cannot return
            unknown = await post(f"{runtime.egress_url}/nope", method="GET")
            assert (unknown[0], b"topic 'nope' is not declared; topics: out" in unknown[2]) == (
                405,
                True,
            )
            assert await records(runtime, "out", 1) == ["1:x:1"]  # still there for the GET


async def _egress_rows(runtime: object) -> int:
    return (await runtime.engine.counts())["egress"]  # type: ignore[attr-defined]


async def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    from pystatefun.errors import DataDirError
    from pystatefun.module import load_module
    from pystatefun.runtime import Runtime, RuntimeOptions

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        module = tmp_path / "m.yaml"
        module.write_text(f"kind: io.statefun.playground.v1/ingress\nspec:\n  port: {port}\n")
        runtime = Runtime(load_module(module), RuntimeOptions(data_dir=tmp_path / "data"))
        with pytest.raises(DataDirError, match=f"cannot listen on 127.0.0.1:{port}"):
            await runtime.start()
        await runtime.stop()


async def test_request_reply_without_a_key_is_held_in_memory_and_withdrawn_on_timeout(
    tmp_path: Path,
) -> None:
    """A request-reply message without an Idempotency-Key is not stored before it is processed
    (its answer waits for the commit anyway). One that times out before its invocation starts
    is taken back, and the answer says nothing happened; one already in flight is processed."""
    entered, release = asyncio.Event(), asyncio.Event()
    seen: list[str] = []
    functions = StatefulFunctions()

    @functions.bind("h/fn")
    async def slow(context: Context, message: Message) -> None:
        entered.set()
        await release.wait()
        seen.append(message.as_string() or "")

    async with function_server(functions) as url:
        module = module_file(tmp_path / "m.yaml", {"h/*": url}, max_batch=1)
        async with running(module, tmp_path / "data", reply_timeout_s=0.5) as runtime:
            ingress = f"{runtime.ingress_url}/h/fn/1"
            wait = {"Pystatefun-Request-Reply": "true"}
            first = asyncio.create_task(post(ingress, b"first", wait))
            await entered.wait()
            assert (await runtime.engine.counts())["inbox"] == 0  # held in memory only
            second = asyncio.create_task(post(ingress, b"second", wait))
            status, _, body = await first
            assert (status, b"it is processed all the same" in body) == (504, True), body
            status, _, body = await second
            assert (status, b"nothing happened" in body) == (504, True), body
            assert (await post(ingress, b"third"))[0] == 202
            release.set()
            await wait_for(lambda: len(seen) == 2)
            assert seen == ["first", "third"]
            assert (await runtime.engine.counts())["inbox"] == 0
