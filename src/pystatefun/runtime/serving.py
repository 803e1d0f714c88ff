"""What a runtime does when the addresses it serves change (a cluster worker's partitions).

Storage tells it through ``OwnershipListener``: messages stored by another worker for one of
its partitions, or a partition acquired with what waits in it (the mailboxes are scanned again,
and timers looked at again); a partition given away (its mailboxes forgotten once running
invocations end); or no commits taken any more (the runtime stops).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import final

from pystatefun.runtime.dispatcher import Dispatcher
from pystatefun.runtime.timers import TimerService
from pystatefun.types import Address

__all__ = ["Serving"]

_log = logging.getLogger("pystatefun.runtime")


@final
class Serving:
    """The runtime's ``OwnershipListener``."""

    def __init__(
        self, dispatcher: Dispatcher, timers: TimerService, *, on_fatal: Callable[[str], None]
    ) -> None:
        self._dispatcher = dispatcher
        self._timers = timers
        self._on_fatal = on_fatal
        self._again = False
        self._scan: asyncio.Task[None] | None = None
        self._watchers: list[Callable[[], None]] = []

    def watch(self, changed: Callable[[], None]) -> None:
        """Call ``changed`` (on the loop) whenever what this runtime serves changed: a
        connector that reads source partitions by their positions' owner (Kafka) reassigns."""
        self._watchers.append(changed)

    def _changed(self) -> None:
        for changed in self._watchers:
            changed()

    def acquired(self) -> None:
        self._changed()
        self.arrived()

    def arrived(self) -> None:
        # One scan at a time: arrivals during a scan make one more, not one each.
        self._again = True
        if self._scan is None:
            self._scan = asyncio.get_running_loop().create_task(self._rescan())

    async def _rescan(self) -> None:
        try:
            while self._again:
                self._again = False
                await self._dispatcher.rescan()
                self._timers.wake()
        except Exception:  # noqa: BLE001 - the periodic rescan picks them up instead
            _log.exception("looking for messages stored by other workers failed")
        finally:
            self._scan = None

    async def release(self, gone: Callable[[Address], bool]) -> None:
        self._changed()  # connectors stop reading what is no longer served, at once
        await self._dispatcher.release(gone)

    def lost(self, reason: str) -> None:
        self._on_fatal(reason)

    async def stop(self) -> None:
        self._again = False
        if self._scan is not None:
            await self._scan
