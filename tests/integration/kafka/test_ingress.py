"""The Kafka ingress against a real broker: records reach their functions exactly once, across
restarts and rebalances, in partition order; records that cannot be delivered are dead-lettered
with where they were and the partition goes on; a full mailbox pauses the partition.

The functions are embedded (a file written per test) and report each message to the playground
egress as ``<id>:<value>:<count>``, where ``count`` is the address's state: a record delivered
twice shows as a repeated value with a higher count, a lost one as a gap.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import socket
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic
from support.inprocess import readings, records, running, wait_for
from support.kafka import topic
from support.log_reports import by_id, expected, functions_file, no_more

from pystatefun.errors import ModuleError
from pystatefun.module import load_module
from pystatefun.protocol.typed_values import INT
from pystatefun.runtime import Runtime, RuntimeOptions
from pystatefun.store import DataDir

INGRESS = "com.example/orders"


def _module(
    tmp_path: Path,
    name: str,
    topics: list[str],
    *,
    startup: str = "earliest",
    group: str | None = None,
    bootstrap: str,
    targets: str = "[kafka/counter]",
    value_type: str = "com.example/text",
    extra_spec: str = "",
    max_batch: int = 1000,
) -> Path:
    (tmp_path / f"{name}.py").write_text(functions_file("kafka"))
    listed = "".join(
        f"    - topic: {t}\n      valueType: {value_type}\n      targets: {targets}\n"
        for t in topics
    )
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: kafka/*\n"
        f"  import: {name}.py:functions\n  maxNumBatchRequests: {max_batch}\n---\n"
        f"kind: io.statefun.kafka.v1/ingress\nspec:\n  id: {INGRESS}\n"
        f"  address: {bootstrap}\n  consumerGroupId: {group or name}\n"
        f"  startupPosition:\n    type: {startup}\n  topics:\n{listed}{extra_spec}---\n"
        "kind: io.statefun.playground.v1/egress\nspec:\n  port: 0\n  topics: [out, audit]\n"
    )
    return module


def _produce(broker: Any, name: str, rows: list[tuple[bytes | None, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    for key, value in rows:
        producer.produce(name, key=key, value=value)
    assert producer.flush(30) == 0


def _rows(count: int, keys: int, start: int = 0) -> list[tuple[bytes | None, bytes]]:
    return [(f"k{n % keys}".encode(), f"v{n}".encode()) for n in range(start, start + count)]


async def _no_more(runtime: Runtime, broker: Any, topics: dict[str, int]) -> None:
    """Nothing else arrives on egress topic ``out`` once the ingress has stored the end of
    every partition of ``topics`` (name: partitions) and the functions have run everything (no
    mailbox holds anything): the records seen were all there is."""
    ends = {
        f"{name}/{p}": str(end)
        for name, partitions in topics.items()
        for p, end in _end_offsets(broker, name, partitions).items()
        if end
    }
    await no_more(runtime, INGRESS, ends)


async def test_records_reach_every_target_once_in_partition_order(
    kafka_broker: Any, tmp_path: Path
) -> None:
    name = topic(kafka_broker, partitions=3)
    rows = _rows(300, keys=7)
    _produce(kafka_broker, name, rows)
    module = _module(
        tmp_path, "fanout_fns", [name], bootstrap=kafka_broker.bootstrap,
        targets="[kafka/counter, kafka/audit]",
    )  # fmt: skip
    async with running(module, tmp_path / "data") as runtime:
        counted = await records(runtime, "out", 300)
        audited = await records(runtime, "audit", 300)
        await _no_more(runtime, kafka_broker, {name: 3})
        assert await records(runtime, "audit", 0) == []
    assert by_id(counted) == expected(rows)
    assert by_id(audited) == expected(rows)
    assert sum(_end_offsets(kafka_broker, name, 3).values()) == 300


def _end_offsets(broker: Any, name: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": f"ends-{name}"})
    try:
        return {
            p: consumer.get_watermark_offsets(TopicPartition(name, p), 30)[1]
            for p in range(partitions)
        }
    finally:
        consumer.close()


async def test_a_restart_resumes_from_the_stored_positions_not_the_startup_position(
    kafka_broker: Any, tmp_path: Path
) -> None:
    """``earliest`` applies only to partitions with no stored position: after a restart,
    nothing is read twice (and the group's offsets, which lag, are not used either)."""
    name = topic(kafka_broker, partitions=2)
    first, second = _rows(120, keys=5), _rows(80, keys=5, start=120)
    _produce(kafka_broker, name, first)
    module = _module(tmp_path, "restart_fns", [name], bootstrap=kafka_broker.bootstrap)
    data_dir = tmp_path / "data"
    async with running(module, data_dir) as runtime:
        before = await records(runtime, "out", 120)
    _produce(kafka_broker, name, second)
    async with running(module, data_dir) as runtime:
        after = await records(runtime, "out", 80)
        await _no_more(runtime, kafka_broker, {name: 2})
    assert by_id(before) == expected(first)
    assert by_id(after) == expected(second, first_count=25)  # 24 each before


async def test_undeliverable_records_are_dead_lettered_and_their_partition_goes_on(
    kafka_broker: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    name = topic(kafka_broker, partitions=1)
    rows: list[tuple[bytes | None, bytes]] = [
        (b"a", b"first"),
        (None, b"keyless"),
        (b"\xff\xfe", b"bad-key"),
        (b"b", b"x" * 200),
        (b"a", b"last"),
    ]
    _produce(kafka_broker, name, rows)
    module = _module(tmp_path, "undeliverable_fns", [name], bootstrap=kafka_broker.bootstrap)
    data_dir = tmp_path / "data"
    with caplog.at_level(logging.ERROR, logger="pystatefun.io.kafka"):
        async with running(module, data_dir, ingress_max_bytes=100) as runtime:
            assert sorted(await records(runtime, "out", 2)) == ["a:first:1", "a:last:2"]
            await _no_more(runtime, kafka_broker, {name: 1})
    letters = DataDir(data_dir).dead_letters()
    assert [(str(d.target), d.attempts) for d in letters] == [
        ("kafka/counter/", 1),
        ("kafka/counter/\\xff\\xfe", 1),
        ("kafka/counter/b", 1),
    ]
    where = [f"topic {name}, partition 0, offset {n}" for n in (1, 2, 3)]
    reasons = ["has no key", "not UTF-8", "is 200 bytes, over the ingress limit of 100"]
    for letter, place, reason in zip(letters, where, reasons, strict=True):
        assert place in letter.error
        assert reason in letter.error
        assert "com.example/orders" in letter.error
    assert [m.payload.value for d in letters for m in d.messages] == [
        b"keyless",
        b"bad-key",
        b"x" * 200,
    ]
    assert sum("dead-lettered, and the partition goes on" in r.message for r in caplog.records) == 3


async def test_a_value_that_is_not_its_primitive_value_type_is_dead_lettered(
    kafka_broker: Any, tmp_path: Path
) -> None:
    """StateFun passes a record's bytes on as they are: with ``valueType:
    io.statefun.types/int`` they must be an ``IntWrapper``. Plain text ("42") would fail in the
    function; it is dead-lettered at the ingress, saying why."""
    name = topic(kafka_broker, partitions=1)
    rows: list[tuple[bytes | None, bytes]] = [
        (b"a", INT.encode(7)),
        (b"b", b"42"),
        (b"a", INT.encode(8)),
    ]
    _produce(kafka_broker, name, rows)
    module = _module(
        tmp_path, "typed_fns", [name], bootstrap=kafka_broker.bootstrap,
        targets="[kafka/ints]", value_type="io.statefun.types/int",
    )  # fmt: skip
    data_dir = tmp_path / "data"
    async with running(module, data_dir) as runtime:
        assert await records(runtime, "out", 2) == ["a:7:1", "a:8:1"]
        await _no_more(runtime, kafka_broker, {name: 1})
    (letter,) = DataDir(data_dir).dead_letters()
    assert str(letter.target) == "kafka/ints/b"
    assert f"topic {name}, partition 0, offset 1" in letter.error
    assert "is not a serialized IntWrapper" in letter.error
    assert "io.statefun.types/int (the topic's valueType)" in letter.error


async def test_a_full_mailbox_holds_the_partition_back_and_nothing_is_lost(
    kafka_broker: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One key, a function that blocks (on a thread), two messages allowed to wait behind its
    batch: the ingress waits (commits what it has, then waits for room) and, once released,
    every record arrives once, in order."""
    name = topic(kafka_broker, partitions=1)
    rows = _rows(60, keys=1)
    _produce(kafka_broker, name, rows)
    monkeypatch.syspath_prepend(str(tmp_path))
    module = _module(tmp_path, "full_fns", [name], bootstrap=kafka_broker.bootstrap, max_batch=2)
    threaded = "full_fns:functions\n  execution: threads"
    module.write_text(module.read_text().replace("full_fns.py:functions", threaded))
    functions = importlib.import_module("full_fns")
    functions.release.clear()
    try:
        async with running(module, tmp_path / "data") as runtime:
            # A batch is in the function, two wait behind it, and the ingress waits for room,
            # having committed what it had.
            mailboxes = runtime._dispatcher.mailboxes
            await wait_for(lambda: mailboxes.waiting_for_room() != [])
            stored = await runtime.handle.positions(INGRESS)
            assert 1 <= int(stored[f"{name}/0"]) < 60
            assert runtime.statistics()["pending_messages"] <= 3
            functions.release.set()
            reported = await records(runtime, "out", 60)
            await _no_more(runtime, kafka_broker, {name: 1})
    finally:
        functions.release.set()
    assert by_id(reported) == expected(rows)


async def test_the_group_offsets_follow_the_committed_steps_for_lag_tools(
    kafka_broker: Any, tmp_path: Path
) -> None:
    """And a new data dir that starts from ``group-offsets`` picks up where the group was."""
    name = topic(kafka_broker, partitions=2)
    first, second = _rows(50, keys=4), _rows(30, keys=4, start=50)
    _produce(kafka_broker, name, first)
    group = f"lag-{name}"
    module = _module(tmp_path, "lag_fns", [name], bootstrap=kafka_broker.bootstrap, group=group)
    async with running(module, tmp_path / "one") as runtime:
        await records(runtime, "out", 50)
        ends = _end_offsets(kafka_broker, name, 2)
        await wait_for(lambda: _committed(kafka_broker, group, name, 2) == ends)
    _produce(kafka_broker, name, second)
    module = _module(
        tmp_path, "lag_fns", [name], bootstrap=kafka_broker.bootstrap, group=group,
        startup="group-offsets",
    )  # fmt: skip
    async with running(module, tmp_path / "two") as runtime:
        reported = await records(runtime, "out", 30)
        await _no_more(runtime, kafka_broker, {name: 2})
    assert by_id(reported) == expected(second)


def _committed(broker: Any, group: str, name: str, partitions: int) -> dict[int, int]:
    consumer = Consumer({"bootstrap.servers": broker.bootstrap, "group.id": group})
    try:
        wanted = [TopicPartition(name, p) for p in range(partitions)]
        return {p.partition: max(p.offset, 0) for p in consumer.committed(wanted, 30)}
    finally:
        consumer.close()


async def test_another_member_of_the_group_takes_no_partition_away(
    kafka_broker: Any, tmp_path: Path
) -> None:
    """The ingress assigns itself every partition (the group only receives its offsets): a
    consumer that joins the same group does not take records from it, and the ingress does not
    stop to rebalance."""
    name = topic(kafka_broker, partitions=2)
    group = f"shared-{name}"
    first, second = _rows(40, keys=6), _rows(40, keys=6, start=40)
    _produce(kafka_broker, name, first)
    module = _module(tmp_path, "shared_fns", [name], bootstrap=kafka_broker.bootstrap, group=group)
    async with running(module, tmp_path / "data") as runtime:
        reported = await records(runtime, "out", 40)
        other = Consumer(
            {
                "bootstrap.servers": kafka_broker.bootstrap,
                "group.id": group,
                "enable.auto.commit": False,
                "auto.offset.reset": "earliest",
            }
        )
        assigned: list[int] = []
        other.subscribe([name], on_assign=lambda _, ps: assigned.extend(p.partition for p in ps))
        try:
            for _ in range(300):
                await asyncio.to_thread(other.poll, 0.1)
                if assigned:
                    break
            _produce(kafka_broker, name, second)
            reported += await records(runtime, "out", 40)
            await _no_more(runtime, kafka_broker, {name: 2})
        finally:
            await asyncio.to_thread(other.close)
    assert sorted(assigned) == [0, 1]  # the group gave it everything: the ingress is no member
    assert by_id(reported) == expected(first + second)


async def test_partitions_and_topics_that_appear_later_are_read_from_their_start(
    kafka_broker: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The startup position (here: offset 1 of the partition there at the start) applies to
    the partitions there at the start; a topic created later, and a partition added to a topic,
    are read from their first record."""
    grown = topic(kafka_broker, partitions=1)
    later = f"later-{grown}"
    _produce(kafka_broker, grown, [(b"k0", b"skipped")])
    module = _module(
        tmp_path, "later_fns", [grown, later], bootstrap=kafka_broker.bootstrap,
        startup=f"specific-offsets\n    offsets: [{{\"{grown}/0\": 1}}]",
        extra_spec="  properties:\n    - topic.metadata.refresh.interval.ms: 200\n",
    )  # fmt: skip
    admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
    with caplog.at_level(logging.INFO, logger="pystatefun.io.kafka"):
        async with running(module, tmp_path / "data") as runtime:
            _produce(kafka_broker, grown, [(b"k0", b"kept")])
            assert await records(runtime, "out", 1) == ["k0:kept:1"]
            assert any(f"topic {later} does not exist (yet)" in r.message for r in caplog.records)
            for future in admin.create_topics([NewTopic(later, 1, 1)]).values():
                future.result(30)
            _produce(kafka_broker, later, [(b"k1", b"new-topic")])
            assert await records(runtime, "out", 1) == ["k1:new-topic:1"]
            for future in admin.create_partitions([NewPartitions(grown, 2)]).values():
                future.result(30)
            _produce_to(kafka_broker, grown, 1, [(b"k2", b"new-partition")])
            assert await records(runtime, "out", 1) == ["k2:new-partition:1"]
            await _no_more(runtime, kafka_broker, {grown: 2, later: 1})
    reading = [r.message for r in caplog.records if "reading" in r.message]
    assert any(f"{grown}/1@earliest" in line for line in reading), reading


def _produce_to(broker: Any, name: str, partition: int, rows: list[tuple[bytes, bytes]]) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap})
    for key, value in rows:
        producer.produce(name, key=key, value=value, partition=partition)
    assert producer.flush(30) == 0


async def test_settings_the_kafka_client_refuses_name_the_document_and_leave_nothing(
    kafka_broker: Any, tmp_path: Path
) -> None:
    name = topic(kafka_broker)
    module = _module(
        tmp_path, "refused_fns", [name], bootstrap=kafka_broker.bootstrap,
        extra_spec="  properties:\n    - no.such.setting: 1\n",
    )  # fmt: skip
    data_dir = tmp_path / "data"
    with pytest.raises(ModuleError) as raised:
        async with Runtime(load_module(module), RuntimeOptions(data_dir=data_dir)):
            pass
    assert raised.value.file == module
    assert raised.value.line == 7  # the ingress document's kind, after embedded and "---"
    assert raised.value.field == "spec.properties"
    assert "no.such.setting" in str(raised.value)
    assert not data_dir.exists()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


async def test_a_broker_that_is_down_is_reported_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The runtime starts without its broker and says which ingress cannot reach what."""
    bootstrap = f"127.0.0.1:{_free_port()}"
    module = _module(tmp_path, "down_fns", ["later"], bootstrap=bootstrap)
    with caplog.at_level(logging.ERROR, logger="pystatefun.io.kafka"):
        async with running(module, tmp_path / "data"):
            await wait_for(lambda: any(bootstrap in r.message for r in caplog.records))
    message = next(r.message for r in caplog.records if bootstrap in r.message)
    assert INGRESS in message
    assert "retrying" in message


async def test_the_consumer_lag_of_each_partition_reaches_the_metrics(
    kafka_broker: Any, tmp_path: Path
) -> None:
    """librdkafka's statistics (every 200 ms here) give each partition's lag: once every
    record is durable and its offset committed to the group, 0 for each of the three."""
    name = topic(kafka_broker, partitions=3)
    rows = _rows(60, keys=6)
    _produce(kafka_broker, name, rows)
    module = _module(
        tmp_path, "lag_metric_fns", [name], bootstrap=kafka_broker.bootstrap,
        extra_spec="  properties:\n    - statistics.interval.ms: 200\n",
    )  # fmt: skip
    async with running(module, tmp_path / "data") as runtime:
        assert by_id(await records(runtime, "out", 60)) == expected(rows)

        async def lags() -> dict[str, float] | None:
            found = await readings(runtime, "kafka_ingress_lag_records", by="partition")
            return found if len(found) == 3 and not any(found.values()) else None

        lag = await wait_for(lags)
    assert lag == {f"{name}/{p}": 0 for p in range(3)}
