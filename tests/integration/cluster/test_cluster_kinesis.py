"""The Kinesis connectors in cluster mode, against a local Kinesis-compatible server (moto's
server mode: Kinesis itself cannot run here) and real worker processes.

The egress: each cluster partition's records are sent by the worker that owns it; when a
worker is killed, the next owner sends what it had not deleted yet. It is at least once (as
StateFun's): every count must arrive, and one may arrive twice only around the kill.

The ingress: each shard is read by the worker that owns the cluster partition its position
is stored in; shards move with their partitions and resume after the stored sequence
number, and a split's children start once their parent is read to its end, whichever
worker reads it. Exactly once, in order per key.
"""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path

from support.cluster_counter import drained, popped, send_counts, settled, start_worker
from support.kinesis import REGION, MotoServer, client, put, read_all, stream
from support.nats import cluster_name
from support.runtime_process import RuntimeProcess

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


READER = """\
from pystatefun.sdk import (
    IntType, StatefulFunctions, ValueSpec, egress_message_builder, make_json_type,
)

RECORD = make_json_type("io.statefun.playground/EgressRecord")
functions = StatefulFunctions()


@functions.bind("kc/reader", specs=[ValueSpec("count", IntType)])
def reader(context, message):
    # ID:ROUND:COUNT: read once each and in order, ROUND == COUNT on every line.
    context.storage.count = (context.storage.count or 0) + 1
    line = f"{context.address.id}:{message.raw_value().decode()}:{context.storage.count}"
    record = {"topic": "out", "payload": line}
    context.send_egress(egress_message_builder("io.statefun.playground/egress", record, RECORD))
"""


def _reading(tmp_path: Path, endpoint: str, source: str) -> Path:
    (tmp_path / "kinesis_reader.py").write_text(READER)
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: kc/*\n"
        "  import: kinesis_reader.py:functions\n---\n"
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n---\n"
        "kind: io.statefun.playground.v1/egress\nspec:\n  port: 0\n  topics: [out]\n---\n"
        "kind: io.statefun.kinesis.v1/ingress\nspec:\n  id: kc/in\n"
        f"  awsRegion:\n    type: custom-endpoint\n    endpoint: {endpoint}\n    id: {REGION}\n"
        "  awsCredentials:\n    type: basic\n    accessKeyId: testing\n"
        "    secretAccessKey: testing\n  startupPosition:\n    type: earliest\n"
        f"  streams:\n    - stream: {source}\n      valueType: com.example/text\n"
        "      targets: [kc/reader]\n"
    )
    return module


def _round(server: MotoServer, source: str, ids: list[str], number: int) -> None:
    put(server, source, [(i, str(number).encode()) for i in ids])


def _logging(workers: list[RuntimeProcess], text: str, deadline_s: float = 60) -> list[str]:
    """The logs of the workers that logged ``text`` (waited for, bounded)."""
    deadline = time.monotonic() + deadline_s
    while True:
        found = [w.log.name for w in workers if text in w.log_text()]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def test_each_shard_is_read_by_one_worker_and_moves_with_its_partition(
    tmp_path: Path, nats_url: str, kinesis_server: MotoServer
) -> None:
    """Four rounds of one record per key, around a kill and a join: each once, in order.
    Then a split: each child is started by one live worker once its parent is read to its
    end (moto, unlike Kinesis, keeps putting records into a split parent, so the children
    get none here and the split comes last)."""
    source = stream(kinesis_server, 3, "clin")
    module = _reading(tmp_path, kinesis_server.endpoint, source)
    name, ids = cluster_name("kinesis-in"), [f"r{n}" for n in range(30)]
    one = start_worker(module, tmp_path / "one", nats_url, name, "one")
    two = start_worker(module, tmp_path / "two", nats_url, name, "two")
    three = None
    try:
        settled(nats_url, name, {"one", "two"})
        _round(kinesis_server, source, ids, 1)
        lines = drained([one, two], len(ids), 60)
        _round(kinesis_server, source, ids, 2)
        two.kill()  # while round two is read: its shards move to one, after their positions
        lines += drained([one], len(ids), 60)
        _round(kinesis_server, source, ids, 3)
        lines += drained([one], len(ids), 60)
        three = start_worker(module, tmp_path / "three", nats_url, name, "three")
        settled(nats_url, name, {"one", "three"})
        _round(kinesis_server, source, ids, 4)
        lines += drained([one, three], len(ids), 60)
        lines += popped(one, 1, deadline_s=0.5) + popped(three, 1, deadline_s=0.5)
        kinesis = client(kinesis_server)
        parent = kinesis.list_shards(StreamName=source)["Shards"][0]
        low = int(parent["HashKeyRange"]["StartingHashKey"])
        high = int(parent["HashKeyRange"]["EndingHashKey"])
        kinesis.split_shard(StreamName=source, ShardToSplit=parent["ShardId"],
                            NewStartingHashKey=str((low + high) // 2))  # fmt: skip
        children = [s["ShardId"] for s in kinesis.list_shards(StreamName=source)["Shards"]
                    if s.get("ParentShardId") == parent["ShardId"]]  # fmt: skip
        readers = {c: _logging([one, three], f"reading shard {source}/{c} from")
                   for c in children}  # fmt: skip
        # Its reader sees it closed at its next listing of the shards (every 10 s).
        ended = _logging([one, three], f"shard {source}/{parent['ShardId']} is read to its end")
    finally:
        one.terminate()
        two.kill()
        if three is not None:
            three.terminate()
    assert Counter(lines) == Counter(f"{i}:{n}:{n}" for i in ids for n in (1, 2, 3, 4))
    assert all(len(found) == 1 for found in readers.values()), readers  # each by one worker
    assert len(ended) == 1  # by the one worker that reads it
