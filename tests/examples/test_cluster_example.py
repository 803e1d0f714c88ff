"""The cluster example, run as a user runs it: a real 3-server NATS JetStream cluster
(``pystatefun cluster up``), two real workers of the greeter, one of them killed with SIGKILL."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DEMO = Path(__file__).resolve().parents[2] / "examples" / "cluster" / "demo.py"


def test_two_workers_share_the_greeter_and_survive_losing_one() -> None:
    done = subprocess.run(
        [sys.executable, DEMO], capture_output=True, text=True, timeout=300, check=False
    )
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert len(re.findall(r"^worker w\d: ingress http://127\.0\.0\.1:\d+", out, re.M)) == 2
    assert re.search(
        r"^30 visits through both ingresses: 30 greetings and \d+ follow-ups", out, re.M
    )
    assert re.search(
        r"^10 more visits through w1: 10 greetings \d+\.\d s after the kill", out, re.M
    )
    assert "every visit greeted once: True; every count is 4: True" in out
    rows = re.findall(r"^\s*(user\d+)\s+(\d+)\s*$", out, re.M)
    assert sorted(rows) == sorted((f"user{n}", "4") for n in range(10))
    assert "worker w1 stopped with exit code 0" in out
    assert out.rstrip().endswith("cluster example done")
