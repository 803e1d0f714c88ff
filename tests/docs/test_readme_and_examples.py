"""The README's promises hold: it starts with the two commands, CI runs the test one, and the
main job runs end to end on the plain package."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_starts_with_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = re.search(r"```sh\n(.*?)```", readme, re.S)
    assert first_block is not None
    assert readme.index("```sh") < readme.index("\n## ")  # before any section
    commands = [line.split("#")[0].strip() for line in first_block.group(1).strip().splitlines()]
    assert commands == ["python3 dev.py example", "python3 dev.py test"]


def test_ci_runs_the_readme_test_command_and_nothing_else() -> None:
    lines = [
        line.strip()
        for line in (ROOT / ".ci" / "run").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert lines[-1] == "exec python3 dev.py test"
    assert all(line.startswith(("set ", "cd ")) for line in lines[:-1])


def test_the_main_job_runs_the_greeter_end_to_end(tmp_path: Path) -> None:
    """With aiohttp hidden from every process, since `dev.py example` installs the plain package
    and aiohttp is an extra."""
    (tmp_path / "aiohttp").mkdir()
    (tmp_path / "aiohttp" / "__init__.py").write_text(
        "raise ModuleNotFoundError('aiohttp is hidden by the test', name='aiohttp')\n"
    )
    path = os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, ROOT / "examples" / "greeter" / "demo.py"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": path},
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "POST /example/user/bob (request-reply) -> 200: bob has visited 2 times" in out
    assert out.count("Nice to meet you.") == 2
    assert "egress [greetings]: Hello alice! I have seen you 2 times." in out
    assert "egress [greetings]: Welcome back for good, alice." in out
    assert "pystatefun run stopped with exit code 0" in out
    assert out.rstrip().endswith("6 of 6 greetings received")
