"""The record a function sent to a generic egress (Kafka's ``KafkaProducerRecord``, Kinesis's
``KinesisEgressRecord``), read from its typed value while the step is made: a value of another
type, or bytes that do not decode, can never be published, so the batch that sent it is
dead-lettered (``TerminalError``) rather than stopping the egress later."""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import DecodeError, Message

from pystatefun.errors import TerminalError
from pystatefun.protocol import TypedValue

__all__ = ["read_egress_record"]

_M = TypeVar("_M", bound=Message)


def read_egress_record(
    value: TypedValue, record: _M, *, where: str, system: str, egress_id: str
) -> _M:
    """``record`` (an empty message of the type the ``system`` egress ``egress_id`` takes:
    ``Kafka``, ``Kinesis``) filled from ``value``, which ``where`` (an address) sent;
    ``TerminalError`` if ``value`` is not such a record."""
    egress = f"{system} egress {egress_id}"
    typename = f"type.googleapis.com/{record.DESCRIPTOR.full_name}"
    if value.typename != typename:
        raise TerminalError(
            f"{where} sent a {value.typename!r} to {egress}, which takes only {typename!r} "
            f"(the SDKs' {system.lower()}_egress_message)"
        )
    try:
        record.ParseFromString(value.value)
    except DecodeError as exc:
        raise TerminalError(
            f"{where} sent an undecodable {system} record to {egress}: {exc}"
        ) from None
    return record
