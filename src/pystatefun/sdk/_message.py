"""Messages between functions and to egresses, and the builders that make them."""

from __future__ import annotations

from typing import Any, final

from pystatefun.errors import ConfigurationError, MessageTypeError
from pystatefun.protocol import TypedValue
from pystatefun.sdk._types import (
    BoolType,
    DoubleType,
    FloatType,
    IntType,
    LongType,
    StringType,
    Type,
)
from pystatefun.types import parse_typename

__all__ = ["EgressMessage", "Message", "egress_message_builder", "message_builder"]


def to_typed_value(value_type: Type, value: Any) -> TypedValue:
    """Serialize ``value`` as ``value_type``; ``None`` becomes a TypedValue without a value."""
    typed_value = TypedValue(typename=value_type.typename)
    if value is not None:
        typed_value.has_value = True
        typed_value.value = value_type.serializer().serialize(value)
    return typed_value


@final
class Message:
    """A message delivered to (or sent by) a function: its target and a typed value.

    Read it with ``is_<type>()``/``as_<type>()`` for primitives, or ``is_type(t)``/``as_type(t)``.
    ``as_*`` returns ``None`` for a message without a value and raises ``MessageTypeError`` when
    the message carries another type (the official SDK decodes the bytes anyway).
    """

    __slots__ = ("target_id", "target_typename", "typed_value")

    def __init__(self, target_typename: str, target_id: str, typed_value: TypedValue) -> None:
        if not target_typename:
            raise ConfigurationError("a Message needs a target_typename like 'com.example/fn'")
        parse_typename(target_typename)
        if not target_id:
            raise ConfigurationError(f"a Message to {target_typename!r} needs a target_id")
        if not isinstance(typed_value, TypedValue):
            raise ConfigurationError(
                f"a Message to {target_typename}/{target_id} needs a TypedValue; build one with "
                "message_builder(...)"
            )
        self.target_typename = target_typename
        self.target_id = target_id
        self.typed_value = typed_value

    def is_int(self) -> bool:
        """True when the message holds an ``io.statefun.types/int``."""
        return self.is_type(IntType)

    def as_int(self) -> int | None:
        """The ``io.statefun.types/int`` value (a 32-bit signed int)."""
        value: int | None = self.as_type(IntType)
        return value

    def is_long(self) -> bool:
        """True when the message holds an ``io.statefun.types/long``."""
        return self.is_type(LongType)

    def as_long(self) -> int | None:
        """The ``io.statefun.types/long`` value (a 64-bit signed int)."""
        value: int | None = self.as_type(LongType)
        return value

    def is_bool(self) -> bool:
        """True when the message holds an ``io.statefun.types/bool``."""
        return self.is_type(BoolType)

    def as_bool(self) -> bool | None:
        """The ``io.statefun.types/bool`` value."""
        value: bool | None = self.as_type(BoolType)
        return value

    def is_string(self) -> bool:
        """True when the message holds an ``io.statefun.types/string``."""
        return self.is_type(StringType)

    def as_string(self) -> str | None:
        """The ``io.statefun.types/string`` value."""
        value: str | None = self.as_type(StringType)
        return value

    def is_float(self) -> bool:
        """True when the message holds an ``io.statefun.types/float``."""
        return self.is_type(FloatType)

    def as_float(self) -> float | None:
        """The ``io.statefun.types/float`` value (32-bit precision)."""
        value: float | None = self.as_type(FloatType)
        return value

    def is_double(self) -> bool:
        """True when the message holds an ``io.statefun.types/double``."""
        return self.is_type(DoubleType)

    def as_double(self) -> float | None:
        """The ``io.statefun.types/double`` value."""
        value: float | None = self.as_type(DoubleType)
        return value

    def is_type(self, tpe: Type) -> bool:
        """True when the message's type name is ``tpe.typename``."""
        return bool(self.typed_value.typename == tpe.typename)

    def as_type(self, tpe: Type) -> Any:
        """Decode the value as ``tpe``; ``None`` when the message carries no value."""
        if not self.typed_value.has_value:
            return None
        if not self.is_type(tpe):
            raise MessageTypeError(
                f"the message to {self.target_typename}/{self.target_id} holds a "
                f"{self.typed_value.typename!r}, not a {tpe.typename!r}; test with "
                "is_type()/is_<type>() first, or read the bytes with raw_value()"
            )
        return tpe.serializer().deserialize(self.typed_value.value)

    def value_typename(self) -> str:
        """The type name of the carried value."""
        return str(self.typed_value.typename)

    def raw_value(self) -> bytes | None:
        """The serialized value, or ``None`` when there is none."""
        return bytes(self.typed_value.value) if self.typed_value.has_value else None

    def __repr__(self) -> str:
        return (
            f"Message(to={self.target_typename}/{self.target_id}, "
            f"type={self.typed_value.typename!r}, {len(self.typed_value.value)} bytes)"
        )


@final
class EgressMessage:
    """A record for the egress named ``typename`` (``namespace/name`` as in the module YAML)."""

    __slots__ = ("typed_value", "typename")

    def __init__(self, typename: str, typed_value: TypedValue) -> None:
        if not typename:
            raise ConfigurationError("an EgressMessage needs the egress typename")
        parse_typename(typename)
        if not isinstance(typed_value, TypedValue):
            raise ConfigurationError(f"an EgressMessage to {typename!r} needs a TypedValue")
        self.typename = typename
        self.typed_value = typed_value

    def value_typename(self) -> str:
        """The type name of the carried value."""
        return str(self.typed_value.typename)

    def raw_value(self) -> bytes | None:
        """The serialized value, or ``None`` when there is none."""
        return bytes(self.typed_value.value) if self.typed_value.has_value else None

    def __repr__(self) -> str:
        return f"EgressMessage(to={self.typename}, type={self.typed_value.typename!r})"


_PRIMITIVE_KEYWORDS: dict[str, Type] = {
    "int_value": IntType,
    "float_value": FloatType,
    "long_value": LongType,
    "str_value": StringType,
    "double_value": DoubleType,
    "bool_value": BoolType,
}

_BUILDER_USAGE = (
    "pass exactly one of int_value=, long_value=, float_value=, double_value=, str_value=, "
    "bool_value=, or the pair value=..., value_type=<a Type>"
)


def message_builder(target_typename: str, target_id: str, **kwargs: Any) -> Message:
    """Build a message to ``target_typename``/``target_id``.

    ``message_builder("com.example/greeter", "alice", str_value="hi")`` or
    ``message_builder(..., value=user, value_type=UserType)``.
    """
    if set(kwargs) == {"value", "value_type"}:
        value, value_type = kwargs["value"], kwargs["value_type"]
    elif len(kwargs) == 1 and next(iter(kwargs)) in _PRIMITIVE_KEYWORDS:
        keyword, value = next(iter(kwargs.items()))
        value_type = _PRIMITIVE_KEYWORDS[keyword]
    else:
        raise TypeError(f"message_builder got {sorted(kwargs)}: {_BUILDER_USAGE}")
    if value is None:
        raise ConfigurationError(f"message to {target_typename}/{target_id}: value is None")
    if not isinstance(value_type, Type):
        raise ConfigurationError(f"value_type must be a Type, got {value_type!r}")
    return Message(target_typename, target_id, to_typed_value(value_type, value))


def egress_message_builder(target_typename: str, value: Any, value_type: Type) -> EgressMessage:
    """Build a record for a generic egress. Kafka and Kinesis have their own builders."""
    if value is None:
        raise ConfigurationError(f"egress message to {target_typename!r}: value is None")
    if not isinstance(value_type, Type):
        raise ConfigurationError(f"value_type must be a Type, got {value_type!r}")
    return EgressMessage(target_typename, to_typed_value(value_type, value))
