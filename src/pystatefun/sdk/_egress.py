"""Builders for records of the generic Kafka and Kinesis egresses."""

from __future__ import annotations

import struct
from typing import Any

from pystatefun.errors import ConfigurationError
from pystatefun.protocol import (
    KAFKA_PRODUCER_RECORD_TYPENAME,
    KINESIS_EGRESS_RECORD_TYPENAME,
    KafkaProducerRecord,
    KinesisEgressRecord,
    TypedValue,
)
from pystatefun.sdk._message import EgressMessage
from pystatefun.sdk._types import Type

__all__ = ["kafka_egress_message", "kinesis_egress_message"]


def _value_bytes(value: Any, value_type: Type | None, numbers: bool, where: str) -> bytes:
    if value is None:
        raise ConfigurationError(f"{where}: value is None")
    if value_type is not None:
        return value_type.serializer().serialize(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    if isinstance(value, bytes | bytearray):
        return bytes(value)
    # Kafka's IntegerSerializer and DoubleSerializer: big-endian int32 and float64.
    if numbers and isinstance(value, int) and not isinstance(value, bool):
        return struct.pack(">i", value)
    if numbers and isinstance(value, float):
        return struct.pack(">d", value)
    accepted = "str, bytes, int or float" if numbers else "str or bytes"
    raise TypeError(
        f"{where}: cannot turn {type(value).__name__} into bytes; pass {accepted}, or value_type="
    )


def _egress(typename: str, record_typename: str, record: Any) -> EgressMessage:
    typed_value = TypedValue(typename=record_typename, has_value=True)
    typed_value.value = record.SerializeToString()
    return EgressMessage(typename, typed_value)


def kafka_egress_message(
    typename: str,
    topic: str,
    value: str | bytes | bytearray | int | float | Any,
    value_type: Type | None = None,
    key: str | None = None,
) -> EgressMessage:
    """A record for the Kafka egress ``typename``: ``value`` to ``topic`` under ``key``.

    ``value`` is serialized by ``value_type`` when given; otherwise str is UTF-8, bytes stay
    as they are, int and float use Kafka's big-endian Integer/Double serializers.
    """
    if not topic:
        raise ConfigurationError(f"kafka egress message to {typename!r}: topic is missing")
    record = KafkaProducerRecord(topic=topic)
    record.value_bytes = _value_bytes(value, value_type, True, f"kafka record for {topic!r}")
    if key is not None:
        record.key = key
    return _egress(typename, KAFKA_PRODUCER_RECORD_TYPENAME, record)


def kinesis_egress_message(  # noqa: PLR0917 - upstream's signature
    typename: str,
    stream: str,
    value: str | bytes | bytearray | Any,
    partition_key: str,
    value_type: Type | None = None,
    explicit_hash_key: str | None = None,
) -> EgressMessage:
    """A record for the Kinesis egress ``typename``: ``value`` to ``stream``."""
    if not stream:
        raise ConfigurationError(f"kinesis egress message to {typename!r}: stream is missing")
    if partition_key is None:
        raise ConfigurationError(f"kinesis record for {stream!r}: partition_key is missing")
    record = KinesisEgressRecord(stream=stream, partition_key=partition_key)
    record.value_bytes = _value_bytes(value, value_type, False, f"kinesis record for {stream!r}")
    if explicit_hash_key is not None:
        record.explicit_hash_key = explicit_hash_key
    return _egress(typename, KINESIS_EGRESS_RECORD_TYPENAME, record)
