"""Cluster mode keeps the embedded contract: kill -9 of workers loses nothing acknowledged and
duplicates nothing.

Model-based, as ``tests/integration/runtime/test_crash_recovery.py``, on a real 3-server NATS
JetStream cluster (R3, ``pystatefun cluster up``) with three workers, the smoke functions
served by the official Python SDK (``apache-flink-statefun`` 3.3.0). A seeded generator sends
random command trees (increments, sends, delayed sends, cancelled delayed sends, egress records)
through a random worker's ingress; now and then a random worker is SIGKILLed, often in the
middle of a request or of the cascades it started, and a new one (with the same name) started
in its place. Its partitions move to the survivors once its lease ran out, and back when it
rejoins. Once during the run the NATS server that leads the data stream's RAFT group is
SIGKILLed too, and restarted a few messages later. The client retries an unacknowledged
message, with the same ``Idempotency-Key``, through another worker. At the end every
address's state must equal the model's and every egress record must have been published
exactly once. Runs with ``seed:2`` spread the partitions over two streams, so that most
messages between addresses cross streams through the outbox. Failures print the seed; rerun
one with ``PYSTATEFUN_CLUSTER_CRASH_SEEDS=<seed>[:<streams>] python3 dev.py test -k
cluster_crash``.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
import urllib.error
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest
from support.cluster_counter import start_worker
from support.function_servers import endpoint
from support.nats import cluster_name
from support.processes import ListeningProcess
from support.runtime_process import RuntimeProcess, write_module
from support.smoke_client import VERIFY_DEADLINE_S, drain, send, verify_states
from support.smoke_model import SmokeModel

from pystatefun.cluster import LocalCluster
from pystatefun.store import TimerRecord
from pystatefun.store.contents import MessageContent
from pystatefun.store.jetstream import cluster_contents

RUNS = [
    (int(seed), int(streams or 1))
    for seed, _, streams in (
        run.partition(":")
        for run in os.environ.get("PYSTATEFUN_CLUSTER_CRASH_SEEDS", "7,8:2,2:2").split(",")
    )
]
SOURCES = 90
INSTANCES = 12
KILLS = 3
WORKERS = ("a", "b", "c")


def _quiescent(urls: list[str], name: str) -> bool:
    """No message waits in any mailbox and no delayed message is pending, in the stream."""
    contents = cluster_contents(urls, name)
    return not any(isinstance(r, MessageContent | TimerRecord) for r in contents.records)


def _stream_leader(urls: list[str], stream: str) -> str:
    async def ask() -> str:
        nc = await nats.connect(urls)
        try:
            info = await nc.jetstream().stream_info(stream)
        finally:
            await nc.close()
        assert info.cluster is not None
        assert info.cluster.leader is not None
        return info.cluster.leader

    return asyncio.run(ask())


class _LeaderKiller:
    """Kills the data stream's leader server at ``kill_at`` and restarts it at ``restart_at``."""

    def __init__(self, cluster: LocalCluster, stream: str, kill_at: int, restart_at: int) -> None:
        self.cluster, self.stream = cluster, stream
        self.kill_at, self.restart_at = kill_at, restart_at

    def at(self, index: int) -> None:
        """Called before each message is sent (again, after a failed send: acts once)."""
        if index == self.kill_at:
            self.kill_at = -1
            leader = _stream_leader(self.cluster.urls, self.stream)
            node = next(n for n in self.cluster.nodes if n.name == leader)
            assert node.pid is not None
            os.kill(node.pid, signal.SIGKILL)
        elif index == self.restart_at:
            self.restart_at = -1
            assert len(self.cluster.running()) == 2
            self.cluster.up()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    """A three-node cluster of this test's own: one of its servers gets killed."""
    cluster = LocalCluster(tmp_path / "nats")
    cluster.up(3)
    try:
        yield cluster
    finally:
        cluster.down(purge=True)


@pytest.mark.parametrize(("seed", "streams"), RUNS)
def test_kill_9_of_workers_loses_and_duplicates_nothing(
    seed: int,
    streams: int,
    tmp_path: Path,
    own_cluster: LocalCluster,
    official_python_function_server: ListeningProcess,
) -> None:
    module = write_module(tmp_path / "module.yaml", endpoint(official_python_function_server))
    local_cluster = own_cluster.urls
    url, name = ",".join(local_cluster), cluster_name("crash")
    rng = random.Random(seed)
    model = SmokeModel(instances=INSTANCES)
    sources = [model.source(rng) for _ in range(SOURCES)]
    kill_before = sorted(rng.sample(range(1, SOURCES), KILLS))
    leader_at = rng.randrange(10, SOURCES - 20)
    servers = _LeaderKiller(own_cluster, f"PSF_{name}_G1", leader_at, leader_at + 10)
    starts = iter(range(1000))

    def start(worker: str) -> RuntimeProcess:
        return start_worker(module, tmp_path / f"{worker}-{next(starts)}", url, name, worker,
                            "--streams", str(streams))  # fmt: skip

    workers = {w: start(w) for w in WORKERS}
    try:
        index = 0
        while index < len(sources):
            victim = None
            if kill_before and index == kill_before[0]:
                kill_before.pop(0)
                victim = rng.choice(WORKERS)
                killer = threading.Timer(rng.uniform(0.0, 0.05), workers[victim].kill)
                killer.start()
            servers.at(index)
            via = workers[rng.choice(WORKERS)]
            target, commands = sources[index]
            try:
                send(via, target, commands, f"source-{index}")
                index += 1
            except (urllib.error.URLError, ConnectionError, OSError) as exc:
                detail = exc.read().decode() if isinstance(exc, urllib.error.HTTPError) else exc
                assert victim is not None, f"ingress failed with no kill: {detail} (seed={seed})"
                assert via is workers[victim], f"a live worker's ingress failed (seed={seed})"
            if victim is not None:
                killer.join()
                workers[victim].kill()
                workers[victim] = start(victim)
        expected = {str(i): model.expected.get(str(i), 0) for i in range(INSTANCES)}
        verify_states(workers["a"], expected, seed)
        deadline = time.monotonic() + VERIFY_DEADLINE_S
        while not _quiescent(local_cluster, name):
            assert time.monotonic() < deadline, f"never quiescent (seed={seed})"
            time.sleep(0.1)
        published = [record for w in WORKERS for record in drain(workers[w], "discard")]
        assert sorted(published) == sorted(model.egress_payloads), f"egress (seed={seed})"
        codes = [workers[w].terminate() for w in WORKERS]
        assert codes == [0, 0, 0]
    except BaseException:
        print(f"reproduce with PYSTATEFUN_CLUSTER_CRASH_SEEDS={seed}:{streams}; worker logs:")
        for w in WORKERS:
            print(f"--- {w}\n{workers[w].log_text()[-20000:]}")
            workers[w].kill()
        raise
