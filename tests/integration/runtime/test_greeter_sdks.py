"""The greeter (``tests/sdks/README.md``) on every StateFun SDK under ``pystatefun run``: ours,
the official Python, JavaScript, Go and Java SDKs, each a real server, with a ``kill -9`` of the
runtime in the middle of the greetings: after every user's first visit was greeted (so each
one's "Forgotten" timer is pending) and right after the second visits were accepted (so some
are in flight).

Exactly once, whatever the SDK: every greeting's record appears once with the right visit count,
each user's delayed "Welcome back" fires once, the cancelled "Forgotten" never does (and no timer
is left pending), and nothing else is written.
"""

from __future__ import annotations

import collections
import time
import urllib.request
from pathlib import Path

import pytest
from support import modules
from support.runtime_process import RuntimeProcess, start_runtime
from support.sdk_servers import SDKS, SdkServers
from support.smoke_client import VERIFY_DEADLINE_S, drain, quiescent

USERS = 6
VISITS = 5
_POLL_S = 0.05  # the playground egress and the data dir are polled, bounded by a deadline


def _greet(runtime: RuntimeProcess, user_id: str, name: str) -> None:
    request = urllib.request.Request(
        f"{runtime.ingress}/greeter/user/{user_id}", data=name.encode(), method="POST"
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202


def _collect(runtime: RuntimeProcess, records: list[str], at_least: int, why: str) -> None:
    deadline = time.monotonic() + VERIFY_DEADLINE_S
    while len(records) < at_least:
        assert time.monotonic() < deadline, f"{why}: only {records}\n{runtime.log_text()}"
        records += drain(runtime, "greetings")
        if len(records) < at_least:
            time.sleep(_POLL_S)


def _settle(runtime: RuntimeProcess, data_dir: Path) -> None:
    """Wait until no message waits and no delayed message is pending."""
    deadline = time.monotonic() + VERIFY_DEADLINE_S
    while not quiescent(data_dir):
        assert time.monotonic() < deadline, f"never quiescent\n{runtime.log_text()}"
        time.sleep(_POLL_S)


@pytest.mark.interop
@pytest.mark.parametrize("sdk", SDKS)
def test_the_greeter_is_exactly_once_across_a_kill(
    sdk: str, tmp_path: Path, sdk_servers: SdkServers
) -> None:
    server = sdk_servers[sdk]
    module = modules.write_module(
        tmp_path / "module.yaml",
        {"greeter/*": server.url + "/statefun"},
        topics=("greetings",),
        transport="call: 10s",
    )
    data_dir = tmp_path / "data"
    names = {f"u{i}": f"Zoë {sdk} {i}" for i in range(USERS)}
    records: list[str] = []
    runtime = start_runtime(module, data_dir, "--durability", "os")
    try:
        for user_id, name in names.items():
            _greet(runtime, user_id, name)
        # Every first visit greeted: each user's "Forgotten" timer is pending, durably.
        _collect(runtime, records, USERS, "first visits not greeted")
        for user_id, name in names.items():
            _greet(runtime, user_id, name)
        runtime.kill()  # the second visits in flight: some done, some not, some half-way
        runtime = start_runtime(module, data_dir, "--durability", "os")
        for _ in range(2, VISITS):
            for user_id, name in names.items():
                _greet(runtime, user_id, name)
        expected = collections.Counter(
            [f"Hello {name}, visit {n}" for name in names.values() for n in range(1, VISITS + 1)]
            + [f"Welcome back {name}" for name in names.values()]
        )
        _collect(runtime, records, sum(expected.values()), "greetings missing")
        _settle(runtime, data_dir)
        records += drain(runtime, "greetings")
        assert collections.Counter(records) == expected, "".join(server.stderr_tail)
        assert runtime.terminate() == 0
    finally:
        runtime.kill()
