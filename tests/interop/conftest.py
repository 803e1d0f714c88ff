"""Fixtures that run the official ``statefun`` SDK (and ours, the same way) as real servers."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.official_sdk import official_python as _official_python
from support.processes import ListeningProcess, start_listening_process
from support.sdk_servers import sdk_servers  # noqa: F401 - a fixture

HERE = Path(__file__).parent
# The same server script the runtime's tests use, serving this suite's functions.
SERVE = HERE.parent / "support" / "functions" / "serve_python.py"
FUNCTIONS = ("--functions", str(HERE / "interop_functions.py"))


@pytest.fixture(scope="session")
def official_python() -> Path:
    return _official_python()


@pytest.fixture(scope="session")
def official_server(official_python: Path) -> Iterator[ListeningProcess]:
    server = start_listening_process([official_python, SERVE, "official", *FUNCTIONS])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def our_server() -> Iterator[ListeningProcess]:
    server = start_listening_process([sys.executable, SERVE, "ours", *FUNCTIONS])
    yield server
    server.stop()


@pytest.fixture(scope="session")
def official_codec(official_python: Path):
    """Ask the official SDK to encode/decode a list of requests in one subprocess call."""

    def run(requests: list[dict[str, Any]]) -> list[dict[str, str]]:
        completed = subprocess.run(
            [official_python, HERE / "official_vectors.py"],
            input=json.dumps(requests),
            capture_output=True,
            text=True,
            check=True,
            timeout=120,
        )
        answers: list[dict[str, str]] = json.loads(completed.stdout)
        assert len(answers) == len(requests)
        return answers

    return run
