"""kill -9 at random moments loses nothing that was acknowledged and duplicates nothing.

Model-based, in the spirit of upstream's smoke E2E (spec §6.1): a seeded generator sends random
command trees (increments, sends, delayed sends, cancelled delayed sends, egress records) through
the ingress of a real ``pystatefun run`` process, which is SIGKILLed at random instants (often in
the middle of a request or of the cascades it started) and restarted on the same data dir. The
client retries an unacknowledged message with the same ``Idempotency-Key``. At the end, every
address's state must equal the model's (an over-count fails at once) and every egress record
must have been published exactly once. Failures print the seed; rerun one with
``PYSTATEFUN_CRASH_SEEDS=<seed> python3 dev.py test -k crash``.
"""

from __future__ import annotations

import os
import random
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

import pytest
from support.function_servers import endpoint
from support.processes import ListeningProcess, start_listening_process
from support.runtime_process import start_runtime, write_module
from support.smoke_client import (
    VERIFY_DEADLINE_S,
    drain,
    interpreter_of,
    quiescent,
    send,
    verify_states,
)
from support.smoke_model import SmokeModel

SEEDS = [int(s) for s in os.environ.get("PYSTATEFUN_CRASH_SEEDS", "11,22,33,44").split(",")]
SOURCES = 120
INSTANCES = 12
KILLS = 4


FUNCTIONS = Path(__file__).resolve().parents[2] / "support" / "functions"
EMBEDDED = FUNCTIONS / "smoke_embedded.py"
MIXED = FUNCTIONS / "smoke_mixed.py"
PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
IO = (
    "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n---\n"
    "kind: io.statefun.playground.v1/egress\nspec:\n  port: 0\n"
    "  topics: [verification, discard, echo]\n"
)


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_9_loses_and_duplicates_nothing(
    seed: int, tmp_path: Path, ours_function_server: ListeningProcess
) -> None:
    module = write_module(tmp_path / "module.yaml", endpoint(ours_function_server))
    _crash_and_verify(seed, module, tmp_path / "data")


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_kill_9_with_embedded_functions_loses_and_duplicates_nothing(
    seed: int, tmp_path: Path
) -> None:
    """The same, with the smoke functions embedded: their steps are applied in memory before
    they commit (speculatively), so a kill drops work that other steps already saw, which must
    all be redone from the last commit."""
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: smoke/*\n"
        f"  import: {EMBEDDED}:functions\n---\n{IO}"
    )
    _crash_and_verify(seed, module, tmp_path / "data")


@pytest.mark.parametrize("seed", SEEDS[:2])
def test_kill_9_across_remote_colocated_and_embedded_functions(seed: int, tmp_path: Path) -> None:
    """One module with all three kinds, whose functions message each other at every hop (an
    id's interpreter is remote, co-located or embedded by ``id % 3``). The runtime is killed
    with its co-located server beside it, and restarted; the remote server lives on."""
    remote = start_listening_process(
        [PYSTATEFUN, "serve", f"{MIXED}:remote", "--port", "0"], drain=True
    )
    try:
        module = tmp_path / "module.yaml"
        module.write_text(
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: smoke/remote\n"
            f"  urlPathTemplate: {remote.url}/statefun\n  transport:\n    call: 10s\n---\n"
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: smoke/echo\n"
            f"  urlPathTemplate: {remote.url}/statefun\n---\n"
            "kind: io.pystatefun.endpoints.v1/colocated\nspec:\n  functions: smoke/colocated\n"
            f'  command: ["{{python}}", -m, pystatefun, serve, "{MIXED}:colocated", '
            '--unix-socket, "{socket}"]\n---\n'
            "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: smoke/embedded\n"
            f"  import: {MIXED}:embedded\n---\n{IO}"
        )
        _crash_and_verify(seed, module, tmp_path / "data", _mixed_typename)
    finally:
        remote.stop()


def _mixed_typename(target: str) -> str:
    kinds = ("remote", "colocated", "embedded")  # as support/functions/smoke_mixed.py
    return f"smoke/{kinds[int(target) % 3]}"


def _crash_and_verify(
    seed: int,
    module: Path,
    data_dir: Path,
    typename_of: Callable[[str], str] = interpreter_of,
) -> None:
    """Run the seed's sources through ``pystatefun run`` on ``module``, killing it now and
    then, and check the states and egress records against the model."""
    rng = random.Random(seed)
    model = SmokeModel(instances=INSTANCES)
    sources = [model.source(rng) for _ in range(SOURCES)]
    kill_before = sorted(rng.sample(range(1, SOURCES), KILLS))
    durability = "fsync" if seed % 2 else "os"
    start = lambda: start_runtime(module, data_dir, "--durability", durability)  # noqa: E731
    runtime = start()
    try:
        index = 0
        while index < len(sources):
            killer = None
            if kill_before and index == kill_before[0]:
                kill_before.pop(0)
                # Somewhere in this request, or in the cascades the earlier ones started.
                killer = threading.Timer(rng.uniform(0.0, 0.05), runtime.kill)
                killer.start()
            target, commands = sources[index]
            try:
                send(runtime, target, commands, f"source-{index}", typename_of)
                index += 1
            except (urllib.error.URLError, ConnectionError, OSError):
                assert killer is not None, f"ingress failed with no kill (seed={seed})"
            if killer is not None:
                killer.join()
                runtime.kill()
                runtime = start()
        expected = {str(i): model.expected.get(str(i), 0) for i in range(INSTANCES)}
        verify_states(runtime, expected, seed, typename_of)
        deadline = time.monotonic() + VERIFY_DEADLINE_S
        while not quiescent(data_dir):
            assert time.monotonic() < deadline, f"never quiescent (seed={seed})"
            time.sleep(0.05)
        published = drain(runtime, "discard")
        assert sorted(published) == sorted(model.egress_payloads), f"egress (seed={seed})"
        assert runtime.terminate() == 0
    except BaseException:
        print(f"reproduce with PYSTATEFUN_CRASH_SEEDS={seed}; runtime log:\n{runtime.log_text()}")
        runtime.kill()
        raise
