"""Jars from Maven Central, resolved once into a git-ignored cache directory.

``jars(pom, cache, stamp=..., what=...)`` runs ``mvn dependency:copy-dependencies`` on ``pom``
into ``cache/libs`` the first time; a stamp written last marks the copy complete (an interrupted
copy is redone, never trusted), and a lock keeps two processes from copying at once. The Kafka
broker (``tools/kafka/broker.py``) and the StateFun benchmark peer use it.

This file uses the standard library only: ``dev.py`` runs it before any dependency exists.
"""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

__all__ = ["jars"]

_TIMEOUT_S = 900


def jars(pom: Path, cache: Path, *, stamp: str, what: str) -> Path:
    """``cache/libs``, holding every jar ``pom`` depends on; ``what`` names them in errors."""
    libs = cache / "libs"
    done = cache / ".ready"
    if done.exists():
        return libs
    mvn = shutil.which("mvn")
    if mvn is None:
        raise RuntimeError(f"`mvn` is not on PATH: {what} come from Maven Central with Maven")
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if done.exists():  # another process copied them while we waited
            return libs
        shutil.rmtree(libs, ignore_errors=True)
        command = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies"]
        completed = subprocess.run(
            [*command, f"-DoutputDirectory={libs}"],
            capture_output=True,
            text=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"resolving {what} failed (mvn exited {completed.returncode}):\n"
                f"{completed.stdout[-3000:]}{completed.stderr[-3000:]}"
            )
        done.write_text(stamp + "\n")
    return libs
