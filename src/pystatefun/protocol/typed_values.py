"""The primitive types of StateFun's cross-language type system (``io.statefun.types/*``).

A primitive ``TypedValue.value`` is the serialized protobuf *wrapper* message, not a raw
encoding: ``io.statefun.types/int`` 7 is ``0d 07 00 00 00`` (field 1, sfixed32), and the zero
value of every type is the empty byte string because proto3 leaves defaults off the wire.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass
from typing import Generic, TypeVar, final

from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from pystatefun.errors import ProtocolError
from pystatefun.protocol._generated.statefun.types_pb2 import (
    BooleanWrapper,
    DoubleWrapper,
    FloatWrapper,
    IntWrapper,
    LongWrapper,
    StringWrapper,
)

__all__ = [
    "BOOL",
    "DOUBLE",
    "FLOAT",
    "INT",
    "LONG",
    "PRIMITIVES",
    "STRING",
    "Primitive",
    "primitive_error",
    "text_of",
    "value_from_text",
]

T = TypeVar("T", bool, int, float, str)


@final
@dataclass(frozen=True, slots=True)
class Primitive(Generic[T]):
    """One primitive type: its type name, Python type and protobuf wrapper."""

    typename: str
    python_type: type[T]
    wrapper: type[Message]

    def encode(self, value: T) -> bytes:
        """Serialize ``value`` as this type's wrapper; raise ``TypeError``/``ValueError`` when it
        does not fit (an int outside the 32-bit range for ``int``, a str for ``long``, ...)."""
        # bool is an int in Python; refuse it for numeric types so True never becomes 1 silently.
        if isinstance(value, bool) and self.python_type is not bool:
            raise TypeError(f"{self.typename} takes {self.python_type.__name__}, got bool")
        if not isinstance(value, self.python_type) and not (
            self.python_type is float and isinstance(value, int) and not isinstance(value, bool)
        ):
            raise TypeError(
                f"{self.typename} takes {self.python_type.__name__}, got "
                f"{type(value).__name__} {value!r}"
            )
        wire_value: object = value
        if self.python_type is float:
            wire_value = _as_the_official_sdk_writes(self.wrapper, float(value))
        wrapper = self.wrapper()
        try:
            wrapper.value = wire_value  # type: ignore[attr-defined]
        except ValueError as exc:
            raise ValueError(f"{value!r} does not fit {self.typename}: {exc}") from exc
        return wrapper.SerializeToString()

    def decode(self, data: bytes) -> T:
        """Parse the wrapper bytes; empty bytes are the type's zero value."""
        wrapper = self.wrapper()
        try:
            wrapper.ParseFromString(data)
        except DecodeError as exc:
            raise ProtocolError(
                f"{len(data)} bytes are not a valid {self.typename}: {exc}"
            ) from exc
        value: T = wrapper.value  # type: ignore[attr-defined]
        return value


def primitive_error(typename: str, data: bytes) -> str | None:
    """Why ``data`` is not a value of the primitive type ``typename`` (not its serialized
    wrapper, or one with fields a wrapper does not have); None if it is, or if ``typename`` is
    not a primitive. For sources that pass raw bytes on as typed values, as StateFun's Kafka
    ingress does: plain text is not a ``io.statefun.types/string``."""
    primitive = PRIMITIVES.get(typename)
    if primitive is None:
        return None
    wrapper = primitive.wrapper()
    try:
        wrapper.ParseFromString(data)
    except DecodeError:
        return f"is not a serialized {primitive.wrapper.__name__}"
    if len(UnknownFieldSet(wrapper)):
        return f"has fields a {primitive.wrapper.__name__} does not have"
    return None


_FLOAT32_MAX = 3.4028234663852886e38


def _as_the_official_sdk_writes(wrapper: type[Message], value: float) -> float:
    """The float the official Python SDK (protobuf 3.x) puts on the wire for ``value``.

    protobuf 3.x differs from upb in two places, and we follow the official bytes:
    a value that is zero in the field's width (-0.0, or a double that rounds to ±0 as float32)
    is proto3's default and is not written at all; a finite value beyond float32's range
    becomes an infinity, where upb would round values within half an ulp down to FLT_MAX.
    """
    if wrapper is FloatWrapper:
        if math.isfinite(value) and abs(value) > _FLOAT32_MAX:
            return math.copysign(math.inf, value)
        rounded: float = struct.unpack("<f", struct.pack("<f", value))[0]
        return 0.0 if rounded == 0 else value
    return 0.0 if value == 0 else value


BOOL = Primitive("io.statefun.types/bool", bool, BooleanWrapper)
INT = Primitive("io.statefun.types/int", int, IntWrapper)
FLOAT = Primitive("io.statefun.types/float", float, FloatWrapper)
LONG = Primitive("io.statefun.types/long", int, LongWrapper)
DOUBLE = Primitive("io.statefun.types/double", float, DoubleWrapper)
STRING = Primitive("io.statefun.types/string", str, StringWrapper)

#: Every primitive by type name.
PRIMITIVES: dict[str, Primitive[bool] | Primitive[int] | Primitive[float] | Primitive[str]] = {
    p.typename: p for p in (BOOL, INT, FLOAT, LONG, DOUBLE, STRING)
}


# The one text form of every primitive: the playground ingress reads request bodies with it,
# bootstrap reads CSV cells with it, and the CLI writes values with it.
_TRUE = frozenset({"true", "1", "yes", "t", "y"})
_FALSE = frozenset({"false", "0", "no", "f", "n"})


def value_from_text(typename: str, text: str) -> bool | int | float | str:
    """The value of primitive ``typename`` written as ``text`` (``42``, ``true``, ``3.5``;
    a string is itself); ``ValueError`` saying what the text is not."""
    kind = PRIMITIVES[typename].python_type
    if kind is str:
        return text
    stripped = text.strip()
    if kind is bool:
        lowered = stripped.lower()
        if lowered not in _TRUE | _FALSE:
            raise ValueError(f"{text!r} is not a bool (true/false, 1/0, yes/no)")
        return lowered in _TRUE
    try:
        return kind(stripped)
    except ValueError:
        article = "an" if kind is int else "a"
        raise ValueError(f"{text!r} is not {article} {kind.__name__}") from None


def text_of(typename: str, value: bytes | None) -> str:
    """The text form of a primitive's encoded ``value`` (bools as ``true``/``false``);
    ``ProtocolError`` if the bytes are not that type."""
    decoded = PRIMITIVES[typename].decode(value or b"")
    return str(decoded).lower() if isinstance(decoded, bool) else str(decoded)
