"""Fuzzing the decoders: any bytes give a valid message or value, or a ``ProtocolError`` that
says what was expected; never protobuf's ``DecodeError`` or another exception type.

Each example gets a deadline far above its cost (microseconds), so a decoder that loops or
goes quadratic on some input fails here instead of hanging a runtime.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from support.strategies import FUZZ, from_functions, mutated, to_functions

from pystatefun.errors import ProtocolError
from pystatefun.protocol import FromFunction, ToFunction, parse_from_function, parse_to_function
from pystatefun.protocol.typed_values import PRIMITIVES
from pystatefun.sdk import (
    BoolType,
    DoubleType,
    FloatType,
    IntType,
    LongType,
    StringType,
    make_json_type,
    make_protobuf_type,
)

pytestmark = pytest.mark.timeout(120)
# Plain noise, and the kinds of damage a broken peer or proxy does to a real message.
TO_FUNCTION_BYTES = st.binary(max_size=300) | mutated(to_functions())
FROM_FUNCTION_BYTES = st.binary(max_size=300) | mutated(from_functions())
# Deeply nested groups and length prefixes: protobuf's recursion limit must answer, not Python's.
NESTED = st.integers(1, 5000).map(lambda depth: b"\x0b" * depth) | st.integers(1, 3000).map(
    lambda depth: b"\x0a\x7f" * depth
)


def _says_what_it_expected(error: ProtocolError, expected: str) -> None:
    text = str(error)
    assert expected in text, text
    assert text.endswith("[PSF-SDK0005]"), text


@FUZZ
@given(TO_FUNCTION_BYTES | NESTED)
def test_any_bytes_are_a_to_function_or_a_protocol_error(data: bytes) -> None:
    try:
        message = parse_to_function(data)
    except ProtocolError as error:
        _says_what_it_expected(error, "ToFunction")
        return
    assert message.HasField("invocation")
    # What decoded is a real message: it encodes, and decodes back to itself.
    assert ToFunction.FromString(message.SerializeToString()) == message


@FUZZ
@given(FROM_FUNCTION_BYTES | NESTED)
def test_any_bytes_are_a_from_function_or_a_protocol_error(data: bytes) -> None:
    try:
        message = parse_from_function(data)
    except ProtocolError as error:
        _says_what_it_expected(error, "FromFunction")
        return
    assert FromFunction.FromString(message.SerializeToString()) == message


@FUZZ
@given(data=st.binary(max_size=300) | NESTED, as_view=st.booleans())
def test_decoders_take_bytearray_and_memoryview_alike(data: bytes, as_view: bool) -> None:
    buffer = memoryview(data) if as_view else bytearray(data)
    for parse in (parse_to_function, parse_from_function):
        try:
            expected: object = parse(data)
        except ProtocolError as error:
            expected = str(error)
        try:
            got: object = parse(buffer)
        except ProtocolError as error:
            got = str(error)
        assert got == expected


# The wire bytes of each primitive (a protobuf wrapper): valid ones, noise, and damaged ones.
PRIMITIVE_BYTES = (
    st.binary(max_size=40)
    | NESTED
    | st.builds(lambda tag, rest: bytes([tag]) + rest, st.integers(0, 255), st.binary(max_size=12))
)


@FUZZ
@given(typename=st.sampled_from(sorted(PRIMITIVES)), data=PRIMITIVE_BYTES)
def test_any_bytes_are_a_primitive_value_or_a_protocol_error(typename: str, data: bytes) -> None:
    primitive = PRIMITIVES[typename]
    try:
        value = primitive.decode(data)
    except ProtocolError as error:
        _says_what_it_expected(error, f"not a valid {typename}")
        return
    assert type(value) is primitive.python_type
    if primitive.python_type is int:
        bits = 32 if typename.endswith("/int") else 64
        assert -(2 ** (bits - 1)) <= value < 2 ** (bits - 1)
    # A decoded value is canonical: encoding it gives bytes that decode to the same value.
    again = primitive.decode(primitive.encode(value))  # type: ignore[arg-type]
    assert again == value or (value != value and again != again)  # noqa: PLR0124 - NaN


SDK_TYPES = [BoolType, IntType, LongType, FloatType, DoubleType, StringType]


@FUZZ
@given(tpe=st.sampled_from(SDK_TYPES), data=PRIMITIVE_BYTES)
def test_sdk_primitive_types_decode_like_the_protocol(tpe: object, data: bytes) -> None:
    """``IntType.serializer().deserialize`` is what ``message.as_int()`` and state reads use."""
    primitive = PRIMITIVES[tpe.typename]  # type: ignore[attr-defined]
    try:
        expected: object = primitive.decode(data)
    except ProtocolError as error:
        expected = str(error)
    try:
        got: object = tpe.serializer().deserialize(data)  # type: ignore[attr-defined]
    except ProtocolError as error:
        got = str(error)
    assert got == expected or (got != got and expected != expected)  # noqa: PLR0124 - NaN


JSON_TYPE = make_json_type("fuzz/Doc")
PROTOBUF_TYPE = make_protobuf_type(FromFunction)


JSON_BYTES = (
    st.binary(max_size=60)
    | st.text(alphabet='[]{}":,.-+eE0123456789aflnrstuNI \\\x80', max_size=30).map(str.encode)
    | st.builds(bytes.__mul__, st.sampled_from([b"[", b'{"a":', b"-"]), st.integers(1, 50_000))
)


@FUZZ
@given(JSON_BYTES)
def test_any_bytes_are_a_json_value_or_a_protocol_error(data: bytes) -> None:
    serializer = JSON_TYPE.serializer()
    try:
        value = serializer.deserialize(data)
    except ProtocolError as error:
        _says_what_it_expected(error, "not a valid fuzz/Doc (JSON)")
        return
    # Compared as JSON text: NaN, which json.loads accepts, is not equal to itself.
    assert serializer.serialize(serializer.deserialize(serializer.serialize(value))) == (
        serializer.serialize(value)
    )


@FUZZ
@given(FROM_FUNCTION_BYTES | NESTED)
def test_any_bytes_are_a_protobuf_value_or_a_protocol_error(data: bytes) -> None:
    try:
        value = PROTOBUF_TYPE.serializer().deserialize(data)
    except ProtocolError as error:
        _says_what_it_expected(error, f"not a valid {PROTOBUF_TYPE.typename}")
        return
    assert isinstance(value, FromFunction)
