"""Putting committed egress records to Kinesis: the Kinesis egress's blocking half (boto3's calls
block; the egress runs ``put`` off the event loop).

``put`` sends records with ``PutRecords``, per stream, in requests of at most ``_ENTRIES_MAX``
records and ``_REQUEST_MAX_BYTES`` (Kinesis's limits), in ``seq`` order, and returns those
Kinesis did not take: the entries a response marks failed (throttled, an internal failure),
and, when a request fails as a whole (a stream that does not exist, Kinesis unreachable), the
records of that request and after. It never sends one record twice within a call; a record is
sent again only if ``put`` returned it, or after a crash before the egress deleted it
(at-least-once).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, NamedTuple, final

from botocore.exceptions import BotoCoreError, ClientError

from pystatefun.io.kinesis_client import describe_error, error_code
from pystatefun.protocol import KinesisEgressRecord
from pystatefun.store import EgressRecord

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient
    from mypy_boto3_kinesis.type_defs import PutRecordsRequestEntryTypeDef

__all__ = ["KinesisPublisher", "PutResult", "record_of"]

_ENTRIES_MAX = 500
_REQUEST_MAX_BYTES = 5 * 1024 * 1024


def record_of(stored: EgressRecord) -> KinesisEgressRecord:
    """The Kinesis record a committed egress record holds (checked by the egress's route)."""
    record = KinesisEgressRecord()
    record.ParseFromString(stored.payload.value or b"")
    return record


@final
class PutResult(NamedTuple):
    """What ``put`` left: the records to send again, in ``seq`` order, and why (None: all
    were taken)."""

    left: list[EgressRecord]
    failure: str | None


def _entry(record: KinesisEgressRecord) -> PutRecordsRequestEntryTypeDef:
    entry: PutRecordsRequestEntryTypeDef = {
        "Data": record.value_bytes,
        "PartitionKey": record.partition_key,
    }
    if record.explicit_hash_key:  # applied only when non-empty, as in StateFun
        entry["ExplicitHashKey"] = record.explicit_hash_key
    return entry


def _requests(records: Sequence[EgressRecord]) -> list[tuple[str, list[EgressRecord]]]:
    """``records`` cut into ``PutRecords`` requests: consecutive records of one stream, within
    Kinesis's limits per request."""
    requests: list[tuple[str, list[EgressRecord]]] = []
    size = 0
    for stored in records:
        record_size = len(stored.payload.value or b"")
        last = requests[-1] if requests else None
        if (
            last is None
            or last[0] != stored.topic
            or len(last[1]) >= _ENTRIES_MAX
            or size + record_size > _REQUEST_MAX_BYTES
        ):
            requests.append((stored.topic, [stored]))
            size = record_size
        else:
            last[1].append(stored)
            size += record_size
    return requests


@final
class KinesisPublisher:
    """Puts records with one client (see the module docs)."""

    def __init__(self, client: KinesisClient) -> None:
        self._client = client

    def put(self, records: Sequence[EgressRecord]) -> PutResult:
        """Send ``records``; what Kinesis did not take, and why."""
        left: list[EgressRecord] = []
        failure: str | None = None
        requests = _requests(records)
        for index, (stream, batch) in enumerate(requests):
            try:
                response = self._client.put_records(
                    StreamName=stream, Records=[_entry(record_of(r)) for r in batch]
                )
            except (BotoCoreError, ClientError) as error:
                failure = f"stream {stream}: {describe_error(error)}"
                if error_code(error) == "ResourceNotFoundException":
                    failure = f"stream {stream} does not exist; create it"
                for _, rest in requests[index:]:
                    left += rest
                break
            for stored, result in zip(batch, response["Records"], strict=True):
                if "ErrorCode" in result:
                    left.append(stored)
                    failure = failure or (
                        f"stream {stream}: {result['ErrorCode']}: {result.get('ErrorMessage')}"
                    )
        return PutResult(left, failure)
