"""Mailboxes: messages leave in the order they came, stored rows not in memory go first, and
ingress waits for room behind the batch in flight (StateFun's back-pressure)."""

from __future__ import annotations

import asyncio

import pytest
from support.virtual_time import running, virtual_time

from pystatefun.errors import StoppingError
from pystatefun.runtime.mailboxes import Batch, Mailboxes
from pystatefun.store import InboxMessage, Payload
from pystatefun.types import Address

A = Address("ns", "fn", "a")
B = Address("ns", "fn", "b")


def message(seq: int | None, target: Address = A) -> InboxMessage:
    return InboxMessage(seq, target, None, Payload("ns/msg", f"m{seq}".encode()))


def test_messages_leave_in_the_order_they_came_and_each_new_one_is_announced() -> None:
    ready: list[Address] = []
    boxes = Mailboxes(ready.append)
    m1, m2, m3, other = message(1), message(2), message(3), message(4, B)
    for m in (m1, m2, other, m3):
        boxes.deliver(m)
    assert ready == [A, A, B, A]
    box = boxes.get(A)
    assert box is not None
    assert list(box.queue) == [m1, m2, m3]
    boxes.consumed(A, Batch([m1, m2]))
    assert list(box.queue) == [m3]
    assert (box.waiting(), box.unloaded) == (1, 0)


def test_unloaded_rows_are_older_than_the_queue_and_leave_first() -> None:
    boxes = Mailboxes(lambda _: None)
    in_memory = message(10)
    boxes.deliver(in_memory)
    boxes.add_unloaded(A, 2)  # two stored rows (seqs 1 and 2) nobody has read yet
    box = boxes.get(A)
    assert box is not None
    assert (box.waiting(), box.unloaded) == (3, 2)
    # A batch read as the dispatcher reads it: the rows from the store, then the queue's head.
    boxes.consumed(A, Batch([message(1), message(2), in_memory]))
    assert (box.unloaded, list(box.queue)) == (0, [])
    boxes.add_unloaded(A, 2)
    boxes.deliver(message(11))
    boxes.consumed(A, Batch([message(3)]))  # one row only: the queue stays
    assert (box.unloaded, [m.seq for m in box.queue]) == (1, [11])


def test_a_message_held_only_in_memory_is_waiting_without_a_row() -> None:
    boxes = Mailboxes(lambda _: None)
    boxes.deliver(message(None))  # a request-reply message without an idempotency key
    box = boxes.get(A)
    assert box is not None
    assert (box.waiting(), box.unloaded, [m.seq for m in box.queue]) == (1, 0, [None])


def test_try_admit_refuses_at_the_limit_and_the_batch_in_flight_does_not_count() -> None:
    boxes = Mailboxes(lambda _: None)
    assert boxes.try_admit(A, 2)
    assert boxes.try_admit(A, 2)
    assert not boxes.try_admit(A, 2)  # two admitted, not yet committed: full
    assert boxes.try_admit(B, 2)  # per address
    boxes.release(A, message(1))
    boxes.release(A, message(2))
    assert not boxes.try_admit(A, 2)  # now two waiting
    box = boxes.get(A)
    assert box is not None
    box.in_flight = 2  # both taken by an invocation: nothing waits behind it
    assert boxes.try_admit(A, 2)
    assert boxes.try_admit(A, 0)  # 0: unbounded
    assert box.reserved == 2


@virtual_time
async def test_admit_waits_for_room_and_wakes_when_a_batch_is_consumed() -> None:
    boxes = Mailboxes(lambda _: None)
    first, second = message(1), message(2)
    boxes.deliver(first)
    boxes.deliver(second)
    waiting = asyncio.create_task(boxes.admit(A, 2))
    await asyncio.sleep(60)  # a minute of virtual time: nothing makes room
    assert not waiting.done()
    assert boxes.waiting_for_room() == [A]
    boxes.consumed(A, Batch([first]))
    await waiting
    box = boxes.get(A)
    assert box is not None
    assert (box.reserved, running().time()) == (1, 60.0)
    assert boxes.waiting_for_room() == []


@virtual_time
async def test_admit_wakes_when_an_admitted_message_turns_out_to_add_nothing() -> None:
    boxes = Mailboxes(lambda _: None)
    assert boxes.try_admit(A, 1)
    waiting = asyncio.create_task(boxes.admit(A, 1))
    await asyncio.sleep(1)
    assert not waiting.done()
    boxes.release(A, None)  # the admitted message added nothing (a duplicate, say)
    await waiting
    box = boxes.get(A)
    assert box is not None
    assert (box.reserved, box.waiting()) == (1, 0)


@virtual_time
async def test_stop_refuses_every_waiter_and_every_new_message() -> None:
    boxes = Mailboxes(lambda _: None)
    boxes.deliver(message(1))
    waiters = [asyncio.create_task(boxes.admit(A, 1)) for _ in range(3)]
    await asyncio.sleep(1)
    boxes.stop()
    for waiter in waiters:
        with pytest.raises(StoppingError, match="stopping"):
            await waiter
    assert not boxes.try_admit(B, 1)
    assert running().time() == 1.0


def test_withdraw_takes_a_waiting_message_back_but_not_one_in_flight() -> None:
    boxes = Mailboxes(lambda _: None)
    m1, m2, m3 = message(None), message(None), message(None)
    for m in (m1, m2, m3):
        boxes.deliver(m)
    box = boxes.get(A)
    assert box is not None
    box.in_flight = box.in_flight_queue = 1  # m1 is being invoked
    assert not boxes.withdraw(m1)
    assert boxes.withdraw(m3)
    assert not boxes.withdraw(m3)  # already out
    assert not boxes.withdraw(message(None))  # an equal message is not the same request
    assert list(box.queue) == [m1, m2]
    assert not boxes.withdraw(message(None, B))  # no mailbox at all


def test_forget_if_empty_keeps_a_mailbox_while_anything_is_in_it_or_on_its_way() -> None:
    boxes = Mailboxes(lambda _: None)
    boxes.forget_if_empty(A)  # no mailbox: nothing to do
    waiting = message(1)
    boxes.deliver(waiting)
    boxes.forget_if_empty(A)
    box = boxes.get(A)
    assert box is not None  # a message waits
    box.in_flight = 1
    boxes.consumed(A, Batch([waiting]))  # the batch holds the queued object itself
    boxes.forget_if_empty(A)
    assert boxes.get(A) is box  # its batch is still in flight
    boxes.finished(A)
    assert boxes.try_admit(A, 0)
    boxes.forget_if_empty(A)
    assert boxes.get(A) is box  # a message was admitted and is on its way
    boxes.release(A, None)  # it added nothing: the empty mailbox goes
    assert boxes.get(A) is None
    boxes.add_unloaded(B, 1)
    boxes.forget_if_empty(B)
    assert boxes.get(B) is not None  # an unread row waits
