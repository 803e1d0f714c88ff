"""The Kinesis egress in cluster mode, against a local Kinesis-compatible server (moto's
server mode: Kinesis itself cannot run here) and real worker processes.

Each cluster partition's records are sent by the worker that owns it; when a worker is
killed, the next owner sends what it had not deleted yet. The egress is at least once (as
StateFun's): every count must arrive, and one may arrive twice only around the kill.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from support.cluster_counter import send_counts, settled, start_worker
from support.kinesis import REGION, MotoServer, read_all, stream
from support.nats import cluster_name

COUNTER = """\
from pystatefun.sdk import IntType, StatefulFunctions, ValueSpec, kinesis_egress_message

functions = StatefulFunctions()


@functions.bind("cl/counter", specs=[ValueSpec("count", IntType)])
def counter(context, message):
    context.storage.count = (context.storage.count or 0) + 1
    line = f"{context.address.id}:{context.storage.count}"
    context.send_egress(kinesis_egress_message("cl/out", "OUT", line, context.address.id))
"""


def _module(tmp_path: Path, endpoint: str, out: str) -> Path:
    (tmp_path / "kinesis_counter.py").write_text(COUNTER.replace('"OUT"', repr(out)))
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: cl/*\n"
        "  import: kinesis_counter.py:functions\n---\n"
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n---\n"
        "kind: io.statefun.kinesis.v1/egress\nspec:\n  id: cl/out\n"
        f"  awsRegion:\n    type: custom-endpoint\n    endpoint: {endpoint}\n    id: {REGION}\n"
        "  awsCredentials:\n    type: basic\n    accessKeyId: testing\n"
        "    secretAccessKey: testing\n"
    )
    return module


def _lines(server: MotoServer, out: str, wanted: set[str], deadline_s: float = 60) -> list[str]:
    """The stream's lines once every ``wanted`` line is there (Kinesis is polled, as its
    consumers do; bounded)."""
    deadline = time.monotonic() + deadline_s
    while True:
        lines = [record["Data"].decode() for record in read_all(server, out)]
        missing = wanted - set(lines)
        if not missing:
            return lines
        assert time.monotonic() < deadline, f"lines never arrived: {sorted(missing)[:10]}"
        time.sleep(0.1)


def test_each_partitions_records_are_sent_by_its_owner_and_none_is_lost_in_a_kill(
    tmp_path: Path, nats_url: str, kinesis_server: MotoServer
) -> None:
    out = stream(kinesis_server, 2, "clout")
    module = _module(tmp_path, kinesis_server.endpoint, out)
    name, ids = cluster_name("kinesis"), [f"n{n}" for n in range(24)]
    one = start_worker(module, tmp_path / "one", nats_url, name, "one")
    two = start_worker(module, tmp_path / "two", nats_url, name, "two")
    try:
        settled(nats_url, name, {"one", "two"})
        send_counts(one, ids)
        first = _lines(kinesis_server, out, {f"{i}:1" for i in ids})
        send_counts(two, ids)
        two.kill()  # round two's records of two's partitions: sent by one once it takes over
        send_counts(one, ids)
        lines = _lines(kinesis_server, out, {f"{i}:{n}" for i in ids for n in (1, 2, 3)})
    finally:
        one.terminate()
        two.kill()
    assert Counter(first) == Counter(f"{i}:1" for i in ids)  # nothing crashed yet: each once
    assert set(lines) == {f"{i}:{n}" for i in ids for n in (1, 2, 3)}
    counts = Counter(lines)
    assert all(counts[f"{i}:1"] == 1 and counts[f"{i}:3"] == 1 for i in ids)  # away from the kill
