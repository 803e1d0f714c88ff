"""A virtual-time asyncio event loop, so that tests of timers, TTLs and backoffs take no time.

``VirtualTimeLoop.time()`` is virtual. When no callback is ready and no I/O has arrived, the loop
does not wait for its next timer: it jumps straight to it (trio's autojump clock, the
``looptime`` library). A test of a 10-minute timer or of retries after 1, 2 and 4 s runs in
milliseconds, and sees the same times on every run. ``clock_ms`` is a wall clock in epoch
milliseconds that follows the virtual time: pass it as ``RuntimeOptions(clock_ms=...)`` and to
``MemoryEngine`` and ``TimerService``, so that delays, TTLs and backoffs all run on it.

``@virtual_time`` runs an ``async def`` test on a fresh loop of its own (to pytest it is a plain
test, so pytest-asyncio leaves it alone); ``running()`` is that loop, inside the test.

Time jumps whatever real I/O may be under way, so use this loop only for code that does none
(no sockets, no threads). A test that waits for something nothing will ever do fails at once
with ``StalledError`` instead of hanging; one that keeps a timer going (a retry, a timer
service) fails once virtual time passes ``horizon_s``.
"""

from __future__ import annotations

import asyncio
import functools
import selectors
from collections.abc import Callable, Coroutine, Mapping
from typing import Any

__all__ = ["START_MS", "StalledError", "VirtualTimeLoop", "running", "virtual_time"]

#: Where ``clock_ms`` starts: 2023-11-14T22:13:20Z, as the test harness does.
START_MS = 1_700_000_000_000
_REAL_WAIT_S = 0.5  # with nothing scheduled, how long real I/O (a thread) may take to arrive
_HORIZON_S = 86_400.0


class StalledError(RuntimeError):
    """Nothing can ever run again: every task waits, and no timer is scheduled."""


class _AutojumpSelector(selectors.BaseSelector):
    """Polls the real selector without waiting; where the loop would wait for its next timer,
    moves virtual time forward by that wait instead."""

    def __init__(self, advance: Callable[[float], None]) -> None:
        self._real = selectors.DefaultSelector()
        self._advance = advance

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_map(self) -> Mapping[Any, selectors.SelectorKey]:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer at all: only a thread could still wake the loop
            ready = self._real.select(_REAL_WAIT_S)
            if not ready:
                raise StalledError("every task waits, no timer is scheduled: a deadlock")
            return ready
        self._advance(timeout)
        return []


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop whose clock starts at 0 and only moves when the loop has nothing to do."""

    def __init__(self, start_ms: int = START_MS, horizon_s: float = _HORIZON_S) -> None:
        self._now = 0.0
        self._horizon_s = horizon_s
        self.start_ms = start_ms
        super().__init__(_AutojumpSelector(self._advance))

    def time(self) -> float:
        return self._now

    def _advance(self, seconds: float) -> None:
        self._now += seconds
        if self._now > self._horizon_s:
            raise StalledError(f"virtual time passed {self._horizon_s:g} s: a test that never ends")

    def clock_ms(self) -> int:
        """The wall clock, in epoch milliseconds, at the loop's virtual time."""
        return self.start_ms + round(self._now * 1000)


def running() -> VirtualTimeLoop:
    """The running loop, which must be a ``VirtualTimeLoop`` (inside a ``@virtual_time`` test)."""
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop), f"not on virtual time: {loop!r}"
    return loop


def virtual_time(test: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run the ``async def`` test ``test`` on a fresh ``VirtualTimeLoop``; its fixtures are
    passed through. Tasks it leaves behind are cancelled, and the loop is closed, at its end."""

    @functools.wraps(test)
    def run(*args: Any, **kwargs: Any) -> None:
        with asyncio.Runner(loop_factory=VirtualTimeLoop) as runner:
            runner.run(test(*args, **kwargs))

    return run
