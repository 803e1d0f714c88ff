"""``Backoff``: how long a connector waits before it retries what failed (brokers down, a
stream missing, throttling): doubling from ``first_s`` up to ``max_s``, back to ``first_s``
once something works."""

from __future__ import annotations

from typing import final

__all__ = ["Backoff"]


@final
class Backoff:
    """The next wait (``next_s``), doubling per failure; ``reset`` after a success."""

    def __init__(self, first_s: float = 0.1, max_s: float = 30.0) -> None:
        self._first_s = first_s
        self._max_s = max_s
        self._next_s = first_s

    def next_s(self) -> float:
        """The wait before the next retry (and double it for the one after)."""
        wait_s = self._next_s
        self._next_s = min(self._next_s * 2, self._max_s)
        return wait_s

    def reset(self) -> None:
        self._next_s = self._first_s
