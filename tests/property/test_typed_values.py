"""Round-trip properties of the type system at the full range of every type."""

from __future__ import annotations

import math
import struct

from hypothesis import given
from hypothesis import strategies as st

from pystatefun.protocol.typed_values import (
    BOOL,
    DOUBLE,
    FLOAT,
    INT,
    LONG,
    PRIMITIVES,
    STRING,
    primitive_error,
)
from pystatefun.sdk import make_json_type

INT32 = st.integers(-(2**31), 2**31 - 1)
INT64 = st.integers(-(2**63), 2**63 - 1)
TEXT = st.text(alphabet=st.characters(codec="utf-8"))


def _same_float(a: float, b: float) -> bool:
    return (math.isnan(a) and math.isnan(b)) or a == b


@given(INT32)
def test_int(value: int) -> None:
    data = INT.encode(value)
    assert INT.decode(data) == value
    assert len(data) == (0 if value == 0 else 5)  # tag + sfixed32


@given(INT64)
def test_long(value: int) -> None:
    assert LONG.decode(LONG.encode(value)) == value


@given(st.floats(width=32))
def test_float_keeps_every_float32(value: float) -> None:
    assert _same_float(FLOAT.decode(FLOAT.encode(value)), value)


FLOAT32_MAX = 3.4028234663852886e38


@given(st.floats() | st.floats(min_value=FLOAT32_MAX, max_value=3.40282357e38))
def test_float_rounds_doubles_like_the_official_sdk(value: float) -> None:
    """Round to nearest float32, except that anything beyond FLT_MAX saturates to infinity."""
    if math.isfinite(value) and abs(value) > FLOAT32_MAX:
        expected = math.copysign(math.inf, value)
    else:
        expected = struct.unpack("<f", struct.pack("<f", value))[0]
    assert _same_float(FLOAT.decode(FLOAT.encode(value)), expected)


@given(st.floats())
def test_double(value: float) -> None:
    assert _same_float(DOUBLE.decode(DOUBLE.encode(value)), value)


@given(st.booleans())
def test_bool(value: bool) -> None:
    assert BOOL.decode(BOOL.encode(value)) is value


@given(TEXT)
def test_string(value: str) -> None:
    assert STRING.decode(STRING.encode(value)) == value


def test_the_zero_value_of_every_primitive_is_empty_bytes() -> None:
    for primitive in PRIMITIVES.values():
        zero = primitive.python_type()
        assert primitive.encode(zero) == b""
        assert primitive.decode(b"") == zero


JSON = st.recursive(
    st.none() | st.booleans() | INT64 | st.floats(allow_nan=False, allow_infinity=False) | TEXT,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(TEXT, children, max_size=4),
    max_leaves=20,
)


@given(JSON)
def test_json(value: object) -> None:
    serializer = make_json_type("x/Json").serializer()
    assert serializer.deserialize(serializer.serialize(value)) == value


@given(TEXT)
def test_every_encoded_string_is_a_string_and_plain_text_is_not(value: str) -> None:
    """``primitive_error`` accepts what the SDKs write and refuses plain text (what a Kafka
    producer that does not use the SDK writes), the commonest mistake with ``valueType``."""
    assert primitive_error(STRING.typename, STRING.encode(value)) is None
    assert primitive_error("com.example/Name", value.encode()) is None  # not a primitive
    if value.isprintable() and value and not value.startswith("\n"):
        assert primitive_error(STRING.typename, value.encode()) is not None


@given(INT32, INT64)
def test_numbers_are_checked_against_their_own_wrapper(small: int, large: int) -> None:
    assert primitive_error(INT.typename, INT.encode(small)) is None
    assert primitive_error(LONG.typename, LONG.encode(large)) is None
    assert primitive_error(INT.typename, b"42") == "is not a serialized IntWrapper"
    # A wrapper of another type has a field of another wire type: not an IntWrapper either.
    if large:
        assert primitive_error(INT.typename, LONG.encode(large)) is not None
