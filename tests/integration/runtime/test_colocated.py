"""Co-located functions end to end: the runtime starts ``pystatefun serve`` (or the official SDK)
itself, calls it over a Unix socket or 127.0.0.1, restarts it after a ``kill -9`` without losing
or repeating a message, and stops it with itself, also as a real ``pystatefun run`` process."""

from __future__ import annotations

import json
import os
import signal
import sys
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
from support.colocated import gone, write_module
from support.function_servers import FUNCTIONS
from support.inprocess import post, records, running
from support.official_sdk import official_python
from support.runtime_process import start_runtime
from support.smoke_client import await_records

from pystatefun.runtime import Runtime
from pystatefun.runtime.colocated import ColocatedServer

SERVE = ["pystatefun", "serve", "counter.py:functions"]


def server_of(runtime: Runtime) -> ColocatedServer:
    (server,) = runtime._colocated.servers
    return server


async def test_a_server_on_a_unix_socket(tmp_path: Path) -> None:
    module = write_module(tmp_path / "module.yaml", [*SERVE, "--unix-socket", "{socket}"])
    socket_path = tmp_path / "data" / "colocated-1.sock"
    async with running(module, tmp_path / "data") as runtime:
        pid = server_of(runtime).pid
        assert socket_path.is_socket()
        for text in ("x", "y"):
            assert (await post(f"{runtime.ingress_url}/co/counter/a", text.encode()))[0] == 202
        assert await records(runtime, "out", 2) == ["a:x:1", "a:y:2"]
    assert gone(pid, 0)
    assert not socket_path.exists()


async def test_a_server_on_a_tcp_port_and_another_path(tmp_path: Path) -> None:
    command = [*SERVE, "--host", "{host}", "--port", "{port}", "--path", "/fn/counter"]
    module = write_module(tmp_path / "module.yaml", command, listen="tcp", path="/fn/counter")
    async with running(module, tmp_path / "data") as runtime:
        server = server_of(runtime)
        url = f"http://127.0.0.1:{server.address.port}/fn/counter"
        assert server.http_endpoint.url_for("co/counter") == url
        assert (await post(f"{runtime.ingress_url}/co/counter/b", b"z"))[0] == 202
        assert await records(runtime, "out", 1) == ["b:z:1"]


async def test_a_killed_server_is_restarted_and_every_message_counts_once(
    tmp_path: Path,
) -> None:
    module = write_module(
        tmp_path / "module.yaml",
        [*SERVE, "--unix-socket", "{socket}"],
        restartBackoff={"initial": "200ms", "max": "2s"},
    )
    async with running(module, tmp_path / "data", retry_backoff_initial_s=0.05) as runtime:
        server = server_of(runtime)
        sent: Counter[str] = Counter()

        async def send(count: int) -> None:
            for n in range(count):
                address = "abc"[n % 3]
                sent[address] += 1
                status, _, _ = await post(f"{runtime.ingress_url}/co/counter/{address}", b"m")
                assert status == 202

        await send(9)
        got = await records(runtime, "out", 9)
        first = server.pid
        os.kill(first, signal.SIGKILL)  # the server this runtime started
        await send(21)  # while the server is down, or being restarted: durable in mailboxes
        got += await records(runtime, "out", 21)
        counts = Counter(record.split(":")[0] for record in got)
        assert counts == sent
        for address, total in sent.items():  # each message counted once, none lost
            expected = [f"{address}:m:{n}" for n in range(1, total + 1)]
            assert [r for r in got if r.startswith(f"{address}:")] == expected
        statistics = runtime.statistics()
        assert statistics["colocated_restarts"] == 1
        assert statistics["failed_attempts"] > 0  # calls failed while it was down
        assert server.pid not in (None, first)


@pytest.mark.interop
async def test_the_official_sdk_co_located_on_tcp(tmp_path: Path) -> None:
    command = [str(official_python()), str(FUNCTIONS / "serve_python.py"), "official", "{port}"]
    module = write_module(tmp_path / "module.yaml", command, functions="smoke/*", listen="tcp")
    async with running(module, tmp_path / "data") as runtime:
        body = json.dumps({"commands": [{"reply": {"text": "hello, co-located"}}]}).encode()
        headers = {
            "Content-Type": "application/vnd.smoke/Commands",
            "Pystatefun-Request-Reply": "true",
        }
        status, _, answer = await post(
            f"{runtime.ingress_url}/smoke/command-interpreter/1", body, headers
        )
        assert (status, answer) == (200, b"hello, co-located")


def _server_pid(log: Path) -> int:
    """The pid that ``pystatefun run`` logged for its co-located server."""
    lines = [line for line in log.read_text().splitlines() if "] started (pid " in line]
    return int(lines[-1].split("(pid ")[1].split(")")[0])


def _post(url: str, body: bytes) -> int:
    request = urllib.request.Request(url, data=body, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def test_pystatefun_run_starts_and_stops_its_server(tmp_path: Path) -> None:
    module = write_module(tmp_path / "module.yaml", [*SERVE, "--unix-socket", "{socket}"])
    runtime = start_runtime(module, tmp_path / "data")
    try:
        pid = _server_pid(runtime.log)
        for text in ("p", "q"):
            assert _post(f"{runtime.ingress}/co/counter/r", text.encode()) == 202
        assert await_records(runtime, "out", 2) == ["r:p:1", "r:q:2"]
        assert runtime.terminate() == 0
        assert gone(pid, 0)
        log = runtime.log_text()
        assert f"[co/*] stopped the server (pid {pid}): it exited with code 0" in log
        assert not (tmp_path / "data" / "colocated-1.sock").exists()
    finally:
        runtime.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_killed_runtime_takes_its_server_along(tmp_path: Path) -> None:
    module = write_module(tmp_path / "module.yaml", [*SERVE, "--unix-socket", "{socket}"])
    runtime = start_runtime(module, tmp_path / "data")
    try:
        pid = _server_pid(runtime.log)
        runtime.kill()  # SIGKILL: the runtime cannot stop the server itself
        assert gone(pid, 30), "the server outlived the runtime"
        restarted = start_runtime(module, tmp_path / "data")  # the stale socket is replaced
        assert _post(f"{restarted.ingress}/co/counter/s", b"t") == 202
        assert await_records(restarted, "out", 1) == ["s:t:1"]
        assert restarted.terminate() == 0
    finally:
        runtime.kill()
