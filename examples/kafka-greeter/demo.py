"""The Kafka greeter end to end (``python3 dev.py example kafka-greeter``).

1. starts a local Apache Kafka broker (``tools/kafka/broker.py``: a single KRaft node on a free
   port of 127.0.0.1, in a scratch directory) and creates the topics ``names`` and ``greetings``;
2. serves ``functions.py`` with the official Python SDK (``apache-flink-statefun`` 3.3.0 in
   ``.venv-statefun-3.3.0/``, built on first use by ``tools/official_sdk.py``);
3. runs ``pystatefun run`` on ``module.yaml`` (its broker address and endpoint URL rewritten to
   the ones above) on a fresh data dir;
4. produces the names to ``names``, each keyed by the name, and reads the greetings from
   ``greetings`` with a ``read_committed`` consumer as they arrive;
5. stops the runtime (SIGTERM), reads ``greetings`` once more from the start to check each
   greeting is there exactly once, and prints the greeter's state with ``pystatefun sql``;
6. stops the function server and the broker, and removes the scratch directory.

It runs under ``.venv`` with the ``kafka`` extra (``confluent-kafka``); the broker needs Java 17+
and Maven (its jars come from Maven Central the first time).
"""

from __future__ import annotations

import importlib.util
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from types import ModuleType
from typing import IO

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
NAMES = ["alice", "bob", "alice", "carol", "bob", "alice"]
EXPECTED = [  # what functions.py greets each visit with, in the order of each name's visits
    ("alice", "Hello alice! Welcome."),
    ("bob", "Hello bob! Welcome."),
    ("alice", "Hello again alice!"),
    ("carol", "Hello carol! Welcome."),
    ("bob", "Hello again bob!"),
    ("alice", "Hello alice, this is visit number 3."),
]
PARTITIONS = 2
DEADLINE_S = 90.0
RUNNING_ON = re.compile(r"Running on http://127\.0\.0\.1:(\d+)")


def _tool(relative: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        relative.replace("/", "_"), ROOT / "tools" / relative
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _lines(stream: IO[str]) -> queue.Queue[str]:
    """The process's stdout lines, read by a thread (so the pipe never fills); "" at its end."""
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    return lines


def _wait_for(lines: queue.Queue[str], pattern: re.Pattern[str], what: str) -> re.Match[str]:
    deadline = time.monotonic() + DEADLINE_S
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        if not line:
            raise SystemExit(f"{what} exited before it was ready")
        if found := pattern.search(line):
            return found
    raise SystemExit(f"{what} was not ready within {DEADLINE_S:.0f} s")


def _stop(name: str, process: subprocess.Popen[str]) -> int:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    try:
        code = process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        code = process.wait()
    print(f"{name} stopped with exit code {code}")
    return code


def _create_topics(bootstrap: str) -> None:
    admin = AdminClient({"bootstrap.servers": bootstrap})
    topics = [NewTopic(name, PARTITIONS, 1) for name in ("names", "greetings")]
    for future in admin.create_topics(topics).values():
        future.result(30)
    print(f"topics names and greetings created, {PARTITIONS} partitions each")


def _produce(bootstrap: str) -> None:
    producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    for name in NAMES:
        producer.produce("names", key=name.encode(), value=name.encode())
    if producer.flush(30) != 0:
        raise SystemExit("the names were not all acknowledged by the broker")
    print(f"produced {len(NAMES)} names to topic names: {', '.join(NAMES)}")


def _greetings(bootstrap: str, count: int, *, to_end: bool) -> list[tuple[str, str]]:
    """Greetings read (``read_committed``) from the start: ``count`` of them, or every one up to
    the end of each partition when ``to_end``."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"kafka-greeter-reader-{time.monotonic_ns()}",
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.partition.eof": True,
        }
    )
    consumer.assign([TopicPartition("greetings", p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    found: list[tuple[str, str]] = []
    at_end: set[int] = set()
    deadline = time.monotonic() + DEADLINE_S
    try:
        while time.monotonic() < deadline:
            if to_end and len(at_end) == PARTITIONS:
                break
            if not to_end and len(found) >= count:
                break
            message = consumer.poll(0.5)
            if message is None:
                continue
            error = message.error()
            if error is not None and error.code() == KafkaError._PARTITION_EOF:  # noqa: SLF001
                at_end.add(message.partition() or 0)
                continue
            if error is not None:
                raise SystemExit(f"reading greetings failed: {error}")
            at_end.discard(message.partition() or 0)
            key = (message.key() or b"").decode()
            greeting = (message.value() or b"").decode()
            found.append((key, greeting))
            if not to_end:
                print(f"greetings [partition {message.partition()}] {key}: {greeting}")
    finally:
        consumer.close()
    return found


def _in_order_per_name(greetings: list[tuple[str, str]]) -> bool:
    """Each name's greetings in the order of its visits (Kafka orders a key's records)."""
    names = {name for name, _ in EXPECTED}
    return all(
        [g for k, g in greetings if k == name] == [g for k, g in EXPECTED if k == name]
        for name in names
    )


def run(scratch: Path) -> bool:
    broker = _tool("kafka/broker.py").KafkaBroker(scratch / "kafka")
    official_python = _tool("official_sdk.py").official_python(with_aiohttp=True)
    print("starting a local Kafka broker (the first run fetches its jars with Maven)")
    broker.start()
    processes: list[tuple[str, subprocess.Popen[str]]] = []
    codes: list[int] = []
    ok = False
    try:
        print(f"Kafka broker serving at {broker.bootstrap}")
        _create_topics(broker.bootstrap)
        port = _free_port()
        functions = subprocess.Popen(
            [official_python, HERE / "functions.py", str(port)],
            stdout=subprocess.PIPE,
            text=True,
        )
        processes.append(("function server", functions))
        assert functions.stdout is not None
        _wait_for(_lines(functions.stdout), re.compile(rf"127\.0\.0\.1:{port}\b"), "functions.py")
        print(f"example/greeter served by the official SDK at http://127.0.0.1:{port}/statefun")
        module = scratch / "module.yaml"
        text = (HERE / "module.yaml").read_text()
        text = text.replace("127.0.0.1:9092", broker.bootstrap)
        module.write_text(text.replace("127.0.0.1:8000", f"127.0.0.1:{port}"))
        data_dir = scratch / "data"
        runtime = subprocess.Popen(
            [PYSTATEFUN, "run", module, "--data-dir", data_dir, "--log-level", "WARNING"],
            stdout=subprocess.PIPE,
            text=True,
        )
        processes.append(("pystatefun run", runtime))
        assert runtime.stdout is not None
        _wait_for(_lines(runtime.stdout), re.compile(r"^ready$"), "pystatefun run")
        print(f"pystatefun run: module {HERE.name}/module.yaml, data dir {data_dir.name}/")
        _produce(broker.bootstrap)
        arrived = _greetings(broker.bootstrap, len(EXPECTED), to_end=False)
        codes.append(_stop(*processes.pop()))
        published = _greetings(broker.bootstrap, len(EXPECTED), to_end=True)
        counts = Counter(published)
        once = sorted(counts.elements()) == sorted(EXPECTED) and _in_order_per_name(published)
        print(
            f"{len(arrived)} of {len(EXPECTED)} greetings received; after the runtime stopped "
            f"the topic holds {len(published)}, "
            + ("each exactly once" if once else f"not each once: {dict(counts)}")
        )
        state = subprocess.run(
            [
                PYSTATEFUN,
                "sql",
                "--data-dir",
                data_dir,
                'SELECT id, value AS visits FROM "example/greeter.visits" ORDER BY id',
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        print("state of example/greeter:\n" + (state.stdout or state.stderr).rstrip())
        ok = once and len(arrived) == len(EXPECTED) and state.returncode == 0
    finally:
        while processes:
            codes.append(_stop(*processes.pop()))
        broker.stop()
        print("Kafka broker stopped")
    return ok and not any(codes)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pystatefun-kafka-greeter-") as scratch:
        return 0 if run(Path(scratch)) else 1


if __name__ == "__main__":
    raise SystemExit(main())
