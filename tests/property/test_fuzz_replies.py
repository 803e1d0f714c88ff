"""Fuzzing the runtime's side: whatever a function endpoint answers, the runtime turns it into
a step the store commits, or a ``TerminalError`` that dead-letters the batch. No reply may
raise anything else, nor make the store fail (which stops the runtime, and would again on
every restart, since the same batch is retried).

Each reply is applied the way the dispatcher applies it: the handshake registers the states a
``FromFunction`` asks for, the next reply's effects become a step, and the step is committed to
a real SQLite store.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import event, given
from hypothesis import strategies as st
from support.strategies import ADDRESSES, FUZZ, TEXT

from pystatefun.errors import TerminalError
from pystatefun.io.playground import (
    PLAYGROUND_EGRESS,
    PLAYGROUND_RECORD_TYPENAME,
    PlaygroundEgressServer,
)
from pystatefun.protocol import Address as WireAddress
from pystatefun.protocol import FromFunction, TypedValue, parse_to_function
from pystatefun.runtime.batches import invocation_rounds, step_from_reply
from pystatefun.runtime.egress import EgressRoutes
from pystatefun.runtime.registry import StateRegistry
from pystatefun.store import DataDir, InboxMessage, NewMessage, Payload, SqliteEngine, Step
from pystatefun.types import Address

pytestmark = pytest.mark.timeout(120)
SELF = Address("ns", "fn", "me")
NOW_MS = 1_700_000_000_000
INT = "io.statefun.types/int"
BATCH = [InboxMessage(None, SELF, None, Payload("ns/T", b"x"))]
ROUTER = EgressRoutes([PlaygroundEgressServer(host="127.0.0.1", port=0, topics=("out",))])


def _often(
    valid: st.SearchStrategy[object], invalid: st.SearchStrategy[object]
) -> st.SearchStrategy[object]:
    """``valid`` 7 times in 8: a reply is refused at its first invalid part, so each part must
    be valid far more often than not for a fair share of whole replies to reach the store."""
    return st.sampled_from([*[valid] * 7, invalid]).flatmap(lambda chosen: chosen)


#: Durations as a function may send them: ordinary, zero, negative, and at the int64 limits.
MILLIS = _often(
    st.integers(0, 10**7),
    st.integers(-(2**63), 2**63 - 1) | st.sampled_from([2**63 - 1, 2**62, 2**62 + 1, -1]),
)
NAMES = st.sampled_from(["n", "t", "u"])
VALUES = st.builds(
    TypedValue,
    typename=st.sampled_from([INT, "ns/Other"]),
    has_value=st.booleans(),
    value=st.binary(max_size=20),
)
MODES = _often(st.sampled_from([0, 1, 2]), st.integers(-(2**31), 2**31 - 1))
ADDRESS_FIELDS = st.sampled_from([{"namespace": "ns", "type": "fn", "id": "other"}]) | ADDRESSES
RECORDS = (
    st.builds(
        lambda topic, text: json.dumps({"topic": topic, "payload": text}).encode(),
        st.sampled_from(["out", "out", "in"]),
        TEXT,
    )
    | st.binary(max_size=30)
    | st.integers(1, 50_000).map(lambda depth: b"[" * depth)
)


@st.composite
def replies(
    draw: st.DrawFn,
) -> tuple[list[FromFunction.PersistedValueSpec], FromFunction.InvocationResponse]:
    """The states a function asks for in the handshake, then its result, valid or not."""
    missing = [
        FromFunction.PersistedValueSpec(
            state_name=name,
            type_typename=draw(_often(st.just(INT), st.sampled_from(["", "ns/Other"]))),
            expiration_spec=FromFunction.ExpirationSpec(
                mode=draw(MODES), expire_after_millis=draw(MILLIS)
            ),
        )
        for name in draw(st.lists(NAMES, max_size=3, unique=True))
    ]
    result = FromFunction.InvocationResponse()
    for spec in draw(st.lists(st.sampled_from(missing), max_size=2)) if missing else []:
        mutation = result.state_mutations.add(
            state_name=draw(_often(st.just(spec.state_name), NAMES)),
            mutation_type=draw(_often(st.sampled_from([0, 1]), st.integers(-5, 5))),
        )
        if draw(_often(st.just(True), st.just(False))):
            value = TypedValue(typename=spec.type_typename, has_value=True, value=b"\x01")
            mutation.state_value.CopyFrom(draw(_often(st.just(value), VALUES)))
    for _ in range(draw(st.integers(0, 1))):
        message = result.outgoing_messages.add(argument=draw(VALUES))
        message.target.CopyFrom(WireAddress(**draw(ADDRESS_FIELDS)))
    for _ in range(draw(st.integers(0, 2))):
        delayed = result.delayed_invocations.add(
            delay_in_ms=draw(MILLIS),
            cancellation_token=draw(_often(st.sampled_from(["tok", "tok2"]), st.just(""))),
            is_cancellation_request=draw(st.booleans()),
        )
        delayed.target.CopyFrom(WireAddress(namespace="ns", type="fn", id="later"))
    for _ in range(draw(st.integers(0, 1))):
        egress = result.outgoing_egresses.add()
        egress.egress_namespace, egress.egress_type = draw(
            _often(st.just(PLAYGROUND_EGRESS.rsplit("/", 1)), st.just(("ns", "nope")))
        )
        egress.argument.CopyFrom(
            TypedValue(typename=PLAYGROUND_RECORD_TYPENAME, has_value=True, value=draw(RECORDS))
        )
    return missing, result


def _step_for(
    missing: list[FromFunction.PersistedValueSpec], result: FromFunction.InvocationResponse
) -> Step:
    """The handshake (register ``missing``), then the step of ``result``, as the dispatcher does."""
    rounds = invocation_rounds(
        SELF, list(BATCH), StateRegistry(), {}, limit=1 << 20, clock_ms=lambda: NOW_MS, where="fuzz"
    )
    next(rounds)
    if missing:
        incomplete = FromFunction()
        incomplete.incomplete_invocation_context.missing_values.extend(missing)
        resent = parse_to_function(rounds.send(incomplete)).invocation.state
        assert {state.state_name for state in resent} == {spec.state_name for spec in missing}
    answered = FromFunction()
    answered.invocation_result.CopyFrom(result)
    try:
        rounds.send(answered)
    except StopIteration as done:
        registered, reply = done.value
    else:
        pytest.fail("the handshake asked again after a complete reply")
    return step_from_reply(
        SELF, BATCH, reply, registered=registered, stored={}, egress=ROUTER, now_ms=NOW_MS
    )


@pytest.fixture(scope="module")
def store(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[asyncio.Runner, SqliteEngine]]:
    """One store on one event loop for all the examples: opening one per example is slow."""
    path = Path(tmp_path_factory.mktemp("fuzz-replies")) / "data"
    with asyncio.Runner() as runner:
        opened = SqliteEngine(DataDir(path), durability="os", clock_ms=lambda: NOW_MS)
        runner.run(opened.open(key_groups=8))
        yield runner, opened
        runner.run(opened.close())


def test_any_reply_is_a_committed_step_or_a_terminal_error(
    store: tuple[asyncio.Runner, SqliteEngine],
) -> None:
    runner, opened = store
    other = Step(messages=[NewMessage(SELF, None, Payload("ns/T", b""))])

    @FUZZ
    @given(replies())
    def check(
        reply: tuple[list[FromFunction.PersistedValueSpec], FromFunction.InvocationResponse],
    ) -> None:
        try:
            step = _step_for(*reply)
        except TerminalError as error:
            event(f"dead-lettered: {error.message.split(' ', 1)[1][:40]}")
            return
        outcome = runner.run(opened.commit(step))
        event("committed" if outcome.committed else f"refused by the store: {outcome.error}")
        assert outcome.committed or outcome.error
        # The store is still there for everyone else.
        assert runner.run(opened.commit(other)).committed

    check()
