"""The Kinesis ingress against a local Kinesis-compatible server (moto's server mode: Kinesis
itself cannot run here): records reach every target of their stream, addressed by their
partition key, once, across restarts and a shard split, in shard order; a record that cannot be
delivered is dead-lettered naming its stream, shard and sequence number, and its shard goes on;
a full mailbox holds the shard back.

The functions are ``support.log_reports``'s, embedded (a file written per test).
"""

from __future__ import annotations

import datetime
import importlib
import logging
from pathlib import Path

import pytest
from support.inprocess import readings, records, running, wait_for
from support.kinesis import REGION, MotoServer, client, free_port, put, stream
from support.log_reports import by_id, expected, functions_file, no_more

from pystatefun.io import kinesis_ingress
from pystatefun.protocol.typed_values import INT
from pystatefun.runtime import Runtime
from pystatefun.store import DataDir

INGRESS = "com.example/orders"


def _module(
    tmp_path: Path,
    name: str,
    streams: list[str],
    *,
    endpoint: str,
    startup: str = "earliest",
    targets: str = "[kinesis/counter]",
    value_type: str = "com.example/text",
    max_batch: int = 1000,
) -> Path:
    (tmp_path / f"{name}.py").write_text(functions_file("kinesis"))
    listed = "".join(
        f"    - stream: {s}\n      valueType: {value_type}\n      targets: {targets}\n"
        for s in streams
    )
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: kinesis/*\n"
        f"  import: {name}.py:functions\n  maxNumBatchRequests: {max_batch}\n---\n"
        f"kind: io.statefun.kinesis.v1/ingress\nspec:\n  id: {INGRESS}\n"
        f"  awsRegion:\n    type: custom-endpoint\n    endpoint: {endpoint}\n    id: {REGION}\n"
        "  awsCredentials:\n    type: basic\n    accessKeyId: testing\n"
        "    secretAccessKey: testing\n"
        f"  startupPosition:\n    type: {startup}\n  streams:\n{listed}---\n"
        "kind: io.statefun.playground.v1/egress\nspec:\n  port: 0\n  topics: [out, audit]\n"
    )
    return module


def _rows(count: int, keys: int, start: int = 0) -> list[tuple[str, bytes]]:
    return [(f"k{n % keys}", f"v{n}".encode()) for n in range(start, start + count)]


def _ends(server: MotoServer, name: str) -> dict[str, str]:
    """Each shard's last sequence number, as the ingress stores it once it read everything
    (shards without records are left out: the ingress stores nothing for them)."""
    kinesis = client(server)
    ends = {}
    for shard in kinesis.list_shards(StreamName=name)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=name, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        found = kinesis.get_records(ShardIterator=iterator, Limit=10_000)["Records"]
        if found:
            ends[f"{name}/{shard['ShardId']}"] = found[-1]["SequenceNumber"]
    return ends


async def _no_more(runtime: Runtime, server: MotoServer, names: list[str]) -> None:
    """Nothing else arrives on ``out`` once the ingress stored the end of every shard and the
    functions ran everything: the records seen were all there is."""
    ends: dict[str, str] = {}
    for name in names:
        ends.update(_ends(server, name))
    await no_more(runtime, INGRESS, ends)


async def test_records_reach_every_target_once_addressed_by_partition_key(
    kinesis_server: MotoServer, tmp_path: Path
) -> None:
    name = stream(kinesis_server, shards=3)
    rows = _rows(200, keys=7)
    put(kinesis_server, name, rows)
    module = _module(
        tmp_path, "fanout_fns", [name], endpoint=kinesis_server.endpoint,
        targets="[kinesis/counter, kinesis/audit]",
    )  # fmt: skip
    async with running(module, tmp_path / "data") as runtime:
        counted = await records(runtime, "out", 200)
        audited = await records(runtime, "audit", 200)
        await _no_more(runtime, kinesis_server, [name])
        assert await records(runtime, "audit", 0) == []
    assert by_id(counted) == expected(rows)
    assert by_id(audited) == expected(rows)


async def test_a_restart_resumes_after_the_stored_sequence_numbers(
    kinesis_server: MotoServer, tmp_path: Path
) -> None:
    """``earliest`` applies only to shards with no stored position: after a restart, nothing
    is read twice."""
    name = stream(kinesis_server, shards=2)
    first, second = _rows(100, keys=5), _rows(60, keys=5, start=100)
    put(kinesis_server, name, first)
    module = _module(tmp_path, "kinesis_restart_fns", [name], endpoint=kinesis_server.endpoint)
    data_dir = tmp_path / "data"
    async with running(module, data_dir) as runtime:
        before = await records(runtime, "out", 100)
    put(kinesis_server, name, second)
    async with running(module, data_dir) as runtime:
        after = await records(runtime, "out", 60)
        await _no_more(runtime, kinesis_server, [name])
    assert by_id(before) == expected(first)
    assert by_id(after) == expected(second, first_count=21)  # 20 each before


async def test_a_value_that_is_not_its_value_type_is_dead_lettered_and_the_shard_goes_on(
    kinesis_server: MotoServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """StateFun passes a record's data on as it is: with ``valueType: io.statefun.types/int``
    it must be an ``IntWrapper``. Plain text ("42") is dead-lettered at the ingress, saying
    why and where; so is a value over the ingress limit."""
    name = stream(kinesis_server, shards=1)
    rows = [("a", INT.encode(7)), ("b", b"42"), ("c", INT.encode(9) + b"x" * 200),
            ("a", INT.encode(8))]  # fmt: skip
    put(kinesis_server, name, rows)
    module = _module(
        tmp_path, "typed_fns", [name], endpoint=kinesis_server.endpoint,
        targets="[kinesis/ints]", value_type="io.statefun.types/int",
    )  # fmt: skip
    data_dir = tmp_path / "data"
    with caplog.at_level(logging.ERROR, logger="pystatefun.io.kinesis"):
        async with running(module, data_dir, ingress_max_bytes=100) as runtime:
            assert await records(runtime, "out", 2) == ["a:7:1", "a:8:1"]
            await _no_more(runtime, kinesis_server, [name])
    letters = DataDir(data_dir).dead_letters()
    assert [str(d.target) for d in letters] == ["kinesis/ints/b", "kinesis/ints/c"]
    shard = client(kinesis_server).list_shards(StreamName=name)["Shards"][0]["ShardId"]
    where = [f"stream {name}, shard {shard}, sequence number {n}" for n in (2, 3)]
    reasons = ["is not a serialized IntWrapper", "bytes, over the ingress limit of 100"]
    for letter, place, reason in zip(letters, where, reasons, strict=True):
        assert INGRESS in letter.error
        assert place in letter.error
        assert reason in letter.error
    assert "io.statefun.types/int (the stream's valueType)" in letters[0].error
    assert [m.payload.value for d in letters for m in d.messages] == [rows[1][1], rows[2][1]]
    assert sum("dead-lettered, and the shard goes on" in r.message for r in caplog.records) == 2


async def test_a_full_mailbox_holds_the_shard_back_and_nothing_is_lost(
    kinesis_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One key, a function that blocks (on a thread), two messages allowed to wait behind its
    batch: the ingress commits what it has, then waits for room; once released, every record
    arrives once, in order."""
    name = stream(kinesis_server, shards=1)
    rows = _rows(40, keys=1)
    put(kinesis_server, name, rows)
    monkeypatch.syspath_prepend(str(tmp_path))
    endpoint = kinesis_server.endpoint
    module = _module(tmp_path, "kinesis_full_fns", [name], endpoint=endpoint, max_batch=2)
    threaded = "kinesis_full_fns:functions\n  execution: threads"
    module.write_text(module.read_text().replace("kinesis_full_fns.py:functions", threaded))
    functions = importlib.import_module("kinesis_full_fns")
    functions.release.clear()
    try:
        async with running(module, tmp_path / "data") as runtime:
            mailboxes = runtime._dispatcher.mailboxes
            await wait_for(lambda: mailboxes.waiting_for_room() != [])
            stored = await runtime.handle.positions(INGRESS)
            assert 1 <= int(next(iter(stored.values()))) < 40
            assert runtime.statistics()["pending_messages"] <= 3
            functions.release.set()
            reported = await records(runtime, "out", 40)
            await _no_more(runtime, kinesis_server, [name])
    finally:
        functions.release.set()
    assert by_id(reported) == expected(rows)


async def test_a_split_shard_is_read_to_its_end_before_its_children(
    kinesis_server: MotoServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Records put before and after a split: the closed parent is read to its end first and
    its children after, so each key's records still arrive in order."""
    name = stream(kinesis_server, shards=1)
    first, second = _rows(150, keys=6), _rows(150, keys=6, start=150)
    put(kinesis_server, name, first)
    kinesis = client(kinesis_server)
    (parent,) = kinesis.list_shards(StreamName=name)["Shards"]
    end = int(parent["HashKeyRange"]["EndingHashKey"])
    kinesis.split_shard(StreamName=name, ShardToSplit=parent["ShardId"],
                        NewStartingHashKey=str(end // 2))  # fmt: skip
    put(kinesis_server, name, second)
    module = _module(tmp_path, "split_fns", [name], endpoint=kinesis_server.endpoint)
    with caplog.at_level(logging.INFO, logger="pystatefun.io.kinesis"):
        async with running(module, tmp_path / "data") as runtime:
            reported = await records(runtime, "out", 300)
            await _no_more(runtime, kinesis_server, [name])
    assert by_id(reported) == expected(first + second)
    logged = [r.message for r in caplog.records]
    ended = logged.index(f"kinesis ingress {INGRESS}: shard {name}/{parent['ShardId']} is read "
                         "to its end")  # fmt: skip
    started = [i for i, m in enumerate(logged) if "reading shard" in m]
    assert len(started) == 3  # the parent, then its two children
    assert started[0] < ended < started[1]


async def test_the_children_of_a_split_while_reading_are_found_and_read_from_their_start(
    kinesis_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    """Shards are listed again while reading: a split's children, which appear after the
    first listing, are read from their first record (the startup position, here a date an
    hour ago, applies only to the shards of the first listing)."""
    monkeypatch.setattr(kinesis_ingress, "_DISCOVERY_S", 0.2)
    name = stream(kinesis_server, shards=1)
    first, second = _rows(30, keys=6), _rows(30, keys=6, start=30)
    put(kinesis_server, name, first)
    hour_ago = datetime.datetime.now(datetime.UTC) - datetime.timedelta(hours=1)
    date = hour_ago.strftime("%Y-%m-%d %H:%M:%S.000 +0000")
    module = _module(tmp_path, "resplit_fns", [name], endpoint=kinesis_server.endpoint,
                     startup=f"date\n    date: {date}")  # fmt: skip
    kinesis = client(kinesis_server)
    with caplog.at_level(logging.INFO, logger="pystatefun.io.kinesis"):
        async with running(module, tmp_path / "data") as runtime:
            assert sorted(await records(runtime, "out", 30)) == sorted(
                f"{k}:{v.decode()}:{n // 6 + 1}" for n, (k, v) in enumerate(first)
            )
            put(kinesis_server, name, second)
            reported = await records(runtime, "out", 30)
            (parent,) = kinesis.list_shards(StreamName=name)["Shards"]
            end = int(parent["HashKeyRange"]["EndingHashKey"])
            kinesis.split_shard(StreamName=name, ShardToSplit=parent["ShardId"],
                                NewStartingHashKey=str(end // 2))  # fmt: skip

            def children() -> list[str]:
                return [m for m in caplog.messages if "reading shard" in m and "TRIM_HORIZON" in m]

            await wait_for(lambda: len(children()) == 2)
            await _no_more(runtime, kinesis_server, [name])
    assert by_id(reported) == expected(second, first_count=6)
    assert f"shard {name}/{parent['ShardId']} is read to its end" in caplog.text
    assert "from AT_TIMESTAMP" in caplog.text


async def test_a_stream_that_appears_later_is_read_from_its_start(
    kinesis_server: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    monkeypatch.setattr(kinesis_ingress, "_RETRY_S", 0.2)
    name = f"later-{tmp_path.name}"
    module = _module(tmp_path, "later_fns", [name], endpoint=kinesis_server.endpoint,
                     startup="latest")  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="pystatefun.io.kinesis"):
        async with running(module, tmp_path / "data") as runtime:
            await wait_for(lambda: f"stream {name} does not exist (yet)" in caplog.text)
            stream(kinesis_server, shards=1, name=name)
            put(kinesis_server, name, [("k1", b"first")])
            assert await records(runtime, "out", 1) == ["k1:first:1"]  # not skipped as latest
            await _no_more(runtime, kinesis_server, [name])


async def test_kinesis_that_cannot_be_reached_is_reported_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The runtime starts without Kinesis, says which ingress cannot reach it, and reads once
    it is there."""
    monkeypatch.setattr(kinesis_ingress, "_RETRY_S", 0.2)
    server = MotoServer(tmp_path, free_port())
    module = _module(tmp_path, "kinesis_down_fns", ["later"], endpoint=server.endpoint)
    with caplog.at_level(logging.ERROR, logger="pystatefun.io.kinesis"):
        async with running(module, tmp_path / "data") as runtime:
            await wait_for(lambda: "listing the shards of later failed" in caplog.text)
            server.start()
            try:
                stream(server, shards=1, name="later")
                put(server, "later", [("k", b"v")])
                assert await records(runtime, "out", 1) == ["k:v:1"]
            finally:
                server.stop()
    message = next(r.message for r in caplog.records if "listing the shards" in r.message)
    assert INGRESS in message
    assert "retrying" in message


async def test_how_far_behind_each_shard_is_reaches_the_metrics(
    kinesis_server: MotoServer, tmp_path: Path
) -> None:
    """Kinesis says how far behind its tip each read was (moto: 0 once at the tip); one
    reading per shard of the stream, labelled ``stream/shard``. (moto, not Kinesis: Kinesis
    cannot run here.)"""
    name = stream(kinesis_server, shards=2)
    rows = _rows(20, keys=4)
    put(kinesis_server, name, rows)
    module = _module(tmp_path, "behind_fns", [name], endpoint=kinesis_server.endpoint)
    async with running(module, tmp_path / "data") as runtime:
        assert by_id(await records(runtime, "out", 20)) == expected(rows)

        async def behind() -> dict[str, float] | None:
            found = await readings(runtime, "kinesis_ingress_behind_milliseconds", by="shard")
            return found if len(found) == 2 else None

        found = await wait_for(behind)
    assert isinstance(found, dict)
    assert set(found.values()) == {0}
    assert all(shard.startswith(f"{name}/") for shard in found)
