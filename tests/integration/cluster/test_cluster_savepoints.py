"""Savepoints between a data dir and a cluster, through the command line, on a real JetStream.

A savepoint restores into a cluster and one taken of the cluster restores into a data dir with
the same contents, record by record, whatever the key groups on the way; a savepoint of a
cluster whose worker is running holds what it committed; a cluster that holds anything is not
restored into; and the commands say clearly when they are given both a data dir and a cluster.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
from pathlib import Path

import pytest
from support.cluster_counter import counter_module, popped, send_counts
from support.nats import cluster_name
from support.runtime_process import PYSTATEFUN, start_runtime

from pystatefun import savepoint
from pystatefun.sdk import IntType
from pystatefun.store import DataDir, TimerRecord
from pystatefun.store.contents import StateContent
from pystatefun.store.records import Payload, StateValue
from pystatefun.types import Address

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "savepoints"
EXTRA = 1_500  # more values than one atomic batch holds: the load spans batches


def _cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PYSTATEFUN), "savepoint", *map(str, args)], capture_output=True,
                          text=True, check=False, timeout=120)  # fmt: skip


def _comparable(data_dir: Path) -> list[object]:
    # Timer ids are the store's row ids: a restore numbers them anew.
    return [
        dataclasses.replace(c, timer_id=0) if isinstance(c, TimerRecord) else c
        for c in DataDir(data_dir).contents().records
    ]


def _source(tmp_path: Path) -> Path:
    """A data dir with every kind of record, and many state values."""
    source = tmp_path / "source"
    savepoint.restore(FIXTURES / f"v{savepoint.VERSION}.psfsp", source)
    values = [
        StateContent(
            Address("bulk", "item", f"i{n}"),
            StateValue("n", Payload("io.statefun.types/int", n.to_bytes(4, "big")), 0, 0, None),
        )
        for n in range(EXTRA)
    ]
    with DataDir(source).loader(key_groups=None, fresh=False) as loader:
        loader.states(values)
    return source


@pytest.mark.parametrize("streams", [1, 3])
def test_a_savepoint_goes_into_a_cluster_and_comes_back_the_same(
    tmp_path: Path, nats_url: str, streams: int
) -> None:
    source, name = _source(tmp_path), cluster_name("sp")
    first, second = tmp_path / "first.psfsp", tmp_path / "second.psfsp"
    assert _cli("create", first, "--data-dir", source).returncode == 0
    into = _cli("restore", first, "--cluster", nats_url, "--cluster-name", name,
                "--key-groups", "5", "--streams", streams)  # fmt: skip
    assert into.returncode == 0, into.stderr
    assert f"into cluster {name!r}: {EXTRA + 1:,} state" in into.stderr
    out = _cli("create", second, "--cluster", nats_url, "--cluster-name", name)
    assert out.returncode == 0, out.stderr
    assert savepoint.info(second)[0]["key_groups"] == 5
    assert savepoint.info(second)[1] == savepoint.info(first)[1]
    back = tmp_path / "back"
    assert _cli("restore", second, "--data-dir", back).returncode == 0
    assert _comparable(back) == _comparable(source)

    again = _cli("restore", first, "--cluster", nats_url, "--cluster-name", name)
    assert (again.returncode, "is not empty" in again.stderr) == (1, True), again.stderr
    assert "PSF-" in again.stderr
    query = subprocess.run(
        [str(PYSTATEFUN), "sql", 'SELECT count(*) AS n FROM "bulk/item.n"', "--savepoint",
         second, "--format", "json"], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert json.loads(query.stdout) == [{"n": EXTRA}], query.stderr


@pytest.mark.parametrize("streams", [1, 2])
def test_a_savepoint_of_a_running_cluster_holds_what_it_committed(
    tmp_path: Path, nats_url: str, streams: int
) -> None:
    module, name = counter_module(tmp_path), cluster_name("live")
    ids = [f"user-{n}" for n in range(5)]
    worker = start_runtime(module, tmp_path / "scratch", "--cluster", nats_url,
                           "--cluster-name", name, "--streams", str(streams))  # fmt: skip
    try:
        send_counts(worker, ids * 2)
        assert len(popped(worker, 10)) == 10  # every step committed
        taken = tmp_path / "live.psfsp"
        made = _cli("create", taken, "--cluster", nats_url, "--cluster-name", name)
        assert made.returncode == 0, made.stderr
    finally:
        worker.terminate()
    restored = tmp_path / "restored"
    assert _cli("restore", taken, "--data-dir", restored).returncode == 0
    counts = {
        c.address.id: IntType.serializer().deserialize(c.value.payload.value or b"")
        for c in DataDir(restored).contents().records
        if isinstance(c, StateContent) and c.address.type == "counter"
    }
    assert counts == dict.fromkeys(ids, 2)


def test_the_commands_refuse_unclear_or_missing_targets(tmp_path: Path, nats_url: str) -> None:
    made = FIXTURES / "v1.psfsp"
    both = _cli("create", tmp_path / "x.psfsp", "--data-dir", tmp_path, "--cluster", nats_url)
    assert (both.returncode, "not both" in both.stderr) == (2, True), both.stderr
    neither = _cli("restore", made)
    assert (neither.returncode, "--data-dir or --cluster" in neither.stderr) == (2, True)
    nothing = _cli("create", tmp_path / "y.psfsp", "--cluster", nats_url, "--cluster-name",
                   cluster_name("none"))  # fmt: skip
    assert (nothing.returncode, "holds nothing" in nothing.stderr) == (1, True), nothing.stderr
    assert not (tmp_path / "y.psfsp").exists()
    down = _cli("create", tmp_path / "z.psfsp", "--cluster", "nats://127.0.0.1:9")
    assert (down.returncode, "cannot reach the NATS servers" in down.stderr) == (1, True)
    assert "Traceback" not in down.stderr
