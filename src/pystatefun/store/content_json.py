"""Records as JSON objects: one shape for savepoint lines and cluster stream records.

The shapes are the savepoint format's (``pystatefun.savepoint.format`` documents them), so a
record reads the same wherever it was written. Values travel in base64.
"""

from __future__ import annotations

import base64
from typing import Any

from pystatefun.store.contents import (
    Content,
    DeadLetterContent,
    DedupKey,
    EgressContent,
    MessageContent,
    PositionContent,
    StateContent,
)
from pystatefun.store.records import Payload, StateValue, TimerRecord
from pystatefun.types import Address

__all__ = ["content_from_json", "content_to_json"]


def _b64(value: bytes | None) -> str | None:
    return None if value is None else base64.b64encode(value).decode("ascii")


def _unb64(text: str | None) -> bytes | None:
    return None if text is None else base64.b64decode(text)


def _addr(address: Address | None) -> list[str] | None:
    return None if address is None else list(address)


def _unaddr(fields: list[str] | None) -> Address | None:
    return None if fields is None else Address(*fields)


# Records whose fields are all plain JSON values, written as they are.
_FLAT: dict[type, str] = {DedupKey: "dedup", PositionContent: "position"}
_FLAT_KINDS = {kind: cls for cls, kind in _FLAT.items()}


def content_to_json(content: Content) -> dict[str, Any]:
    """``content`` as a JSON object (a savepoint line, a cluster stream record)."""
    if isinstance(content, DedupKey | PositionContent):
        return {"t": _FLAT[type(content)], **content._asdict()}
    if isinstance(content, StateContent):
        v = content.value
        return {"t": "state", "address": list(content.address), "name": v.name,
                "typename": v.payload.typename, "value": _b64(v.payload.value),
                "expire_mode": v.expire_mode, "expire_after_ms": v.expire_after_ms,
                "expires_at_ms": v.expires_at_ms}  # fmt: skip
    if isinstance(content, MessageContent):
        return {"t": "message", "target": list(content.target), "caller": _addr(content.caller),
                "typename": content.payload.typename, "value": _b64(content.payload.value),
                "enqueued_at_ms": content.enqueued_at_ms}  # fmt: skip
    if isinstance(content, TimerRecord):
        payload = content.payload
        traced = {} if content.trace is None else {"trace": content.trace}
        return {"t": "timer", "fire_at_ms": content.fire_at_ms, "sender": list(content.sender),
                "token": content.token, "target": list(content.target),
                "typename": payload.typename, "value": _b64(payload.value), **traced}  # fmt: skip
    if isinstance(content, DeadLetterContent):
        messages = [{"caller": _addr(c), "typename": p.typename, "value": _b64(p.value)}
                    for c, p in content.messages]  # fmt: skip
        return {"t": "dead_letter", "target": list(content.target), "error": content.error,
                "failed_at_ms": content.failed_at_ms, "attempts": content.attempts,
                "messages": messages}  # fmt: skip
    return {"t": "egress", "egress": content.egress, "topic": content.topic,
            "typename": content.payload.typename, "value": _b64(content.payload.value),
            "created_at_ms": content.created_at_ms}  # fmt: skip


def content_from_json(record: dict[str, Any]) -> Content:
    """The record ``content_to_json`` made (``KeyError``/``TypeError`` if it is not one)."""
    kind = record["t"]
    flat = _FLAT_KINDS.get(kind)
    if flat is not None:
        fields: tuple[str, ...] = flat._fields  # type: ignore[attr-defined]
        content: Content = flat(**{name: record[name] for name in fields})
        return content
    if kind == "state":
        payload = Payload(record["typename"], _unb64(record["value"]))
        value = StateValue(record["name"], payload, record["expire_mode"],
                           record["expire_after_ms"], record["expires_at_ms"])  # fmt: skip
        return StateContent(Address(*record["address"]), value)
    if kind == "message":
        payload = Payload(record["typename"], _unb64(record["value"]))
        return MessageContent(Address(*record["target"]), _unaddr(record["caller"]), payload,
                              record["enqueued_at_ms"])  # fmt: skip
    if kind == "timer":
        payload = Payload(record["typename"], _unb64(record["value"]))
        return TimerRecord(0, record["fire_at_ms"], Address(*record["sender"]), record["token"],
                           Address(*record["target"]), payload, record.get("trace"))  # fmt: skip
    if kind == "dead_letter":
        messages = tuple((_unaddr(m["caller"]), Payload(m["typename"], _unb64(m["value"])))
                         for m in record["messages"])  # fmt: skip
        return DeadLetterContent(Address(*record["target"]), record["error"],
                                 record["failed_at_ms"], record["attempts"], messages)  # fmt: skip
    if kind == "egress":
        payload = Payload(record["typename"], _unb64(record["value"]))
        return EgressContent(record["egress"], record["topic"], payload, record["created_at_ms"])
    raise KeyError(kind)
