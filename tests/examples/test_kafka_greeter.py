"""examples/kafka-greeter, run as its README says (``python3 dev.py example kafka-greeter`` runs
this very script): a real Kafka broker of its own, the function served by the official Python
SDK, ``pystatefun run`` in between. The test checks what the demo printed (every greeting,
exactly once, the greeter's state) and that it left nothing behind in its temporary directory.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.official_sdk import official_python

pytestmark = pytest.mark.timeout(300)

DEMO = Path(__file__).resolve().parents[2] / "examples" / "kafka-greeter" / "demo.py"
NAMES = ["alice", "bob", "alice", "carol", "bob", "alice"]


def expected_greetings() -> set[str]:
    """What functions.py answers each visit with, as the demo prints it (without partition)."""
    greetings = set()
    for name in set(NAMES):
        for visit in range(1, NAMES.count(name) + 1):
            if visit == 1:
                text = f"Hello {name}! Welcome."
            elif visit == 2:
                text = f"Hello again {name}!"
            else:
                text = f"Hello {name}, this is visit number {visit}."
            greetings.add(f"{name}: {text}")
    return greetings


def test_the_kafka_greeter_greets_every_name_exactly_once(tmp_path: Path) -> None:
    official_python(with_aiohttp=True)  # built before the demo's clock starts
    run = subprocess.run(
        [sys.executable, DEMO],
        capture_output=True,
        text=True,
        timeout=240,
        env=dict(os.environ, TMPDIR=str(tmp_path)),
        check=False,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    printed = {line.split("] ", 1)[1] for line in lines if line.startswith("greetings [partition")}
    assert printed == expected_greetings()
    assert len([line for line in lines if line.startswith("greetings [")]) == len(NAMES)
    assert (
        "6 of 6 greetings received; after the runtime stopped the topic holds 6, each "
        "exactly once" in run.stdout
    )
    state = lines[lines.index("state of example/greeter:") + 3 :][:3]
    assert [line.split() for line in state] == [["alice", "3"], ["bob", "2"], ["carol", "1"]]
    assert "Traceback" not in run.stderr
    assert list(tmp_path.iterdir()) == []  # the broker's and the runtime's scratch are gone
