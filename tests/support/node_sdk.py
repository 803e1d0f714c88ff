"""The official JavaScript SDK, ``apache-flink-statefun@3.3.0`` from npm, for node servers.

It is installed once with ``npm install`` into ``.node-statefun-3.3.0/`` at the repository root
(so its ``node_modules/`` sits next to nothing of ours). A stamp written last marks the install
complete, so an interrupted one is redone rather than trusted, and an exclusive lock on a file
inside the directory keeps two test processes from installing at the same time.
"""

from __future__ import annotations

import fcntl
import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "apache-flink-statefun@3.3.0"
PREFIX = ROOT / ".node-statefun-3.3.0"
NODE_MODULES = PREFIX / "node_modules"
_STAMP = PREFIX / ".ready"
_LOCK = PREFIX / ".lock"


def node() -> str:
    """The ``node`` executable; a clear error rather than a skip when it is missing."""
    found = shutil.which("node")
    if found is None:
        raise RuntimeError("`node` is not on PATH: the official JavaScript SDK needs Node.js")
    return found


def node_modules() -> Path:
    """The ``node_modules`` directory holding the JS SDK (pass it as ``NODE_PATH``); installed
    on first use."""
    if _ready():
        return NODE_MODULES
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("`npm` is not on PATH: needed once, to install " + PACKAGE)
    PREFIX.mkdir(exist_ok=True)
    with _LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if _ready():  # another process installed it while we waited
            return NODE_MODULES
        shutil.rmtree(NODE_MODULES, ignore_errors=True)
        # A package.json of our own makes this directory the npm project root: without one,
        # npm walks up the tree looking for a project to install into.
        (PREFIX / "package.json").write_text(
            json.dumps({"name": "pystatefun-node-statefun", "private": True}) + "\n"
        )
        completed = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", PACKAGE],
            cwd=PREFIX,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        if completed.returncode != 0:
            raise RuntimeError(
                f"npm install {PACKAGE} failed ({completed.returncode}):\n"
                f"{completed.stdout}\n{completed.stderr}"
            )
        _STAMP.write_text(PACKAGE + "\n")
    return NODE_MODULES


def _ready() -> bool:
    installed = NODE_MODULES / "apache-flink-statefun" / "package.json"
    return _STAMP.exists() and _STAMP.read_text().strip() == PACKAGE and installed.exists()
