"""The cluster example end to end (``python3 dev.py example cluster``).

1. ``pystatefun cluster up --nodes 3``: a local NATS JetStream cluster of three servers;
2. two workers, ``pystatefun run module.yaml --cluster URLS --worker wN --port-offset N``,
   share the database of the greeter (``examples/greeter/functions.py``, embedded);
   ``pystatefun cluster status`` shows who serves which partitions;
3. visits go in through both workers' ingresses, and the greetings are popped from both,
   whichever worker ran the function;
4. one worker is killed with SIGKILL; the other takes over its partitions once its lease ran
   out, and runs what waited there;
5. ``pystatefun savepoint create --cluster`` saves the running cluster, and ``pystatefun sql
   --savepoint`` reads every count from it;
6. the workers stop (SIGTERM), and ``pystatefun cluster down --purge`` stops the servers and
   removes their data.

It checks what it prints: every visit counted once and greeted once, none lost across the
kill. (Follow-ups, "Welcome back for good", are delayed by a second and cancelled by the next
visit, so how many there are depends on timing; each is counted, not checked.)
"""

from __future__ import annotations

import json
import queue
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

HERE = Path(__file__).resolve().parent
PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
MODULE_PORT = 8090  # module.yaml's ingress port; its egress listens on the next one
USERS = [f"user{n}" for n in range(10)]
VISITS = 3  # before the kill; one more each after it
GREETING = re.compile(r"^Hello (user\d+)! (?:Nice to meet you|I have seen you (\d+) times)\.$")
DEADLINE_S = 60.0
NAME = "example"


def _pystatefun(*args: str) -> str:
    done = subprocess.run(
        [PYSTATEFUN, *args], capture_output=True, text=True, timeout=120, check=False
    )
    if done.returncode != 0:
        raise SystemExit(f"pystatefun {' '.join(args)} failed:\n{done.stderr}")
    return done.stdout


def _free_offset(taken: set[int]) -> int:
    """A --port-offset that moves module.yaml's two ports onto free ports of 127.0.0.1."""
    while True:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = int(probe.getsockname()[1])
        try:
            with socket.socket() as probe:
                probe.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        if port not in taken and port < 65000:
            taken.update((port, port + 1))
            return port - MODULE_PORT


class Worker:
    """One ``pystatefun run --cluster`` process, its ingress and egress URLs."""

    def __init__(self, scratch: Path, urls: str, name: str, offset: int) -> None:
        self.name = name
        self.process = subprocess.Popen(
            [PYSTATEFUN, "run", HERE / "module.yaml", "--cluster", urls, "--cluster-name", NAME,
             "--worker", name, "--port-offset", str(offset), "--data-dir", scratch / name],
            stdout=subprocess.PIPE, stderr=(scratch / f"{name}.log").open("w"), text=True,
        )  # fmt: skip
        assert self.process.stdout is not None
        lines = _lines(self.process.stdout)
        found: dict[str, str] = {}
        deadline = time.monotonic() + DEADLINE_S
        while "ready" not in found:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise SystemExit(f"worker {name} was not ready within {DEADLINE_S:.0f} s") from None
            if not line:
                raise SystemExit(f"worker {name} exited; see {scratch / name}.log")
            word, _, rest = line.partition(" ")
            found[word] = rest
        self.ingress, self.egress = found["ingress"], found["egress"]
        print(f"worker {name}: ingress {self.ingress}, egress {self.egress}")

    def visit(self, user: str) -> None:
        url = f"{self.ingress}/example/user/{user}"
        body = user.encode()  # the greeter greets by the name it is sent
        headers = {"Content-Type": "text/plain; charset=utf-8"}  # a string message
        request = urllib.request.Request(url, body, headers, method="POST")  # noqa: S310
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            assert response.status == 202

    def pop(self) -> str | None:
        try:
            url = f"{self.egress}/greetings"
            with urllib.request.urlopen(url, timeout=30) as response:  # noqa: S310 - loopback
                return str(response.read().decode())
        except urllib.error.HTTPError as error:
            error.close()
            if error.code == 404:
                return None
            raise

    def stop(self, sig: signal.Signals = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        return self.process.wait(60)


def _lines(stream: IO[str]) -> queue.Queue[str]:
    lines: queue.Queue[str] = queue.Queue()

    def read() -> None:
        for line in stream:
            lines.put(line.rstrip("\n"))
        lines.put("")

    threading.Thread(target=read, daemon=True).start()
    return lines


def _greetings(workers: list[Worker], count: int) -> tuple[list[tuple[str, int]], int]:
    """Greetings popped round-robin from every worker until ``count`` visit greetings (user,
    visit) are in (bounded); those, and how many follow-ups came meanwhile."""
    greeted: list[tuple[str, int]] = []
    follow_ups = 0
    deadline = time.monotonic() + DEADLINE_S
    while len(greeted) < count and time.monotonic() < deadline:
        got = [r for r in (w.pop() for w in workers) if r is not None]
        for record in got:
            if found := GREETING.match(record):
                greeted.append((found[1], int(found[2] or 1)))
            else:
                follow_ups += 1
        if not got:
            time.sleep(0.05)  # the playground egress is pull-only: poll
    return greeted, follow_ups


def _serving(urls: str, workers: set[str]) -> dict[str, object]:
    """``cluster status --json`` once exactly ``workers`` serve every partition (polled)."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        status = json.loads(
            _pystatefun("cluster", "status", "--cluster", urls, "--cluster-name", NAME, "--json")
        )
        serving = {w["worker"] for w in status["workers"] if w["serving"]}
        if serving == workers and set(status["owners"].values()) == workers:
            return dict(status)
        if time.monotonic() > deadline:
            raise SystemExit(f"the partitions never settled over {sorted(workers)}: {status}")
        time.sleep(0.2)


def _status(urls: str) -> None:
    print(_pystatefun("cluster", "status", "--cluster", urls, "--cluster-name", NAME), end="")


def run(scratch: Path) -> bool:
    up = _pystatefun("cluster", "up", "--nodes", "3", "--dir", str(scratch / "nats"))
    urls = ",".join(line for line in up.splitlines() if line.startswith("nats://"))
    print(f"NATS JetStream cluster of 3 servers: {urls}")
    workers: list[Worker] = []
    try:
        taken: set[int] = set()
        for n in (1, 2):
            workers.append(Worker(scratch, urls, f"w{n}", _free_offset(taken)))
        _serving(urls, {"w1", "w2"})
        _status(urls)
        for n, user in enumerate(USERS * VISITS):
            workers[n % 2].visit(user)
        greeted, follow_ups = _greetings(workers, VISITS * len(USERS))
        print(f"{VISITS * len(USERS)} visits through both ingresses: {len(greeted)} greetings "
              f"and {follow_ups} follow-ups popped from both egresses")  # fmt: skip
        killed = workers.pop()
        killed.stop(signal.SIGKILL)
        at = time.monotonic()
        print(f"worker {killed.name} killed with SIGKILL")
        for user in USERS:
            workers[0].visit(user)
        later, more = _greetings(workers, len(USERS))
        print(f"{len(USERS)} more visits through w1: {len(later)} greetings "
              f"{time.monotonic() - at:.1f} s after the kill")  # fmt: skip
        greeted, follow_ups = greeted + later, follow_ups + more
        _serving(urls, {"w1"})
        _status(urls)
        savepoint = scratch / "cluster.psfsp"
        _pystatefun("savepoint", "create", str(savepoint), "--cluster", urls,
                    "--cluster-name", NAME)  # fmt: skip
        print(f"savepoint of the running cluster: {savepoint.name}")
        query = 'SELECT id, value FROM "example/user.visits" ORDER BY id'
        print(_pystatefun("sql", "--savepoint", str(savepoint), query), end="")
        rows = _pystatefun("sql", "--savepoint", str(savepoint), "--format", "json", query)
    finally:
        for worker in workers:
            print(f"worker {worker.name} stopped with exit code {worker.stop()}")
        _pystatefun("cluster", "down", "--dir", str(scratch / "nats"), "--purge")
        print("NATS cluster stopped")
    counts = {row["id"]: row["value"] for row in json.loads(rows)}
    once = sorted(greeted) == sorted((u, n) for u in USERS for n in range(1, VISITS + 2))
    exact = counts == dict.fromkeys(USERS, VISITS + 1)
    print(f"every visit greeted once: {once}; every count is {VISITS + 1}: {exact}")
    return once and exact


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pystatefun-cluster-") as scratch:
        ok = run(Path(scratch))
    print("cluster example done" if ok else "cluster example FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
