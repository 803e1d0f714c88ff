"""``ClusterView.oldest_egress``: the record a playground pop takes, the oldest of its topic
by creation time (then seq), found without scanning every egress record. Checked against the
scan it replaced, over random adds, removals (pops here and elsewhere) and skips. Views built
by hand: no server is needed for this."""

from __future__ import annotations

import random

import pytest

from pystatefun.store.contents import EgressContent
from pystatefun.store.jetstream._layout import ClusterLayout
from pystatefun.store.jetstream._view import ClusterView
from pystatefun.store.records import Payload

LAYOUT = ClusterLayout("c", key_groups=8, partitions=4, generation=1, streams=1)
TOPICS = [("e/play", "a"), ("e/play", "b"), ("e/kafka", "a")]


def _scanned(view: ClusterView, egress: str, topic: str, skip: set[int]) -> int | None:
    """The answer by the scan: every record looked at."""
    found = [(view.egress_created[seq], seq) for seq, record in view.egress.items()
             if record.egress == egress and record.topic == topic and seq not in skip]  # fmt: skip
    return min(found)[1] if found else None


@pytest.mark.parametrize("stale_slack", [1024, 4])  # the second rebuilds its heaps often
@pytest.mark.parametrize("seed", range(6))
def test_the_oldest_record_of_a_topic_is_the_one_the_scan_finds(
    seed: int, stale_slack: int
) -> None:
    rng = random.Random(seed)
    view = ClusterView(8)
    view.stale_slack = stale_slack
    subjects: dict[int, str] = {}
    seq = 0
    for _ in range(600):
        action = rng.random()
        egress, topic = rng.choice(TOPICS)
        if action < 0.5:  # a record made, with a clock that may run behind others
            seq += 1
            subject = LAYOUT.subject("eg", rng.randrange(4), str(seq))
            created = 1_000 + seq * 10 + rng.randrange(-40, 40)
            view.apply(subject, seq, EgressContent(egress, topic, Payload("t", b"x"), created))
            subjects[seq] = subject
        elif action < 0.8 and subjects:  # a record popped, here or by another worker
            gone = rng.choice(sorted(subjects))
            seq += 1
            view.apply(subjects.pop(gone), seq, None)
        skip = set(rng.sample(sorted(subjects), min(len(subjects), rng.randrange(3))))
        assert view.oldest_egress(egress, topic, skip) == _scanned(view, egress, topic, skip)


def test_a_topic_popped_to_its_end_then_written_again_gives_its_new_records() -> None:
    view = ClusterView(8)
    for seq in (1, 2):
        view.apply(f"s{seq}", seq, EgressContent("e/play", "a", Payload("t", b"x"), 5 - seq))
    assert view.oldest_egress("e/play", "a", set()) == 2  # made first, by its clock
    view.apply("s2", 3, None)
    view.apply("s1", 4, None)
    assert view.oldest_egress("e/play", "a", set()) is None
    view.apply("s5", 5, EgressContent("e/play", "a", Payload("t", b"x"), 9))
    assert view.oldest_egress("e/play", "a", set()) == 5
    assert view.oldest_egress("e/play", "a", {5}) is None
    assert view.oldest_egress("e/play", "b", set()) is None
