"""Every built-in type (``io.statefun.types/*``) and a custom JSON type, alike in every SDK.

The official Python SDK encodes each value (``official_vectors.py``, in its own virtualenv); the
official JavaScript, Go and Java SDKs are asked, each through its own types in its server
(``support/sdk_vectors.py``), to encode the same value and to decode the official bytes. Ours is
byte-equal to the official Python SDK (``test_typed_value_vectors.py``), so four SDKs plus ours
are pinned to one encoding here:

- an SDK's encoding is the official bytes, except for the differences listed in ``DIFFERENT``,
  each pinned to its exact bytes, which our SDK must still decode to the value meant;
- an SDK decodes the official bytes to the value our SDK decodes them to;
- JSON bytes legitimately differ (whitespace, escapes, key order): they must parse to the value;
- the JavaScript SDK has no ``long`` and no ``double`` type, and says so.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Callable
from typing import Any

import pytest
from support.effects import json_value
from support.sdk_servers import VECTOR_SDKS, SdkServers
from support.sdk_vectors import TYPES, ask, canonical

pytestmark = pytest.mark.interop

Codec = Callable[[list[dict[str, Any]]], list[dict[str, str]]]


def f32(x: float) -> str:
    """The literal of ``x`` rounded to a float32: the Go and Java SDKs take float32 values."""
    return repr(struct.unpack("<f", struct.pack("<f", x))[0])


VALUES: dict[str, list[str]] = {
    "bool": ["True", "False"],
    "int": ["0", "1", "-1", "127", "128", "255", "2**31 - 1", "-(2**31)", "-2"],
    "long": ["0", "1", "-1", "2**31", "-(2**31) - 1", "2**63 - 1", "-(2**63)", "10**18"],
    "float": [
        "0.0", "-0.0", "1.5", "-2.75", f32(0.1), "math.nan", "math.inf", "-math.inf",
        f32(3.4028234663852886e38), f32(1.401298464324817e-45),
        f32(1.1754943508222875e-38), "16777216.0",
    ],
    "double": [
        "0.0", "-0.0", "0.1", "-1.5", "math.nan", "math.inf", "-math.inf",
        "1.7976931348623157e308", "5e-324", "2.2250738585072014e-308", "123456789.123456789",
    ],
    "string": [
        "''", "'a'", "'héllo wörld'", "'日本語のテキスト'", "'emoji 🎉🚀'", "'\\x00nul'",
        "'line\\nbreak\\ttab'", "'x' * 1000", "'\\U0010ffff'",
    ],
    "json": [
        "{'a': 1, 'b': [1, 2.5, None, True], 'ü': '日本'}", "[]", "''", "0", "1.5", "None",
        "{'nested': {'emoji': '🎉', 'deep': [[[]]]}}", "'plain ascii'", "2**53",
    ],
}  # fmt: skip
CASES = [(t, literal) for t, literals in VALUES.items() for literal in literals]
#: The encodings that are not the official Python SDK's: (sdk, type, literal) -> their hex.
#: Protobuf leaves a zero field off the wire; Go's protobuf tests a float's bits, so it writes
#: -0.0 (whose bits are not zero), where the Python, JavaScript and Java SDKs compare it to 0
#: and drop it (it then decodes as +0.0). The JavaScript SDK writes a float NaN with another
#: payload (both decode as NaN).
DIFFERENT = {
    ("official-go", "float", "-0.0"): "0d00000080",
    ("official-go", "double", "-0.0"): "090000000000000080",
    ("official-js", "float", "math.nan"): "0dffffff7f",
}
#: The JavaScript SDK's types.js: "The following types are simply not supported in JavaScript."
MISSING_TYPES = {("official-js", "long"), ("official-js", "double")}


def _value(literal: str) -> Any:
    return eval(literal, {"math": math})


def _official_type(type_name: str) -> str:
    return "json:interop/Json" if type_name == "json" else type_name


def _as_sent(type_name: str, value: Any) -> Any:
    """``value`` as it travels, to compare: JSON as parsed with numbers as doubles, and every
    NaN alike (StateFun gives NaN payloads no meaning, and the SDKs do not keep them)."""
    if type_name == "json":
        return json_value(value)
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    return canonical(type_name, value)


def _decoded(type_name: str, raw: bytes) -> Any:
    """``raw`` decoded by our SDK, as it travels."""
    return _as_sent(type_name, TYPES[type_name].serializer().deserialize(raw))


def _received(type_name: str, value: Any) -> Any:
    """A value an SDK decoded, as it travels, to compare."""
    if type_name == "float":
        return _as_sent(type_name, struct.unpack(">f", bytes.fromhex(value))[0])
    if type_name == "double":
        return _as_sent(type_name, struct.unpack(">d", bytes.fromhex(value))[0])
    return _as_sent(type_name, value) if type_name == "json" else value


@pytest.fixture(scope="module")
def official_hex(official_codec: Codec) -> dict[tuple[str, str], str]:
    answers = official_codec(
        [{"op": "encode", "type": _official_type(t), "value": v} for t, v in CASES]
    )
    assert all("hex" in a for a in answers), answers
    return {case: answer["hex"] for case, answer in zip(CASES, answers, strict=True)}


@pytest.mark.parametrize("sdk_name", VECTOR_SDKS)
def test_every_sdk_encodes_as_the_official_sdk(
    sdk_name: str, sdk_servers: SdkServers, official_hex: dict[tuple[str, str], str]
) -> None:
    requests = [{"op": "encode", "type": t, "value": canonical(t, _value(v))} for t, v in CASES]
    answers = ask(sdk_servers[sdk_name], requests)
    wrong = []
    for (type_name, literal), answer in zip(CASES, answers, strict=True):
        if (sdk_name, type_name) in MISSING_TYPES:
            assert answer == {"error": f"Error: no type {type_name}"}, answer
            continue
        assert "hex" in answer, f"{sdk_name} cannot encode {type_name} {literal}: {answer}"
        theirs = _decoded(type_name, bytes.fromhex(answer["hex"]))
        if type_name == "json":  # the bytes are their JSON library's; the value must be ours
            assert theirs == _as_sent(type_name, _value(literal)), f"{sdk_name} json {literal}"
            continue
        different = DIFFERENT.get((sdk_name, type_name, literal))
        if different is not None:  # their bytes, which we read as the value they were given
            assert theirs == _as_sent(type_name, _value(literal)), f"{sdk_name} {literal}"
        expected = different or official_hex[type_name, literal]
        if answer["hex"] != expected:
            wrong.append(f"{type_name} {literal}: {answer['hex']} != {expected}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("sdk_name", VECTOR_SDKS)
def test_every_sdk_decodes_the_official_bytes(
    sdk_name: str, sdk_servers: SdkServers, official_hex: dict[tuple[str, str], str]
) -> None:
    requests = [{"op": "decode", "type": t, "hex": official_hex[t, v]} for t, v in CASES]
    answers = ask(sdk_servers[sdk_name], requests)
    for (type_name, literal), answer in zip(CASES, answers, strict=True):
        if (sdk_name, type_name) in MISSING_TYPES:
            assert "error" in answer, answer
            continue
        assert "value" in answer, f"{sdk_name} cannot decode {type_name} {literal}: {answer}"
        raw = bytes.fromhex(official_hex[type_name, literal])
        theirs = _received(type_name, answer["value"])
        assert theirs == _decoded(type_name, raw), f"{sdk_name} {type_name} {literal}"


def test_the_pinned_differences_are_differences(
    official_hex: dict[tuple[str, str], str],
) -> None:
    """Each ``DIFFERENT`` entry differs from the official bytes (else it is not needed)."""
    for (_, type_name, literal), theirs in DIFFERENT.items():
        assert official_hex[type_name, literal] != theirs
