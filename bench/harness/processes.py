"""Stopping the processes a peer started: by their own PID only, politely first."""

from __future__ import annotations

import signal
import subprocess
from typing import Any

__all__ = ["end"]


def end(process: subprocess.Popen[Any] | None, grace_s: float) -> None:
    """SIGTERM this PID, wait up to ``grace_s``, then SIGKILL."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(grace_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
