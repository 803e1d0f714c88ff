"""Byte equality of typed values with the official SDK, at every primitive type's edges.

The expected bytes are produced at test time by ``apache-flink-statefun==3.3.0`` itself (see
``official_vectors.py``), never written by hand. Both directions are checked: our encoding
equals theirs, and each side decodes the other's bytes to the same value.
"""

from __future__ import annotations

import math
import random
import struct

import pytest

from pystatefun import sdk

pytestmark = pytest.mark.interop

EDGES: dict[str, list[str]] = {
    "int": ["0", "1", "-1", "127", "128", "255", "256", "2**31 - 1", "-(2**31)", "-2"],
    "long": ["0", "1", "-1", "2**31", "-(2**31) - 1", "2**63 - 1", "-(2**63)", "10**18"],
    "float": [
        "0.0",
        "-0.0",
        "1.5",
        "0.1",
        "-2.75",
        "math.nan",
        "math.inf",
        "-math.inf",
        "3.4028234663852886e38",
        "1.401298464324817e-45",
        "1.1754943508222875e-38",
        "1e-50",
        "1e40",
        "16777217.0",
        "-1.1981827900768349e-244",  # found by the random corpus: float32 -0.0
        "-1e-46",
        "7.006492321624086e-46",  # exactly half the smallest subnormal: ties to even, 0
        "3.4028235e38",  # just above FLT_MAX: protobuf 3.x saturates to inf, upb would not
        "-3.4028235677973366e38",
    ],
    "double": [
        "0.0",
        "-0.0",
        "0.1",
        "-1.5",
        "math.nan",
        "math.inf",
        "-math.inf",
        "1.7976931348623157e308",
        "5e-324",
        "2.2250738585072014e-308",
        "123456789.123456789",
    ],
    "bool": ["True", "False"],
    "string": [
        "''",
        "'a'",
        "'héllo wörld'",
        "'日本語のテキスト'",
        "'emoji 🎉🚀'",
        "'\\x00nul'",
        "'line\\nbreak\\ttab'",
        "'x' * 1000",
        "'\\U0010ffff'",
    ],
    "json:interop/Json": [
        "{'a': 1, 'b': [1, 2.5, None, True], 'ü': '日本'}",
        "[]",
        "''",
        "0",
        "1.5",
        "None",
        "{'nested': {'emoji': '🎉', 'big': 2**70}}",
        "'plain ascii'",
        "[{'k': -0.0}]",
    ],
}
OUT_OF_RANGE: dict[str, list[str]] = {
    "int": ["2**31", "-(2**31) - 1"],
    "long": ["2**63", "-(2**63) - 1"],
}

CASES = [(t, v) for t, values in EDGES.items() for v in values]


def _type(name: str) -> sdk.Type:
    if name.startswith("json:"):
        return sdk.make_json_type(name[5:])
    return {
        "bool": sdk.BoolType,
        "int": sdk.IntType,
        "long": sdk.LongType,
        "float": sdk.FloatType,
        "double": sdk.DoubleType,
        "string": sdk.StringType,
    }[name]


def _value(literal: str) -> object:
    return eval(literal, {"math": math})


def _same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return repr(a) == repr(b)


def test_our_encoding_equals_the_official_encoding(official_codec) -> None:
    answers = official_codec([{"op": "encode", "type": t, "value": v} for t, v in CASES])
    mismatches = []
    for (type_name, literal), answer in zip(CASES, answers, strict=True):
        assert "hex" in answer, f"official SDK failed to encode {type_name} {literal}: {answer}"
        ours = _type(type_name).serializer().serialize(_value(literal)).hex()
        if ours != answer["hex"]:
            mismatches.append(f"{type_name} {literal}: ours {ours} != official {answer['hex']}")
    assert not mismatches, "\n".join(mismatches)


def test_each_side_decodes_the_other(official_codec) -> None:
    ours_encoded = [_type(t).serializer().serialize(_value(v)).hex() for t, v in CASES]
    answers = official_codec(
        [
            {"op": "decode", "type": t, "hex": h}
            for (t, _), h in zip(CASES, ours_encoded, strict=True)
        ]
    )
    for (type_name, literal), encoded, answer in zip(CASES, ours_encoded, answers, strict=True):
        assert "repr" in answer, f"official SDK cannot decode our {type_name} {literal}: {answer}"
        decoded = _type(type_name).serializer().deserialize(bytes.fromhex(encoded))
        theirs = eval(answer["repr"], {"nan": math.nan, "inf": math.inf})
        assert _same(decoded, theirs), f"{type_name} {literal}: ours {decoded!r}, theirs {theirs!r}"


@pytest.mark.parametrize(
    ("type_name", "literal"), [(t, v) for t, vs in OUT_OF_RANGE.items() for v in vs]
)
def test_out_of_range_values_are_refused_by_both(official_codec, type_name, literal) -> None:
    [answer] = official_codec([{"op": "encode", "type": type_name, "value": literal}])
    assert "error" in answer, f"official SDK accepted {type_name} {literal}: {answer}"
    with pytest.raises(ValueError, match=r"does not fit io\.statefun\.types/"):
        _type(type_name).serializer().serialize(_value(literal))


def _random_literal(rng: random.Random, type_name: str) -> str:
    if type_name == "int":
        return repr(rng.randint(-(2**31), 2**31 - 1))
    if type_name == "long":
        return repr(rng.randint(-(2**63), 2**63 - 1))
    if type_name in {"float", "double"}:
        bits = rng.getrandbits(64)
        value = struct.unpack("<d", struct.pack("<Q", bits))[0]
        return "math.nan" if math.isnan(value) else repr(value).replace("inf", "math.inf")
    if type_name == "bool":
        return repr(rng.random() < 0.5)
    chars = [
        chr(
            rng.choice(
                [rng.randint(32, 126), rng.randint(0xA0, 0xD7FF), rng.randint(0xE000, 0x10FFFF)]
            )
        )
        for _ in range(rng.randint(0, 30))
    ]
    return repr("".join(chars))


def test_a_random_corpus_encodes_identically(official_codec) -> None:
    """Hundreds of random bit patterns per type, encoded by both SDKs in one subprocess call."""
    seed = random.SystemRandom().randrange(2**32)
    rng = random.Random(seed)
    cases = [
        (t, _random_literal(rng, t))
        for t in ("int", "long", "float", "double", "bool", "string")
        for _ in range(150)
    ]
    answers = official_codec([{"op": "encode", "type": t, "value": v} for t, v in cases])
    for (type_name, literal), answer in zip(cases, answers, strict=True):
        ours = _type(type_name).serializer().serialize(_value(literal)).hex()
        assert ours == answer.get("hex"), f"{type_name} {literal} (reproduce with seed={seed})"
