"""A real single-node Apache Kafka broker (KRaft) on 127.0.0.1, for tests and trying things out.

    python3 tools/kafka/broker.py [--port 9092] [--dir DIR]    # or: python3 dev.py kafka

prints ``bootstrap 127.0.0.1:<port>`` once the broker serves, then runs until Ctrl-C (or
SIGTERM), and stops the broker. Tests use ``KafkaBroker`` directly (``tests/support/kafka.py``).

The broker's jars come from Maven Central: ``tools/kafka/pom.xml`` names them, and ``jars()``
copies them once into ``.cache/kafka-<version>/libs`` (git-ignored) with ``mvn``
(``tools/maven_jars.py``). A broker runs
in a scratch directory of its own: ``kafka-storage format`` (``kafka.tools.StorageTool``), then
``kafka.Kafka``, started in its own process group and stopped by its PID.

This file uses the standard library only: ``dev.py`` imports it before any dependency exists.
"""

from __future__ import annotations

import argparse
import base64
import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import uuid
from collections import deque
from pathlib import Path

__all__ = ["KAFKA_VERSION", "KafkaBroker", "jars"]

ROOT = Path(__file__).resolve().parents[2]
POM = Path(__file__).resolve().parent / "pom.xml"
_TOOLS = Path(__file__).resolve().parents[1]
KAFKA_VERSION = "4.1.1"  # 4.4.0 loses a commit marker across a kill -9 (see pom.xml)
CACHE = ROOT / ".cache" / f"kafka-{KAFKA_VERSION}"
_READY_LINE = "Kafka Server started"
_START_TIMEOUT_S = 90.0
_LOG_LINES = 400


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"`{name}` is not on PATH: the Kafka broker needs Java 17+ and Maven")
    return found


def jars() -> Path:
    """The directory of the broker's jars, resolved from Maven Central on first use."""
    spec = importlib.util.spec_from_file_location("maven_jars", _TOOLS / "maven_jars.py")
    assert spec is not None
    assert spec.loader is not None
    maven = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maven)
    libs: Path = maven.jars(POM, CACHE, stamp=KAFKA_VERSION, what="the Kafka broker's jars")
    return libs


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class KafkaBroker:
    """One broker in ``directory`` (its data and config), listening on ``port`` (0: free)."""

    def __init__(self, directory: Path, port: int = 0) -> None:
        self.directory = directory
        self.port = port or _free_port()
        self.controller_port = _free_port()
        self.process: subprocess.Popen[str] | None = None
        self.log: deque[str] = deque(maxlen=_LOG_LINES)
        self._formatted = False

    @property
    def bootstrap(self) -> str:
        """What clients put in ``bootstrap.servers``."""
        return f"127.0.0.1:{self.port}"

    def _properties(self) -> Path:
        path = self.directory / "server.properties"
        lines = [
            "process.roles=broker,controller",
            "node.id=1",
            f"controller.quorum.voters=1@127.0.0.1:{self.controller_port}",
            f"listeners=PLAINTEXT://127.0.0.1:{self.port},CONTROLLER://127.0.0.1:{self.controller_port}",
            f"advertised.listeners=PLAINTEXT://127.0.0.1:{self.port}",
            "controller.listener.names=CONTROLLER",
            "listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "inter.broker.listener.name=PLAINTEXT",
            f"log.dirs={self.directory / 'logs'}",
            "num.partitions=1",
            "offsets.topic.replication.factor=1",
            "offsets.topic.num.partitions=4",
            "transaction.state.log.replication.factor=1",
            "transaction.state.log.min.isr=1",
            "transaction.state.log.num.partitions=4",
            "group.initial.rebalance.delay.ms=0",
            "auto.create.topics.enable=false",
        ]
        path.write_text("\n".join(lines) + "\n")
        return path

    def _java(self, *args: str) -> list[str]:
        return [
            _tool("java"),
            "-Xms64m",
            "-Xmx512m",
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            "-Dorg.slf4j.simpleLogger.log.kafka.server.KafkaRaftServer=info",
            "-cp",
            f"{jars()}/*",
            *args,
        ]

    def start(self) -> KafkaBroker:
        """Format the storage (the first time), start the broker, wait until it serves."""
        self.directory.mkdir(parents=True, exist_ok=True)
        properties = self._properties()
        if not self._formatted:
            formatted = subprocess.run(
                self._java(
                    "kafka.tools.StorageTool", "format", "-t", _cluster_id(), "-c", str(properties)
                ),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            if formatted.returncode != 0:
                raise RuntimeError(f"kafka-storage format failed:\n{formatted.stderr[-3000:]}")
            self._formatted = True
        ready = threading.Event()  # one per process: an old reader's end must not count
        self.process = subprocess.Popen(
            self._java("kafka.Kafka", str(properties)),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,  # its own process group: stopped whole, by its PID
        )
        threading.Thread(target=self._read_log, args=(self.process, ready), daemon=True).start()
        if not ready.wait(_START_TIMEOUT_S) or self.process.poll() is not None:
            output = "\n".join(self.log)
            self.stop()
            raise RuntimeError(f"the Kafka broker did not start:\n{output[-4000:]}")
        return self

    def _read_log(self, process: subprocess.Popen[str], ready: threading.Event) -> None:
        assert process.stderr is not None
        for line in process.stderr:
            self.log.append(line.rstrip())
            if _READY_LINE in line:
                ready.set()
        ready.set()  # ended: whoever waits finds out at once
        process.stderr.close()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Stop the broker gracefully (SIGTERM), or kill it after ``timeout_s``."""
        self._signal(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        """``kill -9`` the broker (its data stays: ``start`` again to restart it)."""
        self._signal(signal.SIGKILL, 30.0)

    def _signal(self, signum: int, timeout_s: float) -> None:
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        os.killpg(process.pid, signum)  # only ever a group we started
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(30)

    def __enter__(self) -> KafkaBroker:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def _cluster_id() -> str:
    """A Kafka cluster id: 16 random bytes in URL-safe base64 without padding (22 chars).

    Never one that starts with "-" (one in 64 would): the storage tool's argument parser takes
    it for an option and refuses to format, as Kafka's own ``random-uuid`` knows."""
    while (made := base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="))[0] == "-":
        pass
    return made


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9092, help="client port (0: a free one)")
    parser.add_argument("--dir", type=Path, default=None, help="data dir (default: a temp dir)")
    args = parser.parse_args()
    directory = args.dir or Path(tempfile.mkdtemp(prefix="pystatefun-kafka-"))
    broker = KafkaBroker(directory, args.port)
    print(f"starting Kafka {KAFKA_VERSION} in {directory} ...", file=sys.stderr)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    with broker:
        print(f"bootstrap {broker.bootstrap}", flush=True)
        try:
            while not stop.wait(1.0):
                if broker.process is None or broker.process.poll() is not None:
                    print("the broker exited:\n" + "\n".join(broker.log), file=sys.stderr)
                    return 1
        except KeyboardInterrupt:
            pass
    print("stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
