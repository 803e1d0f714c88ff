"""``pystatefun run --cluster``: a real worker process on a real NATS JetStream server.

The worker's state lives in the stream only: a worker killed with SIGKILL and started again
(with a new, empty --data-dir) finds every count where it was. A second worker of the same
cluster claims the partitions, and the first one's next commit is refused whole: it stops
with PSF-CL0002 instead of writing over the new owner.
"""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.cluster_counter import counter_module, popped, send_counts, start_worker
from support.nats import cluster_name
from support.runtime_process import PYSTATEFUN


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


def test_a_worker_whose_partitions_were_claimed_commits_nothing_more(
    tmp_path: Path, nats_url: str
) -> None:
    module, name = counter_module(tmp_path), cluster_name("fence")
    old = start_worker(module, tmp_path / "old", nats_url, name, "old")
    new = None
    try:
        send_counts(old, ["a"])
        assert popped(old, 1) == ["a:1"]
        new = start_worker(module, tmp_path / "new", nats_url, name, "new")
        request = urllib.request.Request(f"{old.ingress}/cl/counter/a", data=b"", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:  # its commit is refused whole
            urllib.request.urlopen(request, timeout=30)
        refused.value.close()
        assert refused.value.code == 503
        code = old.process.wait(timeout=60)
        assert code != 0
        log = old.log_text()
        assert "was taken over by worker 'new'" in log
        assert "PSF-CL0002" in log
        send_counts(new, ["a"])
        assert popped(new, 1) == ["a:2"]  # the old worker's second message never landed
    finally:
        old.kill()
        if new is not None:
            new.terminate()


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
