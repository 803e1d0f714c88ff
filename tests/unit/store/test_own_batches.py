"""A worker's tails and its committer agree on which of the worker's batches the view holds
(``pystatefun.store.jetstream._own_batches``)."""

from __future__ import annotations

from pystatefun.store.jetstream._own_batches import OwnBatches

INSTANCE = "inst0"


def test_other_workers_batches_are_the_tails_to_apply() -> None:
    reader = OwnBatches(INSTANCE).reader()
    assert not reader.held(None, 1, 1)
    assert not reader.held("other123", 1, 1)


def test_the_batch_being_published_is_held_and_its_first_sequence_noted() -> None:
    own = OwnBatches(INSTANCE)
    reader = own.reader()
    attempts = [f"{INSTANCE}b1"]
    own.publishing(attempts)
    assert own.first_seen() is None
    attempts.append(f"{INSTANCE}b1r1")  # a retry after a lost acknowledgement
    assert reader.held(f"{INSTANCE}b1r1", 8, 7)  # the batch's second record, read first
    assert own.first_seen() == 7
    own.published()
    assert own.first_seen() is None


def test_an_applied_batch_is_held_until_the_tail_is_past_it() -> None:
    own = OwnBatches(INSTANCE)
    reader = own.reader()
    own.applied(f"{INSTANCE}b1", 10)
    assert reader.held(f"{INSTANCE}b1", 9, 8)
    assert reader.held(f"{INSTANCE}b1r2", 10, 8)  # any attempt of it
    assert not reader.held(f"{INSTANCE}b2", 11, 11)  # given up on, and stored after all


def test_each_tail_passes_the_batches_at_its_own_pace() -> None:
    """The shared tail past batch b1 says nothing of the partition tail, still before it."""
    own = OwnBatches(INSTANCE)
    shared, partition = own.reader(), own.reader()
    own.applied(f"{INSTANCE}b1", 10)
    own.applied(f"{INSTANCE}b2", 20)
    assert shared.held(f"{INSTANCE}b2", 19, 11)  # past b1
    assert partition.held(f"{INSTANCE}b1", 4, 1)


def test_a_tail_that_began_after_a_batch_reads_it_in() -> None:
    """Acknowledged while the view did not hold its partition: the new tail applies it."""
    own = OwnBatches(INSTANCE)
    own.applied(f"{INSTANCE}b1", 10)
    late = own.reader()
    assert not late.held(f"{INSTANCE}b1", 9, 8)
    late.close()
    own.applied(f"{INSTANCE}b2", 20)  # a closed reader hears of no more batches
    assert not late.held(f"{INSTANCE}b2", 19, 11)


def test_a_batch_given_up_on_is_the_tails_to_apply() -> None:
    own = OwnBatches(INSTANCE)
    reader = own.reader()
    own.publishing([f"{INSTANCE}b1"])
    own.published()  # no attempt was found stored
    assert not reader.held(f"{INSTANCE}b1", 3, 3)
