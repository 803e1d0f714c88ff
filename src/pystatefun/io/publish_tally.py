"""``PublishTally``: what a publishing egress (Kafka, Kinesis) reports for the metrics.

Records published, publishes (one batch each, retries inside it included) and the seconds
they took: ``rate(seconds) / rate(publishes)`` is the mean publish latency.
"""

from __future__ import annotations

import time
from typing import final

from pystatefun.reading import Reading

__all__ = ["PublishTally"]


@final
class PublishTally:
    """The figures of egress ``egress`` (its id)."""

    def __init__(self, egress: str) -> None:
        self._labels = (("egress", egress),)
        self.records = 0
        self.publishes = 0
        self.seconds = 0.0

    def started(self) -> float:
        return time.monotonic()

    def published(self, records: int, started: float) -> None:
        """A batch of ``records`` was taken, the publish having started at ``started``."""
        self.records += records
        self.publishes += 1
        self.seconds += time.monotonic() - started

    def readings(self) -> list[Reading]:
        labels = self._labels
        return [
            Reading("egress_records_published_total", "Records the egress published.",
                    "counter", self.records, labels),
            Reading("egress_publishes_total", "Batches the egress published (each once "
                    "taken whole).", "counter", self.publishes, labels),
            Reading("egress_publish_seconds_total", "Seconds those publishes took, retries "
                    "within them included.", "counter", self.seconds, labels),
        ]  # fmt: skip
