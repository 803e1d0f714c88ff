"""A client of the smoke application running under ``pystatefun run``: send command trees
through the playground ingress, read records from the playground egress, verify states."""

from __future__ import annotations

import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from support.runtime_process import RuntimeProcess

VERIFY_DEADLINE_S = 120.0
_POLL_S = 0.05  # the playground egress is pull-only: readers poll it, bounded by a deadline


def post(url: str, body: bytes, key: str | None) -> int:
    headers = {"Content-Type": "application/vnd.smoke/Commands"}
    if key is not None:
        headers["Idempotency-Key"] = key
    request = urllib.request.Request(url, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status)


def interpreter_of(target: str) -> str:
    """The interpreter type of an id in the usual smoke application: one type for all."""
    return "smoke/command-interpreter"


def send(
    runtime: RuntimeProcess,
    target: str,
    commands: list,
    key: str | None,
    typename_of: Callable[[str], str] = interpreter_of,
) -> None:
    url = f"{runtime.ingress}/{typename_of(target)}/{target}"
    assert post(url, json.dumps({"commands": commands}).encode(), key) == 202


def drain(runtime: RuntimeProcess, topic: str) -> list[str]:
    """Every record currently in ``topic``, oldest first (each GET removes one)."""
    records = []
    while True:
        try:
            with urllib.request.urlopen(f"{runtime.egress}/{topic}", timeout=30) as response:
                records.append(response.read().decode())
        except urllib.error.HTTPError as error:
            if error.code != 404:
                raise
            return records


def quiescent(data_dir: Path) -> bool:
    """No message waits in any mailbox and no delayed message is pending."""
    with sqlite3.connect(f"file:{data_dir / 'pystatefun.sqlite3'}?mode=ro", uri=True) as db:
        return (
            db.execute(
                "SELECT (SELECT COUNT(*) FROM inbox) + (SELECT COUNT(*) FROM timers)"
            ).fetchone()[0]
            == 0
        )


def verify_states(
    runtime: RuntimeProcess,
    expected: dict[str, int],
    seed: int,
    typename_of: Callable[[str], str] = interpreter_of,
) -> None:
    """Upstream's verification loop: ask every address for its state until all are exact."""
    deadline = time.monotonic() + VERIFY_DEADLINE_S
    for attempt in range(1, 10_000):
        tag = f"verify-{attempt}"
        for address_id in expected:
            send(runtime, address_id, [{"verify": {"tag": tag}}], None, typename_of)
        actual: dict[str, int] = {}
        while len(actual) < len(expected):
            assert time.monotonic() < deadline, f"verification never completed (seed={seed})"
            for record in map(json.loads, drain(runtime, "verification")):
                if record["tag"] == tag:
                    assert record["id"] not in actual, f"duplicate verification (seed={seed})"
                    actual[record["id"]] = record["actual"]
            time.sleep(_POLL_S)
        over = {i: (actual[i], expected[i]) for i in expected if actual[i] > expected[i]}
        assert not over, f"Over counted (actual, expected): {over} (seed={seed})"
        if actual == expected:
            return
        assert time.monotonic() < deadline, f"under counted: {actual} != {expected} (seed={seed})"


def await_records(runtime: RuntimeProcess, topic: str, count: int) -> list[str]:
    """Read ``topic`` until ``count`` records arrived (or fail at the deadline)."""
    records: list[str] = []
    deadline = time.monotonic() + VERIFY_DEADLINE_S
    while len(records) < count:
        assert time.monotonic() < deadline, f"{topic}: only {records} within the deadline"
        records += drain(runtime, topic)
        if len(records) < count:
            time.sleep(_POLL_S)
    return records
