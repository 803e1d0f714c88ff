"""What a ``FromFunction`` asks the runtime to do, decoded, for comparing SDKs whose bytes may
legitimately differ.

Two replies are the same to a runtime when they decode to the same effects: the same missing
states (names, types, expirations) or the same state mutations, and the same messages, delayed
messages, cancellations and egress records, in the same order. What may differ is compared
decoded: field order and defaults in the protobuf bytes, the order of the missing states and of
the state mutations (the runtime applies them as one set; the Go SDK lists them in map order),
and the bytes of a JSON value (whitespace, key order, escapes): JSON values compare as parsed,
with every number as a double, as JavaScript and Go read them.
"""

from __future__ import annotations

import json
from typing import Any

from pystatefun import sdk
from pystatefun.protocol import (
    KAFKA_PRODUCER_RECORD_TYPENAME,
    KINESIS_EGRESS_RECORD_TYPENAME,
    Address,
    FromFunction,
    KafkaProducerRecord,
    KinesisEgressRecord,
    TypedValue,
)

#: The JSON types of the test programs (tests/sdks/README.md, interop_functions.py).
JSON_TYPENAMES = frozenset(
    {
        "interop/Json",
        "interop/History",
        "interop/Command",
        "greeter/Visit",
        "io.statefun.playground/EgressRecord",
    }
)
_PRIMITIVES = {
    t.typename: t for t in (sdk.BoolType, sdk.IntType, sdk.LongType, sdk.FloatType, sdk.DoubleType)
}
_PRIMITIVES[sdk.StringType.typename] = sdk.StringType


def json_value(parsed: Any) -> Any:
    """A parsed JSON value with every number as a float, so that ``1`` and ``1.0`` are alike
    while ``true`` and ``1`` are not."""
    if isinstance(parsed, bool) or parsed is None or isinstance(parsed, str):
        return parsed
    if isinstance(parsed, int | float):
        return ("number", float(parsed))
    if isinstance(parsed, list):
        return [json_value(v) for v in parsed]
    return {k: json_value(v) for k, v in parsed.items()}


def decoded(typed: TypedValue) -> tuple[str, Any]:
    """``(typename, value)``, the value decoded by its type."""
    if not typed.has_value:
        return typed.typename, "<no value>"
    if typed.typename in _PRIMITIVES:
        return typed.typename, _PRIMITIVES[typed.typename].serializer().deserialize(typed.value)
    if typed.typename in JSON_TYPENAMES:
        return typed.typename, json_value(json.loads(typed.value))
    if typed.typename == KAFKA_PRODUCER_RECORD_TYPENAME:
        kafka = KafkaProducerRecord.FromString(typed.value)
        return typed.typename, (kafka.topic, kafka.key, kafka.value_bytes)
    if typed.typename == KINESIS_EGRESS_RECORD_TYPENAME:
        kinesis = KinesisEgressRecord.FromString(typed.value)
        fields = (kinesis.stream, kinesis.partition_key, kinesis.explicit_hash_key)
        return typed.typename, (*fields, kinesis.value_bytes)
    return typed.typename, typed.value


def _address(address: Address) -> str:
    return f"{address.namespace}/{address.type}/{address.id}"


def effects(reply: FromFunction) -> dict[str, Any]:
    """The effects of ``reply`` (an empty body, the official Python SDK's answer to a batch
    without effects, is an invocation result without any)."""
    if reply.HasField("incomplete_invocation_context"):
        missing = reply.incomplete_invocation_context.missing_values
        return {
            "missing": sorted(
                (m.state_name, m.type_typename, m.expiration_spec.mode,
                 m.expiration_spec.expire_after_millis)
                for m in missing
            )
        }  # fmt: skip
    result = reply.invocation_result
    modify = FromFunction.PersistedValueMutation.MODIFY
    return {
        "state": sorted(
            (m.state_name, m.mutation_type,
             decoded(m.state_value) if m.mutation_type == modify else None)
            for m in result.state_mutations
        ),
        "messages": [(_address(m.target), decoded(m.argument)) for m in result.outgoing_messages],
        "delayed": [
            ("cancel", d.cancellation_token) if d.is_cancellation_request
            else (_address(d.target), d.delay_in_ms, d.cancellation_token, decoded(d.argument))
            for d in result.delayed_invocations
        ],
        "egress": [
            (f"{e.egress_namespace}/{e.egress_type}", decoded(e.argument))
            for e in result.outgoing_egresses
        ],
    }  # fmt: skip
