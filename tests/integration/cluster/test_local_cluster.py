"""``pystatefun cluster up | down | status``: a real three-node NATS cluster, started by the
real command line, detached; the R3 stream it serves; a worker as ``status`` sees it.

``up`` is idempotent and restarts a stopped cluster with its data; ``down`` stops only the
servers it started (a PID the state file names but that is another process is left alone);
a failed ``up`` leaves nothing behind; ``status`` on no servers, or on a cluster that does
not exist, says so with a coded error and no traceback.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import nats
import pytest
from nats.js.api import StreamConfig
from support.cluster_counter import counter_module, start_worker
from support.nats import cluster_name
from support.runtime_process import PYSTATEFUN

from pystatefun.cluster import LocalCluster
from pystatefun.errors import LocalClusterError
from pystatefun.store.jetstream import cluster_status


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYSTATEFUN, *args], capture_output=True, text=True, check=False, timeout=120
    )


def _up(directory: Path) -> tuple[list[str], str]:
    """``cluster up``'s URLs (it printed ``ready`` after them) and its stderr."""
    result = _cli("cluster", "up", "--dir", directory)
    assert result.returncode == 0, result.stderr
    *urls, last = result.stdout.splitlines()
    assert last == "ready"
    assert urls
    assert all(url.startswith("nats://127.0.0.1:") for url in urls)
    return urls, result.stderr


def _pids(directory: Path) -> dict[str, int | None]:
    return {
        n["name"]: n["pid"] for n in json.loads((directory / "cluster.json").read_text())["nodes"]
    }


def _runs(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie is not: it exited, unreaped)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


async def _make_r3_stream(urls: list[str]) -> int:
    """Create an R3 stream holding one message; returns how many replicas follow its leader."""
    nc = await nats.connect(urls)
    try:
        js = nc.jetstream(timeout=10)
        await js.add_stream(StreamConfig(name="LOCAL_R3", subjects=["local.r3"], num_replicas=3))
        await js.publish("local.r3", b"kept")
        info = await js.stream_info("LOCAL_R3")
        assert info.cluster is not None
        assert info.cluster.leader
        return len(info.cluster.replicas or [])
    finally:
        await nc.close()


async def _stream_messages(urls: list[str], deadline_s: float = 30) -> int:
    """The messages of the stream made above, once its replicas elected a leader again."""
    nc = await nats.connect(urls)
    try:
        js = nc.jetstream(timeout=5)
        deadline = time.monotonic() + deadline_s
        while True:
            try:
                return int((await js.stream_info("LOCAL_R3")).state.messages)
            except nats.errors.Error:
                assert time.monotonic() < deadline, "the stream never came back"
                await asyncio.sleep(0.1)
    finally:
        await nc.close()


def test_up_is_a_real_cluster_idempotent_and_restarts_with_its_data(tmp_path: Path) -> None:
    directory = tmp_path / "cluster"
    urls, said = _up(directory)
    try:
        assert len(urls) == 3
        assert "started 3 of 3" in said
        pids = _pids(directory)
        assert asyncio.run(_make_r3_stream(urls)) == 2  # two followers: really clustered

        again, said = _up(directory)  # running: reported, not started twice
        assert (again, _pids(directory)) == (urls, pids)
        assert "runs already" in said
        os.kill(pids["n2"] or 0, signal.SIGKILL)  # one server crashed: up restarts it alone
        assert _until_gone(pids["n2"] or 0)
        again, said = _up(directory)
        assert again == urls
        assert "started 1 of 3" in said
        pids = _pids(directory)

        down = _cli("cluster", "down", "--dir", directory)
        assert down.returncode == 0, down.stderr
        assert [line.split()[:2] for line in down.stdout.splitlines()] == [
            ["stopped", "n1"], ["stopped", "n2"], ["stopped", "n3"]
        ]  # fmt: skip
        assert not [pid for pid in pids.values() if pid is None or _runs(pid)]
        twice = _cli("cluster", "down", "--dir", directory)
        assert (twice.returncode, twice.stdout) == (0, f"no server of {directory} runs\n")

        restarted, said = _up(directory)  # the same cluster, with its data
        assert "started 3 of 3" in said
        assert asyncio.run(_stream_messages(restarted)) == 1
    finally:
        purged = _cli("cluster", "down", "--purge", "--dir", directory)
    assert purged.returncode == 0, purged.stderr
    assert not directory.exists()


def _until_gone(pid: int, deadline_s: float = 10) -> bool:
    deadline = time.monotonic() + deadline_s
    while _runs(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def _settled(urls: list[str], name: str, deadline_s: float = 60) -> None:
    """Until the one worker ``w1`` serves and owns every partition (polled, bounded)."""
    deadline = time.monotonic() + deadline_s
    while True:
        status = cluster_status(urls, name)
        workers = status["workers"]
        assert isinstance(workers, list)
        if [len(w["serving"]) for w in workers] == [16] and set(
            status["owners"].values()  # type: ignore[attr-defined]
        ) == {"w1"}:
            return
        assert time.monotonic() < deadline, f"w1 never served every partition: {status}"
        time.sleep(0.1)


def test_status_shows_a_worker_serving_every_partition(
    tmp_path: Path, local_cluster: list[str]
) -> None:
    module, name, urls = counter_module(tmp_path), cluster_name("status"), ",".join(local_cluster)
    worker = start_worker(module, tmp_path / "scratch", urls, name, "w1")
    try:
        _settled(local_cluster, name)
        as_json = _cli("cluster", "status", "--cluster", urls, "--cluster-name", name, "--json")
        human = _cli("cluster", "status", "--cluster", urls, "--cluster-name", name)
    finally:
        worker.terminate()
    assert as_json.returncode == 0, as_json.stderr
    status = json.loads(as_json.stdout)
    assert (status["cluster"], status["replicas"], status["partitions"]) == (name, 3, 16)
    assert [(w["worker"], w["serving"]) for w in status["workers"]] == [("w1", list(range(16)))]
    assert status["owners"] == {str(p): "w1" for p in range(16)}
    assert human.returncode == 0, human.stderr
    header, titles, row, *rest = human.stdout.splitlines()
    assert header.startswith(f"cluster {name}  stream ")
    assert "replicas 3" in header
    assert titles.split() == ["WORKER", "PARTITIONS", "LAG"]
    assert row.split()[:2] == ["w1", "0-15"]
    assert rest == []


def _nothing_listens() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return f"nats://127.0.0.1:{probe.getsockname()[1]}"


def test_status_without_servers_or_cluster_is_a_coded_error(nats_url: str) -> None:
    down = _cli("cluster", "status", "--cluster", _nothing_listens())
    assert down.returncode == 1
    assert "[PSF-CL0002]" in down.stderr
    assert "cannot reach the NATS servers" in down.stderr
    assert "Traceback" not in down.stderr
    missing = _cli("cluster", "status", "--cluster", nats_url, "--cluster-name", "nosuchcluster")
    assert missing.returncode == 1
    assert "cluster 'nosuchcluster' holds nothing" in missing.stderr
    assert "--cluster-name" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_a_failed_up_stops_what_it_started_and_removes_what_it_made(tmp_path: Path) -> None:
    directory = tmp_path / "cluster"
    with pytest.raises(LocalClusterError, match="nats-server is not installed"):
        LocalCluster(directory, binary=tmp_path / "no-nats-server").up()
    assert not directory.exists()
    false = Path(shutil.which("false") or "/bin/false")  # a "server" that exits at once
    with pytest.raises(LocalClusterError, match="exited while starting") as failed:
        LocalCluster(directory, binary=false).up(2)
    assert failed.value.code == "PSF-CL0001"
    assert not directory.exists()


def test_down_signals_only_the_servers_it_started(tmp_path: Path) -> None:
    directory = tmp_path / "cluster"
    cluster = LocalCluster(directory)
    cluster.up(1)
    cluster.down()
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:  # the state file names a PID the system gave to another process since
        state = json.loads((directory / "cluster.json").read_text())
        state["nodes"][0]["pid"] = other.pid
        (directory / "cluster.json").write_text(json.dumps(state))
        down = _cli("cluster", "down", "--dir", directory)
        assert (down.returncode, down.stdout) == (0, f"no server of {directory} runs\n")
        assert other.poll() is None
    finally:
        other.kill()
        other.wait(10)
