"""StateFun's wire format, sans-IO: the request-reply protocol, typed values, egress records.

``pystatefun.protocol`` has no asyncio and no HTTP in it; the SDK and the runtime build on it.
The message classes are generated from ``proto/`` (see ``scripts/generate_protocol.py``).
"""

from pystatefun.protocol.egress import (
    KAFKA_PRODUCER_RECORD_TYPENAME as KAFKA_PRODUCER_RECORD_TYPENAME,
)
from pystatefun.protocol.egress import (
    KINESIS_EGRESS_RECORD_TYPENAME as KINESIS_EGRESS_RECORD_TYPENAME,
)
from pystatefun.protocol.egress import KafkaProducerRecord as KafkaProducerRecord
from pystatefun.protocol.egress import KinesisEgressRecord as KinesisEgressRecord
from pystatefun.protocol.v3 import Address as Address
from pystatefun.protocol.v3 import FromFunction as FromFunction
from pystatefun.protocol.v3 import ToFunction as ToFunction
from pystatefun.protocol.v3 import TypedValue as TypedValue
from pystatefun.protocol.v3 import parse_from_function as parse_from_function
from pystatefun.protocol.v3 import parse_to_function as parse_to_function

__all__ = [
    "KAFKA_PRODUCER_RECORD_TYPENAME",
    "KINESIS_EGRESS_RECORD_TYPENAME",
    "Address",
    "FromFunction",
    "KafkaProducerRecord",
    "KinesisEgressRecord",
    "ToFunction",
    "TypedValue",
    "parse_from_function",
    "parse_to_function",
]
