"""``ChildProcess``: a real child's output reaches the log line by line, in order, with its
label; its last lines are kept; it is stopped whole, and its exit code is reported."""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

import pytest

from pystatefun.runtime.childprocess import ChildProcess

LOGGER = "pystatefun.runtime.colocated"


async def spawn(code: str) -> ChildProcess:
    return await ChildProcess.spawn(
        [sys.executable, "-c", code], cwd=".", env={"PYTHONUNBUFFERED": "1"}, label="t/*"
    )


async def test_output_is_logged_line_by_line_and_its_tail_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, LOGGER)
    code = (
        "import sys\n"
        "for n in range(25): print(f'line {n}')\n"
        "print('to stderr', file=sys.stderr)\n"
        "sys.stdout.write('x' * 40000 + '\\nno newline at the end')\n"
        "sys.exit(4)\n"
    )
    process = await spawn(code)
    assert await process.wait() == 4
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert lines[:2] == ["[t/*] line 0", "[t/*] line 1"]
    assert lines[25] == "[t/*] to stderr"
    # A long line is logged in pieces of at most 16 KiB (where they end depends on the pipe).
    pieces = [line.removeprefix("[t/*] ") for line in lines[26:-1]]
    assert "".join(pieces) == "x" * 40000
    assert max(len(piece) for piece in pieces) <= 16384
    assert lines[-1] == "[t/*] no newline at the end"
    assert len(process.tail) == 20
    assert process.tail[-1] == "no newline at the end"
    assert process.tail[-2 - len(pieces)] == "to stderr"


async def test_wait_listening_sees_a_process_that_exits_first() -> None:
    process = await spawn("pass")

    async def refused() -> None:
        raise ConnectionRefusedError

    assert await process.wait_listening(refused, 30) is False
    assert process.returncode == 0


async def test_wait_listening_times_out_while_it_runs() -> None:
    process = await spawn("import time; time.sleep(600)")

    async def refused() -> None:
        raise ConnectionRefusedError

    with pytest.raises(TimeoutError):
        await process.wait_listening(refused, 0.2)
    assert await process.stop(5) == -signal.SIGTERM


async def test_stop_kills_what_ignores_sigterm(caplog: pytest.LogCaptureFixture) -> None:
    ready = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ok')\n"
    process = await spawn(ready + "time.sleep(600)")

    async def printed() -> None:  # SIG_IGN is in place once it printed
        if not process.tail:
            raise ConnectionRefusedError
        await asyncio.sleep(0)

    assert await process.wait_listening(printed, 30)
    assert await process.stop(0.1) == -signal.SIGKILL
    assert "[t/*] still running 0.1s after SIGTERM; killing it (SIGKILL)" in caplog.text
