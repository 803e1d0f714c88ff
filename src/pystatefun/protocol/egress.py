"""Records for the generic Kafka and Kinesis egresses, and the type names that mark them.

A function sends one of these serialized inside a ``TypedValue`` whose typename is exactly the
constant below; the generic egresses compare it byte for byte.
"""

from __future__ import annotations

from pystatefun.protocol._generated.statefun.kafka_egress_pb2 import (
    KafkaProducerRecord as KafkaProducerRecord,
)
from pystatefun.protocol._generated.statefun.kinesis_egress_pb2 import (
    KinesisEgressRecord as KinesisEgressRecord,
)

__all__ = [
    "KAFKA_PRODUCER_RECORD_TYPENAME",
    "KINESIS_EGRESS_RECORD_TYPENAME",
    "KafkaProducerRecord",
    "KinesisEgressRecord",
]

KAFKA_PRODUCER_RECORD_TYPENAME = (
    f"type.googleapis.com/{KafkaProducerRecord.DESCRIPTOR.full_name}"  # io.statefun.sdk.egress.…
)
KINESIS_EGRESS_RECORD_TYPENAME = f"type.googleapis.com/{KinesisEgressRecord.DESCRIPTOR.full_name}"
