"""Defining functions: ValueSpec rules, types, binding. Each error names what is wrong and how
to fix it."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from pystatefun.errors import ConfigurationError, ProtocolError, UnknownFunctionError
from pystatefun.protocol import TypedValue
from pystatefun.sdk import (
    IntType,
    StatefulFunctions,
    StringType,
    Type,
    TypeSerializer,
    ValueSpec,
    make_json_type,
    make_protobuf_type,
    simple_type,
)


@pytest.mark.parametrize("name", ["count", "_private", "seen_2", "a"])
def test_valid_state_names(name: str) -> None:
    assert ValueSpec(name, IntType).name == name


@pytest.mark.parametrize("name", ["", "Count", "2nd", "has space", "class", "dash-ed"])
def test_invalid_state_names_say_the_rule(name: str) -> None:
    with pytest.raises(ConfigurationError, match="lowercase Python identifier"):
        ValueSpec(name, IntType)


def test_invalid_state_names_are_value_errors_like_upstream() -> None:
    with pytest.raises(ValueError, match="PSF-SDK0001"):
        ValueSpec("Bad", IntType)


def test_expiration_is_in_milliseconds_and_exclusive() -> None:
    after_call = ValueSpec("a", IntType, expire_after_call=timedelta(seconds=2))
    assert (after_call.after_call, after_call.after_write, after_call.duration) == (
        True,
        False,
        2000,
    )
    after_write = ValueSpec("b", IntType, expire_after_write=timedelta(minutes=1))
    assert (after_write.after_call, after_write.after_write, after_write.duration) == (
        False,
        True,
        60_000,
    )
    assert ValueSpec("c", IntType).duration == 0
    with pytest.raises(ConfigurationError, match="not both"):
        ValueSpec("d", IntType, timedelta(seconds=1), timedelta(seconds=1))
    with pytest.raises(ConfigurationError, match="at least 1 ms"):
        ValueSpec("e", IntType, expire_after_call=timedelta(microseconds=10))
    with pytest.raises(ConfigurationError, match="at least 1 ms"):
        ValueSpec("f", IntType, expire_after_write=timedelta(seconds=-1))


def test_value_spec_needs_a_type() -> None:
    with pytest.raises(ConfigurationError, match="must be a pystatefun.sdk Type"):
        ValueSpec("x", int)  # type: ignore[arg-type]


def test_type_names_are_validated() -> None:
    with pytest.raises(ConfigurationError, match="namespace>/<name>"):
        make_json_type("no-slash")
    with pytest.raises(ConfigurationError, match="needs a typename"):
        make_json_type("")
    assert make_json_type("com.example/v1/User").typename == "com.example/v1/User"


def test_simple_type_accepts_str_returning_serializers() -> None:
    tpe = simple_type("x/upper", str.upper, lambda b: b.decode().lower())
    assert tpe.serializer().serialize("abc") == b"ABC"
    assert tpe.serializer().deserialize(b"ABC") == "abc"


def test_custom_type_subclass() -> None:
    class Reversed(TypeSerializer):
        def serialize(self, value: object) -> bytes:
            return str(value)[::-1].encode()

        def deserialize(self, data: bytes) -> object:
            return data.decode()[::-1]

    class ReversedType(Type):
        def serializer(self) -> TypeSerializer:
            return Reversed()

    tpe = ReversedType("x/reversed")
    assert tpe.serializer().serialize("abc") == b"cba"
    assert repr(tpe) == "ReversedType('x/reversed')"


def test_protobuf_types_are_named_after_the_message() -> None:
    tpe = make_protobuf_type(TypedValue)
    assert tpe.typename == "type.googleapis.com/io.statefun.sdk.reqreply.TypedValue"
    assert make_protobuf_type(TypedValue, "com.example").typename == (
        "com.example/io.statefun.sdk.reqreply.TypedValue"
    )
    value = TypedValue(typename="a/b", has_value=True, value=b"\x01")
    assert tpe.serializer().deserialize(tpe.serializer().serialize(value)) == value
    with pytest.raises(TypeError, match="expected a io.statefun.sdk.reqreply.TypedValue"):
        tpe.serializer().serialize("not a message")
    with pytest.raises(ConfigurationError, match="generated protobuf message class"):
        make_protobuf_type(dict)  # type: ignore[arg-type]


def test_json_type_writes_utf8_not_ascii_escapes() -> None:
    assert make_json_type("x/j").serializer().serialize({"ü": "日"}) == '{"ü": "日"}'.encode()


@pytest.mark.parametrize(
    ("tpe", "data", "says"),
    [
        # Found by tests/property/test_fuzz_protocol.py: each raised json's or protobuf's own error.
        (make_json_type("x/j"), b"", "0 bytes are not a valid x/j (JSON): Expecting value"),
        (make_json_type("x/j"), b"\x80", "not a valid x/j (JSON): 'utf-8' codec can't decode"),
        (make_json_type("x/j"), b"[" * 50_000, "not a valid x/j (JSON): nested too deeply"),
        (
            make_protobuf_type(TypedValue),
            b"\x00",
            "1 bytes are not a valid type.googleapis.com/io.statefun.sdk.reqreply.TypedValue",
        ),
    ],
    ids=["json-empty", "json-not-utf8", "json-too-deep", "protobuf-corrupt"],
)
def test_bytes_that_are_not_a_value_of_the_type_are_protocol_errors(
    tpe: Type, data: bytes, says: str
) -> None:
    with pytest.raises(ProtocolError, match=re.escape(says)) as raised:
        tpe.serializer().deserialize(data)
    assert isinstance(raised.value, ValueError)  # what `except ValueError` around json.loads caught


def test_binding_validates_everything() -> None:
    functions = StatefulFunctions()

    @functions.bind("x/ok", specs=[ValueSpec("a", IntType)])
    def ok(context: object, message: object) -> None: ...

    assert functions.typenames == ["x/ok"]
    with pytest.raises(ConfigurationError, match="already bound"):
        functions.register("x/ok", ok)
    with pytest.raises(ConfigurationError, match=r"two positional arguments \(context, message\)"):
        functions.register("x/one-arg", lambda context: None)
    with pytest.raises(ConfigurationError, match="declares state 'a' twice"):
        functions.register("x/dup", ok, [ValueSpec("a", IntType), ValueSpec("a", StringType)])
    with pytest.raises(ConfigurationError, match="must be ValueSpec objects"):
        functions.register("x/bad-spec", ok, ["a"])  # type: ignore[list-item]
    with pytest.raises(ConfigurationError, match="invalid type name .noslash."):
        functions.register("noslash", ok)
    with pytest.raises(ConfigurationError, match="not callable"):
        functions.register("x/nope", 42)  # type: ignore[arg-type]


def test_bound_methods_and_async_callables_bind() -> None:
    class Greeter:
        def greet(self, context: object, message: object) -> None: ...

        async def __call__(self, context: object, message: object) -> None: ...

    functions = StatefulFunctions()
    functions.register("x/method", Greeter().greet)
    functions.register("x/callable", Greeter())
    assert functions.for_typename("x/method").is_async is False
    assert functions.for_typename("x/callable").is_async is True


def test_unknown_function_type_lists_the_bound_ones() -> None:
    functions = StatefulFunctions()
    functions.register("x/b", lambda c, m: None)
    functions.register("x/a", lambda c, m: None)
    with pytest.raises(UnknownFunctionError) as raised:
        functions.for_typename("x/c")
    assert "'x/c'" in str(raised.value)
    assert "bound types: x/a, x/b" in str(raised.value)
    assert isinstance(raised.value, KeyError)  # what upstream raised
