"""Function servers for the runtime's tests: the smoke functions served by three SDKs.

Each server is a real process on 127.0.0.1 serving ``smoke/command-interpreter`` and
``smoke/echo`` (``functions/smoke_functions.py``, ``functions/smoke_server.js``) at
``<server.url>/statefun``:

- ``"ours"``: ``pystatefun.sdk`` behind aiohttp, under this interpreter;
- ``"official-python"``: ``apache-flink-statefun==3.3.0`` behind a stdlib HTTP server, in its
  own virtualenv (``.venv-statefun-3.3.0/``, built on first use);
- ``"official-js"``: ``apache-flink-statefun@3.3.0`` from npm behind node's ``http``
  (``.node-statefun-3.3.0/``, installed on first use).

``start_function_server(sdk)`` starts one (pass ``port=`` to restart a killed server where the
runtime expects it); stop it with ``.stop()`` (SIGKILL). For a server per test session, import
the fixtures below into a ``conftest.py``::

    from support.function_servers import ours_function_server, official_js_function_server
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from support import node_sdk
from support.official_sdk import official_python
from support.processes import ListeningProcess, start_listening_process

FUNCTIONS = Path(__file__).resolve().parent / "functions"
SDKS = ("ours", "official-python", "official-js")
#: The path every server answers at; the endpoint is ``server.url + PATH``.
PATH = "/statefun"


def start_function_server(
    sdk: str, *, port: int = 0, functions: Path | None = None
) -> ListeningProcess:
    """Start the smoke functions' server on ``sdk`` (one of ``SDKS``) and wait until it listens;
    for the Python SDKs, ``functions`` serves that file's ``build(sf)`` instead.

    The server's stdout and stderr are drained in the background (a failing function logs, and
    a full pipe would block the server); the last stderr lines are in ``.stderr_tail``.
    """
    served = [] if functions is None else ["--functions", functions]
    if sdk == "ours":
        argv: list[str | Path] = [sys.executable, FUNCTIONS / "serve_python.py", "ours"]
        env: dict[str, str] = {}
    elif sdk == "official-python":
        argv = [official_python(), FUNCTIONS / "serve_python.py", "official"]
        env = {}
    elif sdk == "official-js":
        argv = [node_sdk.node(), FUNCTIONS / "smoke_server.js"]
        env = {"NODE_PATH": str(node_sdk.node_modules())}
    else:
        raise ValueError(f"unknown SDK {sdk!r}; expected one of {SDKS}")
    return start_listening_process([*argv, str(port), *served], env=env, drain=True)


def endpoint(server: ListeningProcess) -> str:
    """The URL a runtime's module YAML should name for ``server``."""
    return server.url + PATH


def serving(sdk: str, functions: Path | None = None) -> Iterator[ListeningProcess]:
    """A server for a fixture's lifetime (``yield from serving(...)``), killed at its end."""
    server = start_function_server(sdk, functions=functions)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def ours_function_server() -> Iterator[ListeningProcess]:
    yield from serving("ours")


@pytest.fixture(scope="session")
def official_python_function_server() -> Iterator[ListeningProcess]:
    yield from serving("official-python")


@pytest.fixture(scope="session")
def official_js_function_server() -> Iterator[ListeningProcess]:
    yield from serving("official-js")


#: The fixture name of each SDK's session-scoped server.
FIXTURES = {
    "ours": "ours_function_server",
    "official-python": "official_python_function_server",
    "official-js": "official_js_function_server",
}
