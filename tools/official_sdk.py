"""The official Python SDK, ``apache-flink-statefun==3.3.0``, in a virtualenv of its own.

It pins ``protobuf<4`` while pystatefun needs protobuf 7, so the two can never share a process:
the official SDK always runs as a subprocess under this interpreter. The virtualenv lives at
``.venv-statefun-3.3.0/`` in the repository (gitignored) and is built once; a stamp written
last marks it complete, so an interrupted build is redone rather than trusted. Upstream's
examples serve their functions with aiohttp, which the SDK does not depend on:
``official_python(with_aiohttp=True)`` installs it next to the SDK.

The tests (``tests/support/official_sdk.py``), the examples and the benchmarks share this file;
it uses the standard library only, so that it runs before any dependency exists.
"""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

__all__ = ["AIOHTTP_SPEC", "REQUIREMENT", "VENV", "official_python"]

ROOT = Path(__file__).resolve().parents[1]
REQUIREMENT = "apache-flink-statefun==3.3.0"
AIOHTTP_SPEC = "aiohttp>=3.10,<4"
VENV = ROOT / ".venv-statefun-3.3.0"
_PYTHON = VENV / "bin" / "python"
_STAMP = VENV / ".ready"


def _pip_install(requirement: str) -> None:
    print(f"installing {requirement} into {VENV.name}/", file=sys.stderr)
    subprocess.run(
        [_PYTHON, "-m", "pip", "install", "--quiet", "--disable-pip-version-check", requirement],
        check=True,
    )


def official_python(*, with_aiohttp: bool = False) -> Path:
    """The interpreter of the official SDK's virtualenv, built on first use."""
    if not (_STAMP.exists() and _STAMP.read_text().strip() == REQUIREMENT):
        venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
        _pip_install(REQUIREMENT)
        _STAMP.write_text(REQUIREMENT + "\n")
    if with_aiohttp:
        probe = subprocess.run([_PYTHON, "-c", "import aiohttp"], capture_output=True, check=False)
        if probe.returncode != 0:
            _pip_install(AIOHTTP_SPEC)
    return _PYTHON
