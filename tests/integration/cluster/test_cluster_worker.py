"""``pystatefun run --cluster``: a real worker process on a real NATS JetStream server.

The worker's state lives in the stream only: a worker killed with SIGKILL and started again
(with a new, empty --data-dir) finds every count where it was. Workers of one cluster share
its partitions: a second one gets half of them, handed over gracefully; a message sent to
either worker reaches its address's owner, and egress records are popped from either, each
once. A killed worker's partitions are taken over; a worker paused past its lease finds them
taken when it resumes, and stops with PSF-CL0002 instead of writing over the new owner.
"""

from __future__ import annotations

import concurrent.futures
import signal
import subprocess
import time
import urllib.request
from pathlib import Path

from support.cluster_counter import counter_module, popped, send_counts, settled, start_worker
from support.nats import cluster_name
from support.runtime_process import PYSTATEFUN, RuntimeProcess


def test_state_lives_in_the_stream_across_a_kill(tmp_path: Path, nats_url: str) -> None:
    module, name = counter_module(tmp_path), cluster_name("run")
    ids = [f"user-{n}" for n in range(6)]
    worker = start_worker(module, tmp_path / "scratch-1", nats_url, name, "w1")
    try:
        send_counts(worker, ids * 3)
        first = popped(worker, 18)
    finally:
        worker.kill()
    assert sorted(first) == sorted(f"{i}:{n}" for i in ids for n in (1, 2, 3))
    again = start_worker(module, tmp_path / "scratch-2", nats_url, name, "w1")  # empty scratch
    try:
        send_counts(again, ids)
        later = popped(again, 6)
        assert popped(again, 1, deadline_s=0.3) == []  # nothing twice
    finally:
        again.terminate()
    assert sorted(later) == sorted(f"{i}:4" for i in ids)


def test_workers_share_the_partitions_and_any_one_takes_any_message(
    tmp_path: Path, nats_url: str
) -> None:
    module, name = counter_module(tmp_path), cluster_name("two")
    ids = [f"u{n}" for n in range(24)]
    one = start_worker(module, tmp_path / "one", nats_url, name, "one")
    two = None
    try:
        send_counts(one, ids)  # one serves every partition alone
        first = popped(one, len(ids))
        two = start_worker(module, tmp_path / "two", nats_url, name, "two")
        settled(nats_url, name, {"one", "two"})  # half each, handed over gracefully
        assert "released partitions" in one.log_text()
        for n, address_id in enumerate(ids * 2):  # through either worker, whoever owns it
            send_counts(one if n % 2 else two, [address_id])
        later = popped(one, len(ids)) + popped(two, len(ids))
        later += popped(one, 2 * len(ids) - len(later), deadline_s=10)
        assert popped(one, 1, deadline_s=0.3) + popped(two, 1, deadline_s=0.3) == []
    finally:
        one.terminate()
        if two is not None:
            two.terminate()
    assert sorted(first) == sorted(f"{i}:1" for i in ids)
    assert sorted(later) == sorted(f"{i}:{n}" for i in ids for n in (2, 3))  # each once


def test_a_killed_workers_partitions_are_taken_over(tmp_path: Path, nats_url: str) -> None:
    module, name = counter_module(tmp_path), cluster_name("kill")
    ids = [f"k{n}" for n in range(16)]
    one = start_worker(module, tmp_path / "one", nats_url, name, "one")
    two = start_worker(module, tmp_path / "two", nats_url, name, "two")
    try:
        settled(nats_url, name, {"one", "two"})
        send_counts(one, ids)
        assert len(popped(one, len(ids))) == len(ids)
        two.kill()
        killed = time.monotonic()
        send_counts(one, ids)  # half of them wait in two's partitions until one claims them
        records = popped(one, len(ids))
        print(f"failover: every message processed {time.monotonic() - killed:.2f} s after kill -9")
        settled(nats_url, name, {"one"})
    finally:
        one.terminate()
        two.kill()
    assert sorted(records) == sorted(f"{i}:2" for i in ids)


def test_a_worker_whose_partitions_were_taken_commits_nothing_more(
    tmp_path: Path, nats_url: str
) -> None:
    """A zombie: paused past its lease, its partitions claimed, then resumed."""
    module, name = counter_module(tmp_path), cluster_name("zombie")
    ids = [f"z{n}" for n in range(8)]
    old = start_worker(module, tmp_path / "old", nats_url, name, "old")
    new = None
    try:
        send_counts(old, ids)
        assert len(popped(old, len(ids))) == len(ids)
        old.process.send_signal(signal.SIGSTOP)
        new = start_worker(module, tmp_path / "new", nats_url, name, "new")
        settled(nats_url, name, {"new"})  # old's lease ran out
        send_counts(new, ids)
        assert sorted(popped(new, len(ids))) == sorted(f"{i}:2" for i in ids)
        old.process.send_signal(signal.SIGCONT)
        assert old.process.wait(timeout=60) != 0  # it sees its partitions taken, and stops
        log = old.log_text()
        assert "was taken over by worker 'new'" in log
        send_counts(new, ids)
        assert sorted(popped(new, len(ids))) == sorted(f"{i}:3" for i in ids)
        assert popped(new, 1, deadline_s=0.3) == []
    finally:
        old.process.send_signal(signal.SIGCONT)
        old.kill()
        if new is not None:
            new.terminate()


def _keyed(worker: RuntimeProcess, address_id: str, key: str) -> str:
    """POST a keyed message: "added", or "duplicate" (202 either way)."""
    request = urllib.request.Request(
        f"{worker.ingress}/cl/counter/{address_id}",
        data=b"",
        method="POST",
        headers={"Idempotency-Key": key},
    )
    with urllib.request.urlopen(request, timeout=60) as response:
        assert response.status == 202
        return "duplicate" if response.headers.get("Pystatefun-Duplicate") else "added"


def test_one_idempotency_key_through_two_workers_at_once_adds_one_message(
    tmp_path: Path, nats_url: str
) -> None:
    """The same keyed message through both workers at the same instant: only the owner of the
    key's partition checks and writes keys (the other forwards the step to it), so exactly one
    of the two is appended, whichever worker owns the key or the address."""
    module, name = counter_module(tmp_path), cluster_name("keys")
    one = start_worker(module, tmp_path / "one", nats_url, name, "one")
    two = start_worker(module, tmp_path / "two", nats_url, name, "two")
    try:
        settled(nats_url, name, {"one", "two"})
        ids = [f"d{n}" for n in range(24)]
        with concurrent.futures.ThreadPoolExecutor(8) as pool:
            statuses = list(pool.map(
                lambda job: _keyed(*job),
                [(w, i, f"key-{i}") for i in ids for w in (one, two)],
            ))  # fmt: skip
        records = popped(one, len(ids), deadline_s=30) + popped(two, len(ids), deadline_s=1)
        records += popped(one, 1, deadline_s=1) + popped(two, 1, deadline_s=1)
    finally:
        one.terminate()
        two.terminate()
    assert statuses.count("added") == len(ids)  # one of each pair; the other a duplicate
    assert sorted(records) == sorted(f"{i}:1" for i in ids)


def test_a_cluster_url_that_is_not_one_is_a_usage_error(tmp_path: Path) -> None:
    module = counter_module(tmp_path)
    run = subprocess.run(
        [PYSTATEFUN, "run", module, "--data-dir", tmp_path / "d", "--cluster", "http://x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 2
    assert "'http://x' is not a NATS server URL" in run.stderr
    assert not (tmp_path / "d").exists()
