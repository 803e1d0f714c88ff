"""What a test reads back from ``FunctionHarness``: messages it did not deliver, egress records,
and typed values decoded."""

from __future__ import annotations

from typing import Any, NamedTuple, final

from pystatefun.errors import MessageTypeError
from pystatefun.protocol.typed_values import PRIMITIVES
from pystatefun.sdk import BoolType, FloatType, IntType, StringType, Type
from pystatefun.store import Payload
from pystatefun.types import Address

__all__ = ["OutboxMessage", "RecordedEgress", "decode_payload", "typed"]


def decode_payload(payload: Payload, type: Type | None = None) -> Any:  # noqa: A002
    """The Python value of ``payload``: decoded as ``type`` when given (its type name must
    match), as a primitive when it is one, else the raw bytes. ``None`` when it has no value."""
    if payload.value is None:
        return None
    if type is not None:
        if payload.typename != type.typename:
            raise MessageTypeError(
                f"the value is a {payload.typename!r}, not a {type.typename!r}; pass its Type"
            )
        return type.serializer().deserialize(payload.value)
    primitive = PRIMITIVES.get(payload.typename)
    return payload.value if primitive is None else primitive.decode(payload.value)


@final
class OutboxMessage(NamedTuple):
    """A message to a function type the harness does not bind: recorded, never invoked."""

    target: Address
    caller: Address | None
    payload: Payload

    def value(self, type: Type | None = None) -> Any:  # noqa: A002
        """The decoded value (see ``decode_payload``)."""
        return decode_payload(self.payload, type)


@final
class RecordedEgress(NamedTuple):
    """A record sent to an egress. For the playground egress, ``topic`` is the record's topic
    and ``payload`` its text (``text/plain``); for any other egress ``topic`` is None and
    ``payload`` is the record as sent (a ``KafkaProducerRecord`` for a Kafka egress, ...)."""

    egress: str
    topic: str | None
    payload: Payload

    @property
    def text(self) -> str:
        """The payload as UTF-8 text (the playground record's ``payload``)."""
        return (self.payload.value or b"").decode("utf-8")


def typed(value: Any, value_type: Type | None) -> Type:
    """The type ``send`` uses for ``value``: ``value_type``, or inferred for a primitive with
    ``message_builder``'s keywords (``bool``, ``int`` -> int, ``float`` -> float, ``str``)."""
    if value_type is not None:
        return value_type
    for python_type, inferred in ((bool, BoolType), (int, IntType), (float, FloatType)):
        if isinstance(value, python_type):
            return inferred
    if isinstance(value, str):
        return StringType
    raise TypeError(f"cannot infer the type of {value!r}; pass value_type=<a Type>")
