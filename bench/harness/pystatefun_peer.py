"""pystatefun as a benchmark peer: ``pystatefun run`` plus a function server.

Two processes, on 127.0.0.1 only:

- ``server``: ``.venv/bin/pystatefun run module.yaml --durability fsync`` on a scratch data dir
  (the playground ingress on a port picked free at ``start`` and kept across restarts);
- ``service``: ``bench/functions/bench_functions.py`` served by
  - ``sdk="ours"``: ``pystatefun serve bench_functions.py:FUNCTIONS`` (``pystatefun.sdk``);
  - ``sdk="official"``: ``bench/functions/serve_official.py``, the official ``statefun`` 3.3.0
    SDK behind aiohttp + ``handle_async`` as upstream's examples serve it, in the official SDK's
    virtualenv (``.venv-statefun-3.3.0/``, built by ``tools/official_sdk.py``, with aiohttp).

Requests go to the playground ingress: ``POST /bench/<type>/<id>`` with ``Content-Type:
application/vnd.<typename>``; one-way requests are answered 202 once durable, and those with
``Pystatefun-Request-Reply: true`` 200 with the function's reply (primitives as text).
"""

from __future__ import annotations

import json
import os
import queue
import shlex
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO

from .peer import Request
from .processes import end, free_port, official_python

__all__ = ["PystatefunPeer"]

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"
PYSTATEFUN = ROOT / ".venv" / "bin" / "pystatefun"
FUNCTIONS = BENCH / "functions" / "bench_functions.py"
SERVE_OFFICIAL = BENCH / "functions" / "serve_official.py"

_INT = {"Content-Type": "application/vnd.io.statefun.types/int"}
_REPLY = {"Pystatefun-Request-Reply": "true"}
_PRELOAD_BATCH = 100_000


def _reader(stream: IO[str], lines: queue.Queue[str]) -> None:
    """Forward a process's stdout lines (then "" at EOF), so no pipe ever fills up."""
    with stream:
        for line in stream:
            lines.put(line)
    lines.put("")


def _spawn(argv: list[str | Path], log: Path) -> tuple[subprocess.Popen[str], queue.Queue[str]]:
    with log.open("a") as stderr:
        process = subprocess.Popen(
            [str(a) for a in argv],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env=dict(os.environ, PYTHONUNBUFFERED="1"),
        )
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(process.stdout, lines), daemon=True).start()
    return process, lines


def _wait_for(lines: queue.Queue[str], want: str, timeout_s: float, log: Path) -> list[str]:
    """Read stdout lines until one starts with ``want``; every line read so far."""
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining)
        except queue.Empty:
            break
        if not line:
            break  # EOF: the process exited
        seen.append(line.strip())
        if line.startswith(want):
            return seen
    raise RuntimeError(f"no {want!r} on stdout within {timeout_s} s; log {log}:\n{log.read_text()}")


class PystatefunPeer:
    """``pystatefun run`` + a function server on ``sdk`` ("ours" or "official")."""

    def __init__(self, sdk: str, *, durability: str = "fsync") -> None:
        if sdk not in ("ours", "official"):
            raise ValueError(f"sdk must be 'ours' or 'official', not {sdk!r}")
        self.sdk = sdk
        self.name = f"pystatefun-{sdk}"
        self.durability = durability
        self.ingress = ""
        self.scratch: Path | None = None
        self._server: subprocess.Popen[str] | None = None
        self._service: subprocess.Popen[str] | None = None

    # --- lifecycle ----------------------------------------------------------------------------

    @property
    def data_dir(self) -> Path:
        assert self.scratch is not None, "not started"
        return self.scratch / "data"

    def start(self) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix=f"bench-{self.name}-"))
        try:
            url = self._start_service()
            port = free_port()
            self.ingress = f"http://127.0.0.1:{port}"
            (self.scratch / "module.yaml").write_text(
                "kind: io.statefun.endpoints.v2/http\n"
                "spec:\n"
                "  functions: bench/*\n"
                f"  urlPathTemplate: {url}\n"
                "---\n"
                "kind: io.statefun.playground.v1/ingress\n"
                "spec:\n"
                f"  port: {port}\n"
                "---\n"
                "kind: io.statefun.playground.v1/egress\n"
                "spec:\n"
                "  port: 0\n"
                "  topics: [out]\n"
            )
            lines = self._spawn_server()
            _wait_for(lines, "ready", 120.0, self.scratch / "runtime.log")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        end(self._server, 60.0)
        end(self._service, 10.0)
        self._server = self._service = None
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def processes(self) -> dict[str, int]:
        assert self._server is not None, "not started"
        assert self._service is not None, "not started"
        return {"server": self._server.pid, "service": self._service.pid}

    def _assert_stopped(self) -> None:
        assert self._server is not None, "not started"
        assert self._server.poll() is not None, "the server is running"

    def kill_server(self) -> None:
        assert self._server is not None, "not started"
        if self._server.poll() is None:
            self._server.kill()  # SIGKILL, to this PID only
        self._server.wait()

    def restart_server(self) -> None:
        self._assert_stopped()
        self._spawn_server()

    def preload(self, entities: int) -> bool:
        """``entities`` counters ``bench/counter/<0..entities-1>`` with count 1, written straight
        into the stopped data dir's ``state`` table (the runtime's own row format)."""
        self._assert_stopped()
        from pystatefun.protocol.typed_values import INT
        from pystatefun.store import DataDir

        value = INT.encode(1)
        with DataDir(self.data_dir).loader(key_groups=None, fresh=False) as loader:
            group = loader.key_groups.of
            for first in range(0, entities, _PRELOAD_BATCH):
                rows = [
                    (str(n), "count", group(str(n)), "io.statefun.types/int", value)
                    for n in range(first, min(entities, first + _PRELOAD_BATCH))
                ]
                loader.put_states("bench", "counter", rows)
        return True

    def pending_messages(self) -> int:
        """Messages waiting in mailboxes, read from the stopped data dir (not in ``Peer``: the
        recovery scenario reports it when a peer has it)."""
        self._assert_stopped()
        from pystatefun.store import DataDir

        db = DataDir(self.data_dir).snapshot_connection()
        try:
            (count,) = db.execute("SELECT COUNT(*) FROM inbox").fetchone()
        finally:
            db.close()
        return int(count)

    # --- requests -----------------------------------------------------------------------------

    def add(self, key: str, amount: int, *, wait: bool) -> Request:
        headers = {**_INT, **_REPLY} if wait else dict(_INT)
        return Request("POST", f"/bench/counter/{key}", str(amount).encode(), headers)

    def get(self, key: str) -> Request:
        headers = {"Content-Type": "application/vnd.bench/get", **_REPLY}
        return Request("POST", f"/bench/counter/{key}", b"get", headers)

    def chain(self, key: str) -> Request:
        return Request("POST", f"/bench/chain-a/{key}", b"1", {**_INT, **_REPLY})

    def schedule_tick(self, key: str) -> Request:
        headers = {"Content-Type": "application/vnd.bench/schedule"}
        return Request("POST", f"/bench/ticker/{key}", b"schedule", headers)

    def lateness(self, key: str) -> Request:
        headers = {"Content-Type": "application/vnd.bench/lateness", **_REPLY}
        return Request("POST", f"/bench/ticker/{key}", b"lateness", headers)

    def parse_int(self, body: bytes) -> int:
        return int(body)

    def parse_lateness(self, body: bytes) -> list[float]:
        value = json.loads(body)
        if not isinstance(value, list):
            raise ValueError(f"expected a JSON list, got {body[:200]!r}")
        return [float(item) for item in value]

    # --- internals ----------------------------------------------------------------------------

    def _start_service(self) -> str:
        assert self.scratch is not None
        log = self.scratch / "service.log"
        if self.sdk == "ours":
            argv: list[str | Path] = [
                PYSTATEFUN,
                "serve",
                f"{FUNCTIONS}:FUNCTIONS",
                "--port",
                "0",
                "--log-level",
                "WARNING",
            ]
        else:
            argv = [official_python(), SERVE_OFFICIAL, "--port", "0"]
        self._service, lines = _spawn(argv, log)
        return _wait_for(lines, "http://", 60.0, log)[-1]

    def _spawn_server(self) -> queue.Queue[str]:
        assert self.scratch is not None
        module = self.scratch / "module.yaml"
        self._server, lines = _spawn(
            [
                PYSTATEFUN,
                "run",
                module,
                "--data-dir",
                self.data_dir,
                "--durability",
                self.durability,
                "--log-level",
                "WARNING",
                # Extra `pystatefun run` options, to try settings: not used by default.
                *shlex.split(os.environ.get("PYSTATEFUN_BENCH_RUN_ARGS", "")),
            ],
            self.scratch / "runtime.log",
        )
        return lines
