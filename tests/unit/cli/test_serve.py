"""``pystatefun serve``: a real server process answering StateFun requests, stopped by SIGTERM."""

from __future__ import annotations

import http.client
import os
import select
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from support.processes import start_listening_process
from support.wire import to_function, typed

import pystatefun
from pystatefun.protocol import FromFunction
from pystatefun.sdk import StringType

ROOT = Path(__file__).resolve().parents[3]
PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
GREETER = ROOT / "examples" / "greeter" / "functions.py"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYSTATEFUN, *args], capture_output=True, text=True, timeout=60, check=False
    )


def test_version() -> None:
    result = run("--version")
    assert result.returncode == 0
    assert result.stdout.strip() == f"pystatefun, version {pystatefun.__version__}"


def test_serve_answers_requests_and_stops_cleanly_on_sigterm() -> None:
    server = start_listening_process([PYSTATEFUN, "serve", f"{GREETER}:functions", "--port", "0"])
    try:
        request = to_function("example/user", "ann", {}, [(typed(StringType, "Ann"), None)])
        post = urllib.request.Request(
            server.url + "/statefun", data=request.SerializeToString(), method="POST"
        )
        with urllib.request.urlopen(post, timeout=30) as response:
            reply = FromFunction.FromString(response.read())
        missing = [m.state_name for m in reply.incomplete_invocation_context.missing_values]
        assert missing == ["visits", "last_seen_name"]
        server.process.send_signal(signal.SIGTERM)
        assert server.process.wait(timeout=30) == 0
    finally:
        server.stop()


def test_serve_applies_the_default_http_limits() -> None:
    server = start_listening_process(
        [PYSTATEFUN, "serve", f"{GREETER}:functions", "--port", "0"], drain=True
    )
    try:
        host, port = server.url.removeprefix("http://").split(":")
        fields = "".join(f"X-{i}: v\r\n" for i in range(101))  # over the default of 100
        with socket.create_connection((host, int(port)), timeout=30) as connection:
            connection.sendall(f"POST /statefun HTTP/1.1\r\nHost: t\r\n{fields}\r\n".encode())
            answer = connection.makefile("rb").read()
        assert answer.startswith(b"HTTP/1.1 431 "), answer
        assert b"over 100 fields (HttpLimits.max_headers" in answer
    finally:
        server.stop()


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=30)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.settimeout(30)
        self.sock.connect(str(self._path))


def test_serve_on_a_unix_socket_replacing_a_stale_one(tmp_path: Path) -> None:
    path = tmp_path / "fn.sock"
    with socket.socket(socket.AF_UNIX) as stale:  # left by a server that was killed
        stale.bind(str(path))
    process = subprocess.Popen(
        [PYSTATEFUN, "serve", f"{GREETER}:functions", "--unix-socket", path],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
    )
    try:
        assert process.stdout is not None
        assert select.select([process.stdout], [], [], 60)[0], "no URL printed"
        assert process.stdout.readline().strip() == f"http+unix://{path}/statefun"
        connection = _UnixConnection(path)
        request = to_function("example/user", "ann", {}, [(typed(StringType, "Ann"), None)])
        connection.request("POST", "/statefun", request.SerializeToString())
        reply = FromFunction.FromString(connection.getresponse().read())
        connection.close()
        assert reply.HasField("incomplete_invocation_context")
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert not path.exists()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        process.stdout.close()  # type: ignore[union-attr]


def test_serve_takes_a_unix_socket_or_a_port_not_both() -> None:
    result = run("serve", f"{GREETER}:functions", "--unix-socket", "x.sock", "--port", "9")
    assert result.returncode == 2
    assert "--unix-socket and --port exclude each other" in result.stderr


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("no-colon", "is not FILE.py:NAME or MODULE:NAME"),
        ("missing_file.py:functions", "no such file"),
        (f"{GREETER}:PROFILE", "is _SimpleType, not a StatefulFunctions"),
        ("pystatefun.sdk:nothing_here", "is NoneType, not a StatefulFunctions"),
    ],
)
def test_serve_explains_a_bad_target(target: str, says: str) -> None:
    result = run("serve", target)
    assert result.returncode == 2
    assert says in result.stderr
    assert result.stdout == ""


def test_cli_reference_is_current() -> None:
    result = subprocess.run(
        [sys.executable, ROOT / "scripts" / "generate_cli_docs.py", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
