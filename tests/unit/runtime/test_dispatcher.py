"""The dispatcher on virtual time: one invocation in flight per address, batches of what arrived
meanwhile, the in-flight limit, recovered rows first, and what becomes of failed batches
(backoff, dead letters, isolating a poison message), stopping and idleness."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable

import pytest
from support.dispatching import Rig
from support.virtual_time import virtual_time

from pystatefun.errors import FunctionError, RetryableError, TerminalError
from pystatefun.types import Address

A = Address("ns", "fn", "a")
B = Address("ns", "fn", "b")


def values(prefix: str, count: int) -> list[str]:
    return [f"{prefix}{n}" for n in range(1, count + 1)]


@virtual_time
async def test_one_invocation_per_address_and_what_arrives_meanwhile_is_the_next_batch() -> None:
    rig = Rig(max_batch=3)
    gate = rig.functions.gates["a"] = asyncio.Event()
    rig.dispatcher.start()
    await rig.send(A, "a1")
    await rig.until(lambda: rig.functions.running[A] == 1)
    await rig.send(A, *values("a", 8)[1:])
    await rig.send(B, "b1", "b2")
    await rig.until(lambda: rig.committed == ["b1", "b2"])  # other addresses flow meanwhile
    await asyncio.sleep(10)
    assert [c.values for c in rig.functions.of("a")] == [["a1"]]  # held: not invoked again
    gate.set()
    await rig.dispatcher.idle()
    # FIFO, and no batch longer than the endpoint's maxNumBatchRequests.
    batches = [c.values for c in rig.functions.of("a")]
    assert batches == [["a1"], ["a2", "a3", "a4"], ["a5", "a6", "a7"], ["a8"]]
    assert [v for v in rig.committed if v.startswith("a")] == values("a", 8)
    assert rig.functions.most_per_address == 1
    assert await rig.engine.pending_counts() == {}


@virtual_time
async def test_no_batch_holds_more_messages_than_one_step_of_the_store_may_consume() -> None:
    # An unbounded endpoint on a store whose steps are bounded (a cluster's atomic batches).
    rig = Rig(max_batch=0)
    rig.engine.max_step_messages = 3
    gate = rig.functions.gates["a"] = asyncio.Event()
    rig.dispatcher.start()
    await rig.send(A, "a1")
    await rig.until(lambda: rig.functions.running[A] == 1)
    await rig.send(A, *values("a", 8)[1:])
    gate.set()
    await rig.dispatcher.idle()
    batches = [c.values for c in rig.functions.of("a")]
    assert batches == [["a1"], ["a2", "a3", "a4"], ["a5", "a6", "a7"], ["a8"]]
    assert rig.committed == values("a", 8)


@virtual_time
async def test_the_in_flight_limit_bounds_how_many_addresses_are_invoked_at_once() -> None:
    # Four workers, but the adaptive limit starts at its floor of two.
    rig = Rig(max_inflight=4, min_inflight=2)
    ids = ["a", "b", "c", "d", "e", "f"]
    gates = {i: asyncio.Event() for i in ids}
    rig.functions.gates.update(gates)
    rig.dispatcher.start()
    for i in ids:
        await rig.send(Address("ns", "fn", i), f"{i}1")
    await rig.until(lambda: rig.functions.in_flight() == 2)
    await asyncio.sleep(10)
    assert [c.target for c in rig.functions.log] == ["a", "b"]  # the rest wait their turn
    gates["a"].set()
    await rig.until(lambda: rig.functions.calls >= 3)
    assert rig.committed == ["a1"]
    # How far the limit grows depends on round trips the dispatcher measures in real time
    # (pystatefun.runtime.concurrency's tests cover that); never beyond the ceiling.
    for gate in gates.values():
        gate.set()
    await rig.dispatcher.idle()
    assert sorted(rig.committed) == [f"{i}1" for i in ids]
    assert rig.functions.most_in_flight <= 4


@virtual_time
async def test_recovered_rows_are_read_from_the_store_before_messages_in_memory() -> None:
    rig = Rig(max_batch=2)
    await rig.store(A, "r1", "r2", "r3")  # rows left by a previous run: not in memory
    rig.dispatcher.mailboxes.add_unloaded(A, 3)
    await rig.send(A, "m1", "m2")
    rig.dispatcher.start()
    await rig.dispatcher.idle()
    assert [c.values for c in rig.functions.log] == [["r1", "r2"], ["r3", "m1"], ["m2"]]
    assert rig.committed == ["r1", "r2", "r3", "m1", "m2"]
    assert await rig.engine.pending_counts() == {}


@virtual_time
async def test_a_message_committed_and_not_yet_in_its_mailbox_runs_once_whatever_a_rescan_saw() -> (
    None
):
    """The instant between a step's commit and the delivery of its messages to memory: a
    rescan then (it runs every second) must not take the new row for one to read from the
    store, or the message would run twice (once read, once delivered)."""
    rig = Rig(max_batch=10)
    rig.dispatcher.start()
    await rig.send(A, "m1")
    (m2,) = await rig.commit(A, "m2")  # committed; its delivery has not run yet
    await rig.dispatcher.rescan()
    await rig.dispatcher.idle()  # the window, stretched: whatever the rescan set off ran
    rig.dispatcher.mailboxes.deliver(m2)
    await rig.dispatcher.idle()
    assert sorted(v for c in rig.functions.log for v in c.values) == ["m1", "m2"]
    assert rig.committed == ["m1", "m2"]
    assert await rig.engine.pending_counts() == {}


@virtual_time
async def test_re_driven_rows_join_the_end_of_a_mailbox_that_holds_messages_in_memory() -> None:
    rig = Rig(max_batch=10)
    gate = rig.functions.gates["a"] = asyncio.Event()
    rig.dispatcher.start()
    await rig.send(A, "m1")
    await rig.until(lambda: rig.functions.running[A] == 1)
    await rig.send(A, "m2", "m3")  # queued in memory behind the batch in flight
    await rig.store(A, "r1")  # a re-drive appends a row: newer than m2 and m3
    await rig.dispatcher.rescan()
    gate.set()
    await rig.dispatcher.idle()
    assert [c.values for c in rig.functions.log] == [["m1"], ["m2", "m3", "r1"]]
    assert await rig.engine.pending_counts() == {}


@virtual_time
async def test_an_unreachable_endpoint_parks_only_its_address_with_backoff() -> None:
    rig = Rig(dead_letter_after_attempts=6, retry_backoff_initial_s=1, retry_backoff_max_s=5)
    rig.functions.fail = lambda a, _v: RetryableError(f"{a}: refused") if a == A else None
    rig.dispatcher.start()
    await rig.send(A, "a1")
    await asyncio.sleep(0.5)
    await rig.send(A, "a2")  # the address is parked: no invocation for a new message
    await rig.send(B, "b1")
    await rig.until(lambda: rig.committed == ["b1"])
    assert rig.now() == 0.5  # other addresses flow while A waits
    await rig.until(lambda: rig.dispatcher.statistics()["dead_lettered_batches"] == 1)
    times = [c.at_s for c in rig.functions.of("a")]
    assert [b - a for a, b in itertools.pairwise(times)] == [1, 2, 4, 5, 5]
    assert [c.values for c in rig.functions.of("a")][1:] == [["a1", "a2"]] * 5
    assert await rig.dead_letters() == [("a", ["a1", "a2"], 6)]
    assert rig.now() == 17.0
    assert await rig.engine.pending_counts() == {}


@virtual_time
async def test_a_terminal_error_dead_letters_the_batch_at_once() -> None:
    rig = Rig()
    rig.functions.fail = lambda a, _v: TerminalError(f"{a}: no such type") if a == A else None
    rig.dispatcher.start()
    await rig.send(A, "a1", "a2")
    await rig.send(B, "b1")
    await rig.dispatcher.idle()
    assert len(rig.functions.of("a")) == 1
    assert await rig.dead_letters() == [("a", ["a1", "a2"], 1)]
    (letter,) = await rig.engine.dead_letters()
    assert "no such type" in letter.error
    assert (rig.committed, rig.now()) == (["b1"], 0.0)


def poison(value: str, *, retry_helps: bool = True) -> Callable[..., FunctionError | None]:
    """Fail every batch that holds ``value``, at its position when not ``retry_helps``."""

    def fail(address: Address, batch: list[str]) -> FunctionError | None:
        if value not in batch:
            return None
        position = batch.index(value) + 1 if not retry_helps else None
        return FunctionError(
            f"{address}: raised on {value}", retry_helps=retry_helps, failed_message=position
        )

    return fail


@virtual_time
async def test_a_poison_message_is_isolated_and_dead_lettered_alone() -> None:
    rig = Rig(max_batch=8)
    rig.functions.fail = poison("m6")
    await rig.send(A, *values("m", 8))
    rig.dispatcher.start()
    await rig.until(lambda: len(rig.committed) == 7)
    assert rig.committed == ["m1", "m2", "m3", "m4", "m5", "m7", "m8"]
    # Every failed call carried m6: three tries of the batch of 8 (0.2 s, then 0.4 s apart),
    # then no more retries: halved to 4 (m1-m4 commit, the limit doubles back), m5-m8 fails and
    # is halved to 2, m5 commits, m6-m7 fails, and m6 alone fails: seven failed calls.
    assert await rig.dead_letters() == [("a", ["m6"], 7)]
    sizes = [(len(c.values), c.failed) for c in rig.functions.log]
    tried = [(8, True)] * 3 + [(4, False), (4, True), (2, True), (1, False), (2, True)]
    tried += [(1, True), (1, False), (1, False)]
    assert sizes == tried
    assert rig.functions.calls == 11
    assert rig.now() == pytest.approx(0.2 + 0.4)


@virtual_time
async def test_a_failure_no_retry_can_cure_cuts_the_batch_before_the_message() -> None:
    rig = Rig(max_batch=8)
    rig.functions.fail = poison("m6", retry_helps=False)
    await rig.send(A, *values("m", 8))
    rig.dispatcher.start()
    await rig.dispatcher.idle()
    assert [c.values for c in rig.functions.log] == [
        values("m", 8),
        values("m", 5),
        ["m6", "m7", "m8"],
        ["m7"],
        ["m8"],
    ]
    assert rig.committed == ["m1", "m2", "m3", "m4", "m5", "m7", "m8"]
    assert await rig.dead_letters() == [("a", ["m6"], 2)]  # both failed calls carried it
    assert rig.now() == 0.0  # no retry, no pause


@virtual_time
async def test_a_function_that_fails_everything_is_down_not_poisoned() -> None:
    rig = Rig(max_batch=2, dead_letter_after_attempts=3, retry_backoff_initial_s=1)
    rig.functions.fail = lambda a, _v: FunctionError(f"{a}: 500")
    await rig.send(A, "m1", "m2")
    rig.dispatcher.start()
    await rig.until(lambda: rig.dispatcher.statistics()["dead_lettered_batches"] == 1)
    # Nothing of the type ever committed, so the single message is not taken for poison after
    # the batch's quick tries (0.2 s, 0.4 s) and its halving: the address waits as for an
    # unreachable endpoint (1 s, then 2 s), and the message is dead-lettered after
    # dead_letter_after_attempts such calls, with no more quick tries in between.
    times = [c.at_s for c in rig.functions.log if "m1" in c.values]
    pauses = [round(b - a, 3) for a, b in itertools.pairwise(times)]
    assert pauses == [0.2, 0.4, 0.0, 1.0, 2.0]  # 0.0: halved to 1
    assert await rig.dead_letters() == [("a", ["m1"], 3)]
    assert rig.now() == pytest.approx(3.6)
    assert rig.committed == []


@virtual_time
async def test_stop_lets_a_running_batch_finish_within_the_grace() -> None:
    rig = Rig()
    gate = rig.functions.gates["a"] = asyncio.Event()
    rig.dispatcher.start()
    await rig.send(A, "a1")
    await rig.until(lambda: rig.functions.running[A] == 1)
    rig.loop.call_later(2, gate.set)
    await rig.dispatcher.stop(grace_s=5)
    assert (rig.committed, rig.now()) == (["a1"], 2.0)


@virtual_time
async def test_stop_abandons_a_batch_after_the_grace_and_commits_nothing() -> None:
    rig = Rig()
    rig.functions.gates["a"] = asyncio.Event()  # never set
    rig.dispatcher.start()
    await rig.send(A, "a1")
    await rig.until(lambda: rig.functions.running[A] == 1)
    await rig.dispatcher.stop(grace_s=5)
    assert rig.now() == 5.0
    assert rig.functions.log[0].cancelled
    assert rig.committed == []
    assert await rig.engine.pending_counts() == {A: 1}  # delivered again after a restart
    await rig.send(B, "b1")
    await asyncio.sleep(10)
    assert rig.functions.calls == 1  # a stopped dispatcher takes no work


@virtual_time
async def test_idle_waits_for_ready_and_running_addresses_but_not_parked_ones() -> None:
    rig = Rig(retry_backoff_initial_s=30)
    rig.dispatcher.start()
    await rig.dispatcher.idle()  # nothing to do
    gate = rig.functions.gates["a"] = asyncio.Event()
    await rig.send(A, "a1")
    idle = asyncio.create_task(rig.dispatcher.idle())
    await asyncio.sleep(10)
    assert not idle.done()  # a1 is running
    rig.functions.fail = lambda a, _v: RetryableError(f"{a}: refused")
    gate.set()
    await idle
    assert rig.now() == 10.0
    assert rig.dispatcher.statistics()["parked"] == 1  # parked for 30 s: idle all the same
