"""The Kafka benchmark's function, written once against the StateFun Python SDK API.

``build(sf)`` takes either ``pystatefun.sdk`` or the official ``statefun`` 3.3.0 module (the
API the two share), like ``bench_functions.py``. ``bench/kafka-counter`` (state ``count``, int)
gets each record of the input topic (addressed by the record's key; value type ``bench/event``,
the record's bytes as they are), adds 1 to its count and sends one record to the Kafka egress
``bench/out``: the same key, and the input's value with the new count appended
(``<run>,<seq>,<produced unix ns>,<count>``), to the topic named by ``BENCH_KAFKA_OUT_TOPIC``.

Served by ``bench/functions/serve_official.py --functions bench/functions/kafka_counter.py``
(``bench/kafka_end_to_end.py`` does so). Standard library only, so either SDK's virtualenv can
load it.
"""

from __future__ import annotations

import os
from typing import Any

COUNTER = "bench/kafka-counter"
EGRESS = "bench/out"
OUT_TOPIC_ENV = "BENCH_KAFKA_OUT_TOPIC"


def build(sf: Any) -> Any:
    """The ``StatefulFunctions`` of the Kafka benchmark, built with the SDK module ``sf``."""
    topic = os.environ[OUT_TOPIC_ENV]
    functions = sf.StatefulFunctions()

    def counter(context: Any, message: Any) -> None:
        value = message.raw_value() or b""
        count = (context.storage.count or 0) + 1
        context.storage.count = count
        record = sf.kafka_egress_message(
            typename=EGRESS,
            topic=topic,
            key=context.address.id,
            value=value + b"," + str(count).encode("ascii"),
        )
        context.send_egress(record)

    functions.register(COUNTER, counter, specs=[sf.ValueSpec(name="count", type=sf.IntType)])
    return functions
