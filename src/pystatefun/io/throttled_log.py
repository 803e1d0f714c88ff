"""An error log line for a failure that repeats (brokers down, a topic missing): written at most
every few seconds, so a long outage says what is wrong without flooding the log."""

from __future__ import annotations

import logging
import math
import time
from typing import final

__all__ = ["ThrottledLog"]


@final
class ThrottledLog:
    """Logs ``error`` lines to ``logger``, at most one every ``every_s`` seconds."""

    def __init__(self, logger: logging.Logger, every_s: float = 10.0) -> None:
        self._logger = logger
        self._every_s = every_s
        self._last = -math.inf

    def error(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now - self._last >= self._every_s:
            self._last = now
            self._logger.error(message, *args)
