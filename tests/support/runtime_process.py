"""``pystatefun run`` as a real subprocess: start it on a module and data dir, learn its URLs
from what it prints, stop it with SIGTERM or kill it with SIGKILL (only ever our own PID)."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from support import modules

PYSTATEFUN = Path(sys.executable).parent / "pystatefun"


def write_module(
    path: Path,
    endpoint_url: str,
    *,
    functions: str = "smoke/*",
    topics: tuple[str, ...] = ("verification", "discard", "echo"),
    transport: str = "call: 10s",
    max_batch: int | None = None,
) -> Path:
    """A module with one endpoint (the smoke functions by default) and the playground I/O."""
    return modules.write_module(
        path, {functions: endpoint_url}, topics=topics, transport=transport, max_batch=max_batch
    )


@dataclass
class RuntimeProcess:
    process: subprocess.Popen[str]
    ingress: str
    egress: str
    log: Path
    admin: str = ""  # its admin port's URL, when started with --admin-port

    def kill(self) -> None:
        """SIGKILL: the crash the exactly-once contract must survive."""
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)
        self._close()

    def terminate(self, timeout_s: float = 60) -> int:
        """SIGTERM, then wait for the graceful exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout=timeout_s)
        self._close()
        return code

    def _close(self) -> None:
        pass  # stdout belongs to the reader thread, which ends at EOF

    def log_text(self) -> str:
        return self.log.read_text()


def _forward(stream: IO[str], lines: queue.Queue[str]) -> None:
    with stream:  # closed at EOF, when the process has exited
        for line in stream:
            lines.put(line)
    lines.put("")


def start_runtime(
    module: Path, data_dir: Path, *extra: str, timeout_s: float = 60.0,
    env: Mapping[str, str] | None = None, log_dir: Path | None = None,
) -> RuntimeProcess:  # fmt: skip
    """Start ``pystatefun run`` and wait (reading its stdout) until it prints ``ready``
    (``env``: variables to set beyond this process's own; ``log_dir``: where its stderr goes,
    beside the data dir unless given)."""
    log = (log_dir or data_dir.parent) / f"{data_dir.name}-runtime.log"
    with log.open("a") as stderr:
        process = subprocess.Popen(
            [PYSTATEFUN, "run", module, "--data-dir", data_dir, *extra],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
        )
    assert process.stdout is not None
    # A thread, not select(): select() cannot see lines already read into the text buffer.
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_forward, args=(process.stdout, lines), daemon=True).start()
    urls: dict[str, str] = {}
    deadline = time.monotonic() + timeout_s
    while (remaining := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=remaining).strip()
        except queue.Empty:
            break
        if line == "ready":  # a module without a playground egress has no egress URL
            return RuntimeProcess(process, urls["ingress"], urls.get("egress", ""), log,
                                  urls.get("admin", ""))  # fmt: skip
        if not line:  # EOF: it exited
            break
        name, _, url = line.partition(" ")
        urls[name] = url
    process.kill()
    process.wait(timeout=30)
    raise RuntimeError(f"pystatefun run did not get ready; its log:\n{log.read_text()}")
