"""Crash test of Kinesis in, state, and Kinesis out: ``kill -9`` of ``pystatefun run`` at random
instants loses nothing, and the ingress repeats nothing (in state, or in what the functions
send). Kinesis itself cannot run here: this runs against moto's server mode.

Random keyed records go to a two-shard input stream in chunks. ``kinesis/counter`` (one
address per key) counts its messages in state and sends ``<key>:<value>:<count>`` to the output
stream. A real ``pystatefun run`` reads each chunk and is SIGKILLed part way through (once the
positions it stored pass a seeded random point of the chunk, watched from its data dir; its
egress is publishing meanwhile), then restarted on the same data dir.

At the end, against a model of what the records should do: every key's count in state is its
number of records (the ingress delivered each record once), and the output stream holds exactly
the model's lines, each key's counted 1..n in its order: a record read twice would show as a line
with a higher count, a lost one as a gap. The egress is at-least-once, as StateFun's: a line may
be there twice (sent, then killed before it was deleted from the data dir), never missing. (moto
numbers each shard's records 1, 2, ...: the stored positions add up to the records read.)
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

import pytest
from support.data_dir_watch import kill_at, read_number, state_counts
from support.kinesis import REGION, MotoServer, put, read_all, stream
from support.runtime_process import RuntimeProcess, start_runtime

SEEDS = [int(s) for s in os.environ.get("PYSTATEFUN_KINESIS_CRASH_SEEDS", "7,8").split(",")]
CHUNKS = 3
PER_CHUNK = 500
KEYS = 10
SETTLE_DEADLINE_S = 60.0
KILL_WAIT_S = 20.0

FUNCTIONS = """\
from pystatefun.sdk import IntType, StatefulFunctions, ValueSpec, kinesis_egress_message

functions = StatefulFunctions()


@functions.bind("kinesis/counter", specs=[ValueSpec("count", IntType)])
def counter(context, message):
    value = message.raw_value().decode()
    context.storage.count = (context.storage.count or 0) + 1
    line = f"{context.address.id}:{value}:{context.storage.count}"
    context.send_egress(kinesis_egress_message("com.example/out", "OUT", line, context.address.id))
"""


def _module(tmp_path: Path, endpoint: str, source: str, out: str) -> Path:
    (tmp_path / "crash_model.py").write_text(FUNCTIONS.replace("OUT", out))
    aws = (
        f"  awsRegion: {{type: custom-endpoint, endpoint: '{endpoint}', id: {REGION}}}\n"
        "  awsCredentials: {type: basic, accessKeyId: testing, secretAccessKey: testing}\n"
    )
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: kinesis/*\n"
        "  import: crash_model.py:functions\n---\n"
        f"kind: io.statefun.kinesis.v1/ingress\nspec:\n  id: com.example/in\n{aws}"
        "  startupPosition: {type: earliest}\n  streams:\n"
        f"    - {{stream: {source}, valueType: com.example/text, targets: [kinesis/counter]}}\n"
        f"---\nkind: io.statefun.kinesis.v1/egress\nspec:\n  id: com.example/out\n{aws}"
        "---\n"
        # start_runtime waits for the playground's URLs; the test sends nothing through them.
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n---\n"
        "kind: io.statefun.playground.v1/egress\nspec:\n  port: 0\n  topics: [unused]\n"
    )
    return module


@pytest.mark.parametrize("seed", SEEDS)
def test_kill_9_at_random_instants_loses_nothing_and_reads_nothing_twice(
    seed: int, kinesis_server: MotoServer, tmp_path: Path
) -> None:
    rng = random.Random(seed)
    source, out = stream(kinesis_server, 2, "crash-in"), stream(kinesis_server, 2, "crash-out")
    module = _module(tmp_path, kinesis_server.endpoint, source, out)
    data_dir = tmp_path / "data"
    produced: list[tuple[str, str]] = []
    for chunk in range(CHUNKS):
        rows = [(f"k{rng.randrange(KEYS)}", f"v{chunk * PER_CHUNK + n}") for n in range(PER_CHUNK)]
        put(kinesis_server, source, [(k, v.encode()) for k, v in rows])
        produced += rows
        runtime = start_runtime(module, data_dir)
        kill_at(runtime, data_dir, len(produced) - rng.randrange(PER_CHUNK // 2), KILL_WAIT_S)
    runtime = start_runtime(module, data_dir)
    try:
        _settle(runtime, data_dir, len(produced), seed)
        counts = state_counts(data_dir, "kinesis/counter")
    finally:
        runtime.terminate()
    lines = [r["Data"].decode() for r in read_all(kinesis_server, out)]
    expected: dict[str, list[str]] = {}
    for key, value in produced:
        mine = expected.setdefault(key, [])
        mine.append(f"{key}:{value}:{len(mine) + 1}")
    where = f"(seed={seed})"
    assert counts == {key: len(mine) for key, mine in expected.items()}, f"state {where}"
    assert set(lines) == {line for mine in expected.values() for line in mine}, where
    seen: dict[str, list[str]] = {}
    for line in lines:  # a key's lines share a shard: in order, a repeat right after itself
        mine = seen.setdefault(line.split(":")[0], [])
        if line not in mine:
            mine.append(line)
    assert seen == expected, f"order {where}"


def _settle(runtime: RuntimeProcess, data_dir: Path, count: int, seed: int) -> None:
    """Wait until every record was read, every message run and every egress record sent:
    then the output stream holds all there will ever be."""
    deadline = time.monotonic() + SETTLE_DEADLINE_S
    query = (
        f"SELECT (SELECT SUM(CAST(position AS INTEGER)) FROM positions) = {count} "
        "AND NOT EXISTS (SELECT 1 FROM inbox) AND NOT EXISTS (SELECT 1 FROM egress)"
    )
    while read_number(data_dir, query) != 1:
        assert time.monotonic() < deadline, (
            f"not settled (seed={seed}); log:\n{runtime.log_text()[-4000:]}"
        )
        time.sleep(0.05)  # the process offers no event to wait on
