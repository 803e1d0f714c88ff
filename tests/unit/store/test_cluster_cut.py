"""A read of several streams is one state of the cluster unless a message crossed between two
of them while they were read; the relay marks tell (``_reading.torn``), and what is in flight
is counted once (``_relay.in_flight``). Views built by hand: no server is needed for this."""

from __future__ import annotations

from pystatefun.store.contents import MessageContent
from pystatefun.store.jetstream._layout import ClusterLayout
from pystatefun.store.jetstream._reading import torn
from pystatefun.store.jetstream._relay import in_flight
from pystatefun.store.jetstream._view import ClusterView, Mark, Outbound
from pystatefun.store.records import Payload
from pystatefun.types import Address

LAYOUT = ClusterLayout("c", key_groups=8, partitions=4, generation=1, streams=2)
SOURCE, TARGET = 0, 1  # partitions of streams 0 and 1


def _message(n: int) -> MessageContent:
    return MessageContent(Address("ns", "fn", "x"), None, Payload("ns/T", bytes([n])), 0)


def _view(*, outbox: dict[int, int], received: int, relayed: int) -> ClusterView:
    """Outbox records of SOURCE at their stream-0 sequences (-> message n), the receiver's
    mark ``rx`` and the sender's ``rl``."""
    view = ClusterView(8, streams=2)
    for seq, n in outbox.items():
        subject = LAYOUT.subject("ob", SOURCE, f"t{seq}")
        view.apply(subject, LAYOUT.global_id(0, seq), Outbound(_message(n)))
    if received:
        subject = LAYOUT.subject("rx", TARGET, str(SOURCE))
        view.apply(subject, LAYOUT.global_id(1, 50), Mark(received))
    if relayed:
        subject = LAYOUT.subject("rl", SOURCE, str(TARGET))
        view.apply(subject, LAYOUT.global_id(0, 60), Mark(relayed))
    return view


def test_a_cut_that_no_message_crossed_is_whole() -> None:
    view = _view(outbox={10: 1, 11: 2}, received=10, relayed=0)
    assert torn(LAYOUT, view, [70, 70]) is None
    # The one the receiver holds is not in flight; the other is, once.
    assert in_flight(LAYOUT, view) == [_message(2)]


def test_a_receiver_read_past_its_senders_cut_is_torn() -> None:
    view = _view(outbox={}, received=80, relayed=0)  # sent at 80, the sender read up to 70
    why = torn(LAYOUT, view, [70, 70])
    assert why is not None
    assert "partition 1 holds messages that partition 0 sent later" in why
    assert torn(LAYOUT, view, [80, 70]) is None


def test_a_sender_that_deleted_what_its_receiver_was_not_read_with_is_torn() -> None:
    view = _view(outbox={}, received=10, relayed=12)  # 11 and 12 deleted, not seen received
    why = torn(LAYOUT, view, [70, 70])
    assert why is not None
    assert "partition 0 deleted messages not yet read in 1" in why
    assert torn(LAYOUT, _view(outbox={}, received=12, relayed=12), [70, 70]) is None
