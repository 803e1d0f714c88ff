"""The request batches of the interop tests: sent to the official Python SDK and ours
(``tests/interop/test_function_equivalence.py``) and to the Go and Java SDKs
(``tests/interop/test_sdk_equivalence.py``), all serving ``tests/interop/interop_functions.py``'s
logic."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from hypothesis import strategies as st

from pystatefun import sdk
from pystatefun.protocol import FromFunction, ToFunction, TypedValue
from support.wire import to_function as batch
from support.wire import typed as value

COMMAND = sdk.make_json_type("interop/Command")
COUNTER_STATES = ("count", "history", "last_name")
ALL_TYPES_STATES = ("a_bool", "an_int", "a_long", "a_float", "a_double", "a_string", "a_json")

Invocation = tuple[TypedValue, str | None]


def command(**fields: object) -> TypedValue:
    return value(COMMAND, fields)


EVERY_EFFECT: list[Invocation] = [
    (value(sdk.StringType, "bob"), None),
    (value(sdk.StringType, "carol"), "interop/caller/c1"),
    (value(sdk.IntType, 250), "interop/caller/c2"),
    (value(sdk.IntType, -250), None),
    (command(egress="kafka", topic="t1", value="v", key="k"), None),
    (command(egress="kafka", topic="t2", value="raw", as_bytes=True), None),
    (command(egress="kinesis", stream="s", value="v", partition_key="p"), None),
    (command(egress="kinesis", stream="s", value="v", partition_key="p",
             explicit_hash_key="h"), None),
    (command(egress="generic", value={"x": [1, "ü"]}), None),
]  # fmt: skip
EXISTING_STATE: dict[str, TypedValue | None] = {
    "count": value(sdk.IntType, 41),
    "history": value(sdk.make_json_type("interop/History"), ["x", "ü"]),
    "last_name": value(sdk.StringType, "x"),
    "legacy_state_nobody_declares": value(sdk.LongType, 7),
}
ZERO_LENGTH_STATE: dict[str, TypedValue | None] = {
    **dict.fromkeys(COUNTER_STATES),
    "count": TypedValue(typename="io.statefun.types/int", has_value=True, value=b""),
}
ALL_TYPES_SETS = {
    "a_bool": True,
    "an_int": -(2**31),
    "a_long": 2**63 - 1,
    "a_float": 0.1,
    "a_double": -1e308,
    "a_string": "日本 🎉",
    "a_json": {"k": [None, 1.5]},
}


@dataclass(frozen=True)
class Case:
    """Batches to one address: each round's state is the last one's, with its reply's mutations
    applied (``carry``), as a runtime would send them."""

    typename: str
    target_id: str
    state: dict[str, TypedValue | None]
    rounds: tuple[list[Invocation], ...]


CASES = {
    "handshake-every-spec": Case(
        "interop/counter", "alice", {}, ([(value(sdk.StringType, "alice"), None)],)
    ),
    "handshake-part-registered": Case(
        "interop/counter", "alice", {"count": None}, ([(value(sdk.StringType, "a"), None)],)
    ),
    "every-kind-of-effect": Case(
        "interop/counter", "bob", dict.fromkeys(COUNTER_STATES), (EVERY_EFFECT,)
    ),
    "existing-state-read-modified-deleted": Case(
        "interop/counter",
        "dave",
        EXISTING_STATE,
        ([(value(sdk.StringType, "dave"), None), (value(sdk.IntType, 0), None)],),
    ),
    "zero-length-value": Case(
        "interop/counter", "z", ZERO_LENGTH_STATE, ([(value(sdk.StringType, "z"), None)],)
    ),
    "every-primitive-state": Case(
        "interop/all-types",
        "t",
        dict.fromkeys(ALL_TYPES_STATES),
        (
            [(command(set=ALL_TYPES_SETS, read=list(ALL_TYPES_STATES)), None)],
            [(command(read=list(ALL_TYPES_STATES), delete=["a_json", "a_bool"]), None)],
        ),
    ),
    "no-effects": Case(
        "interop/counter",
        "q",
        dict.fromkeys(COUNTER_STATES),
        ([(value(sdk.BoolType, True), None)],),
    ),
    "async-batch": Case(
        "interop/async",
        "a",
        {"total": value(sdk.LongType, 10)},
        ([(value(sdk.LongType, n), None) for n in (1, 2, 3, 2**40)],),
    ),
}
INVALID: dict[str, ToFunction] = {
    "unknown-function-type": batch("interop/nobody", "x", {}, [(value(sdk.IntType, 1), None)]),
    "state-type-mismatch": batch(
        "interop/counter",
        "x",
        {"count": value(sdk.LongType, 1), "history": None, "last_name": None},
        [(value(sdk.StringType, "x"), None)],
    ),
}


def carry(state: dict[str, TypedValue | None], reply: FromFunction) -> dict[str, TypedValue | None]:
    """``state`` after ``reply``'s mutations."""
    carried = dict(state)
    for mutation in reply.invocation_result.state_mutations:
        keep = mutation.mutation_type == FromFunction.PersistedValueMutation.MODIFY
        carried[mutation.state_name] = mutation.state_value if keep else None
    return carried


_SURROGATES: tuple[Literal["Cs"]] = ("Cs",)
NAMES = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=_SURROGATES), max_size=12)
COUNTER_MESSAGES = st.one_of(
    NAMES.map(lambda n: value(sdk.StringType, n)),
    st.integers(-(2**31), 2**31 - 1).map(lambda n: value(sdk.IntType, n)),
    st.builds(
        lambda topic, v, key: command(egress="kafka", topic=topic or "t", value=v, key=key),
        NAMES,
        NAMES,
        st.none() | NAMES,
    ),
)
CALLERS = st.none() | st.sampled_from(["interop/caller/a", "interop/other/b"])
#: Rounds of counter batches: each a list of invocations.
COUNTER_ROUNDS = st.lists(
    st.lists(st.tuples(COUNTER_MESSAGES, CALLERS), min_size=1, max_size=8),
    min_size=1,
    max_size=5,
)
