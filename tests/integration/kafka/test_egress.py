"""The Kafka egress against a real broker: what functions send is published with its delivery
semantic (``exactly-once``: a ``read_committed`` consumer sees each record once, across restarts
and a broker restart), keys land where Kafka's Java client puts them, a missing topic makes the
records wait, and a record that can never be published is dead-lettered with its address.

Records come in through the Kafka ingress (``<key>``: ``v<n>``) and an embedded function sends
``<key>:<value>:<count>`` to the egress, keyed by ``<key>``, where ``count`` is the address's state:
a record published twice shows as a repeated line, a lost one as a gap.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from support.inprocess import readings, running, wait_for
from support.kafka import consume, consume_all, topic

from pystatefun.errors import ModuleError
from pystatefun.module import load_module
from pystatefun.runtime import Runtime, RuntimeOptions
from pystatefun.store import DataDir

EGRESS = "com.example/greets"
FUNCTIONS = """\
from pystatefun.sdk import IntType, StatefulFunctions, ValueSpec, kafka_egress_message
from pystatefun.sdk import egress_message_builder, StringType

functions = StatefulFunctions()


@functions.bind("kafka/greeter", specs=[ValueSpec("count", IntType)])
def greeter(context, message):
    value = message.raw_value().decode()
    if value.startswith("bad-"):  # bad-type, bad-size: records that cannot be published
        send_bad(context, value)
        return
    context.storage.count = (context.storage.count or 0) + 1
    line = f"{context.address.id}:{value}:{context.storage.count}"
    topic = value.partition("@")[2] or "OUT"
    context.send_egress(
        kafka_egress_message("com.example/greets", topic, line, key=context.address.id)
    )


def send_bad(context, value):
    if value == "bad-type":
        context.send_egress(egress_message_builder("com.example/greets", "hi", StringType))
    else:
        big = "x" * 2_000_000
        context.send_egress(kafka_egress_message("com.example/greets", "OUT", big))
"""


def _module(
    tmp_path: Path,
    broker: Any,
    *,
    source: str,
    out: str,
    semantic: str = "exactly-once",
    properties: str = "",
) -> Path:
    name = f"greeter_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{name}.py").write_text(FUNCTIONS.replace('"OUT"', repr(out)))
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: kafka/*\n"
        f"  import: {name}.py:functions\n---\n"
        f"kind: io.statefun.kafka.v1/ingress\nspec:\n  id: com.example/names\n"
        f"  address: {broker.bootstrap}\n  consumerGroupId: {source}\n"
        "  startupPosition:\n    type: earliest\n  topics:\n"
        f"    - topic: {source}\n      valueType: com.example/text\n"
        "      targets: [kafka/greeter]\n---\n"
        f"kind: io.statefun.kafka.v1/egress\nspec:\n  id: {EGRESS}\n"
        f"  address: {broker.bootstrap}\n  deliverySemantic:\n    type: {semantic}\n"
        f"    transactionTimeout: 1 min\n{properties}"
    )
    return module


def _produce(broker: Any, name: str, rows: list[tuple[str, str]]) -> None:
    producer = Producer({"bootstrap.servers": broker.bootstrap, "enable.idempotence": True})
    for key, value in rows:
        producer.produce(name, key=key.encode(), value=value.encode())
    assert producer.flush(30) == 0


def _rows(count: int, keys: int, start: int = 0) -> list[tuple[str, str]]:
    return [(f"k{n % keys}", f"v{n}") for n in range(start, start + count)]


def _expected(rows: list[tuple[str, str]], counted: dict[str, int] | None = None) -> list[str]:
    """The lines the greeter sends for ``rows``, in order, counting on from ``counted``."""
    counts = dict(counted or {})
    lines = []
    for key, value in rows:
        counts[key] = counts.get(key, 0) + 1
        lines.append(f"{key}:{value}:{counts[key]}")
    return lines


def _lines(messages: list[Any]) -> list[str]:
    """The records' values, each checked to be keyed by its address id."""
    lines = []
    for message in messages:
        value = message.value().decode()
        assert message.key() == value.split(":")[0].encode()
        lines.append(value)
    return lines


def _exactly_once(got: list[str], expected: list[str]) -> None:
    """``got`` holds each of ``expected`` once, each key's in order: says what is missing or
    repeated when not."""
    repeated = sorted((Counter(got) - Counter(expected)).elements())
    missing = sorted((Counter(expected) - Counter(got)).elements())
    assert not repeated, f"repeated: {repeated[:20]} (missing: {missing[:20]})"
    assert not missing, f"missing: {missing[:20]}"
    assert _by_key(got) == _by_key(expected)


def _by_key(lines: list[str]) -> dict[str, list[str]]:
    """Per key, in the order of its partition (a key's records share one partition)."""
    found: dict[str, list[str]] = {}
    for line in lines:
        found.setdefault(line.split(":")[0], []).append(line)
    return found


async def _published(runtime: Runtime, broker: Any, out: str, expected: list[str]) -> list[str]:
    """What a ``read_committed`` consumer of ``out`` sees once ``expected`` was published and
    the egress table is empty: all there is."""
    await wait_for(lambda: runtime.statistics()["pending_messages"] == 0)
    # In a thread: the runtime runs on this event loop, and the consumer blocks. Bounded well
    # past the egress's PUBLISH_DEADLINE_S: a client stuck in librdkafka is replaced by then.
    got = _lines(await asyncio.to_thread(consume, broker, out, len(expected), 120))
    assert len(got) == len(expected), f"{len(got)} of {len(expected)} records published"

    async def all_published() -> bool:
        return await _waiting(runtime) == 0

    await wait_for(all_published)
    return _lines(await asyncio.to_thread(consume_all, broker, out))


async def _waiting(runtime: Runtime) -> int:
    """Committed egress records not published yet."""
    return (await runtime.engine.counts(("egress",)))["egress"]


@pytest.mark.parametrize("semantic", ["exactly-once", "at-least-once", "none"])
async def test_records_are_published_keyed_by_address_in_order(
    kafka_broker: Any, tmp_path: Path, semantic: str
) -> None:
    source, out = topic(kafka_broker, 2, "names"), topic(kafka_broker, 3, "greets")
    rows = _rows(400, keys=9)
    _produce(kafka_broker, source, rows)
    module = _module(tmp_path, kafka_broker, source=source, out=out, semantic=semantic)
    async with running(module, tmp_path / "data") as runtime:
        got = await _published(runtime, kafka_broker, out, _expected(rows))
        tally = await readings(runtime, "egress_*")
    # Nothing crashed, so even at-least-once publishes each record once.
    assert _by_key(got) == _by_key(_expected(rows))
    assert tally["egress_records_published_total"] == 400  # the metrics say the same
    assert 0 < tally["egress_publishes_total"] <= 400
    assert tally["egress_publish_seconds_total"] > 0


async def test_keys_land_on_the_partition_the_java_client_picks(
    kafka_broker: Any, tmp_path: Path
) -> None:
    """murmur2 of the key, modulo the partitions: Kafka's Java ``DefaultPartitioner``, so a key
    lands where a StateFun (JVM) runtime would have put it. Known partitions of the Java client
    for 4 partitions, computed with ``org.apache.kafka.common.utils.Utils.murmur2``."""
    source, out = topic(kafka_broker, 1, "names"), topic(kafka_broker, 4, "greets")
    rows = [(key, "v") for key in JAVA_PARTITIONS_OF_4]
    _produce(kafka_broker, source, rows)
    module = _module(tmp_path, kafka_broker, source=source, out=out)
    async with running(module, tmp_path / "data") as runtime:
        await _published(runtime, kafka_broker, out, _expected(rows))
    placed = {m.key().decode(): m.partition() for m in consume_all(kafka_broker, out)}
    assert placed == JAVA_PARTITIONS_OF_4


#: key -> partition of 4, as Kafka's Java client places it (kafka-clients 4.1.1:
#: ``Utils.toPositive(Utils.murmur2(key.getBytes(UTF_8))) % 4``, run with java).
JAVA_PARTITIONS_OF_4 = {
    "alice": 1, "bob": 2, "carol": 2, "dave": 2, "erin": 0, "frank": 3, "grace": 2,
    "heidi": 3, "ivan": 1, "judy": 3, "k0": 1, "k1": 1, "k2": 1, "k3": 0, "k4": 0, "k5": 0,
}  # fmt: skip


async def test_a_restart_publishes_each_record_once(kafka_broker: Any, tmp_path: Path) -> None:
    """The same transactional id after the restart (the data dir's instance id): it carries on
    where the last one stopped, with nothing sent twice."""
    source, out = topic(kafka_broker, 2, "names"), topic(kafka_broker, 2, "greets")
    first, second = _rows(150, keys=5), _rows(100, keys=5, start=150)
    module = _module(tmp_path, kafka_broker, source=source, out=out)
    _produce(kafka_broker, source, first)
    async with running(module, tmp_path / "data") as runtime:
        await _published(runtime, kafka_broker, out, _expected(first))
    _produce(kafka_broker, source, second)
    expected = _expected(first + second)
    async with running(module, tmp_path / "data") as runtime:
        got = await _published(runtime, kafka_broker, out, expected)
    assert _by_key(got) == _by_key(expected)


async def test_a_missing_topic_holds_its_records_until_it_is_created(
    kafka_broker: Any, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    source = topic(kafka_broker, 1, "names")
    out = f"later-{tmp_path.name}"
    rows = _rows(30, keys=3)
    _produce(kafka_broker, source, rows)
    module = _module(tmp_path, kafka_broker, source=source, out=out)
    with caplog.at_level(logging.ERROR, "pystatefun.io.kafka"):
        async with running(module, tmp_path / "data") as runtime:
            await wait_for(lambda: f"topic {out} does not exist" in caplog.text)
            assert await _waiting(runtime) == 30  # waiting, not lost
            admin = AdminClient({"bootstrap.servers": kafka_broker.bootstrap})
            for future in admin.create_topics([NewTopic(out, 1, 1)]).values():
                future.result(30)
            got = await _published(runtime, kafka_broker, out, _expected(rows))
    assert _by_key(got) == _by_key(_expected(rows))
    assert "the records wait in the store, and publishing is retried" in caplog.text


async def test_a_record_that_can_never_be_published_is_dead_lettered_with_its_address(
    kafka_broker: Any, tmp_path: Path
) -> None:
    source, out = topic(kafka_broker, 1, "names"), topic(kafka_broker, 1, "greets")
    rows = [("a", "v0"), ("b", "bad-type"), ("c", "bad-size"), ("a", "v1")]
    _produce(kafka_broker, source, rows)
    module = _module(tmp_path, kafka_broker, source=source, out=out)
    async with running(module, tmp_path / "data") as runtime:
        got = await _published(runtime, kafka_broker, out, ["a:v0:1", "a:v1:2"])
    letters = {d.target.id: d.error for d in DataDir(tmp_path / "data").dead_letters()}
    assert got == ["a:v0:1", "a:v1:2"]
    assert set(letters) == {"b", "c"}
    assert (
        f"sent a 'io.statefun.types/string' to Kafka egress {EGRESS}, which takes only "
        "'type.googleapis.com/io.statefun.sdk.egress.KafkaProducerRecord'" in letters["b"]
    )
    assert (
        f"sent a 2000000-byte record for topic {out} to Kafka egress {EGRESS}, over the "
        "producer's message.max.bytes (1000000)" in letters["c"]
    )


async def test_a_broker_restarted_under_load_loses_and_repeats_nothing(
    kafka_broker: Any, tmp_path: Path
) -> None:
    source, out = topic(kafka_broker, 3, "names"), topic(kafka_broker, 3, "greets")
    first, second = _rows(3000, keys=11), _rows(3000, keys=11, start=3000)
    module = _module(tmp_path, kafka_broker, source=source, out=out)
    _produce(kafka_broker, source, first)
    async with running(module, tmp_path / "data") as runtime:
        # Part way through publishing: some records are out, others wait.
        async def some_wait() -> bool:
            return await _waiting(runtime) > 0

        await wait_for(some_wait)
        kafka_broker.kill()
        kafka_broker.start()
        _produce(kafka_broker, source, second)
        expected = _expected(first + second)
        got = await _published(runtime, kafka_broker, out, expected)
    source_rows = [m.value().decode() for m in consume_all(kafka_broker, source)]
    assert sorted(source_rows) == sorted(v for _, v in first + second), "the source itself"
    _exactly_once(got, expected)


async def test_settings_the_client_refuses_are_named_at_their_line_and_leave_nothing(
    kafka_broker: Any, tmp_path: Path
) -> None:
    source, out = topic(kafka_broker, 1, "names"), topic(kafka_broker, 1, "greets")
    properties = "  properties:\n    - no.such.setting: 1\n"
    module = _module(tmp_path, kafka_broker, source=source, out=out, properties=properties)
    data_dir = tmp_path / "data"
    with pytest.raises(ModuleError) as raised:
        async with Runtime(load_module(module), RuntimeOptions(data_dir=data_dir)):
            pass
    assert raised.value.file == module
    assert raised.value.line == 18  # the egress document's kind
    assert raised.value.field == "spec.properties"
    assert "the Kafka client refuses these settings" in str(raised.value)
    assert "no.such.setting" in str(raised.value)
    assert not data_dir.exists()
