"""What becomes of a batch whose invocation failed, per address (every other address flows on).

- **Terminal** (``TerminalError``: no endpoint, a reply that contradicts the module or stored
  data, HTTP 404/400 from the function server): the batch is dead-lettered at once.
- **The function failed** (``FunctionError``: it raised, or refused the batch's size): a few
  quick retries when the address begins failing, then the batch is split until the message it
  cannot take is found, and that message alone is dead-lettered
  (``pystatefun.runtime.isolation``).
- **The endpoint cannot be reached** (any other ``RetryableError``: refused, timing out, 5xx
  from a proxy, garbage): the address is parked with backoff (``retry_backoff_initial_s``,
  doubling up to ``retry_backoff_max_s``) and its messages wait; after
  ``dead_letter_after_attempts`` failed calls the batch is dead-lettered.

A ``FailureHandler``, when given, replaces all of this: the test harness raises the error out
of its ``run`` instead, and the batch stays in its mailbox.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import final

from pystatefun.errors import FunctionError, InvocationError, TerminalError
from pystatefun.runtime.commits import Commits
from pystatefun.runtime.isolation import Decision, Isolation
from pystatefun.runtime.mailboxes import Batch
from pystatefun.runtime.options import RuntimeOptions
from pystatefun.types import Address

__all__ = ["FailureHandler", "FailurePolicy"]

_log = logging.getLogger("pystatefun.runtime")

#: Decides instead of retries and dead letters what becomes of a failed batch (the test
#: harness raises the error); the batch stays in its mailbox and the address is not retried.
FailureHandler = Callable[[Address, InvocationError], None]


@final
class FailurePolicy:
    """Applies the policy above; ``park(address, delay_s)`` holds an address back (None: until
    a new dispatcher takes over)."""

    def __init__(
        self,
        commits: Commits,
        *,
        options: RuntimeOptions,
        park: Callable[[Address, float | None], None],
        on_failure: FailureHandler | None = None,
    ) -> None:
        self._commits = commits
        self._options = options
        self._park = park
        self._on_failure = on_failure
        self._attempts: dict[Address, int] = {}  # failed calls to an unreachable endpoint
        self._isolation = Isolation(
            attempts=options.function_error_attempts, backoff_s=options.function_error_backoff_s
        )

    def batch_limit(self, address: Address, full: int) -> int:
        """``full``, or less while the address's function is failing (isolation)."""
        cap = self._isolation.cap(address)
        return full if cap is None else min(cap, full)

    def committed(self, address: Address) -> None:
        """A batch of ``address`` committed: its calls work again."""
        self._attempts.pop(address, None)
        self._isolation.committed(address)

    def forget(self, address: Address) -> None:
        """``address`` has no messages left."""
        self._isolation.forget(address)

    async def failed(self, address: Address, batch: Batch, failure: InvocationError) -> None:
        """Apply the policy to ``batch`` of ``address``, which failed with ``failure``."""
        if self._on_failure is not None:
            self._park(address, None)
            self._on_failure(address, failure)
            return
        if isinstance(failure, TerminalError):
            self._attempts.pop(address, None)
            await self._commits.dead_letter(address, batch, error=str(failure))
            return
        if isinstance(failure, FunctionError):
            await self._isolate(address, batch, failure)
            return
        await self._retry_later(address, batch, failure)

    async def _isolate(self, address: Address, batch: Batch, failure: FunctionError) -> None:
        """The function failed on ``batch``: retry it, split it, or dead-letter its first
        message alone."""
        verdict = self._isolation.failed(address, len(batch.messages), failure)
        if verdict.decision is Decision.RETRY:
            _log.warning("%s; trying the batch again in %.1fs", failure, verdict.delay_s,
                         extra={"address": address})  # fmt: skip
            self._park(address, verdict.delay_s)
            return
        if verdict.decision is Decision.SPLIT:
            cap = self._isolation.cap(address)
            _log.warning("%s; splitting the batch: at most %s message(s) next", failure, cap,
                         extra={"address": address})  # fmt: skip
            return
        head = Batch(batch.messages[:1])
        if verdict.decision is Decision.DEAD_LETTER:
            self._attempts.pop(address, None)
            await self._commits.dead_letter(
                address, head, error=str(failure), attempts=verdict.attempts
            )
            return
        await self._retry_later(address, head, failure)  # nothing of its type works: down

    async def _retry_later(self, address: Address, batch: Batch, error: InvocationError) -> None:
        attempts = self._attempts.get(address, 0) + 1
        self._attempts[address] = attempts
        policy = self._options
        if attempts >= policy.dead_letter_after_attempts:
            self._attempts.pop(address, None)
            await self._commits.dead_letter(address, batch, error=str(error), attempts=attempts)
            return
        delay = min(
            policy.retry_backoff_initial_s * 2 ** (attempts - 1), policy.retry_backoff_max_s
        )
        _log.warning(
            "%s (attempt %d of %d; retrying in %.1fs, other addresses keep flowing)",
            error,
            attempts,
            policy.dead_letter_after_attempts,
            delay,
            extra={"address": address},
        )
        self._park(address, delay)
