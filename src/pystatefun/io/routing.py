"""Routing what a log-reading ingress read (a Kafka partition's records, a Kinesis shard's) to
its functions: each record to every target function type of its topic or stream, addressed by
the record's key, in as few steps as back-pressure allows (``RuntimeHandle.append``), and a
record that cannot be delivered dead-lettered in order, with its position, so its partition or
shard goes on after it (``RuntimeHandle.reject``)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple, final

from pystatefun.io.api import IngestOutcome, IngressMessage, RuntimeHandle
from pystatefun.protocol.typed_values import primitive_error
from pystatefun.store import Position
from pystatefun.types import Address

__all__ = ["Route", "Routed", "append_routed", "value_refusal"]


@final
class Route(NamedTuple):
    """Where the records of one topic or stream go: every function type of ``targets``, as
    ``value_type`` typed values."""

    targets: tuple[str, ...]
    value_type: str


@final
class Routed(NamedTuple):
    """One record read: the address id it goes to, its value, where its source has read up to
    once it is delivered, and, if it cannot be delivered, why."""

    address_id: str
    value: bytes
    position: Position
    refused: str | None = None


def value_refusal(
    where: str, value: bytes, value_type: str, max_bytes: int, source: str
) -> str | None:
    """Why a record's value cannot be delivered (over the ingress limit, not of its primitive
    ``valueType``), or None. ``where`` names the record, ``source`` what declares the
    valueType (``topic``, ``stream``)."""
    if len(value) > max_bytes:
        return (
            f"{where} is {len(value)} bytes, over the ingress limit of {max_bytes} "
            "(--ingress-max-bytes)"
        )
    wrong = primitive_error(value_type, value)
    if wrong is not None:
        return (
            f"{where}: its value {wrong}, so it is not a {value_type} (the {source}'s "
            "valueType); the value is passed on as it is, so a primitive type needs the SDK's "
            "serialized wrapper, and plain text or JSON needs a type of its own "
            "(com.example/Name, say)"
        )
    return None


async def append_routed(
    runtime: RuntimeHandle,
    route: Route,
    records: Sequence[Routed],
    log: logging.Logger,
    goes_on: str,
) -> IngestOutcome:
    """Deliver ``records`` (of one partition or shard, in order): ``ACCEPTED``; ``STOPPING`` if
    the runtime stopped first (what committed stays, with its position), ``UNAVAILABLE`` if the
    partition is no longer this runtime's to read. ``goes_on`` names what carries on after a
    dead-lettered record in the log line (``the partition``)."""
    messages: list[IngressMessage] = []
    for record in records:
        if record.refused is not None:
            if (flushed := await _flush(runtime, messages)) is not IngestOutcome.ACCEPTED:
                return flushed
            messages = []
            target = Address.of(route.targets[0], record.address_id)
            kept = IngressMessage(target, route.value_type, record.value)
            rejected = await runtime.reject(target, record.refused, kept, position=record.position)
            if rejected is not IngestOutcome.ACCEPTED:
                return rejected
            log.error("%s; dead-lettered, and %s goes on", record.refused, goes_on)
            continue
        for index, target_type in enumerate(route.targets):
            mark = record.position if index == len(route.targets) - 1 else None
            target = Address.of(target_type, record.address_id)
            messages.append(IngressMessage(target, route.value_type, record.value, mark))
    return await _flush(runtime, messages)


async def _flush(runtime: RuntimeHandle, messages: list[IngressMessage]) -> IngestOutcome:
    return await runtime.append(messages) if messages else IngestOutcome.ACCEPTED
