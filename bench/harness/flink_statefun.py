"""Apache Flink StateFun 3.3.0 itself, in one JVM, assembled from Maven Central.

No Flink distribution is needed (none is on Maven Central): ``bench/statefun_peer/pom.xml`` names
StateFun's fat jar (``statefun-flink-distribution``: the core, the remote module that reads
``module.yaml``, the Kafka I/O bundle with Flink's Kafka connector and client shaded in) and the
Flink 1.16.2 jars it is built against (``flink-clients``, ``flink-streaming-java``,
``flink-statebackend-rocksdb`` and what they bring). ``jars()`` copies them once into
``bench/.cache/statefun-3.3.0/libs`` (git-ignored) with ``mvn dependency:copy-dependencies``
(``tools/maven_jars.py``).

``StatefulFunctionsJob`` runs the way ``flink run`` runs a job, on Flink's ``local`` executor: the
CLI (``org.apache.flink.client.cli.CliFrontend run -t local``) reads ``flink-conf.yaml`` from
``FLINK_CONF_DIR`` and executes the job on a MiniCluster inside its own process, so the JVM is
the whole StateFun runtime (job manager, task manager, RocksDB state). ``module.yaml`` is found on
the class path, as StateFun's images put it (a directory holding it, first on ``-cp``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

__all__ = ["STATEFUN_VERSION", "FlinkStatefun", "jars"]

ROOT = Path(__file__).resolve().parents[2]
POM = ROOT / "bench" / "statefun_peer" / "pom.xml"
STATEFUN_VERSION = "3.3.0"
FLINK_VERSION = "1.16.2"
CACHE = ROOT / "bench" / ".cache" / f"statefun-{STATEFUN_VERSION}"
_JOB = "org.apache.flink.statefun.flink.core.StatefulFunctionsJob"
_CLI = "org.apache.flink.client.cli.CliFrontend"
# Flink 1.16 predates Java 17 support: its closure cleaner and Kryo reflect into java.base. The
# packages Flink's own Java 17 options (1.18+) open.
_OPENS = (
    "java.lang",
    "java.lang.reflect",
    "java.io",
    "java.net",
    "java.nio",
    "java.text",
    "java.time",
    "java.util",
    "java.util.concurrent",
    "java.util.concurrent.atomic",
    "java.util.concurrent.locks",
    "sun.nio.ch",
)


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise RuntimeError(f"`{name}` is not on PATH: the StateFun peer needs Java 17 and Maven")
    return found


def jars() -> Path:
    """The directory of StateFun's and Flink's jars, resolved from Maven Central on first use."""
    spec = importlib.util.spec_from_file_location("maven_jars", ROOT / "tools" / "maven_jars.py")
    assert spec is not None
    assert spec.loader is not None
    maven = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(maven)
    stamp = f"statefun {STATEFUN_VERSION}, flink {FLINK_VERSION}"
    libs: Path = maven.jars(POM, CACHE, stamp=stamp, what="StateFun's and Flink's jars")
    return libs


def flink_conf(scratch: Path, *, checkpoint_interval_ms: int, parallelism: int) -> str:
    """The ``flink-conf.yaml``: upstream's image settings that matter here, on loopback."""
    lines = {
        # What StateFun's validator requires (its Docker image sets the same).
        "classloader.parent-first-patterns.additional": (
            "org.apache.flink.statefun;org.apache.kafka;com.google.protobuf"
        ),
        # The job's jar is also on the JVM's class path; loading parent-first keeps one copy of
        # each class (child-first fails: two LinkedMaps of commons-collections that differ).
        "classloader.resolve-order": "parent-first",
        "state.backend": "rocksdb",
        "state.backend.rocksdb.timer-service.factory": "ROCKSDB",
        "state.backend.incremental": "true",
        "state.backend.rocksdb.localdir": str(scratch / "rocksdb"),
        "state.checkpoints.dir": (scratch / "checkpoints").as_uri(),
        # The exactly-once egress commits its Kafka transaction when a checkpoint completes.
        "execution.checkpointing.interval": f"{checkpoint_interval_ms}ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "parallelism.default": str(parallelism),
        "io.tmp.dirs": str(scratch / "tmp"),
        "web.tmpdir": str(scratch / "tmp"),
        "rest.address": "127.0.0.1",
        "rest.bind-address": "127.0.0.1",
        "rest.bind-port": "0",
        "jobmanager.rpc.address": "127.0.0.1",
        "jobmanager.bind-host": "127.0.0.1",
        "taskmanager.host": "127.0.0.1",
        "taskmanager.bind-host": "127.0.0.1",
        "blob.server.port": "0",
    }
    return "".join(f"{key}: {value}\n" for key, value in lines.items())


class FlinkStatefun:
    """``StatefulFunctionsJob`` on ``module_dir/module.yaml``, one JVM in ``scratch``."""

    def __init__(
        self,
        scratch: Path,
        module_dir: Path,
        *,
        checkpoint_interval_ms: int,
        parallelism: int,
        heap_mib: int,
    ) -> None:
        self.scratch = scratch
        self.module_dir = module_dir
        self.checkpoint_interval_ms = checkpoint_interval_ms
        self.parallelism = parallelism
        self.heap_mib = heap_mib
        self.process: subprocess.Popen[str] | None = None
        self.log = scratch / "statefun.log"

    def argv(self) -> list[str]:
        libs = jars()
        return [
            _tool("java"),
            f"-Xmx{self.heap_mib}m",
            *(f"--add-opens=java.base/{package}=ALL-UNNAMED" for package in _OPENS),
            "-Dorg.slf4j.simpleLogger.defaultLogLevel=warn",
            # One line per completed checkpoint: the log shows the interval was kept.
            "-Dorg.slf4j.simpleLogger.log.org.apache.flink.runtime.checkpoint.CheckpointCoordinator=info",
            "-cp",
            f"{self.module_dir}{os.pathsep}{libs}/*",
            _CLI,
            "run",
            "-t",
            "local",
            "-c",
            _JOB,
            str(libs / f"statefun-flink-distribution-{STATEFUN_VERSION}.jar"),
        ]

    def start(self) -> int:
        """Start the JVM (the job starts inside it); its PID."""
        conf = self.scratch / "conf"
        conf.mkdir(parents=True, exist_ok=True)
        (conf / "flink-conf.yaml").write_text(
            flink_conf(
                self.scratch,
                checkpoint_interval_ms=self.checkpoint_interval_ms,
                parallelism=self.parallelism,
            )
        )
        argv = self.argv()
        with self.log.open("a") as log:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                text=True,
                env=dict(os.environ, FLINK_CONF_DIR=str(conf)),
                cwd=self.scratch,
            )
        return self.process.pid

    def exited(self) -> int | None:
        """The exit status once the JVM has ended, else None."""
        return None if self.process is None else self.process.poll()

    def checkpoints(self) -> int:
        """How many checkpoints completed so far (from the log)."""
        try:
            return self.log.read_text(errors="replace").count("Completed checkpoint")
        except OSError:
            return 0

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""
