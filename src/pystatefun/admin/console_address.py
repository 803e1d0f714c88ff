"""One address as the web console shows it (``GET /api/address``): its state values decoded,
its mailbox, and its pending delayed messages.

A value is shown the way a person reads it: the primitive types (``io.statefun.types/int``,
``string``, ...) as their text, a value whose bytes are JSON as JSON, anything else as hex
(``kind`` says which). Everything comes from the storage engine, so it works on any engine; a
cluster worker sees the addresses of the partitions it serves (``served_here``).
"""

from __future__ import annotations

import json

from pystatefun.admin.console_errors import BadInputError
from pystatefun.errors import ConfigurationError, ProtocolError
from pystatefun.protocol.typed_values import PRIMITIVES, text_of
from pystatefun.store import InboxMessage, Payload, StorageEngine, TimerRecord
from pystatefun.types import Address

__all__ = ["MAILBOX_SHOWN", "address_of", "decoded", "looked_up"]

#: The most mailbox messages one lookup shows (it says when there are more).
MAILBOX_SHOWN = 100
_HEX_SHOWN = 4096  # bytes of a value shown as hex; the rest is counted, not shown
_KINDS: dict[type, str] = {bool: "bool", int: "int", float: "float", str: "string"}

Json = dict[str, object]


def address_of(typename: str | None, address_id: str | None) -> Address:
    """The address a lookup names, or ``BadInputError`` saying what is wrong with it."""
    if not typename:
        raise BadInputError("give the function type as ?type=<namespace>/<name>, e.g. shop/cart")
    if not address_id:
        raise BadInputError("give the address's id as &id=<id>: an address is a type and an id")
    try:
        return Address.of(typename, address_id)
    except ConfigurationError:
        raise BadInputError(
            f"{typename!r} is not a function type: write it as <namespace>/<name>, e.g. shop/cart"
        ) from None


def decoded(payload: Payload) -> Json:
    """A typed value for a person: its type, ``kind`` (empty, bool, int, float, string, json or
    hex), its ``text`` and its size in bytes."""
    value, typename = payload.value, payload.typename
    shown: Json = {"typename": typename, "size": len(value or b"")}
    if value is None:
        return {**shown, "kind": "empty", "text": ""}
    primitive = PRIMITIVES.get(typename)
    if primitive is not None:
        try:
            text = text_of(typename, value)
        except ProtocolError:
            pass  # bytes that are not what their type says: shown as they are, below
        else:
            return {**shown, "kind": _KINDS[primitive.python_type], "text": text}
    try:
        document = json.loads(value.decode("utf-8"))
    except ValueError:
        more = len(value) - _HEX_SHOWN
        hexed = value[:_HEX_SHOWN].hex(" ") + (f" … ({more:,} bytes more)" if more > 0 else "")
        return {**shown, "kind": "hex", "text": hexed}
    return {**shown, "kind": "json", "text": json.dumps(document, ensure_ascii=False)}


def _message(message: InboxMessage) -> Json:
    caller = None if message.caller is None else str(message.caller)
    return {"seq": message.seq, "caller": caller, "value": decoded(message.payload)}


def _timer(timer: TimerRecord) -> Json:
    return {"id": timer.timer_id, "fire_at_ms": timer.fire_at_ms, "sender": str(timer.sender),
            "target": str(timer.target), "token": timer.token,
            "value": decoded(timer.payload)}  # fmt: skip


async def looked_up(engine: StorageEngine, address: Address, *, now_ms: int) -> Json:
    """Everything the store holds for ``address`` now."""
    state = await engine.read_state(address)
    waiting = await engine.read_batch(address, MAILBOX_SHOWN + 1)
    timers = await engine.timers_of(address)
    values = [
        {"name": name, "value": decoded(value.payload), "expires_at_ms": value.expires_at_ms,
         "expired": value.expires_at_ms is not None and value.expires_at_ms <= now_ms}
        for name, value in sorted(state.items())
    ]  # fmt: skip
    return {
        "address": str(address),
        "type": address.typename,
        "id": address.id,
        "served_here": engine.owns(address),
        "state": values,
        "mailbox": [_message(m) for m in waiting[:MAILBOX_SHOWN]],
        "mailbox_more": len(waiting) > MAILBOX_SHOWN,
        "timers": [_timer(t) for t in timers],
    }
