"""Messages and their builders, egress records, and the primitive wire encoding."""

from __future__ import annotations

import struct

import pytest

from pystatefun.errors import ConfigurationError, MessageTypeError
from pystatefun.protocol import (
    KAFKA_PRODUCER_RECORD_TYPENAME,
    KINESIS_EGRESS_RECORD_TYPENAME,
    KafkaProducerRecord,
    KinesisEgressRecord,
    TypedValue,
)
from pystatefun.sdk import (
    BoolType,
    DoubleType,
    FloatType,
    IntType,
    LongType,
    Message,
    StringType,
    egress_message_builder,
    kafka_egress_message,
    kinesis_egress_message,
    make_json_type,
    message_builder,
)


def test_int_wire_format_is_a_sfixed32_wrapper() -> None:
    assert IntType.serializer().serialize(7) == b"\x0d\x07\x00\x00\x00"
    assert IntType.serializer().serialize(0) == b""
    assert IntType.serializer().deserialize(b"") == 0
    assert LongType.serializer().serialize(-1) == b"\x09" + b"\xff" * 8


@pytest.mark.parametrize(
    ("keyword", "value", "reader"),
    [
        ("int_value", 5, "as_int"),
        ("long_value", 2**40, "as_long"),
        ("float_value", 1.5, "as_float"),
        ("double_value", 0.1, "as_double"),
        ("str_value", "hé", "as_string"),
        ("bool_value", True, "as_bool"),
    ],
)
def test_builder_and_readers_round_trip(keyword: str, value: object, reader: str) -> None:
    message = message_builder("x/fn", "id", **{keyword: value})
    assert getattr(message, reader)() == value
    assert getattr(message, "is_" + reader[3:])()
    assert message.raw_value() is not None


def test_readers_refuse_another_type_and_say_how_to_check() -> None:
    message = message_builder("x/fn", "id", str_value="five")
    assert not message.is_int()
    with pytest.raises(
        MessageTypeError, match=r"holds a 'io.statefun.types/string', not a 'io.statefun.types/int'"
    ):
        message.as_int()


def test_a_message_without_value_reads_as_none() -> None:
    message = Message("x/fn", "id", TypedValue(typename=IntType.typename))
    assert message.as_int() is None
    assert message.raw_value() is None
    assert message.value_typename() == "io.statefun.types/int"


def test_custom_types_in_messages() -> None:
    user = make_json_type("x/User")
    message = message_builder("x/fn", "id", value={"name": "a"}, value_type=user)
    assert message.is_type(user)
    assert message.as_type(user) == {"name": "a"}
    assert message.value_typename() == "x/User"


@pytest.mark.parametrize(
    "kwargs",
    [{}, {"int_value": 1, "str_value": "a"}, {"value": 1}, {"number": 1}],
)
def test_builder_usage_errors_list_the_keywords(kwargs: dict[str, object]) -> None:
    with pytest.raises(TypeError, match="pass exactly one of int_value="):
        message_builder("x/fn", "id", **kwargs)


def test_builder_rejects_values_that_do_not_fit() -> None:
    with pytest.raises(ConfigurationError, match="value is None"):
        message_builder("x/fn", "id", int_value=None)
    with pytest.raises(ValueError, match="does not fit io.statefun.types/int"):
        message_builder("x/fn", "id", int_value=2**31)
    with pytest.raises(TypeError, match="takes int, got bool"):
        message_builder("x/fn", "id", long_value=True)
    with pytest.raises(TypeError, match="takes str, got bytes"):
        message_builder("x/fn", "id", str_value=b"bytes")
    with pytest.raises(ConfigurationError, match="needs a target_id"):
        message_builder("x/fn", "", int_value=1)
    with pytest.raises(ConfigurationError, match="invalid type name 'nofn'"):
        message_builder("nofn", "id", int_value=1)


def test_floats_accept_ints_and_keep_float32_precision() -> None:
    assert DoubleType.serializer().deserialize(DoubleType.serializer().serialize(3)) == 3.0
    assert (
        FloatType.serializer().deserialize(FloatType.serializer().serialize(0.1))
        == (struct.unpack("<f", struct.pack("<f", 0.1))[0])
    )
    assert BoolType.serializer().serialize(False) == b""


def test_kafka_records() -> None:
    egress = kafka_egress_message("x/kafka", "topic", "value", key="key")
    assert egress.value_typename() == KAFKA_PRODUCER_RECORD_TYPENAME
    record = KafkaProducerRecord.FromString(egress.raw_value())
    assert (record.topic, record.key, record.value_bytes) == ("topic", "key", b"value")
    as_int = KafkaProducerRecord.FromString(kafka_egress_message("x/k", "t", 7).raw_value())
    assert as_int.value_bytes == b"\x00\x00\x00\x07"  # Kafka's IntegerSerializer
    as_double = KafkaProducerRecord.FromString(kafka_egress_message("x/k", "t", 0.5).raw_value())
    assert as_double.value_bytes == struct.pack(">d", 0.5)
    typed = kafka_egress_message("x/k", "t", 7, value_type=IntType)
    assert KafkaProducerRecord.FromString(typed.raw_value()).value_bytes == b"\x0d\x07\x00\x00\x00"
    with pytest.raises(ConfigurationError, match="topic is missing"):
        kafka_egress_message("x/k", "", "v")
    with pytest.raises(TypeError, match="cannot turn dict into bytes"):
        kafka_egress_message("x/k", "t", {"a": 1})


def test_kinesis_records() -> None:
    egress = kinesis_egress_message("x/kin", "stream", b"raw", "pk", explicit_hash_key="h")
    assert egress.value_typename() == KINESIS_EGRESS_RECORD_TYPENAME
    record = KinesisEgressRecord.FromString(egress.raw_value())
    assert (record.stream, record.partition_key, record.explicit_hash_key, record.value_bytes) == (
        "stream",
        "pk",
        "h",
        b"raw",
    )
    with pytest.raises(TypeError, match="pass str or bytes"):
        kinesis_egress_message("x/kin", "s", 5, "pk")
    with pytest.raises(ConfigurationError, match="partition_key is missing"):
        kinesis_egress_message("x/kin", "s", "v", None)  # type: ignore[arg-type]


def test_generic_egress() -> None:
    egress = egress_message_builder("x/out", "text", StringType)
    assert egress.typename == "x/out"
    assert StringType.serializer().deserialize(egress.raw_value()) == "text"
    with pytest.raises(ConfigurationError, match="value is None"):
        egress_message_builder("x/out", None, StringType)
