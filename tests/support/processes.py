"""Start real subprocesses that announce a listening port, and stop them by PID."""

from __future__ import annotations

import collections
import os
import re
import subprocess
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

# What a server prints once it listens: ``PORT <n>`` (test servers) or its URL (pystatefun).
_READY = re.compile(r"^(?:PORT (\d+)|http://127\.0\.0\.1:(\d+)\S*)$")
# How many stderr lines a draining ListeningProcess keeps for diagnostics.
_STDERR_TAIL_LINES = 2000


@dataclass
class ListeningProcess:
    """A subprocess that announced, on stdout, that it serves on a port of 127.0.0.1.

    ``output`` holds the stdout lines read so far (up to the ready line; with ``drain=True``,
    every later line too). With ``drain=True``, ``stderr_tail`` holds the last lines of stderr.
    """

    process: subprocess.Popen[str]
    port: int
    output: list[str] = field(default_factory=list)
    stderr_tail: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=_STDERR_TAIL_LINES)
    )
    _drainers: list[threading.Thread] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        """SIGKILL this process (only ever one we started) and reap it."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(timeout=30)
        for drainer in self._drainers:  # the pipes reach EOF once the process is gone
            drainer.join(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream is not None:
                stream.close()

    def _drain_stderr(self) -> None:
        """Keep reading stderr in the background, so that a chatty server (one that logs every
        failing invocation, say) never blocks on a full pipe."""
        assert self.process.stderr is not None
        thread = threading.Thread(
            target=_copy_lines, args=(self.process.stderr, self.stderr_tail), daemon=True
        )
        thread.start()
        self._drainers.append(thread)


def _copy_lines(stream: IO[str], sink: list[str] | collections.deque[str]) -> None:
    try:
        for line in stream:
            sink.append(line)
    except (OSError, ValueError):  # closed under us: the process is being stopped
        return


def start_listening_process(
    argv: list[str | Path],
    *,
    cwd: Path | None = None,
    timeout_s: float = 60.0,
    env: Mapping[str, str] | None = None,
    drain: bool = False,
) -> ListeningProcess:
    """Run ``argv`` and wait (by reading its stdout, not by sleeping) for its ready line.

    ``env`` adds to (or overrides) this process's environment. ``drain=True`` keeps reading the
    child's stdout and stderr after the ready line (see ``ListeningProcess``); leave it off only
    if you read ``process.stdout`` yourself, and then mind that an unread stderr pipe fills up
    (about 64 KiB) and blocks the child.
    """
    process = subprocess.Popen(
        [str(a) for a in argv],
        cwd=cwd,
        env=dict(os.environ, PYTHONUNBUFFERED="1", **(env or {})),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    seen: list[str] = []
    ports: list[int] = []
    announced = threading.Event()

    def read_stdout(stream: IO[str]) -> None:
        # A thread rather than select(): select() cannot see lines already sitting in the text
        # stream's buffer, so a ready line printed right after another one could go unnoticed.
        try:
            for line in stream:
                seen.append(line)
                if not ports and (ready_line := _READY.match(line.strip())):
                    ports.append(int(ready_line.group(1) or ready_line.group(2)))
                    announced.set()
                    if not drain:
                        return  # the rest of stdout is the caller's to read
        except (OSError, ValueError):  # closed under us: the process is being stopped
            pass
        finally:
            announced.set()  # EOF: the process died before announcing a port

    reader = threading.Thread(target=read_stdout, args=(process.stdout,), daemon=True)
    reader.start()
    announced.wait(timeout_s)
    if ports:
        started = ListeningProcess(process, ports[0], seen, _drainers=[reader])
        if drain:
            started._drain_stderr()
        return started
    process.kill()
    assert process.stderr is not None
    stderr = process.stderr.read()
    process.wait(timeout=30)
    reader.join(timeout=10)
    raise RuntimeError(
        f"{argv} did not announce a port within {timeout_s}s (exit {process.returncode});\n"
        f"stdout: {''.join(seen)}\nstderr: {stderr}"
    )
