"""Group commit changes nothing but speed: random steps written as one transaction leave the same
contents and outcomes as the same steps written one transaction each.

The step writer combines the writes of a group commit (a message made and consumed within the
transaction is never written, a state written twice is written once, a step that can fail alone
runs in a savepoint), which is where a bug would hide. Hypothesis builds the steps; both sides
are real SQLite files written by the store's own ``Tables``.
"""

from __future__ import annotations

import copy
import dataclasses
import itertools
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from pystatefun.store import (
    CancelTimer,
    DataDir,
    DeadLetterEntry,
    EgressOut,
    KeyGroups,
    NewMessage,
    NewTimer,
    Payload,
    Position,
    StateValue,
    Step,
    StepOutcome,
)
from pystatefun.store._sqlite_contents import records
from pystatefun.store.records import TimerRecord
from pystatefun.types import Address

NOW_MS = 1_000_000
ADDRESSES = [Address("ns", "fn", name) for name in "abc"]
SENDERS = ADDRESSES[:2]
TOKENS = ["t1", "t2"]
PAYLOADS = st.builds(Payload, st.sampled_from(["ns/A", "ns/B"]), st.binary(max_size=3) | st.none())


def _state(draw: st.DrawFn, step: Step) -> None:
    step.state_address = draw(st.sampled_from(ADDRESSES))
    for name in draw(st.lists(st.sampled_from("xyz"), max_size=3)):
        expires = draw(st.none() | st.integers(NOW_MS - 10, NOW_MS + 10))
        step.state_puts.append(StateValue(name, draw(PAYLOADS), 1 if expires else 0, 10, expires))
    step.state_deletes.extend(draw(st.lists(st.sampled_from("xyz"), max_size=2)))


def _timers(draw: st.DrawFn, step: Step) -> None:
    for op in draw(st.lists(st.integers(0, 3), max_size=2)):
        sender, token = draw(st.sampled_from(SENDERS)), draw(st.sampled_from(TOKENS))
        if op == 0:
            step.timer_ops.append(CancelTimer(sender, token))
            continue
        fire_at = NOW_MS + draw(st.integers(0, 100))
        target = draw(st.sampled_from(ADDRESSES))
        timer = NewTimer(fire_at, sender, token if op == 1 else None, target, draw(PAYLOADS))
        step.timer_ops.append(timer)


def _messages(draw: st.DrawFn, step: Step, made: list[int], next_id: list[int]) -> None:
    """Messages with provisional ids, as a step delivered before it commits has them: only
    for steps that cannot be refused alone, as in the runtime."""
    if any(isinstance(op, NewTimer) and op.token for op in step.timer_ops):
        return
    for _ in range(draw(st.integers(0, 3))):
        target = draw(st.sampled_from(ADDRESSES))
        caller = draw(st.sampled_from([None, *ADDRESSES]))
        step.messages.append(NewMessage(target, caller, draw(PAYLOADS)))
    if step.messages:
        step.provisional = range(next_id[0], next_id[0] - len(step.messages), -1)
        next_id[0] -= len(step.messages)
        made.extend(step.provisional)


def _step(draw: st.DrawFn, made: list[int], next_id: list[int]) -> Step:
    """One random step: it may consume messages made by earlier steps (by their provisional
    ids), write state, send messages, schedule or cancel delayed messages, write egress
    records and positions, carry an idempotency key, or dead-letter."""
    step = Step()
    consumed = draw(st.lists(st.sampled_from(made), unique=True, max_size=3)) if made else []
    for message_id in consumed:
        made.remove(message_id)
        step.consumed.append(message_id)
    if draw(st.booleans()):
        _state(draw, step)
    _timers(draw, step)
    _messages(draw, step, made, next_id)
    if draw(st.booleans()):
        step.egress.append(EgressOut("eg", draw(st.sampled_from("pq")), draw(PAYLOADS)))
    if draw(st.booleans()):
        position = str(draw(st.integers(0, 9)))
        step.positions.append(Position("src", draw(st.sampled_from("01")), position))
    if draw(st.integers(0, 4)) == 0:
        step.dedup_key = draw(st.sampled_from(["k1", "k2"]))
        step.dedup_expires_at_ms = NOW_MS + draw(st.integers(-1, 5))
    if draw(st.integers(0, 5)) == 0:
        target = draw(st.sampled_from(ADDRESSES))
        message = NewMessage(target, None, draw(PAYLOADS))
        step.dead_letter = DeadLetterEntry(target, "boom", 2, (message,))
    return step


@st.composite
def _steps(draw: st.DrawFn) -> list[Step]:
    made: list[int] = []
    next_id = [-1]
    return [_step(draw, made, next_id) for _ in range(draw(st.integers(1, 12)))]


def _contents(data_dir: DataDir) -> list[object]:
    """Every record, with timer ids left out (they number the rows, which may differ)."""
    db = data_dir.snapshot_connection()
    return [
        dataclasses.replace(r, timer_id=0) if isinstance(r, TimerRecord) else r
        for r in records(db, data_dir.database)
    ]


def _outcome(outcome: StepOutcome) -> tuple[bool, bool, str | None, bool]:
    """What a step's outcome says, beyond the rows' numbers."""
    return (outcome.committed, outcome.duplicate, outcome.error, outcome.dead_letter_id is None)


_run = itertools.count()


@settings(max_examples=150, deadline=None)
@given(_steps())
def test_one_group_commit_equals_one_commit_per_step(
    tmp_path_factory: object, steps: list[Step]
) -> None:
    run = next(_run)
    base = Path(str(tmp_path_factory.mktemp(f"group-{run}")))  # type: ignore[attr-defined]
    sides = {}
    for name in ("grouped", "alone"):
        data_dir = DataDir(base / name)
        tables = data_dir.open_tables(key_groups=KeyGroups(8), durability="os", cache_mib=4)
        todo = copy.deepcopy(steps)
        if name == "grouped":
            outcomes = tables.apply_steps(todo, NOW_MS)
        else:
            outcomes = [tables.apply_steps([step], NOW_MS)[0] for step in todo]
        tables.close()
        sides[name] = ([_outcome(o) for o in outcomes], _contents(data_dir))
    assert sides["grouped"] == sides["alone"]
