"""The processes a peer runs: free ports for them, the official SDK's interpreter, and
stopping them by their own PID only, politely first."""

from __future__ import annotations

import importlib.util
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any

__all__ = ["end", "free_port", "official_python"]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A port of 127.0.0.1 free right now (the peer binds it next)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def official_python() -> Path:
    """The official SDK's interpreter, with aiohttp (``tools/official_sdk.py`` builds it)."""
    spec = importlib.util.spec_from_file_location(
        "official_sdk", ROOT / "tools" / "official_sdk.py"
    )
    assert spec is not None
    assert spec.loader is not None
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    return Path(tool.official_python(with_aiohttp=True))


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
