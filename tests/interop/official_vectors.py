"""Run under the official SDK: encode and decode values with ``statefun``'s own serializers.

Reads a JSON list of requests from stdin and writes a JSON list of answers to stdout:
  {"op": "encode", "type": "int", "value": "<literal>"} -> {"hex": "..."} or {"error": "..."}
  {"op": "decode", "type": "int", "hex": "..."}         -> {"repr": "..."} or {"error": "..."}
``type`` is a primitive name, or "json:<typename>". Values travel as Python literals (repr), so
NaN, infinities and exact floats survive the trip.
"""

import json
import math
import sys

import statefun

PRIMITIVES = {
    "bool": statefun.BoolType,
    "int": statefun.IntType,
    "long": statefun.LongType,
    "float": statefun.FloatType,
    "double": statefun.DoubleType,
    "string": statefun.StringType,
}


def type_of(name):
    if name.startswith("json:"):
        return statefun.make_json_type(name[5:])
    return PRIMITIVES[name]


def answer(request):
    serializer = type_of(request["type"]).serializer()
    try:
        if request["op"] == "encode":
            value = eval(request["value"], {"math": math, "float": float})
            return {"hex": serializer.serialize(value).hex()}
        return {"repr": repr(serializer.deserialize(bytes.fromhex(request["hex"])))}
    except Exception as exc:  # noqa: BLE001 - reported back as data
        return {"error": f"{type(exc).__name__}: {exc}"}


if __name__ == "__main__":
    print(json.dumps([answer(r) for r in json.load(sys.stdin)]))
