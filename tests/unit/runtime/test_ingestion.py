"""``Ingestion.append`` and ``reject``, for ingresses that read in batches (Kafka): a batch
goes in whole where there is room; when a target is full, the records complete so far commit
with their position before the wait, and a position never moves past part of a record."""

from __future__ import annotations

import asyncio

from support.dispatching import MSG, Rig
from support.virtual_time import virtual_time

from pystatefun.io.api import IngestOutcome, IngestResult, IngressMessage
from pystatefun.runtime.ingestion import Ingestion
from pystatefun.runtime.owner_requests import (
    AskedRequest,
    decode_request,
    decode_result,
    encode_request,
    encode_result,
)
from pystatefun.runtime.replies import ReplyWaiters
from pystatefun.store import OwnerMovingError, Position
from pystatefun.types import Address

A = Address("ns", "fn", "a")
B = Address("ns", "fn", "b")
SOURCE = "com.example/orders"


def _ingestion(rig: Rig, stopping: list[bool] | None = None) -> Ingestion:
    flag = stopping if stopping is not None else [False]
    return Ingestion(
        rig.watched,  # type: ignore[arg-type] # the memory engine, watched
        dispatcher=rig.dispatcher,
        replies=ReplyWaiters(),
        options=rig.options,
        stopping=lambda: flag[0],
    )


def _record(offset: int, *targets: Address) -> list[IngressMessage]:
    """Record ``offset`` of partition ``p/0``, to each of ``targets``; the last carries the
    position after it."""
    position = Position(SOURCE, "p/0", str(offset + 1))
    return [
        IngressMessage(t, MSG, f"r{offset}".encode(), position if n == len(targets) - 1 else None)
        for n, t in enumerate(targets)
    ]


def _held(rig: Rig) -> bool:
    """B's function holds record 0 and the append waits for room behind it."""
    return rig.functions.running[B] == 1 and rig.dispatcher.mailboxes.waiting_for_room() == [B]


@virtual_time
async def test_a_batch_with_room_commits_in_one_step_with_its_last_position() -> None:
    rig = Rig(max_batch=10)
    ingestion = _ingestion(rig)
    batch = [m for offset in range(3) for m in _record(offset, A, B)]
    assert await ingestion.append(batch) is IngestOutcome.ACCEPTED
    assert await rig.engine.positions(SOURCE) == {"p/0": "3"}
    assert rig.engine.statistics().steps == 1
    rig.dispatcher.start()
    await rig.dispatcher.idle()
    assert [c.values for c in rig.functions.of("a")] == [["r0", "r1", "r2"]]
    assert [c.values for c in rig.functions.of("b")] == [["r0", "r1", "r2"]]


@virtual_time
async def test_a_full_target_commits_the_whole_records_first_and_waits_for_room() -> None:
    """B takes one message behind its batch, and its function is held on its first batch
    (record 0): record 1 then waits behind it, and record 2's message for A is reserved while
    its message for B waits for room. Records 0 and 1 are committed (position 2), not record
    2's half; once B has room, the rest follows and the position reaches the end."""
    rig = Rig(max_batch=1)
    gate = rig.functions.gates["b"] = asyncio.Event()
    rig.dispatcher.start()
    ingestion = _ingestion(rig)
    batch = [m for offset in range(3) for m in _record(offset, A, B)]
    appending = asyncio.ensure_future(ingestion.append(batch))
    await rig.until(lambda: _held(rig))
    assert await rig.engine.positions(SOURCE) == {"p/0": "2"}
    assert not appending.done()
    gate.set()
    assert await appending is IngestOutcome.ACCEPTED
    await rig.dispatcher.idle()
    assert await rig.engine.positions(SOURCE) == {"p/0": "3"}
    assert [v for c in rig.functions.of("a") for v in c.values] == ["r0", "r1", "r2"]
    assert [v for c in rig.functions.of("b") for v in c.values] == ["r0", "r1", "r2"]


@virtual_time
async def test_stopping_while_waiting_keeps_what_committed_and_releases_the_rest() -> None:
    rig = Rig(max_batch=1)
    rig.functions.gates["b"] = asyncio.Event()  # never set: B stays full
    rig.dispatcher.start()
    stopping = [False]
    ingestion = _ingestion(rig, stopping)
    batch = [m for offset in range(3) for m in _record(offset, A, B)]
    appending = asyncio.ensure_future(ingestion.append(batch))
    await rig.until(lambda: _held(rig))
    stopping[0] = True
    stop = asyncio.ensure_future(rig.dispatcher.stop(grace_s=1.0))
    assert await appending is IngestOutcome.STOPPING
    await stop
    assert await rig.engine.positions(SOURCE) == {"p/0": "2"}
    # Records 0 and 1 were written (B's still wait: its function was held, its batch not
    # committed); record 2's message for A was reserved, never written, and its place is free.
    assert [m.payload.value for m in await rig.engine.read_batch(B, 10)] == [b"r0", b"r1"]
    mailbox = rig.dispatcher.mailboxes.get(A)
    assert mailbox is None or mailbox.reserved == 0


@virtual_time
async def test_a_rejected_record_is_dead_lettered_with_its_position() -> None:
    rig = Rig(max_batch=10)
    ingestion = _ingestion(rig)
    kept = IngressMessage(A, MSG, b"keyless")
    position = Position(SOURCE, "p/0", "8")
    await ingestion.reject(A, "the record at offset 7 has no key", kept, position=position)
    assert await rig.engine.positions(SOURCE) == {"p/0": "8"}
    assert await rig.dead_letters() == [("a", ["keyless"], 1)]
    (letter,) = await rig.engine.dead_letters()
    assert letter.error == "the record at offset 7 has no key"


class _ServedElsewhere:
    """The rig's engine, as a cluster worker that serves none of the addresses sees it:
    ``ask_owner`` answers from a script (an answer, or an error to raise), and records what
    it was asked. What is under test is how the asking worker treats each answer; the real
    asking over NATS runs in tests/integration/cluster/test_cluster_request_reply.py."""

    def __init__(self, rig: Rig, answers: list[bytes | BaseException]) -> None:
        self._engine = rig.watched
        self.answers = answers
        self.asked: list[AskedRequest] = []

    def owns(self, address: Address) -> bool:
        return False

    async def ask_owner(self, address: Address, request: bytes, *, timeout_s: float) -> bytes:
        self.asked.append(decode_request(request))
        answer = self.answers.pop(0)
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def __getattr__(self, name: str) -> object:
        return getattr(self._engine, name)


def _asking(rig: Rig, store: _ServedElsewhere) -> Ingestion:
    return Ingestion(
        store,  # type: ignore[arg-type] # the rig's engine, served elsewhere
        dispatcher=rig.dispatcher,
        replies=ReplyWaiters(),
        options=rig.options,
        stopping=lambda: False,
    )


REPLIED = IngestResult(IngestOutcome.REPLIED, "io.statefun.types/string", b"hi")


@virtual_time
async def test_a_request_for_an_address_served_elsewhere_is_asked_until_its_owner_answers() -> None:
    """No owner this instant, then one that hands it over (stopping), then the answer: the
    same request each time, and nothing stored here."""
    rig = Rig()
    moving = OwnerMovingError("partition 3 has no live owner this instant")
    store = _ServedElsewhere(rig, [moving, encode_result(None), encode_result(
        IngestResult(IngestOutcome.STOPPING)), encode_result(REPLIED)])  # fmt: skip
    result = await _asking(rig, store).ingest(
        A, MSG, b"v", idempotency_key="k1", wait_for_reply=True
    )
    assert result == REPLIED
    assert store.asked == [AskedRequest(A, MSG, b"v", "k1")] * 4
    assert rig.engine.statistics().steps == 0


@virtual_time
async def test_a_request_its_owner_took_and_never_answered_is_not_asked_again() -> None:
    """Asking again could run it twice: it is reported as unanswered."""
    rig = Rig()
    store = _ServedElsewhere(rig, [TimeoutError("no answer in 35 s")])
    result = await _asking(rig, store).ingest(A, MSG, b"v", wait_for_reply=True)
    assert result.outcome is IngestOutcome.UNANSWERED
    assert len(store.asked) == 1


@virtual_time
async def test_a_request_no_owner_takes_within_the_reply_timeout_is_refused_unstored() -> None:
    rig = Rig(reply_timeout_s=2.0)
    moving = OwnerMovingError("partition 3 has no live owner this instant")
    store = _ServedElsewhere(rig, [moving] * 100)
    loop = asyncio.get_running_loop()
    started = loop.time()
    result = await _asking(rig, store).ingest(A, MSG, b"v", wait_for_reply=True)
    assert result.outcome is IngestOutcome.UNAVAILABLE
    assert 2.0 <= loop.time() - started < 2.5  # asked again and again, for the reply timeout
    assert 5 < len(store.asked) < 100
    assert rig.engine.statistics().steps == 0


class _ServedHereFailing:
    """The rig's engine as the worker that serves the address sees it, with a commit that
    raises something no one planned for."""

    def __init__(self, rig: Rig) -> None:
        self._engine = rig.watched

    def owns(self, address: Address) -> bool:
        return True

    async def commit(self, step: object) -> object:
        raise RuntimeError("an unplanned failure")

    def __getattr__(self, name: str) -> object:
        return getattr(self._engine, name)


@virtual_time
async def test_a_request_the_owner_fails_while_answering_is_answered_unanswered() -> None:
    """Not "not taken", which would make the asker ask again and perhaps run it twice."""
    rig = Rig()
    ingestion = Ingestion(
        _ServedHereFailing(rig),  # type: ignore[arg-type] # the rig's engine, failing
        dispatcher=rig.dispatcher,
        replies=ReplyWaiters(),
        options=rig.options,
        stopping=lambda: False,
    )
    answer = await ingestion.answer_asked(encode_request(AskedRequest(A, MSG, b"v", "k1")))
    result = decode_result(answer)
    assert result is not None
    assert result.outcome is IngestOutcome.UNANSWERED
    assert result.error is not None
    assert "an unplanned failure" in result.error
    assert str(A) in result.error
