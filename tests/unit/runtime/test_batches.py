"""Requests from mailbox rows and steps from replies: every validation StateFun makes, with
errors that name the address and the state."""

from __future__ import annotations

import re

import pytest

from pystatefun.errors import RetryableError, TerminalError
from pystatefun.io.playground import PlaygroundEgressServer
from pystatefun.protocol import FromFunction, ToFunction, TypedValue
from pystatefun.runtime.batches import (
    HANDSHAKE_ROUNDS_MAX,
    build_request,
    invocation_rounds,
    step_from_reply,
)
from pystatefun.runtime.egress import EgressRoutes
from pystatefun.runtime.registry import LONGEST_MS, RegisteredState, StateRegistry
from pystatefun.store import ExpireMode, InboxMessage, Payload, StateValue
from pystatefun.store.keygroups import key_group_of
from pystatefun.types import Address

SELF = Address("ns", "fn", "me")
INT = "io.statefun.types/int"
REGISTERED = {
    "n": RegisteredState("n", INT, ExpireMode.NONE, 0),
    "t": RegisteredState("t", INT, ExpireMode.AFTER_WRITE, 500),
}
BATCH = [
    InboxMessage(7, SELF, None, Payload("ns/T", b"x")),
    InboxMessage(8, SELF, Address("ns", "other", "1"), Payload("ns/T", None)),
]
ROUTER = EgressRoutes([PlaygroundEgressServer(host="127.0.0.1", port=0, topics=("out",))])


def test_requests_carry_every_registered_state_and_only_live_values() -> None:
    stored = {
        "n": StateValue("n", Payload(INT, b"\x0d\x01\x00\x00\x00"), 0, 0, None),
        "t": StateValue("t", Payload(INT, b""), 1, 500, 1_000),  # expired at 1000
    }
    request = build_request(SELF, BATCH, REGISTERED, stored, now_ms=1_000)
    state = {s.state_name: s for s in request.invocation.state}
    assert set(state) == {"n", "t"}
    assert state["n"].state_value.value == b"\x0d\x01\x00\x00\x00"
    assert not state["t"].HasField("state_value")
    first, second = request.invocation.invocations
    assert not first.HasField("caller")  # from an ingress: no caller at all
    assert (second.caller.type, second.argument.has_value) == ("other", False)


def test_a_stored_value_of_another_type_is_terminal() -> None:
    stored = {"n": StateValue("n", Payload("io.statefun.types/long", b""), 0, 0, None)}
    with pytest.raises(TerminalError, match="ns/fn/me: stored state 'n' has type"):
        build_request(SELF, BATCH, REGISTERED, stored, now_ms=0)


def _reply(**fields: object) -> FromFunction.InvocationResponse:
    return FromFunction.InvocationResponse(**fields)  # type: ignore[arg-type]


def test_a_step_collects_every_effect() -> None:
    modify = FromFunction.PersistedValueMutation(
        mutation_type=FromFunction.PersistedValueMutation.MODIFY,
        state_name="t",
        state_value=TypedValue(typename=INT, has_value=True, value=b""),
    )
    delayed = FromFunction.DelayedInvocation(
        delay_in_ms=250,
        cancellation_token="tok",
        target={"namespace": "ns", "type": "fn", "id": "x"},
        argument=TypedValue(typename="a/b"),
    )
    reply = _reply(state_mutations=[modify], delayed_invocations=[delayed])
    step = step_from_reply(
        SELF, BATCH, reply, registered=REGISTERED, stored={}, egress=ROUTER, now_ms=2_000
    )
    assert step.consumed == [7, 8]
    [put] = step.state_puts
    assert (put.name, put.expires_at_ms) == ("t", 2_500)
    [timer] = step.timer_ops
    assert (timer.fire_at_ms, timer.token, timer.sender) == (2_250, "tok", SELF)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("reply", "says"),
    [
        (
            _reply(
                state_mutations=[
                    {"mutation_type": 1, "state_name": "ghost", "state_value": {"typename": INT}}
                ]
            ),
            "never declared",
        ),
        (
            _reply(
                state_mutations=[
                    {
                        "mutation_type": 1,
                        "state_name": "n",
                        "state_value": {"typename": "io.statefun.types/long"},
                    }
                ]
            ),
            "registered as 'io.statefun.types/int'",
        ),
        (
            _reply(outgoing_messages=[{"target": {"namespace": "ns", "type": "fn"}}]),
            "incomplete address",
        ),
        (
            _reply(
                delayed_invocations=[
                    {"delay_in_ms": -1, "target": {"namespace": "a", "type": "b", "id": "c"}}
                ]
            ),
            "negative delay",
        ),
        (_reply(delayed_invocations=[{"is_cancellation_request": True}]), "without a token"),
        (
            _reply(
                outgoing_egresses=[
                    {
                        "egress_namespace": "io.statefun.playground",
                        "egress_type": "egress",
                        "argument": {
                            "typename": "io.statefun.playground/EgressRecord",
                            "has_value": True,
                            "value": b"{}",
                        },
                    }
                ]
            ),
            "invalid io.statefun.playground/EgressRecord",
        ),
        # Found by tests/property/test_fuzz_replies.py: now + this delay overflowed the store's
        # 64-bit times, which failed the commit and stopped the store.
        (
            _reply(
                delayed_invocations=[
                    {
                        "delay_in_ms": LONGEST_MS + 1,
                        "target": {"namespace": "a", "type": "b", "id": "c"},
                    }
                ]
            ),
            f"a delay of {LONGEST_MS + 1} ms; the longest is {LONGEST_MS} ms",
        ),
        # Found by the same: json.loads raised RecursionError, retried as if the endpoint failed.
        (
            _reply(
                outgoing_egresses=[
                    {
                        "egress_namespace": "io.statefun.playground",
                        "egress_type": "egress",
                        "argument": {
                            "typename": "io.statefun.playground/EgressRecord",
                            "has_value": True,
                            "value": b"[" * 100_000,
                        },
                    }
                ]
            ),
            "invalid io.statefun.playground/EgressRecord",
        ),
    ],
    ids=[
        "unregistered",
        "wrong-type",
        "no-id",
        "negative-delay",
        "cancel-no-token",
        "bad-record",
        "delay-beyond-the-store",
        "record-nested-too-deeply",
    ],
)
def test_invalid_replies_are_terminal(reply: FromFunction.InvocationResponse, says: str) -> None:
    with pytest.raises(TerminalError, match=says):
        step_from_reply(
            SELF, BATCH, reply, registered=REGISTERED, stored={}, egress=ROUTER, now_ms=0
        )


def test_a_registered_state_cannot_change_type() -> None:
    registry = StateRegistry()
    spec = FromFunction.PersistedValueSpec(state_name="n", type_typename=INT)
    registry.register("ns/fn", "ns/fn/me", [spec])
    registry.register("ns/fn", "ns/fn/me", [spec])  # the same again is fine
    changed = FromFunction.PersistedValueSpec(
        state_name="n", type_typename="io.statefun.types/long"
    )
    with pytest.raises(TerminalError, match="state 'n' is registered with type"):
        registry.register("ns/fn", "ns/fn/me", [changed])


@pytest.mark.parametrize(
    ("mode", "after_ms", "says"),
    [
        (3, 1_000, "declares expiration mode 3, which StateFun does not have"),
        (-1, 0, "declares expiration mode -1"),
        (1, -1, "declares a TTL of -1 ms"),
        (2, LONGEST_MS + 1, f"declares a TTL of {LONGEST_MS + 1} ms; a TTL is 0 to {LONGEST_MS}"),
    ],
)
def test_a_ttl_the_store_cannot_keep_is_terminal(mode: int, after_ms: int, says: str) -> None:
    """Found by tests/property/test_fuzz_replies.py: a TTL near 2**63 ms overflowed the store's
    times at the first write, which stopped the store."""
    spec = FromFunction.PersistedValueSpec(state_name="n", type_typename=INT)
    spec.expiration_spec.mode, spec.expiration_spec.expire_after_millis = mode, after_ms
    with pytest.raises(TerminalError, match=re.escape(says)):
        StateRegistry().register("ns/fn", "ns/fn/me", [spec])


def test_the_longest_ttl_and_delay_are_accepted() -> None:
    spec = FromFunction.PersistedValueSpec(state_name="n", type_typename=INT)
    spec.expiration_spec.mode, spec.expiration_spec.expire_after_millis = 1, LONGEST_MS
    registry = StateRegistry()
    registry.register("ns/fn", "ns/fn/me", [spec])
    assert registry.states("ns/fn")["n"].expire_after_ms == LONGEST_MS
    target = {"namespace": "a", "type": "b", "id": "c"}
    reply = _reply(delayed_invocations=[{"delay_in_ms": LONGEST_MS, "target": target}])
    step = step_from_reply(
        SELF, BATCH, reply, registered=REGISTERED, stored={}, egress=ROUTER, now_ms=5
    )
    [timer] = step.timer_ops
    assert timer.fire_at_ms == LONGEST_MS + 5  # type: ignore[union-attr]


def test_key_groups_partition_by_id_only_and_stably() -> None:
    # CRC-32 as specified: its standard check value is crc32(b"123456789") == 0xCBF43926.
    assert key_group_of("123456789", 2**32) == 0xCBF43926
    # Of the id's UTF-8 bytes, c3 a9 for "é" (Latin-1's e9 gives 0x0BD4B551, UTF-16's 0xCE655A5A);
    # values from a bitwise CRC-32 written out by hand, not from zlib.
    assert key_group_of("é", 2**32) == 0x0E048D3E
    assert {key_group_of(str(n), 128) for n in range(2000)} == set(range(128))
    # Pinned: a different hash would put every row of an existing data dir in the wrong group.
    assert key_group_of("alice", 128) == 71
    assert key_group_of("alice", 8) == 71 % 8


def _missing(*names: str) -> FromFunction:
    reply = FromFunction()
    for name in names:
        reply.incomplete_invocation_context.missing_values.add(state_name=name, type_typename=INT)
    return reply


def _answered() -> FromFunction:
    reply = FromFunction()
    reply.invocation_result.SetInParent()
    return reply


def test_the_handshake_registers_missing_states_and_resends_the_batch_with_them() -> None:
    registry = StateRegistry()
    rounds = invocation_rounds(
        SELF, list(BATCH), registry, {}, limit=1 << 20, clock_ms=lambda: 0, where="here"
    )
    first = ToFunction.FromString(next(rounds))
    assert [s.state_name for s in first.invocation.state] == []
    second = ToFunction.FromString(rounds.send(_missing("n")))
    assert [s.state_name for s in second.invocation.state] == ["n"]
    assert len(second.invocation.invocations) == len(BATCH)  # the same batch, again
    with pytest.raises(StopIteration) as answered:
        rounds.send(_answered())
    registered, _ = answered.value.value
    assert list(registered) == ["n"]


def test_a_function_that_never_gets_enough_state_is_retryable_after_the_last_round() -> None:
    registry = StateRegistry()
    rounds = invocation_rounds(
        SELF, list(BATCH), registry, {}, limit=1 << 20, clock_ms=lambda: 0, where="here"
    )
    next(rounds)
    for round_number in range(1, HANDSHAKE_ROUNDS_MAX):  # each reply asks for one more state
        assert isinstance(rounds.send(_missing(f"s{round_number}")), bytes)
    last = _missing("one-too-many")
    with pytest.raises(RetryableError, match=rf"still missing state after {HANDSHAKE_ROUNDS_MAX}"):
        rounds.send(last)
