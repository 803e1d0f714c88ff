"""``pystatefun run --cluster``: a real worker process on a real NATS JetStream server.

The worker's state lives in the stream only: a worker killed with SIGKILL and started again
(with a new, empty --data-dir) finds every count where it was. A second worker of the same
cluster claims the partitions, and the first one's next commit is refused whole: it stops
with PSF-CL0002 instead of writing over the new owner.
"""

from __future__ import annotations

import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from support.nats import cluster_name
from support.runtime_process import PYSTATEFUN, RuntimeProcess, start_runtime

COUNTER = """\
from pystatefun.sdk import (
    IntType, StatefulFunctions, ValueSpec, egress_message_builder, make_json_type,
    message_builder,
)

RECORD = make_json_type("io.statefun.playground/EgressRecord")
functions = StatefulFunctions()


@functions.bind("cl/counter", specs=[ValueSpec("count", IntType)])
def counter(context, message):
    context.storage.count = (context.storage.count or 0) + 1
    # Through a second address (another partition, mostly), then out.
    context.send(message_builder("cl/reporter", "r-" + context.address.id,
                                 str_value=f"{context.address.id}:{context.storage.count}"))


@functions.bind("cl/reporter")
def reporter(context, message):
    record = {"topic": "out", "payload": message.as_string()}
    context.send_egress(egress_message_builder("io.statefun.playground/egress", record, RECORD))
"""


def _module(tmp_path: Path) -> Path:
    (tmp_path / "cluster_counter.py").write_text(COUNTER)
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: cl/*\n"
        "  import: cluster_counter.py:functions\n---\n"
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n---\n"
        "kind: io.statefun.playground.v1/egress\nspec:\n  port: 0\n  topics: [out]\n"
    )
    return module


def _send(worker: RuntimeProcess, ids: list[str]) -> None:
    for address_id in ids:
        request = urllib.request.Request(
            f"{worker.ingress}/cl/counter/{address_id}", data=b"", method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202


def _records(worker: RuntimeProcess, count: int, deadline_s: float = 60) -> list[str]:
    """``count`` records popped from the worker's egress (polled: the playground egress is
    pull-only), bounded by a deadline."""
    records: list[str] = []
    deadline = time.monotonic() + deadline_s
    while len(records) < count and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{worker.egress}/out", timeout=30) as response:
                records.append(response.read().decode())
        except urllib.error.HTTPError as error:
            error.close()
            if error.code != 404:
                raise
            time.sleep(0.02)
    return records


def _worker(module: Path, data_dir: Path, url: str, name: str, worker: str) -> RuntimeProcess:
    return start_runtime(module, data_dir, "--cluster", url, "--cluster-name", name,
                         "--worker", worker)  # fmt: skip


def test_state_lives_in_the_stream_across_a_kill(tmp_path: Path, nats_url: str) -> None:
    module, name = _module(tmp_path), cluster_name("run")
    ids = [f"user-{n}" for n in range(6)]
    worker = _worker(module, tmp_path / "scratch-1", nats_url, name, "w1")
    try:
        _send(worker, ids * 3)
        first = _records(worker, 18)
    finally:
        worker.kill()
    assert sorted(first) == sorted(f"{i}:{n}" for i in ids for n in (1, 2, 3))
    again = _worker(module, tmp_path / "scratch-2", nats_url, name, "w1")  # empty scratch
    try:
        _send(again, ids)
        later = _records(again, 6)
        assert _records(again, 1, deadline_s=0.3) == []  # nothing twice
    finally:
        again.terminate()
    assert sorted(later) == sorted(f"{i}:4" for i in ids)


def test_a_worker_whose_partitions_were_claimed_commits_nothing_more(
    tmp_path: Path, nats_url: str
) -> None:
    module, name = _module(tmp_path), cluster_name("fence")
    old = _worker(module, tmp_path / "old", nats_url, name, "old")
    new = None
    try:
        _send(old, ["a"])
        assert _records(old, 1) == ["a:1"]
        new = _worker(module, tmp_path / "new", nats_url, name, "new")
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
        _send(new, ["a"])
        assert _records(new, 1) == ["a:2"]  # the old worker's second message never landed
    finally:
        old.kill()
        if new is not None:
            new.terminate()


def test_a_cluster_url_that_is_not_one_is_a_usage_error(tmp_path: Path) -> None:
    module = _module(tmp_path)
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
