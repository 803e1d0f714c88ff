"""The same functions served by the official SDK and by ours answer the same batches alike.

Both servers are real processes on 127.0.0.1 (``support/functions/serve_python.py``): the official
``statefun`` 3.3.0 behind a stdlib HTTP server, ours behind ``pystatefun.sdk.aiohttp``. Each test
POSTs identical ``ToFunction`` bytes to both and requires identical ``FromFunction`` replies,
compared as messages and as bytes.
"""

from __future__ import annotations

import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from support.interop_cases import (
    ALL_TYPES_SETS,
    ALL_TYPES_STATES,
    COUNTER_ROUNDS,
    COUNTER_STATES,
    EVERY_EFFECT,
    EXISTING_STATE,
    INVALID,
    ZERO_LENGTH_STATE,
    carry,
    command,
)
from support.wire import to_function as batch
from support.wire import typed as value

from pystatefun import sdk
from pystatefun.protocol import FromFunction, ToFunction, TypedValue

pytestmark = pytest.mark.interop


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
    state: dict[str, TypedValue | None] = dict.fromkeys(COUNTER_STATES)
    reply = ask_both(
        official_server, our_server, batch("interop/counter", "bob", state, EVERY_EFFECT)
    )
    result = reply.invocation_result
    assert [m.state_name for m in result.state_mutations] == list(COUNTER_STATES)
    assert len(result.outgoing_messages) == 3
    assert len(result.delayed_invocations) == 3
    assert len(result.outgoing_egresses) == 5


def test_existing_state_is_read_modified_and_deleted(official_server, our_server) -> None:
    invocations = [(value(sdk.StringType, "dave"), None), (value(sdk.IntType, 0), None)]
    reply = ask_both(
        official_server, our_server, batch("interop/counter", "dave", EXISTING_STATE, invocations)
    )
    mutations = reply.invocation_result.state_mutations
    assert [(m.state_name, m.mutation_type) for m in mutations] == [
        ("count", FromFunction.PersistedValueMutation.DELETE),
        ("history", FromFunction.PersistedValueMutation.DELETE),
        ("last_name", FromFunction.PersistedValueMutation.MODIFY),
    ]


def test_a_zero_length_value_reads_as_the_zero_value(official_server, our_server) -> None:
    reply = ask_both(
        official_server,
        our_server,
        batch("interop/counter", "z", ZERO_LENGTH_STATE, [(value(sdk.StringType, "z"), None)]),
    )
    count = reply.invocation_result.state_mutations[0]
    assert sdk.IntType.serializer().deserialize(count.state_value.value) == 1


def test_every_primitive_state_round_trips(official_server, our_server) -> None:
    first = ask_both(
        official_server,
        our_server,
        batch(
            "interop/all-types",
            "t",
            dict.fromkeys(ALL_TYPES_STATES),
            [(command(set=ALL_TYPES_SETS, read=list(ALL_TYPES_STATES)), None)],
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
    read_back = [
        (egress.argument.typename, egress.argument.value)
        for egress in first.invocation_result.outgoing_egresses
    ]
    assert read_back == [(stored[n].typename, stored[n].value) for n in ALL_TYPES_STATES]
    seen = [e.argument for e in second.invocation_result.outgoing_egresses]
    assert [sdk.StringType.serializer().deserialize(s.value) for s in seen[:1] + seen[-1:]] == [
        "a_bool is empty",
        "a_json is empty",
    ]
    assert sdk.LongType.serializer().deserialize(seen[2].value) == 2**63 - 1
    assert sdk.StringType.serializer().deserialize(seen[5].value) == "日本 🎉"


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


@pytest.mark.parametrize("request_", list(INVALID.values()), ids=list(INVALID))
def test_invalid_batches_fail_on_both(official_server, our_server, request_) -> None:
    body = request_.SerializeToString()
    official_status, _ = post(official_server.url + "/", body)
    our_status, our_body = post(our_server.url + "/statefun", body)
    assert official_status >= 400
    assert our_status >= 400
    assert b"PSF-SDK" in our_body  # our answer names the error code, for the runtime's log


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rounds=COUNTER_ROUNDS)
def test_random_batches_carrying_state_forward(official_server, our_server, rounds) -> None:
    """Like a runtime would: each round's mutations become the next round's state."""
    state: dict[str, TypedValue | None] = dict.fromkeys(COUNTER_STATES)
    for invocations in rounds:
        reply = ask_both(
            official_server, our_server, batch("interop/counter", "h", state, invocations)
        )
        state = carry(state, reply)
