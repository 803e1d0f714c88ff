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
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.function_servers import endpoint
from support.processes import ListeningProcess
from support.runtime_process import start_runtime, write_module
from support.smoke_client import VERIFY_DEADLINE_S, drain, quiescent, send, verify_states
from support.smoke_model import SmokeModel

SEEDS = [int(s) for s in os.environ.get("PYSTATEFUN_CRASH_SEEDS", "11,22,33,44").split(",")]
SOURCES = 120
INSTANCES = 12
KILLS = 4


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_9_loses_and_duplicates_nothing(
    seed: int, tmp_path: Path, ours_function_server: ListeningProcess
) -> None:
    rng = random.Random(seed)
    model = SmokeModel(instances=INSTANCES)
    sources = [model.source(rng) for _ in range(SOURCES)]
    kill_before = sorted(rng.sample(range(1, SOURCES), KILLS))
    module = write_module(tmp_path / "module.yaml", endpoint(ours_function_server))
    data_dir = tmp_path / "data"
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
                send(runtime, target, commands, key=f"source-{index}")
                index += 1
            except (urllib.error.URLError, ConnectionError, OSError):
                assert killer is not None, f"ingress failed with no kill (seed={seed})"
            if killer is not None:
                killer.join()
                runtime.kill()
                runtime = start()
        expected = {str(i): model.expected.get(str(i), 0) for i in range(INSTANCES)}
        verify_states(runtime, expected, seed)
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
