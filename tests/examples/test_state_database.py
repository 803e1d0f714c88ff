"""The state-database walkthrough, run as a user runs it: every step a real `pystatefun`
command on a real data dir, with a real runtime serving the visits in between."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

WALKTHROUGH = Path(__file__).resolve().parents[2] / "examples" / "state-database" / "walkthrough.py"


def test_the_walkthrough_loads_serves_queries_backs_up_and_restores() -> None:
    done = subprocess.run(
        [sys.executable, WALKTHROUGH], capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert "loaded 10 value(s) of 5 address(es) of example/user" in out
    # The live state: alice 41 + 2 visits leads; frank is new with 1, and a "new" tier.
    top = out.split("ORDER BY value DESC LIMIT 3")[1].splitlines()
    assert [line.split() for line in top[3:6]] == [["alice", "43"], ["carol", "19"], ["erin", "11"]]
    assert '"tier": "new",\n    "users": 1' in out
    assert "12 state" in out  # the live savepoint: 6 users, 2 states each
    assert '"value": 43' in out  # alice, in the restored data dir
    assert out.rstrip().endswith(
        "walkthrough done: loaded, served, queried, backed up and restored"
    )
    assert "  83\n" in out  # every visit, read from the savepoint
