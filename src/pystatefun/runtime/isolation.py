"""Finding the message a function cannot take, so that one bad message costs only itself.

A function that raises on one message (the SDK answers HTTP 500) fails the whole batch that
message travels in. Retrying the batch as it is would hold the address, and then dead-letter the
good messages with the bad one. Instead, for an address whose function failed:

1. the batch is tried ``attempts`` times in all, after short pauses (``backoff_s``, doubling):
   a function that failed by chance gets its chance. This happens once, when the address begins
   failing; later failures of the same isolation are not retried, since the first ones already
   showed that the failure repeats;
2. then the batch is **halved**, keeping its order: the next batch of the address is at most half
   as long. A half that succeeds commits (and the limit doubles back); one that fails is halved
   again, at once. Per-sender order holds, because every batch is still the head of the
   mailbox;
3. a single message that still fails is **poison**: it alone is dead-lettered, and the address
   goes on with its next messages. It is poison only if the function was seen working meanwhile
   (another batch of its type committed since the address began failing); if nothing of that
   type commits, the function is down, not the message, and the address falls back to the
   slower policy of an endpoint that cannot be reached (``Decision.FALLBACK``).

When the SDK says which message failed and that no retry can help (pystatefun's SDK reports
both; see ``pystatefun.runtime.failures``), the batch is cut right before that message, and the
message is dead-lettered as soon as it heads a batch. A dead letter records the failed calls of
the isolation (each of them carried the message). With the defaults, a batch of 1,000 with one
bad message is resolved after 0.6 s of retries and about twenty calls.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple, final

from pystatefun.errors import FunctionError
from pystatefun.types import Address

__all__ = ["Decision", "Isolation", "Verdict"]

_TYPES_MAX = 10_000  # function types whose successes are counted (clients can invent types)
_CAP_MAX = 1 << 30  # past any batch: the limit stops doubling


class Decision(Enum):
    RETRY = "retry"  # the same batch again, after ``Verdict.delay_s``
    SPLIT = "split"  # a shorter batch, now
    DEAD_LETTER = "dead_letter"  # the first message alone goes to the dead letters
    FALLBACK = "fallback"  # the function seems down: the unreachable-endpoint policy


@final
class Verdict(NamedTuple):
    """What to do, after how long, and (for a dead letter) how often the message failed."""

    decision: Decision
    delay_s: float = 0.0
    attempts: int = 1


@final
@dataclass(slots=True)
class _Failing:
    """An address whose function failed: its batch limit, the failed calls of this isolation
    (the first ``attempts`` of them are retries), and how many batches of its type had
    committed when it began failing."""

    typename: str
    cap: int
    failures: int
    baseline: int
    since_letter: int = 0  # failed calls since the last dead letter: what the next one records


@final
class Isolation:
    """The isolation state of every failing address (see the module docs)."""

    def __init__(self, *, attempts: int, backoff_s: float) -> None:
        self._attempts = attempts
        self._backoff_s = backoff_s
        self._failing: dict[Address, _Failing] = {}
        self._committed: dict[str, int] = {}  # function type -> batches committed

    def cap(self, address: Address) -> int | None:
        """The most messages the next batch of ``address`` may carry, while it is failing."""
        failing = self._failing.get(address)
        return None if failing is None else failing.cap

    def committed(self, address: Address) -> None:
        """A batch of ``address`` committed: its limit doubles back (and ends at the full
        batch), and its function type counts as working."""
        typename = address.typename
        if len(self._committed) >= _TYPES_MAX and typename not in self._committed:
            self._committed.clear()
        self._committed[typename] = self._committed.get(typename, 0) + 1
        failing = self._failing.get(address)
        if failing is not None:
            failing.cap = min(failing.cap * 2, _CAP_MAX)

    def forget(self, address: Address) -> None:
        """``address`` has no messages left: its isolation is over. (Until then it goes on,
        even once its limit is back to a full batch, so that a poison message that a doubled
        limit takes in again is split out at once, without new retries.)"""
        self._failing.pop(address, None)

    def failed(self, address: Address, size: int, error: FunctionError) -> Verdict:
        """A batch of ``size`` messages of ``address`` failed with ``error``: what next."""
        failing = self._failing.get(address)
        if failing is None:
            baseline = self._committed.get(address.typename, 0)
            failing = self._failing[address] = _Failing(address.typename, size, 0, baseline)
        failing.cap = min(failing.cap, size)
        position = error.failed_message
        if position is not None and not 1 <= position <= size:
            position = None  # not a position in this batch: ignore it
        failing.failures += 1
        failing.since_letter += 1
        if not error.retry_helps:
            return self._cut(failing, size, position, sure=True)
        if failing.failures < self._attempts:
            return Verdict(Decision.RETRY, self._backoff_s * 2 ** (failing.failures - 1))
        return self._cut(failing, size, position, sure=False)

    def _cut(self, failing: _Failing, size: int, position: int | None, *, sure: bool) -> Verdict:
        """Shorten the batch: right before the failed message if known, else by half; a first
        message that fails is dead-lettered, if it is ``sure`` to be the message's fault."""
        if position is not None and position > 1:
            failing.cap = position - 1
            return Verdict(Decision.SPLIT)
        if size > 1 and position is None:
            failing.cap = size // 2
            return Verdict(Decision.SPLIT)
        failing.cap = 1
        working = self._committed.get(failing.typename, 0) > failing.baseline
        if not (sure or working):
            return Verdict(Decision.FALLBACK)
        attempts, failing.since_letter = failing.since_letter, 0
        return Verdict(Decision.DEAD_LETTER, attempts=attempts)
