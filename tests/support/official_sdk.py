"""The official Python SDK, ``apache-flink-statefun==3.3.0``, in a virtualenv of its own.

It pins ``protobuf<4`` while pystatefun needs protobuf 7, so the two can never share a process:
the official SDK always runs as a subprocess under this interpreter. The virtualenv lives at
``.venv-statefun-3.3.0/`` in the repository (gitignored) and is built once; a stamp written
last marks it complete, so an interrupted build is redone rather than trusted.
"""

from __future__ import annotations

import subprocess
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENT = "apache-flink-statefun==3.3.0"
VENV = ROOT / ".venv-statefun-3.3.0"
PYTHON = VENV / "bin" / "python"
_STAMP = VENV / ".ready"


def official_python() -> Path:
    """The interpreter of the official SDK's virtualenv, built on first use."""
    if _STAMP.exists() and _STAMP.read_text().strip() == REQUIREMENT:
        return PYTHON
    venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    subprocess.run(
        [PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", REQUIREMENT],
        check=True,
    )
    _STAMP.write_text(REQUIREMENT + "\n")
    return PYTHON
