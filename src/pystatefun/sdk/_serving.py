"""What every HTTP adapter answers: status, content type and body for one request body.

Kept in one place so the ASGI and aiohttp adapters (and any future one) map errors the same
way: a body that is not StateFun is the caller's fault (400), an unbound function type is 404,
and a failing user function is 500 with the reason, which the runtime logs and retries.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import final

from pystatefun.errors import ProtocolError, UnknownFunctionError
from pystatefun.sdk._handler import RequestReplyHandler

__all__ = ["DEFAULT_MAX_REQUEST_BYTES", "Reply", "reply_to"]

#: Upstream's payload_max_bytes default: 32 MiB.
DEFAULT_MAX_REQUEST_BYTES = 32 * 1024 * 1024

OCTET_STREAM = "application/octet-stream"
_TEXT = "text/plain; charset=utf-8"
_log = logging.getLogger("pystatefun.sdk")


@final
@dataclass(frozen=True, slots=True)
class Reply:
    """An HTTP answer, independent of the server framework."""

    status: int
    content_type: str
    body: bytes


def too_large(detail: str) -> Reply:
    """The answer to a request body over the server's limit; ``detail`` says which limit."""
    return Reply(413, _TEXT, f"{detail}\n".encode())


async def reply_to(handler: RequestReplyHandler, body: bytes) -> Reply:
    """Run ``handler`` on ``body`` and turn the outcome into an HTTP reply."""
    try:
        to_function, bound = handler.prepare(body)
    except ProtocolError as exc:
        return Reply(400, _TEXT, f"{exc}\n".encode())
    except UnknownFunctionError as exc:
        return Reply(404, _TEXT, f"{exc}\n".encode())
    try:
        return Reply(200, OCTET_STREAM, await handler.process(to_function, bound))
    except Exception as exc:  # noqa: BLE001 - any user error becomes a 500 the runtime retries
        # The runtime retries the batch; the traceback belongs in this server's log.
        _log.exception("function invocation failed")
        notes = "; ".join(getattr(exc, "__notes__", []))
        return Reply(500, _TEXT, f"{type(exc).__name__}: {exc} ({notes})\n".encode())
