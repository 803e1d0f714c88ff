"""The same functions served by the official SDK and by ours answer the same batches alike.

Both servers are real processes on 127.0.0.1 (``support/functions/serve_python.py``): the official
``statefun`` 3.3.0 behind a stdlib HTTP server, ours behind ``pystatefun.sdk.aiohttp``. Each test
POSTs identical ``ToFunction`` bytes to both and requires identical ``FromFunction`` replies,
compared as messages and as bytes.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.wire import to_function as batch
from support.wire import typed as value

from pystatefun import sdk
from pystatefun.protocol import FromFunction, ToFunction, TypedValue

pytestmark = pytest.mark.interop

COMMAND = sdk.make_json_type("interop/Command")
COUNTER_STATES = ("count", "history", "last_name")
ALL_TYPES_STATES = ("a_bool", "an_int", "a_long", "a_float", "a_double", "a_string", "a_json")


def post(url: str, body: bytes) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url, data=body, method="POST", headers={"Content-Type": "application/octet-stream"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def ask_both(official_server, our_server, request: ToFunction) -> FromFunction:
    body = request.SerializeToString()
    official_status, official_body = post(official_server.url + "/", body)
    our_status, our_body = post(our_server.url + "/statefun", body)
    assert official_status == 200, official_body.decode(errors="replace")
    assert our_status == 200, our_body.decode(errors="replace")
    official, ours = FromFunction.FromString(official_body), FromFunction.FromString(our_body)
    assert ours == official, f"ours:\n{ours}\nofficial:\n{official}"
    assert our_body == official_body
    return ours


def command(**fields: object) -> TypedValue:
    return value(COMMAND, fields)


def test_missing_state_handshake_lists_every_spec(official_server, our_server) -> None:
    reply = ask_both(
        official_server,
        our_server,
        batch("interop/counter", "alice", {}, [(value(sdk.StringType, "alice"), None)]),
    )
    missing = reply.incomplete_invocation_context.missing_values
    assert [m.state_name for m in missing] == list(COUNTER_STATES)


def test_partially_registered_state_asks_for_the_rest(official_server, our_server) -> None:
    reply = ask_both(
        official_server,
        our_server,
        batch("interop/counter", "alice", {"count": None}, [(value(sdk.StringType, "a"), None)]),
    )
    assert [m.state_name for m in reply.incomplete_invocation_context.missing_values] == [
        "history",
        "last_name",
    ]


def test_a_batch_with_every_kind_of_effect(official_server, our_server) -> None:
    invocations = [
        (value(sdk.StringType, "bob"), None),
        (value(sdk.StringType, "carol"), "interop/caller/c1"),
        (value(sdk.IntType, 250), "interop/caller/c2"),
        (value(sdk.IntType, -250), None),
        (command(egress="kafka", topic="t1", value="v", key="k"), None),
        (command(egress="kafka", topic="t2", value="raw", as_bytes=True), None),
        (command(egress="kinesis", stream="s", value="v", partition_key="p"), None),
        (
            command(
                egress="kinesis", stream="s", value="v", partition_key="p", explicit_hash_key="h"
            ),
            None,
        ),
        (command(egress="generic", value={"x": [1, "ü"]}), None),
    ]
    state = dict.fromkeys(COUNTER_STATES)
    reply = ask_both(
        official_server, our_server, batch("interop/counter", "bob", state, invocations)
    )
    result = reply.invocation_result
    assert [m.state_name for m in result.state_mutations] == list(COUNTER_STATES)
    assert len(result.outgoing_messages) == 3
    assert len(result.delayed_invocations) == 3
    assert len(result.outgoing_egresses) == 5


def test_existing_state_is_read_modified_and_deleted(official_server, our_server) -> None:
    state = {
        "count": value(sdk.IntType, 41),
        "history": value(sdk.make_json_type("interop/History"), ["x", "ü"]),
        "last_name": value(sdk.StringType, "x"),
        "legacy_state_nobody_declares": value(sdk.LongType, 7),
    }
    invocations = [(value(sdk.StringType, "dave"), None), (value(sdk.IntType, 0), None)]
    reply = ask_both(
        official_server, our_server, batch("interop/counter", "dave", state, invocations)
    )
    mutations = reply.invocation_result.state_mutations
    assert [(m.state_name, m.mutation_type) for m in mutations] == [
        ("count", FromFunction.PersistedValueMutation.DELETE),
        ("history", FromFunction.PersistedValueMutation.DELETE),
        ("last_name", FromFunction.PersistedValueMutation.MODIFY),
    ]


def test_a_zero_length_value_reads_as_the_zero_value(official_server, our_server) -> None:
    state = dict.fromkeys(COUNTER_STATES)
    state["count"] = TypedValue(typename="io.statefun.types/int", has_value=True, value=b"")
    reply = ask_both(
        official_server,
        our_server,
        batch("interop/counter", "z", state, [(value(sdk.StringType, "z"), None)]),
    )
    count = reply.invocation_result.state_mutations[0]
    assert sdk.IntType.serializer().deserialize(count.state_value.value) == 1


def test_every_primitive_state_round_trips(official_server, our_server) -> None:
    sets = {
        "a_bool": True,
        "an_int": -(2**31),
        "a_long": 2**63 - 1,
        "a_float": 0.1,
        "a_double": -1e308,
        "a_string": "日本 🎉",
        "a_json": {"k": [None, 1.5]},
    }
    first = ask_both(
        official_server,
        our_server,
        batch(
            "interop/all-types",
            "t",
            dict.fromkeys(ALL_TYPES_STATES),
            [(command(set=sets, read=list(ALL_TYPES_STATES)), None)],
        ),
    )
    stored = {m.state_name: m.state_value for m in first.invocation_result.state_mutations}
    assert set(stored) == set(ALL_TYPES_STATES)
    second = ask_both(
        official_server,
        our_server,
        batch(
            "interop/all-types",
            "t",
            stored,
            [(command(read=list(ALL_TYPES_STATES), delete=["a_json", "a_bool"]), None)],
        ),
    )
    [egress] = second.invocation_result.outgoing_egresses
    seen = json.loads(sdk.StringType.serializer().deserialize(egress.argument.value))
    assert seen["a_long"] == repr(2**63 - 1)
    assert seen["a_string"] == repr("日本 🎉")


def test_a_batch_without_effects(official_server, our_server) -> None:
    state = dict.fromkeys(COUNTER_STATES)
    request = batch("interop/counter", "q", state, [(value(sdk.BoolType, True), None)])
    reply = ask_both(official_server, our_server, request)
    assert reply.SerializeToString() == b""


def test_async_functions_run_the_whole_batch(official_server, our_server) -> None:
    invocations = [(value(sdk.LongType, n), None) for n in (1, 2, 3, 2**40)]
    reply = ask_both(
        official_server,
        our_server,
        batch("interop/async", "a", {"total": value(sdk.LongType, 10)}, invocations),
    )
    assert len(reply.invocation_result.outgoing_messages) == 4


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(
            batch("interop/nobody", "x", {}, [(value(sdk.IntType, 1), None)]),
            id="unknown-function-type",
        ),
        pytest.param(
            batch(
                "interop/counter",
                "x",
                {"count": value(sdk.LongType, 1), "history": None, "last_name": None},
                [(value(sdk.StringType, "x"), None)],
            ),
            id="state-type-mismatch",
        ),
    ],
)
def test_invalid_batches_fail_on_both(official_server, our_server, request_) -> None:
    body = request_.SerializeToString()
    official_status, _ = post(official_server.url + "/", body)
    our_status, our_body = post(our_server.url + "/statefun", body)
    assert official_status >= 400
    assert our_status >= 400
    assert b"PSF-SDK" in our_body  # our answer names the error code, for the runtime's log


NAMES = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
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


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rounds=st.lists(
        st.lists(st.tuples(COUNTER_MESSAGES, CALLERS), min_size=1, max_size=8),
        min_size=1,
        max_size=5,
    )
)
def test_random_batches_carrying_state_forward(official_server, our_server, rounds) -> None:
    """Like a runtime would: each round's mutations become the next round's state."""
    state: dict[str, TypedValue | None] = dict.fromkeys(COUNTER_STATES)
    for invocations in rounds:
        reply = ask_both(
            official_server, our_server, batch("interop/counter", "h", state, invocations)
        )
        for mutation in reply.invocation_result.state_mutations:
            keep = mutation.mutation_type == FromFunction.PersistedValueMutation.MODIFY
            state[mutation.state_name] = mutation.state_value if keep else None
