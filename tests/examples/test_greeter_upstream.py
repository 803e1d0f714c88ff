"""StateFun's playground greeter (examples/greeter/upstream/), end to end with real processes.

``functions.py`` is written for the official SDK and served the way the playground serves it
(aiohttp + ``RequestReplyHandler.handle_async``); ``module.yaml`` is the playground's module.
Each test runs the functions and ``pystatefun run`` on that module (ports rewritten to free
ones), sends the README's requests (``PUT /example/person/<name>``, ``Content-Type:
application/vnd.example/GreetRequest``, ``{"name": "<name>"}``) and reads the greetings from
the egress topic ``greetings``: first under the official SDK, then the very same file with only
its import line switched to ``pystatefun.sdk``.
"""

from __future__ import annotations

import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest
from support.official_sdk import official_python
from support.processes import start_listening_process
from support.runtime_process import PYSTATEFUN, start_runtime
from support.smoke_client import await_records, drain, quiescent

pytestmark = pytest.mark.timeout(300)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "greeter" / "upstream"
OFFICIAL_IMPORT = "from statefun import"
OUR_IMPORT = "from pystatefun.sdk import"
READY_TIMEOUT_S = 60.0
# aiohttp's run_app prints this once its socket listens.
RUNNING_ON = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")

# The visits the test makes, in order, and the greetings they must produce.
VISITS = ["Bob", "Alice", "Bob", "Bob", "Bob"]
BOB = [
    "Welcome Bob",
    "Nice to see you again Bob",
    "Third time is a charm Bob",
    "Nice to see you at the 4-nth time Bob!",
]
ALICE = ["Welcome Alice"]


@dataclass
class FunctionServer:
    endpoint: str  # what the module's urlPathTemplate names


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _read_lines(stream: IO[str], lines: queue.Queue[str]) -> None:
    with stream:  # keeps the pipe from filling up until the process exits
        for line in stream:
            lines.put(line)
    lines.put("")  # EOF


def _wait_until_running(lines: queue.Queue[str], port: int) -> bool:
    """Read the server's stdout until aiohttp announces ``port`` (True) or it ends (False)."""
    deadline = time.monotonic() + READY_TIMEOUT_S
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            return False
        if not line:
            return False  # EOF: it exited
        if (running := RUNNING_ON.search(line)) and int(running.group(1)) == port:
            return True
    return False


@contextmanager
def serve_script(python: Path | str, script: Path, log: Path) -> Iterator[FunctionServer]:
    """Run ``python script PORT`` as upstream runs functions.py, until aiohttp says it listens."""
    port = free_port()
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [str(python), str(script), str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_read_lines, args=(process.stdout, lines), daemon=True).start()
    try:
        if not _wait_until_running(lines, port):
            raise RuntimeError(f"{script} did not start serving; its stderr:\n{log.read_text()}")
        yield FunctionServer(f"http://127.0.0.1:{port}/statefun")
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # aiohttp's run_app shuts down on SIGTERM
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()  # only ever the process this function started
            process.wait(timeout=30)


@contextmanager
def serve_with_pystatefun(script: Path) -> Iterator[FunctionServer]:
    """``pystatefun serve FILE:functions``, which prints its URL once it listens."""
    server = start_listening_process(
        [PYSTATEFUN, "serve", f"{script}:functions", "--port", "0"], drain=True
    )
    try:
        yield FunctionServer(f"{server.url}/statefun")
    finally:
        server.stop()


def ported_to_our_sdk(directory: Path) -> Path:
    """A copy of upstream's functions.py with only its import line changed."""
    text = (EXAMPLE / "functions.py").read_text()
    assert text.count(OFFICIAL_IMPORT) == 1
    copy = directory / "functions.py"
    copy.write_text(text.replace(OFFICIAL_IMPORT, OUR_IMPORT))
    return copy


def module_for(directory: Path, endpoint: str) -> Path:
    """The example's module.yaml, pointed at ``endpoint``, its ingress and egress on port 0."""
    text = (EXAMPLE / "module.yaml").read_text()
    for old, new in [
        ("urlPathTemplate: http://127.0.0.1:8000/statefun", f"urlPathTemplate: {endpoint}"),
        ("port: 8090", "port: 0"),
        ("port: 8091", "port: 0"),
    ]:
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = directory / "module.yaml"
    path.write_text(text)
    return path


def greet(ingress: str, name: str) -> int:
    """The README's request: ``curl -X PUT -H "Content-Type: application/vnd.example/GreetRequest"
    -d '{"name": "Bob"}' localhost:8090/example/person/Bob``."""
    request = urllib.request.Request(
        f"{ingress}/example/person/{name}",
        data=f'{{"name": "{name}"}}'.encode(),
        headers={"Content-Type": "application/vnd.example/GreetRequest"},
        method="PUT",
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def greetings_from(server: FunctionServer, directory: Path) -> list[str]:
    """Run the module against ``server``, make the visits, and return every greeting."""
    data_dir = directory / "data"
    runtime = start_runtime(module_for(directory, server.endpoint), data_dir)
    try:
        for name in VISITS:
            assert greet(runtime.ingress, name) == 202
        greetings = await_records(runtime, "greetings", len(VISITS))
        # Each greeting commits with the message that caused it: once all are out, nothing
        # is left to run, and no further greeting can come.
        assert quiescent(data_dir)
        assert drain(runtime, "greetings") == []
        assert runtime.terminate() == 0
    finally:
        runtime.kill()
    return greetings


def assert_upstreams_greetings(greetings: list[str]) -> None:
    assert len(greetings) == len(VISITS), greetings
    # One person's greetings come in the order of the visits; the two people's may interleave.
    assert [g for g in greetings if g.endswith(("Bob", "Bob!"))] == BOB
    assert [g for g in greetings if g.endswith("Alice")] == ALICE


@pytest.mark.interop
def test_upstreams_greeter_runs_unchanged_on_the_official_sdk(tmp_path: Path) -> None:
    python = official_python(with_aiohttp=True)
    server_log = tmp_path / "functions.log"
    with serve_script(python, EXAMPLE / "functions.py", server_log) as server:
        assert_upstreams_greetings(greetings_from(server, tmp_path))


@pytest.mark.parametrize("served_by", ["its own aiohttp server", "pystatefun serve"])
def test_the_same_file_runs_on_our_sdk_with_only_the_import_changed(
    tmp_path: Path, served_by: str
) -> None:
    script = ported_to_our_sdk(tmp_path)
    servers = (
        serve_with_pystatefun(script)
        if served_by == "pystatefun serve"
        else serve_script(sys.executable, script, tmp_path / "functions.log")
    )
    with servers as server:
        assert_upstreams_greetings(greetings_from(server, tmp_path))
