"""``pystatefun run --log-format json``: every line on stderr is one JSON object, and a line
about an address carries it as a field. A real process whose function endpoint is down (a
port nothing listens on), so that it logs retries for one address."""

from __future__ import annotations

import json
import socket
import time
import urllib.request
from pathlib import Path

from support.runtime_process import start_runtime, write_module


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_json_lines_carry_the_address_of_what_they_are_about(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/statefun"
    module = write_module(tmp_path / "m.yaml", url, functions="j/*", transport="call: 1s")
    worker = start_runtime(module, tmp_path / "data", "--log-format", "json")
    try:
        request = urllib.request.Request(f"{worker.ingress}/j/fn/alice", data=b"hi")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 202
        deadline = time.monotonic() + 30  # the first call times out after 1 s, then a retry
        while "retrying" not in worker.log_text():
            assert time.monotonic() < deadline, worker.log_text()
            time.sleep(0.05)
    finally:
        assert worker.terminate() == 0
    lines = [json.loads(line) for line in worker.log_text().splitlines() if line.strip()]
    assert lines, "nothing was logged"
    for line in lines:
        assert {"time", "level", "logger", "message"} <= line.keys(), line
        assert line["time"].endswith("Z")
    retries = [line for line in lines if "retrying" in line["message"]]
    assert retries
    assert all(line["address"] == "j/fn/alice" for line in retries)
    assert all(line["level"] == "WARNING" for line in retries)
    assert any(line["message"].startswith("opened ") and "address" not in line for line in lines)
