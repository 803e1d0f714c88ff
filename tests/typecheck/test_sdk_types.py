"""Run mypy on ``sdk_usage.py``: the SDK's public types say what users get."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def test_sdk_usage_type_checks_strictly() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", HERE / "sdk_usage.py"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_catches_a_wrong_use(tmp_path: Path) -> None:
    """The check above can fail: a function with the wrong signature is a type error."""
    wrong = tmp_path / "wrong.py"
    wrong.write_text(
        "from pystatefun.sdk import Message\n"
        "def f(message: Message) -> None:\n"
        "    value: str = message.as_int()\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", wrong],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 1
    assert 'Incompatible types in assignment (expression has type "int | None"' in result.stdout
