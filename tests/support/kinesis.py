"""A local Kinesis-compatible server for the tests, and small helpers.

Kinesis itself cannot run here (it is an AWS service, and the network reaches no AWS), so the
tests run moto's server mode (``moto_server``, from PyPI), which emulates Kinesis's API on
127.0.0.1. ``kinesis_server`` is one server per test session, on a free port, started as a real
subprocess and stopped by its PID at the end. ``MotoServer`` can also be started on a given port
later in a test (Kinesis coming up after the runtime). ``stream(server, shards)`` makes a fresh
stream per test, so tests never see each other's records.

moto is not Kinesis: its sequence numbers count 1, 2, ... per shard (Kinesis's are 56-digit
numbers), it keeps everything in memory (a restarted server has no streams), and a closed
shard's ``GetRecords`` keeps returning an iterator at its end (Kinesis returns none).
"""

from __future__ import annotations

import itertools
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

MOTO_SERVER = Path(sys.executable).parent / "moto_server"
REGION = "us-east-1"
_streams = itertools.count()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class MotoServer:
    """``moto_server`` on 127.0.0.1:``port``, as a subprocess of the test run."""

    def __init__(self, log_dir: Path, port: int | None = None) -> None:
        self.port = port or free_port()
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._log = log_dir / f"moto-{self.port}.log"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        """Start it and wait until it answers a Kinesis call."""
        with self._log.open("ab") as log:
            self._process = subprocess.Popen(
                [MOTO_SERVER, "-H", "127.0.0.1", "-p", str(self.port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout_s
        while True:
            assert self._process.poll() is None, f"moto_server exited: {self._log.read_text()}"
            try:
                client(self).list_streams()
                return
            except Exception:  # noqa: BLE001 - not serving yet
                assert time.monotonic() < deadline, f"moto_server not up: {self._log.read_text()}"
                time.sleep(0.1)  # no event to wait on: it serves once it listens

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it lingers; only ever our own PID."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@pytest.fixture(scope="session")
def kinesis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MotoServer]:
    server = MotoServer(tmp_path_factory.mktemp("kinesis"))
    server.start()
    yield server
    server.stop()


def client(server: MotoServer) -> Any:
    """A boto3 Kinesis client of ``server`` (moto takes any credentials)."""
    return boto3.client(
        "kinesis",
        endpoint_url=server.endpoint,
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def stream(server: MotoServer, shards: int = 1, prefix: str = "s", name: str | None = None) -> str:
    """A new stream with ``shards`` shards, active."""
    name = name or f"{prefix}-{next(_streams)}-{time.monotonic_ns()}"
    kinesis = client(server)
    kinesis.create_stream(StreamName=name, ShardCount=shards)
    kinesis.get_waiter("stream_exists").wait(StreamName=name, WaiterConfig={"Delay": 0.1})
    return name


def put(server: MotoServer, name: str, rows: list[tuple[str, bytes]]) -> None:
    """Put ``rows`` (partition key, data) to stream ``name``, in order."""
    kinesis = client(server)
    for start in range(0, len(rows), 500):
        entries = [{"PartitionKey": k, "Data": v} for k, v in rows[start : start + 500]]
        response = kinesis.put_records(StreamName=name, Records=entries)
        assert response["FailedRecordCount"] == 0, response


def read_all(server: MotoServer, name: str) -> list[dict[str, Any]]:
    """Every record of stream ``name`` now, shard by shard, each shard in order."""
    kinesis = client(server)
    found: list[dict[str, Any]] = []
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            batch = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            for record in batch["Records"]:
                found.append({**record, "ShardId": shard["ShardId"]})
            if not batch["Records"]:
                break
            iterator = batch.get("NextShardIterator")
    return found
