"""Commits: a step's effects become visible only once it is durable (or, for an embedded
function's step, at once in memory, with what leaves the runtime still waiting for the disk);
a refused step changes nothing; a dead-lettered batch leaves its mailbox and its request-reply
callers are told at once."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from support.virtual_time import running, virtual_time

from pystatefun.module import EmbeddedEndpoint, Location
from pystatefun.runtime.commits import Commits
from pystatefun.runtime.embedded import EmbeddedFunctions
from pystatefun.runtime.mailboxes import Batch, Mailboxes
from pystatefun.runtime.metrics import RuntimeMetrics
from pystatefun.runtime.replies import DeadLettered, ReplyWaiters
from pystatefun.runtime.routes import Route
from pystatefun.runtime.statecache import StateCache
from pystatefun.store import (
    ExpireMode,
    InboxMessage,
    MemoryEngine,
    NewMessage,
    NewTimer,
    Payload,
    StateValue,
    Step,
    StepOutcome,
)
from pystatefun.testing._in_process import ENDPOINT
from pystatefun.types import Address

A = Address("ns", "fn", "a")
B = Address("ns", "fn", "b")
EMBEDDED = Address("ns", "emb", "e")
EMBEDDED_TOO = Address("ns", "emb", "f")
INT = "io.statefun.types/int"
FUNCTIONS = """\
from pystatefun.sdk import StatefulFunctions

functions = StatefulFunctions()


@functions.bind("ns/emb")
def noop(context, message):
    pass
"""


def payload(text: str) -> Payload:
    return Payload("ns/msg", text.encode())


class Routes:
    """``ns/emb`` is served by ``embedded`` (when given); every other type remotely."""

    def __init__(self, embedded: EmbeddedFunctions | None = None) -> None:
        self._embedded = embedded

    def route(self, address: Address) -> Route:
        embedded = self._embedded if address.type == "emb" else None
        remote = None if embedded is not None else ENDPOINT
        return Route(address.typename, ENDPOINT, 0, "test", embedded, remote)

    def unserved(self, address: Address) -> Any:
        raise AssertionError(address)


class Rig:
    """``Commits`` as the dispatcher makes it, and what it reported."""

    def __init__(self, engine: Any = None, embedded: EmbeddedFunctions | None = None) -> None:
        self.engine = engine or MemoryEngine(running().clock_ms)
        self.ready: list[Address] = []
        self.mailboxes = Mailboxes(self.ready.append)
        self.states = StateCache(100)
        self.replies = ReplyWaiters()
        self.steps: list[Step] = []
        self.fatal: list[str] = []
        self.metrics = RuntimeMetrics()
        self.commits = Commits(
            self.engine,
            mailboxes=self.mailboxes,
            states=self.states,
            replies=self.replies,
            routes=Routes(embedded),
            on_step=self.steps.append,
            on_fatal=self.fatal.append,
            metrics=self.metrics,
        )

    async def batch(self, target: Address, *callers: Address | None) -> Batch:
        """One stored message per caller, in ``target``'s mailbox, taken as a batch."""
        for caller in callers:
            new = NewMessage(target, caller, payload("in"))
            (seq,) = (await self.engine.commit(Step(messages=[new]))).seqs
            self.mailboxes.deliver(InboxMessage(seq, target, caller, new.payload))
        box = self.mailboxes.get(target)
        assert box is not None
        return Batch(list(box.queue))

    def queued(self, target: Address) -> list[InboxMessage]:
        box = self.mailboxes.get(target)
        return [] if box is None else list(box.queue)


def step_of(address: Address, batch: Batch, *messages: NewMessage) -> Step:
    value = StateValue("n", Payload(INT, b"\x08\x01"), ExpireMode.NONE, 0, None)
    return Step(
        consumed=[m.seq for m in batch.messages if m.seq is not None],
        state_address=address,
        state_puts=[value],
        messages=list(messages),
    )


@virtual_time
async def test_a_committed_step_delivers_its_messages_state_and_replies() -> None:
    rig = Rig()
    batch = await rig.batch(A, None, None)
    rig.states.put(A, {})
    reply_to, answer = rig.replies.open()
    step = step_of(
        A, batch, NewMessage(B, A, payload("b")), NewMessage(reply_to, A, payload("answer"))
    )
    outcome = await rig.commits.commit(A, step, batch=batch, stored={})
    assert outcome.committed
    (seq,) = outcome.seqs
    assert rig.queued(A) == []
    assert rig.queued(B) == [InboxMessage(seq, B, A, payload("b"))]
    assert await rig.engine.read_batch(B, 10) == rig.queued(B)  # the seq is the row's
    assert await rig.engine.pending_counts() == {B: 1}  # the reply is never stored
    assert answer.result() == payload("answer")
    assert rig.states.get(A) == {"n": step.state_puts[0]}
    assert rig.steps == [step]
    assert (rig.commits.batches_committed, rig.fatal) == (1, [])
    assert rig.ready == [A, A, B]


@virtual_time
async def test_a_refused_step_is_returned_as_such_and_changes_nothing() -> None:
    rig = Rig()
    timer = NewTimer(running().clock_ms() + 60_000, A, "tick", A, payload("t"))
    assert (await rig.engine.commit(Step(timer_ops=[timer]))).committed
    batch = await rig.batch(A, None)
    rig.states.put(A, {})
    reply_to, answer = rig.replies.open()
    step = step_of(
        A, batch, NewMessage(B, A, payload("b")), NewMessage(reply_to, A, payload("answer"))
    )
    step.timer_ops.append(timer)  # the same token again, while it is pending: refused
    outcome = await rig.commits.commit(A, step, batch=batch, stored={})
    assert not outcome.committed
    assert "tick" in (outcome.error or "")
    assert rig.queued(A) == batch.messages  # the caller decides what becomes of it
    assert rig.mailboxes.get(B) is None
    assert not answer.done()
    assert rig.states.get(A) == {}
    assert (rig.steps, rig.commits.batches_committed) == ([], 0)
    assert await rig.engine.pending_counts() == {A: 1}


@virtual_time
async def test_a_dead_lettered_batch_leaves_and_its_callers_are_told_at_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    rig = Rig()
    reply_to, answer = rig.replies.open()
    batch = await rig.batch(A, reply_to, B)
    await rig.commits.dead_letter(A, batch, error="it broke", attempts=3)
    (letter,) = await rig.engine.dead_letters()
    assert (letter.target, letter.error, letter.attempts) == (A, "it broke", 3)
    assert [(m.caller, m.payload) for m in letter.messages] == [
        (reply_to, payload("in")),
        (B, payload("in")),
    ]
    assert answer.result() == DeadLettered(letter.dead_letter_id, "it broke")
    assert rig.queued(A) == []
    assert await rig.engine.pending_counts() == {}
    assert rig.commits.dead_lettered_batches == 1
    assert rig.steps == []  # not an invocation's step
    assert "pystatefun dead-letters redrive" in caplog.text


@pytest.fixture(scope="module")
def embedded(tmp_path_factory: pytest.TempPathFactory) -> EmbeddedFunctions:
    """Real embedded functions (commits only ask whether a route has them): imported once."""
    directory = tmp_path_factory.mktemp("embedded")
    (directory / "noop_functions.py").write_text(FUNCTIONS)
    module = directory / "module.yaml"  # only its directory matters
    location = Location(module, 1, 1)
    endpoint = EmbeddedEndpoint(
        functions="ns/emb", import_path="noop_functions.py:functions", location=location
    )
    return EmbeddedFunctions(endpoint, module)


@virtual_time
async def test_an_embedded_step_is_visible_at_once_and_what_leaves_waits_for_the_disk(
    embedded: EmbeddedFunctions,
) -> None:
    rig = Rig(embedded=embedded)
    batch = await rig.batch(EMBEDDED, None)
    reply_to, answer = rig.replies.open()
    step = step_of(
        EMBEDDED,
        batch,
        NewMessage(EMBEDDED_TOO, EMBEDDED, payload("hop")),
        NewMessage(B, EMBEDDED, payload("out")),
        NewMessage(reply_to, EMBEDDED, payload("answer")),
    )
    outcome = await rig.commits.commit(EMBEDDED, step, batch=batch, stored={})
    assert outcome == StepOutcome(committed=True)  # speculative: no seqs to report
    # At once, before the step is durable: the batch is consumed, state is cached, and the
    # message to another embedded function is delivered.
    assert rig.queued(EMBEDDED) == []
    assert rig.states.get(EMBEDDED) == {"n": step.state_puts[0]}
    assert [m.payload for m in rig.queued(EMBEDDED_TOO)] == [payload("hop")]
    # What leaves the runtime waits for the commit.
    assert (rig.mailboxes.get(B), answer.done(), rig.steps) == (None, False, [])
    assert await answer == payload("answer")
    assert [m.payload for m in rig.queued(B)] == [payload("out")]
    assert rig.steps == [step]
    assert (rig.commits.batches_committed, rig.fatal) == (1, [])


@virtual_time
async def test_an_embedded_step_that_may_be_refused_waits_for_the_disk(
    embedded: EmbeddedFunctions,
) -> None:
    rig = Rig(embedded=embedded)
    timer = NewTimer(running().clock_ms() + 60_000, EMBEDDED, "tick", A, payload("t"))
    assert (await rig.engine.commit(Step(timer_ops=[timer]))).committed
    batch = await rig.batch(EMBEDDED, None)
    step = step_of(EMBEDDED, batch, NewMessage(EMBEDDED_TOO, EMBEDDED, payload("hop")))
    step.timer_ops.append(timer)
    outcome = await rig.commits.commit(EMBEDDED, step, batch=batch, stored={})
    assert not outcome.committed
    assert rig.mailboxes.get(EMBEDDED_TOO) is None
    assert rig.queued(EMBEDDED) == batch.messages


class _SlowDisk:
    """A memory engine whose speculative steps fail (``fail``) or that is ``behind``."""

    def __init__(self, *, fail: bool = False, behind: bool = False) -> None:
        self._engine = MemoryEngine(running().clock_ms)
        self._fail = fail
        self.backlog = 10**6 if behind else 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)

    def submit(self, step: Step) -> tuple[range, asyncio.Future[StepOutcome]]:
        assert self._fail, "not speculative while the disk is behind"
        durable: asyncio.Future[StepOutcome] = running().create_future()
        durable.set_exception(OSError("disk full"))
        return range(1000, 1000 + len(step.messages)), durable


@virtual_time
async def test_an_embedded_step_the_store_fails_to_commit_is_fatal(
    embedded: EmbeddedFunctions,
) -> None:
    rig = Rig(_SlowDisk(fail=True), embedded=embedded)
    batch = await rig.batch(EMBEDDED, None)
    reply_to, answer = rig.replies.open()
    step = step_of(
        EMBEDDED,
        batch,
        NewMessage(B, EMBEDDED, payload("out")),
        NewMessage(reply_to, EMBEDDED, payload("answer")),
    )
    await rig.commits.commit(EMBEDDED, step, batch=batch, stored={})
    await asyncio.sleep(1)  # the failed commit's callback has long run
    (fatal,) = rig.fatal
    assert "could not be committed: disk full" in fatal
    assert (rig.mailboxes.get(B), answer.done(), rig.steps) == (None, False, [])
    assert rig.commits.batches_committed == 0


@virtual_time
async def test_an_embedded_step_waits_for_its_commit_while_the_disk_is_behind(
    embedded: EmbeddedFunctions,
) -> None:
    rig = Rig(_SlowDisk(behind=True), embedded=embedded)
    batch = await rig.batch(EMBEDDED, None)
    step = step_of(EMBEDDED, batch, NewMessage(B, EMBEDDED, payload("out")))
    outcome = await rig.commits.commit(EMBEDDED, step, batch=batch, stored={})
    assert outcome.committed
    assert outcome.seqs  # committed through the disk: real seqs
    assert [m.seq for m in rig.queued(B)] == list(outcome.seqs)
    assert rig.steps == [step]
