"""``pystatefun serve``: a real server process answering StateFun requests, stopped by SIGTERM."""

from __future__ import annotations

import signal
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
