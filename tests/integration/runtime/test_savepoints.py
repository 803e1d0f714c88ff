"""Savepoints of real data dirs: taken from a live runtime under traffic, restored into new data
dirs with another number of key groups, compared record by record, and run again.

The data dir holds every kind of content: state with and without TTLs (embedded functions),
messages waiting for a remote endpoint that is down, a pending delayed message, a dead letter,
unread egress records and an idempotency key.
"""

from __future__ import annotations

import asyncio
import dataclasses
import gzip
import json
import shutil
from pathlib import Path

import pytest
from support.inprocess import function_server, post, running, wait_for

from pystatefun import savepoint
from pystatefun.errors import DataDirError
from pystatefun.query import StateSnapshot
from pystatefun.runtime import Runtime
from pystatefun.sdk import IntType, StatefulFunctions, ValueSpec
from pystatefun.store import DataDir, TimerRecord
from pystatefun.store.contents import MessageContent, StateContent

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "savepoints"
TOTAL = 1_000  # money in the bank: every consistent snapshot holds exactly this much
BANK = """\
from datetime import timedelta
from pystatefun.sdk import (
    IntType, StatefulFunctions, ValueSpec, egress_message_builder, make_json_type,
    message_builder,
)

RECORD = make_json_type("io.statefun.playground/EgressRecord")
functions = StatefulFunctions()


@functions.bind("bank/account", specs=[
    ValueSpec("balance", IntType),
    ValueSpec("touched", IntType, expire_after_write=timedelta(days=1)),
])
def account(context, message):
    amount, to = message.as_string().split(":")
    context.storage.balance = (context.storage.balance or 0) + int(amount)
    context.storage.touched = 1
    if to:  # a transfer out: the money travels as a message
        context.storage.balance -= 2 * int(amount)
        context.send(message_builder("bank/account", to, str_value=f"{amount}:"))


@functions.bind("bank/audit")
def audit(context, message):
    text = message.as_string()
    if text == "fail":
        raise RuntimeError("audit failed")
    if text == "later":
        later = message_builder("remote/archive", context.address.id, str_value="late")
        context.send_after(timedelta(hours=1), later, "archive-later")
    record = {"topic": "audits", "payload": text}
    context.send_egress(egress_message_builder("io.statefun.playground/egress", record, RECORD))
    context.send(message_builder("remote/archive", context.address.id, str_value=text))
"""
STRING = {"Content-Type": "application/vnd.io.statefun.types/string"}


def _module(tmp_path: Path, remote_url: str) -> Path:
    (tmp_path / "bank_fns.py").write_text(BANK)
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: bank/*\n"
        "  import: bank_fns.py:functions\n---\n"
        "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: remote/*\n"
        f"  urlPathTemplate: {remote_url}\n  transport:\n    call: 300ms\n---\n"
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n---\n"
        "kind: io.statefun.playground.v1/egress\nspec:\n  port: 0\n  topics: [audits]\n"
    )
    return module


async def _send(runtime: Runtime, path: str, text: str, **headers: str) -> None:
    url = f"{runtime.ingress_url}{path}"
    status, _, _ = await post(url, text.encode(), {**STRING, **headers})
    assert status == 202


def _money(path: Path) -> int:
    """Balances plus the money travelling in transfer messages, in one savepoint."""
    _, contents = savepoint.format.read_savepoint(path)
    total = 0
    for content in contents:
        if isinstance(content, StateContent) and content.value.name == "balance":
            total += IntType.serializer().deserialize(content.value.payload.value or b"")
        elif isinstance(content, MessageContent) and content.target.type == "account":
            value = (content.payload.value or b"")[2:].decode()  # a StringWrapper of "N:"
            total += int(value.split(":")[0])
    return total


def _comparable(data_dir: Path) -> list[object]:
    contents = DataDir(data_dir).contents().records
    # Timer ids are the store's row ids: a restore numbers them anew.
    return [
        dataclasses.replace(c, timer_id=0) if isinstance(c, TimerRecord) else c for c in contents
    ]


async def _fill(runtime: Runtime, tmp_path: Path) -> Path:
    """Every kind of content, and a savepoint taken while transfers flow."""
    await _send(runtime, "/bank/account/a0", f"{TOTAL}:")
    await _send(runtime, "/bank/audit/x", "later")
    await _send(runtime, "/bank/nobody/x", "fail")  # no such function: dead-lettered at once
    await _send(runtime, "/bank/audit/y", "kept", **{"Idempotency-Key": "audit-y-1"})
    await wait_for(runtime.engine.dead_letters)
    moves = [_send(runtime, f"/bank/account/a{n % 5}", f"{n}:a{(n + 1) % 5}") for n in range(60)]
    flowing = asyncio.gather(*moves)
    live = tmp_path / "live.psfsp"
    counts = await asyncio.to_thread(savepoint.create, runtime.options.data_dir, live)
    await flowing
    assert counts["state"] >= 2
    return live


async def test_a_savepoint_of_a_live_runtime_restores_identically_and_runs_on(
    tmp_path: Path,
) -> None:
    archive = StatefulFunctions()
    archived: list[str] = []

    @archive.bind("remote/archive", specs=[ValueSpec("n", IntType)])
    def keep(context, message):  # type: ignore[no-untyped-def]
        archived.append(message.as_string())

    data_dir = tmp_path / "data"
    down = "http://127.0.0.1:9/statefun"  # nothing listens: archive messages wait
    # The archive's calls fail and wait an hour for their second attempt: still in the inbox.
    options = {"dead_letter_after_attempts": 2, "retry_backoff_initial_s": 3600.0}
    async with running(_module(tmp_path, down), data_dir, **options) as runtime:
        live = await _fill(runtime, tmp_path)
        assert _money(live) == TOTAL  # a step boundary: no transfer half-applied
    stopped = tmp_path / "stopped.psfsp"
    counts = savepoint.create(data_dir, stopped)
    assert {k for k, n in counts.items() if n} == {
        "state", "message", "timer", "dead_letter", "egress", "dedup",
    }  # fmt: skip
    assert _money(stopped) == TOTAL
    header, checked = savepoint.info(stopped)
    assert (header["version"], header["key_groups"], checked) == (2, 128, {
        k: n for k, n in counts.items() if n
    })  # fmt: skip

    restored = tmp_path / "restored"
    assert savepoint.restore(stopped, restored, key_groups=7) == checked
    assert _comparable(restored) == _comparable(data_dir)  # address by address, in order
    with StateSnapshot(restored) as snapshot:
        _, rows = snapshot.query("SELECT DISTINCT key_group FROM main.state")
        assert all(0 <= group < 7 for (group,) in rows)

    async with (
        function_server(archive) as url,
        running(_module(tmp_path, url), restored, key_groups=7) as again,
    ):
        await wait_for(lambda: len(archived) == 2)  # the waiting messages, processed once
        assert sorted(archived) == ["kept", "later"]
        # The idempotency key came along: the same request again is a duplicate.
        await _send(again, "/bank/audit/y", "kept", **{"Idempotency-Key": "audit-y-1"})
        await _send(again, "/bank/audit/z", "after")
        await wait_for(lambda: "after" in archived)
        assert sorted(archived) == ["after", "kept", "later"]
        letters = await again.engine.dead_letters()
        assert [letter.target.id for letter in letters] == ["x"]


def test_a_damaged_savepoint_restores_nothing(tmp_path: Path) -> None:
    good = FIXTURES / "v1.psfsp"
    lines = gzip.decompress(good.read_bytes()).splitlines(keepends=True)
    cases = {
        "truncated": b"".join(lines[:-1]),
        "altered": b"".join([lines[0], lines[1].replace(b'"balance"', b'"balancE"'), *lines[2:]]),
        "newer": b"".join([lines[0].replace(b'"version":1', b'"version":99'), *lines[1:]]),
    }
    for name, content in cases.items():
        damaged = tmp_path / f"{name}.psfsp"
        damaged.write_bytes(gzip.compress(content))
        with pytest.raises(savepoint.SavepointError) as error:
            savepoint.restore(damaged, tmp_path / f"{name}-data")
        said = {"truncated": "truncated", "altered": "footer", "newer": "upgrade pystatefun"}
        assert said[name] in str(error.value)
        assert not list((tmp_path / f"{name}-data").glob("*.sqlite3*")) or _empty(
            tmp_path / f"{name}-data"
        )
    not_one = tmp_path / "not.psfsp"
    not_one.write_text("hello")
    with pytest.raises(savepoint.SavepointError, match="not a pystatefun savepoint"):
        savepoint.info(not_one)


def _empty(data_dir: Path) -> bool:
    with StateSnapshot(data_dir) as snapshot:
        return snapshot.views == []


def test_restore_refuses_a_data_dir_that_holds_anything(tmp_path: Path) -> None:
    target = tmp_path / "data"
    savepoint.restore(FIXTURES / "v1.psfsp", target)
    with pytest.raises(DataDirError, match="not empty"):
        savepoint.restore(FIXTURES / "v1.psfsp", target)


def test_every_released_savepoint_version_stays_readable(tmp_path: Path) -> None:
    """One savepoint file per format version, kept forever (tests/fixtures/savepoints/)."""
    versions = sorted(FIXTURES.glob("v*.psfsp"))
    assert [v.name for v in versions] == [f"v{n}.psfsp" for n in range(1, savepoint.VERSION + 1)]
    for version in versions:
        data_dir = tmp_path / version.stem
        savepoint.restore(version, data_dir, key_groups=3)
        with StateSnapshot(data_dir, now_ms=0) as snapshot:
            assert snapshot.state_of(snapshot.addresses("bank/account")[0]) == {
                "balance": ("io.statefun.types/int", 250)
            }
        kinds = [type(c).__name__ for c in DataDir(data_dir).contents().records]
        since_v2 = ["PositionContent"] if version.stem >= "v2" else []
        assert kinds == [
            "StateContent", "MessageContent", "TimerRecord", "DeadLetterContent",
            "EgressContent", "DedupKey", *since_v2,
        ]  # fmt: skip


def test_the_cli_creates_checks_restores_and_queries_savepoints(tmp_path: Path) -> None:
    import subprocess
    import sys

    pystatefun = Path(sys.executable).parent / "pystatefun"
    source = tmp_path / "source"
    savepoint.restore(FIXTURES / "v1.psfsp", source)
    made = tmp_path / "made.psfsp"
    run = [str(pystatefun), "savepoint"]
    created = subprocess.run([*run, "create", made, "--data-dir", source], capture_output=True,
                             text=True, check=False)  # fmt: skip
    assert created.returncode == 0, created.stderr
    assert "1 state, 1 message, 1 timer, 1 dead_letter, 1 egress, 1 dedup" in created.stderr
    shown = subprocess.run([*run, "info", made], capture_output=True, text=True, check=False)
    assert json.loads(shown.stdout)["counts"]["dedup"] == 1
    restored = subprocess.run(
        [*run, "restore", made, "--data-dir", tmp_path / "r", "--key-groups", "4"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert restored.returncode == 0, restored.stderr
    again = subprocess.run([*run, "restore", made, "--data-dir", tmp_path / "r"],
                           capture_output=True, text=True, check=False)  # fmt: skip
    assert again.returncode == 1
    assert "not empty" in again.stderr
    query = subprocess.run(
        [str(pystatefun), "sql", 'SELECT id, value FROM "bank/account.balance"', "--savepoint",
         made, "--format", "json"], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert json.loads(query.stdout) == [{"id": "a0", "value": 250}]
    shutil.rmtree(tmp_path / "r")
