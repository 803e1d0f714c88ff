"""Typed values as SQL values: what a view's ``value`` column holds.

StateFun stores every value as bytes with a type name. For people and for SQL, the primitive
types (``io.statefun.types/int``, ``long``, ``float``, ``double``, ``bool``, ``string``) become
the SQL value they stand for; a value whose bytes are JSON (``make_json_type``) becomes its JSON
text, so ``json_extract(value, '$.field')`` works; anything else stays bytes (a BLOB).
"""

from __future__ import annotations

import json

from pystatefun.errors import ProtocolError
from pystatefun.protocol.typed_values import PRIMITIVES

__all__ = ["sql_value"]

_SqlValue = int | float | str | bytes | None


def sql_value(typename: str, value: bytes | None) -> _SqlValue:
    """The SQL value of a typed value (see the module docstring); bools are 0 or 1."""
    if value is None:
        return None
    primitive = PRIMITIVES.get(typename)
    if primitive is not None:
        try:
            decoded = primitive.decode(bytes(value))
        except ProtocolError:
            return bytes(value)  # bytes that are not what their type says: shown as they are
        return int(decoded) if isinstance(decoded, bool) else decoded
    try:
        text = bytes(value).decode("utf-8")
        json.loads(text)
    except ValueError:
        return bytes(value)
    return text
