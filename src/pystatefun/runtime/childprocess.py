"""A process the runtime starts and owns: its own session, its output in our log, stopped whole.

Why each choice:

- **Its own session** (``setsid``): a Ctrl-C in the terminal reaches the runtime only, which
  then stops its children in order, after the batches in flight are done; and the child's
  process group (its id is the child's pid) holds everything the child starts, so signalling
  the group stops a server that forks workers or runs under a shell.
- **It dies with the runtime** (Linux): ``PR_SET_PDEATHSIG`` sends it SIGTERM if the runtime
  is killed (``kill -9``), so a crash leaves no server running without a runtime to call it.
- **Its output is forwarded line by line** to the ``pystatefun.runtime.colocated`` logger with
  a prefix naming it, and the last lines are kept for error messages (stderr goes with stdout,
  so the lines stay in the order they were written).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import ctypes
import logging
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import final

__all__ = ["ChildProcess"]

_log = logging.getLogger("pystatefun.runtime.colocated")
_TAIL_LINES = 20
_LINE_MAX = 16 * 1024  # longer lines are logged in pieces
_DRAIN_S = 2.0  # how long to wait for the last output once the process is gone
_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` that makes the child get SIGTERM when this process dies (Linux only).

    Resolved before the fork: the function that runs in the child only calls into libc.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent, sigterm = os.getpid(), int(signal.SIGTERM)

    def preexec() -> None:
        prctl(_PR_SET_PDEATHSIG, sigterm)
        if os.getppid() != parent:  # the runtime died before prctl took effect
            os._exit(1)

    return preexec


async def _read(stream: asyncio.StreamReader) -> bytes:
    """The next output, or b"" at its end (also when the pipe broke)."""
    try:
        return await stream.read(65536)
    except OSError:
        return b""


@final
class ChildProcess:
    """One started process; ``spawn`` starts it, ``stop`` ends it and everything it started."""

    def __init__(self, process: asyncio.subprocess.Process, label: str) -> None:
        self._process = process
        self.label = label
        self.pid = process.pid
        self.started = time.monotonic()
        self.tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        assert process.stdout is not None
        self._reader = asyncio.create_task(
            self._forward(process.stdout), name=f"pystatefun-output-{process.pid}"
        )

    @classmethod
    async def spawn(
        cls, argv: Sequence[str], *, cwd: str, env: dict[str, str], label: str
    ) -> ChildProcess:
        """Start ``argv`` (``argv[0]`` a path); raises ``OSError`` if it cannot be executed."""
        process = await asyncio.create_subprocess_exec(
            *argv,
            cwd=cwd,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=_die_with_parent(),
        )
        return cls(process, label)

    @property
    def returncode(self) -> int | None:
        return self._process.returncode

    async def _forward(self, stream: asyncio.StreamReader) -> None:
        pending = b""
        while chunk := await _read(stream):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            if len(pending) > _LINE_MAX:  # no end of line in sight: log what there is
                lines.append(pending)
                pending = b""
            for line in lines:
                self._emit(line)
        if pending:
            self._emit(pending)

    def _emit(self, line: bytes) -> None:
        for start in range(0, max(len(line), 1), _LINE_MAX):
            self._log(line[start : start + _LINE_MAX])

    def _log(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip("\r")
        self.tail.append(line)
        _log.info("[%s] %s", self.label, line)

    async def wait(self) -> int:
        """Wait until the process exits and its last output is logged; its exit code."""
        code = await self._process.wait()
        await self._drained()
        return code

    async def _drained(self) -> None:
        # A grandchild that still holds the pipe would keep it open: wait a little, no more.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._reader), _DRAIN_S)

    async def wait_listening(
        self, connect: Callable[[], Awaitable[None]], timeout_s: float
    ) -> bool:
        """Wait until ``connect()`` succeeds: True; False if the process exited first.
        Raises ``TimeoutError`` when neither happened within ``timeout_s``.

        Polled, because nothing tells when another process starts listening: every 10 ms at
        first, backing off to 100 ms.
        """
        deadline = time.monotonic() + timeout_s
        pause = 0.01
        while True:
            if self.returncode is not None:
                await self.wait()
                return False
            with contextlib.suppress(OSError, TimeoutError):
                await asyncio.wait_for(connect(), max(deadline - time.monotonic(), 0.001))
                return True
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError
            await asyncio.sleep(min(pause, remaining))
            pause = min(pause * 2, 0.1)

    def signal_group(self, signum: int) -> None:
        """Send ``signum`` to the process group the child leads (its pid is the group's id).

        While any member lives, the id cannot be given to another process, so this reaches
        only the child and what it started; when none is left, it does nothing.
        """
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.pid, signum)

    async def stop(self, grace_s: float) -> int:
        """SIGTERM to the group, SIGKILL after ``grace_s``; then SIGKILL to anything of the
        group still left (a worker the child did not stop). Returns the exit code."""
        if self.returncode is None:
            self.signal_group(signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(self._process.wait()), grace_s)
            except TimeoutError:
                if grace_s > 0:
                    _log.warning(
                        "[%s] still running %gs after SIGTERM; killing it (SIGKILL)",
                        self.label,
                        grace_s,
                    )
        self.signal_group(signal.SIGKILL)
        code = await self.wait()
        self._reader.cancel()  # a no-op unless something outside the group holds the pipe
        return code
