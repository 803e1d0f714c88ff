"""Request-reply requests asked of the worker that serves their address, and its answers.

On a cluster, a function's reply reaches only the worker that ran the function: the one whose
partition holds the address. A request-reply request that another worker received is sent
there whole (``StorageEngine.ask_owner``), ingested by the owner as if it had received it, and
the owner's ``IngestResult`` travels back. These are the two messages, as JSON; ``None``
stands for "not taken" (the address moved away from the asked worker meanwhile).
"""

from __future__ import annotations

import base64
import json
from typing import NamedTuple, final

from pystatefun.io.api import IngestOutcome, IngestResult
from pystatefun.types import Address

__all__ = ["AskedRequest", "decode_request", "decode_result", "encode_request", "encode_result"]


@final
class AskedRequest(NamedTuple):
    """One request-reply request, as the worker that received it got it."""

    target: Address
    typename: str
    value: bytes
    idempotency_key: str | None


def encode_request(request: AskedRequest) -> bytes:
    target = request.target
    return json.dumps({
        "target": [target.namespace, target.type, target.id],
        "typename": request.typename,
        "value": base64.b64encode(request.value).decode(),
        "key": request.idempotency_key,
    }).encode()  # fmt: skip


def decode_request(data: bytes) -> AskedRequest:
    body = json.loads(data)
    namespace, kind, address_id = body["target"]
    key = body["key"]
    return AskedRequest(
        target=Address(str(namespace), str(kind), str(address_id)),
        typename=str(body["typename"]),
        value=base64.b64decode(body["value"]),
        idempotency_key=None if key is None else str(key),
    )


def encode_result(result: IngestResult | None) -> bytes:
    if result is None:
        return b"{}"
    value = result.reply_value
    return json.dumps({
        "outcome": result.outcome.value,
        "reply_typename": result.reply_typename,
        "reply_value": None if value is None else base64.b64encode(value).decode(),
        "dead_letter_id": result.dead_letter_id,
        "error": result.error,
    }).encode()  # fmt: skip


def decode_result(data: bytes) -> IngestResult | None:
    body = json.loads(data)
    if "outcome" not in body:
        return None
    value = body["reply_value"]
    dead_letter_id = body["dead_letter_id"]
    return IngestResult(
        IngestOutcome(body["outcome"]),
        reply_typename=body["reply_typename"],
        reply_value=None if value is None else base64.b64decode(value),
        dead_letter_id=None if dead_letter_id is None else int(dead_letter_id),
        error=body["error"],
    )
