"""Start real subprocesses that announce a listening port, and stop them by PID."""

from __future__ import annotations

import os
import re
import select
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

# What a server prints once it listens: ``PORT <n>`` (test servers) or its URL (pystatefun).
_READY = re.compile(r"^(?:PORT (\d+)|http://127\.0\.0\.1:(\d+)\S*)$")


@dataclass
class ListeningProcess:
    """A subprocess that announced, on stdout, that it serves on a port of 127.0.0.1."""

    process: subprocess.Popen[str]
    port: int
    output: list[str] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        """SIGKILL this process (only ever one we started) and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()


def start_listening_process(
    argv: list[str | Path], *, cwd: Path | None = None, timeout_s: float = 60.0
) -> ListeningProcess:
    """Run ``argv`` and wait (by reading its stdout, not by sleeping) for its ready line."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    process = subprocess.Popen(
        [str(a) for a in argv],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    seen: list[str] = []
    while (remaining := deadline - time.monotonic()) > 0:
        ready, _, _ = select.select([process.stdout], [], [], remaining)
        if not ready:
            break
        line = process.stdout.readline()
        if not line:  # EOF: the process died before announcing a port
            break
        seen.append(line)
        if ready_line := _READY.match(line.strip()):
            port = int(ready_line.group(1) or ready_line.group(2))
            return ListeningProcess(process, port, seen)
    process.kill()
    _, stderr = process.communicate(timeout=30)
    raise RuntimeError(
        f"{argv} did not announce a port within {timeout_s}s (exit {process.returncode});\n"
        f"stdout: {''.join(seen)}\nstderr: {stderr}"
    )
