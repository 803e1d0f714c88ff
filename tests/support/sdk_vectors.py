"""Typed values asked of an SDK's own types over ``POST /vectors`` (the JS, Go and Java servers
of ``tests/sdks/``).

A request is ``{"op": "encode", "type": T, "value": V}`` (answered ``{"hex": ...}``) or
``{"op": "decode", "type": T, "hex": H}`` (answered ``{"value": V}``), or ``{"error": ...}``.
``T`` is ``bool``, ``int``, ``long``, ``float``, ``double``, ``string`` (the
``io.statefun.types/*`` built-ins) or ``json`` (the custom JSON type ``interop/Json``). Values
travel so that no language's number parsing can blur them: bool as a JSON bool, int and long
as decimal strings, float and double as the hex of their big-endian IEEE 754 bits (so NaN,
-0.0 and subnormals survive), string as a JSON string, json as the JSON value itself.
"""

from __future__ import annotations

import json
import struct
from typing import Any

from pystatefun import sdk
from support.processes import ListeningProcess
from support.sdk_servers import post

TYPES: dict[str, sdk.Type] = {
    "bool": sdk.BoolType,
    "int": sdk.IntType,
    "long": sdk.LongType,
    "float": sdk.FloatType,
    "double": sdk.DoubleType,
    "string": sdk.StringType,
    "json": sdk.make_json_type("interop/Json"),
}


def canonical(type_name: str, value: Any) -> Any:
    """``value`` as it travels to and from the SDKs."""
    if type_name in {"int", "long"}:
        return str(value)
    if type_name == "float":
        return struct.pack(">f", value).hex()
    if type_name == "double":
        return struct.pack(">d", value).hex()
    return value


def ask(server: ListeningProcess, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``requests`` answered by ``server``'s SDK, in one call."""
    status, body = post(server.url + "/vectors", json.dumps(requests).encode(), "application/json")
    assert status == 200, body.decode(errors="replace")
    answers: list[dict[str, Any]] = json.loads(body)
    assert len(answers) == len(requests)
    return answers
