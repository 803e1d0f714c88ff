"""A worker's tail and its committer agree on which of the worker's batches the view holds
(``pystatefun.store.jetstream._own_batches``)."""

from __future__ import annotations

from pystatefun.store.jetstream._own_batches import OwnBatches

INSTANCE = "inst0"


def test_other_workers_batches_are_the_tails_to_apply() -> None:
    own = OwnBatches(INSTANCE)
    assert not own.held(None, 1)
    assert not own.held("other123", 1)


def test_the_batch_being_published_is_held_and_its_first_sequence_noted() -> None:
    own = OwnBatches(INSTANCE)
    attempts = [f"{INSTANCE}b1"]
    own.publishing(attempts)
    assert own.first_seen() is None
    attempts.append(f"{INSTANCE}b1r1")  # a retry after a lost acknowledgement
    assert own.held(f"{INSTANCE}b1r1", 7)
    assert own.held(f"{INSTANCE}b1r1", 8)
    assert own.first_seen() == 7
    own.published()
    assert own.first_seen() is None


def test_an_applied_batch_is_held_until_the_tail_is_past_it() -> None:
    own = OwnBatches(INSTANCE)
    own.applied(f"{INSTANCE}b1", 10)
    assert own.held(f"{INSTANCE}b1", 9)
    assert own.held(f"{INSTANCE}b1r2", 10)  # any attempt of it
    assert not own.held(f"{INSTANCE}b2", 11)  # given up on, and stored after all


def test_a_batch_given_up_on_is_the_tails_to_apply() -> None:
    own = OwnBatches(INSTANCE)
    own.publishing([f"{INSTANCE}b1"])
    own.published()  # no attempt was found stored
    assert not own.held(f"{INSTANCE}b1", 3)
