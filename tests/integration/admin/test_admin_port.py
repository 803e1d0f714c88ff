"""The admin port of a real runtime: ``/ready`` through recovery and shutdown, ``/health``,
and ``/metrics`` against a known load (the counters equal what was sent, not only present).
Real HTTP on 127.0.0.1, a real SQLite data dir or a ``pystatefun run`` process."""

from __future__ import annotations

import asyncio
import concurrent.futures
import urllib.error
import urllib.request
from pathlib import Path

from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from support.cluster_counter import counter_module, popped, send_counts
from support.counting_functions import emit
from support.inprocess import function_server, post, raw_server, records, wait_for
from support.inprocess import write_module as module_file
from support.runtime_process import start_runtime

from pystatefun.admin import AdminServer
from pystatefun.module import load_module
from pystatefun.runtime import Runtime, RuntimeOptions
from pystatefun.sdk import Context, Message, RequestReplyHandler, StatefulFunctions
from pystatefun.store import MemoryEngine

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _samples(text: str) -> Samples:
    """Every sample of a scrape, by name and labels."""
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples}  # fmt: skip


def _of(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def _get(url: str) -> tuple[int, str]:
    status, _, body = await post(url, method="GET")
    return status, body.decode()


class _SlowToOpen(MemoryEngine):
    """A store whose opening waits for the test: the runtime is recovering meanwhile."""

    def __init__(self) -> None:
        super().__init__(lambda: 1_700_000_000_000)
        self.may_open = asyncio.Event()

    async def open(self, key_groups: int) -> None:
        await self.may_open.wait()
        await super().open(key_groups)


async def test_ready_is_503_while_recovering_and_stopping_and_health_answers_throughout(
    tmp_path: Path,
) -> None:
    entered, release = asyncio.Event(), asyncio.Event()
    functions = StatefulFunctions()

    @functions.bind("a/slow")
    async def slow(context: Context, message: Message) -> None:
        entered.set()
        await release.wait()
        emit(context, "done")

    async with function_server(functions) as url:
        module = module_file(tmp_path / "m.yaml", {"a/*": url}, transport="call: 30s")
        engine = _SlowToOpen()
        runtime = Runtime(load_module(module), RuntimeOptions(data_dir=tmp_path), engine=engine)
        admin = AdminServer(runtime)
        await admin.start()
        try:
            assert await _get(f"{admin.url}/ready") == (503, "not started\n")
            starting = asyncio.create_task(runtime.start())
            await wait_for(lambda: runtime.readiness[1] == "recovering")
            assert await _get(f"{admin.url}/ready") == (503, "recovering\n")
            assert await _get(f"{admin.url}/health") == (200, "alive\n")
            engine.may_open.set()
            await starting
            assert await _get(f"{admin.url}/ready") == (200, "serving\n")
            assert runtime.ingress_url is not None
            status, _, _ = await post(f"{runtime.ingress_url}/a/slow/1", b"work")
            assert status == 202
            await entered.wait()
            stopping = asyncio.create_task(runtime.stop())
            await wait_for(lambda: runtime.readiness[1] == "stopping")
            assert await _get(f"{admin.url}/ready") == (503, "stopping\n")
            assert await _get(f"{admin.url}/health") == (200, "alive\n")
            release.set()
            await stopping
            assert await _get(f"{admin.url}/ready") == (503, "stopped\n")
        finally:
            await admin.stop()


async def test_remote_failures_and_latency_are_counted_per_function_type(tmp_path: Path) -> None:
    """An endpoint that answers its first two calls with 500: two failures, three calls
    timed (the batch is tried again after each), one message in."""
    functions = StatefulFunctions()

    @functions.bind("a/echo")
    def echo(context: Context, message: Message) -> None:
        emit(context, message.as_string())

    handler, answered = RequestReplyHandler(functions), [0]

    async def flaky(request: web.Request) -> web.Response:
        answered[0] += 1
        if answered[0] <= 2:
            return web.Response(status=500, text="not yet")
        return web.Response(body=await handler.handle_async(await request.read()))

    async with raw_server(flaky) as url:
        module = module_file(tmp_path / "m.yaml", {"a/*": url}, transport="call: 30s")
        options = RuntimeOptions(data_dir=tmp_path / "data", durability="os")
        async with Runtime(load_module(module), options) as runtime:
            admin = AdminServer(runtime)
            await admin.start()
            try:
                assert runtime.ingress_url is not None
                await post(f"{runtime.ingress_url}/a/echo/x", b"hi")
                assert await records(runtime, "out", 1) == ["hi"]
                status, text = await _get(f"{admin.url}/metrics")
            finally:
                await admin.stop()
    assert status == 200
    samples = _samples(text)
    typed = {"function_type": "a/echo"}
    assert _of(samples, "pystatefun_function_remote_failures_total", **typed) == 2
    assert _of(samples, "pystatefun_function_remote_latency_seconds_count", **typed) == 3
    assert _of(samples, "pystatefun_function_messages_in_total", **typed) == 1
    assert _of(samples, "pystatefun_function_egress_out_total", **typed) == 1
    assert answered[0] == 3


def _scrape(url: str) -> Samples:
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return _samples(response.read().decode())


def _status(url: str, method: str = "GET") -> int:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        with error:
            return error.code


def test_pystatefun_run_serves_metrics_equal_to_the_load_it_took(tmp_path: Path) -> None:
    """60 messages to 20 counters through the ingress (16 at a time), each counter messages
    a reporter, each reporter writes an egress record; every record popped, then scraped."""
    worker = start_runtime(counter_module(tmp_path), tmp_path / "data", "--admin-port", "0")
    try:
        admin = worker.admin
        assert admin.startswith("http://127.0.0.1:")
        ids = [f"u{n % 20}" for n in range(60)]
        with concurrent.futures.ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda i: send_counts(worker, [i]), ids))
        assert len(popped(worker, 60)) == 60
        samples = _scrape(admin)
        assert _status(f"{admin}/ready") == 200
        assert _status(f"{admin}/health") == 200
        assert _status(f"{admin}/nothing") == 404
        assert _status(f"{admin}/metrics", "POST") == 405
    finally:
        worker.terminate()
    counter, reporter = {"function_type": "cl/counter"}, {"function_type": "cl/reporter"}
    assert _of(samples, "pystatefun_function_messages_in_total", **counter) == 60
    assert _of(samples, "pystatefun_function_messages_out_total", **counter) == 60
    assert _of(samples, "pystatefun_function_messages_in_total", **reporter) == 60
    assert _of(samples, "pystatefun_function_egress_out_total", **reporter) == 60
    assert _of(samples, "pystatefun_function_backlog_messages", **counter) == 0
    ingress = {"ingress": "io.statefun.playground.v1/ingress"}
    assert _of(samples, "pystatefun_ingress_requests_total", status="202", **ingress) == 60
    egress = {"egress": "io.statefun.playground.v1/egress"}
    assert _of(samples, "pystatefun_egress_requests_total", status="200", **egress) == 60
    # Every step is in one durable write: the 60 ingress requests' and the functions' (an
    # invocation may take several messages of its address: at least one step per address).
    steps = _of(samples, "pystatefun_group_commit_steps_sum")
    assert 60 + 20 + 20 <= steps <= 60 + 60 + 60
    assert 0 < _of(samples, "pystatefun_group_commit_steps_count") <= steps
    assert _of(samples, "pystatefun_step_commit_seconds_count") == steps  # each timed once
    assert _of(samples, "pystatefun_delayed_messages_pending") == 0
    assert _of(samples, "pystatefun_dead_letters") == 0
    assert _of(samples, "pystatefun_store_size_bytes") > 0
