"""How input columns become state: ``--state NAME=COLUMN:TYPE``, checked before any row is read.

``TYPE`` is a primitive of StateFun's type system (``int``, ``long``, ``float``, ``double``,
``bool``, ``string``), ``json:<typename>`` (the column's JSON value, as ``make_json_type``
writes it), or ``bytes:<typename>`` (the column's text as UTF-8, or base64 with
``base64:<typename>``). Values are encoded exactly as the SDKs encode them, so functions of any
SDK read them.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, final

from pystatefun.protocol.typed_values import PRIMITIVES, value_from_text
from pystatefun.types import split_typename

__all__ = ["MappingError", "StateColumn", "parse_state_column"]

_SPEC = re.compile(r"^(?P<name>[a-z_][a-z0-9_]*)=(?P<column>[^:]+):(?P<type>.+)$")
_PRIMITIVE_NAMES = {name.rpartition("/")[2]: name for name in PRIMITIVES}


class MappingError(ValueError):
    """A ``--state`` mapping, or a value that does not fit its type."""


@final
@dataclass(frozen=True, slots=True)
class StateColumn:
    """One state of the loaded type, from one column, with its type and encoder."""

    name: str
    column: str
    typename: str
    encode: Callable[[Any], bytes]


_INT = struct.Struct("<i")
_LONG = struct.Struct("<q")


def _varint(number: int) -> bytes:
    out = bytearray()
    while number > 0x7F:
        out.append((number & 0x7F) | 0x80)
        number >>= 7
    out.append(number)
    return bytes(out)


def _wire_int(value: int) -> bytes:
    return b"\x0d" + _INT.pack(value) if value else b""


def _wire_long(value: int) -> bytes:
    return b"\x09" + _LONG.pack(value) if value else b""


def _wire_string(value: str) -> bytes:
    data = value.encode("utf-8")
    return b"\x0a" + _varint(len(data)) + data if data else b""


def _wire_bool(value: bool) -> bytes:
    return b"\x08\x01" if value else b""


# The wrappers' bytes written directly: a load encodes millions of values, and protobuf objects
# cost ten times as much. Byte-identical to ``Primitive.encode`` (tests compare the two);
# floats and doubles keep ``Primitive.encode`` for its rounding rules.
_WIRE: dict[str, Callable[[Any], bytes]] = {
    "io.statefun.types/int": _wire_int,
    "io.statefun.types/long": _wire_long,
    "io.statefun.types/string": _wire_string,
    "io.statefun.types/bool": _wire_bool,
}
_RANGES = {
    "io.statefun.types/int": (-(2**31), 2**31 - 1),
    "io.statefun.types/long": (-(2**63), 2**63 - 1),
}


def _primitive(typename: str) -> Callable[[Any], bytes]:
    primitive = PRIMITIVES[typename]
    python_type = primitive.python_type
    wire = _WIRE.get(typename)
    low, high = _RANGES.get(typename, (0, 0))

    def encode(value: Any) -> bytes:
        if isinstance(value, str) and python_type is not str:
            try:
                value = value_from_text(typename, value)
            except ValueError as exc:
                raise MappingError(str(exc)) from None
        elif python_type is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        in_range = not isinstance(value, int) or low <= value <= high or (low, high) == (0, 0)
        if wire is not None and type(value) is python_type and in_range:
            return wire(value)
        try:
            return primitive.encode(value)
        except (TypeError, ValueError) as exc:
            raise MappingError(str(exc)) from None

    return encode


def _json(value: Any) -> bytes:
    if isinstance(value, str):  # from CSV: the cell must be JSON text
        try:
            json.loads(value)
        except ValueError as exc:
            raise MappingError(f"{value[:40]!r} is not JSON ({exc})") from None
        return value.encode("utf-8")
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def _text(value: Any) -> bytes:
    if not isinstance(value, str):
        raise MappingError(f"{value!r} is not text")
    return value.encode("utf-8")


def _base64(value: Any) -> bytes:
    try:
        return base64.b64decode(str(value), validate=True)
    except (binascii.Error, ValueError):
        raise MappingError(f"{str(value)[:40]!r} is not base64") from None


def parse_state_column(spec: str) -> StateColumn:
    """``NAME=COLUMN:TYPE`` as a ``StateColumn``; ``MappingError`` says what is wrong."""
    match = _SPEC.match(spec)
    if match is None:
        raise MappingError(
            f"{spec!r} is not NAME=COLUMN:TYPE, e.g. visits=visit_count:int or "
            "cart=items:json:shop/Cart (state names are lowercase, as ValueSpec requires)"
        )
    name, column, kind = match["name"], match["column"], match["type"]
    if kind in _PRIMITIVE_NAMES:
        typename = _PRIMITIVE_NAMES[kind]
        return StateColumn(name, column, typename, _primitive(typename))
    prefix, _, typename = kind.partition(":")
    encoders = {"json": _json, "bytes": _text, "base64": _base64}
    if prefix not in encoders or split_typename(typename) is None:
        known = ", ".join(_PRIMITIVE_NAMES)
        raise MappingError(
            f"{spec!r}: unknown type {kind!r}; use one of {known}, or json:<namespace/Type>, "
            "bytes:<namespace/Type> or base64:<namespace/Type>"
        )
    return StateColumn(name, column, typename, encoders[prefix])
