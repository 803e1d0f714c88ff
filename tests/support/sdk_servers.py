"""The programs of ``tests/sdks/`` served by every StateFun SDK, as real processes on 127.0.0.1.

Every server answers the greeter (``tests/sdks/README.md``) at ``<server.url>/statefun``:

- ``"ours"``: ``pystatefun.sdk`` (``tests/sdks/python/greeter.py``) behind aiohttp;
- ``"official-python"``: ``apache-flink-statefun==3.3.0`` from PyPI, the same file, behind a
  stdlib HTTP server in its own virtualenv;
- ``"official-js"``: ``apache-flink-statefun@3.3.0`` from npm (``tests/sdks/js/sdk_server.js``);
- ``"official-go"``: ``statefun-sdk-go/v3`` v3.3.0 (``tests/sdks/go/``);
- ``"official-java"``: ``statefun-sdk-java`` 3.3.0 (``tests/sdks/java/``).

The Go and Java servers also serve the interop functions of ``tests/interop/interop_functions.py``
at the same path, and the JS, Go and Java servers answer ``POST /vectors`` (``sdk_vectors.py``).
The ``sdk_servers`` fixture starts each on first use and stops them all at the session's end.
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from pystatefun.protocol import FromFunction, ToFunction
from support import node_sdk, sdk_builds
from support.official_sdk import official_python
from support.processes import ListeningProcess, start_listening_process

SDKS_DIR = Path(__file__).resolve().parents[1] / "sdks"
SERVE_PYTHON = Path(__file__).resolve().parent / "functions" / "serve_python.py"
SDKS = ("ours", "official-python", "official-js", "official-go", "official-java")
#: The SDKs whose servers answer ``POST /vectors``.
VECTOR_SDKS = ("official-js", "official-go", "official-java")


def start_sdk_server(sdk: str, *, port: int = 0) -> ListeningProcess:
    """Start ``sdk``'s server (one of ``SDKS``) and wait until it listens; its output is drained
    in the background (the last stderr lines are in ``.stderr_tail``)."""
    env: dict[str, str] = {}
    greeter = ["--functions", str(SDKS_DIR / "python" / "greeter.py")]
    if sdk == "ours":
        argv: list[str | Path] = [sys.executable, SERVE_PYTHON, "ours", str(port), *greeter]
    elif sdk == "official-python":
        argv = [official_python(), SERVE_PYTHON, "official", str(port), *greeter]
    elif sdk == "official-js":
        argv = [node_sdk.node(), SDKS_DIR / "js" / "sdk_server.js", str(port)]
        env = {"NODE_PATH": str(node_sdk.node_modules())}
    elif sdk == "official-go":
        argv = [*sdk_builds.go_server(), str(port)]
    elif sdk == "official-java":
        argv = [*sdk_builds.java_server(), str(port)]
    else:
        raise ValueError(f"unknown SDK {sdk!r}; expected one of {SDKS}")
    return start_listening_process(argv, env=env, drain=True)


class SdkServers:
    """One server per SDK, started on first use."""

    def __init__(self) -> None:
        self._started: dict[str, ListeningProcess] = {}

    def __getitem__(self, sdk: str) -> ListeningProcess:
        if sdk not in self._started:
            self._started[sdk] = start_sdk_server(sdk)
        return self._started[sdk]

    def stop(self) -> None:
        for server in self._started.values():
            server.stop()


@pytest.fixture(scope="session")
def sdk_servers() -> Iterator[SdkServers]:
    servers = SdkServers()
    yield servers
    servers.stop()


def post(
    url: str, body: bytes, content_type: str = "application/octet-stream"
) -> tuple[int, bytes]:
    """POST ``body``; the status and body of the answer, errors included."""
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": content_type}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def invoke(server: ListeningProcess, request: ToFunction) -> FromFunction:
    """``request`` answered by ``server``'s functions (at ``/statefun``), which must succeed."""
    status, body = post(server.url + "/statefun", request.SerializeToString())
    assert status == 200, (
        f"{status}: {body.decode(errors='replace')}\n{''.join(server.stderr_tail)}"
    )
    return FromFunction.FromString(body)
