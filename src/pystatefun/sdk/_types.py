"""The SDK's type system: ``Type`` and ``TypeSerializer``, the built-in primitive types, and the
factories for user types (``simple_type``, ``make_json_type``, ``make_protobuf_type``).

A ``Type`` pairs a type name with a serializer. The type name travels with every value on the
wire, so a function in any language can tell what it received; the serializer turns Python
values into the bytes other SDKs expect.
"""

from __future__ import annotations

import abc
import json
from collections.abc import Callable
from typing import Any, final

from google.protobuf.message import DecodeError
from google.protobuf.message import Message as ProtobufMessage

from pystatefun.errors import ConfigurationError, ProtocolError
from pystatefun.protocol import typed_values
from pystatefun.protocol.typed_values import Primitive
from pystatefun.types import parse_typename

__all__ = [
    "BoolType",
    "DoubleType",
    "FloatType",
    "IntType",
    "LongType",
    "StringType",
    "Type",
    "TypeSerializer",
    "make_json_type",
    "make_protobuf_type",
    "simple_type",
]


class TypeSerializer(abc.ABC):
    """Turns values of one type into bytes and back."""

    __slots__ = ()

    @abc.abstractmethod
    def serialize(self, value: Any) -> bytes:
        """Return the bytes of ``value``."""

    @abc.abstractmethod
    def deserialize(self, data: bytes) -> Any:
        """Return the value that ``data`` holds."""


class Type(abc.ABC):
    """A named value type: ``typename`` (``namespace/name``) plus a serializer."""

    __slots__ = ("typename",)

    def __init__(self, typename: str) -> None:
        if not typename:
            raise ConfigurationError("a Type needs a typename like 'com.example/User'")
        parse_typename(typename)
        self.typename = typename

    @abc.abstractmethod
    def serializer(self) -> TypeSerializer:
        """Return the serializer for values of this type."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.typename!r})"


@final
class _FunctionSerializer(TypeSerializer):
    __slots__ = ("_deserialize", "_serialize")

    def __init__(
        self, serialize_fn: Callable[[Any], bytes], deserialize_fn: Callable[[bytes], Any]
    ) -> None:
        self._serialize = serialize_fn
        self._deserialize = deserialize_fn

    def serialize(self, value: Any) -> bytes:
        data = self._serialize(value)
        if isinstance(data, str):
            # json.dumps and friends return str; the wire carries bytes.
            return data.encode("utf-8")
        return bytes(data)

    def deserialize(self, data: bytes) -> Any:
        return self._deserialize(data)


@final
class _SimpleType(Type):
    __slots__ = ("_serializer",)

    def __init__(
        self,
        typename: str,
        serialize_fn: Callable[[Any], bytes],
        deserialize_fn: Callable[[bytes], Any],
    ) -> None:
        super().__init__(typename)
        if not callable(serialize_fn) or not callable(deserialize_fn):
            raise ConfigurationError(
                f"simple_type({typename!r}) needs callable serialize_fn and deserialize_fn"
            )
        self._serializer = _FunctionSerializer(serialize_fn, deserialize_fn)

    def serializer(self) -> TypeSerializer:
        return self._serializer


def simple_type(
    typename: str,
    serialize_fn: Callable[[Any], bytes],
    deserialize_fn: Callable[[bytes], Any],
) -> Type:
    """Define a type from two functions, e.g. ``simple_type("com.example/User", dumps, loads)``."""
    return _SimpleType(typename, serialize_fn, deserialize_fn)


@final
class _PrimitiveSerializer(TypeSerializer):
    __slots__ = ("_primitive",)

    def __init__(self, primitive: Primitive[Any]) -> None:
        self._primitive = primitive

    def serialize(self, value: Any) -> bytes:
        return self._primitive.encode(value)

    def deserialize(self, data: bytes) -> Any:
        return self._primitive.decode(data)


@final
class _PrimitiveType(Type):
    __slots__ = ("_serializer",)

    def __init__(self, primitive: Primitive[Any]) -> None:
        super().__init__(primitive.typename)
        self._serializer = _PrimitiveSerializer(primitive)

    def serializer(self) -> TypeSerializer:
        return self._serializer


BoolType: Type = _PrimitiveType(typed_values.BOOL)
IntType: Type = _PrimitiveType(typed_values.INT)
FloatType: Type = _PrimitiveType(typed_values.FLOAT)
LongType: Type = _PrimitiveType(typed_values.LONG)
DoubleType: Type = _PrimitiveType(typed_values.DOUBLE)
StringType: Type = _PrimitiveType(typed_values.STRING)


def _json_dumps_utf8(value: Any) -> bytes:
    # ensure_ascii=False matches the official SDK byte for byte: non-ASCII stays UTF-8.
    return json.dumps(value, ensure_ascii=False).encode("utf-8")


def _json_loads(typename: str) -> Callable[[bytes], Any]:
    def deserialize(data: bytes) -> Any:
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError, UnicodeDecodeError, depth
            reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
            raise ProtocolError(
                f"{len(data)} bytes are not a valid {typename} (JSON): {reason}"
            ) from exc

    return deserialize


def make_json_type(typename: str) -> Type:
    """A type whose values are JSON documents (UTF-8, as the official SDK writes them).

    Bytes that are not JSON raise ``ProtocolError``, as corrupt bytes of a primitive do, rather
    than whichever of ``JSONDecodeError``, ``UnicodeDecodeError`` or ``RecursionError`` the
    parser hit; all but the last are ``ValueError``s, and so is ``ProtocolError``.
    """
    return _SimpleType(typename, _json_dumps_utf8, _json_loads(typename))


def make_protobuf_type(cls: type[ProtobufMessage], namespace: str | None = None) -> Type:
    """A type for a protobuf message class, named ``<namespace>/<full message name>``.

    The namespace defaults to ``type.googleapis.com``, the convention every SDK shares. Bytes
    that do not parse as ``cls`` raise ``ProtocolError``, like corrupt bytes of a primitive.
    """
    if not isinstance(cls, type) or not issubclass(cls, ProtobufMessage):
        raise ConfigurationError(
            f"make_protobuf_type needs a generated protobuf message class, got {cls!r}"
        )
    full_name = cls.DESCRIPTOR.full_name
    typename = f"{namespace or 'type.googleapis.com'}/{full_name}"

    def deserialize(data: bytes) -> ProtobufMessage:
        message = cls()
        try:
            message.ParseFromString(data)
        except DecodeError as exc:
            raise ProtocolError(f"{len(data)} bytes are not a valid {typename}: {exc}") from exc
        return message

    def serialize(message: ProtobufMessage) -> bytes:
        if not isinstance(message, cls):
            raise TypeError(f"expected a {full_name} message, got {type(message).__name__}")
        return message.SerializeToString()

    return _SimpleType(typename, serialize, deserialize)
