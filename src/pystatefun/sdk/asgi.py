"""Serve functions from any ASGI server (uvicorn, hypercorn, ...).

>>> app = AsgiApp(functions)        # then: uvicorn module:app --port 8000

Every POST, on any path, is one StateFun request; the server decides where the app is mounted.
Uses only the standard library: ASGI is a calling convention, not a framework.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, final

from pystatefun.sdk._functions import StatefulFunctions
from pystatefun.sdk._handler import RequestReplyHandler
from pystatefun.sdk._serving import DEFAULT_MAX_REQUEST_BYTES, Reply, reply_to, too_large

__all__ = ["AsgiApp"]

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@final
class AsgiApp:
    """An ASGI application answering StateFun requests for ``functions``."""

    __slots__ = ("_handler", "_max_request_bytes")

    def __init__(
        self,
        functions: StatefulFunctions | RequestReplyHandler,
        max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
    ) -> None:
        self._handler = (
            functions
            if isinstance(functions, RequestReplyHandler)
            else RequestReplyHandler(functions)
        )
        self._max_request_bytes = max_request_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        if scope["method"] != "POST":
            reply = Reply(405, "text/plain; charset=utf-8", b"StateFun endpoints accept POST\n")
            await _send(send, reply, [(b"allow", b"POST")])
            return
        body = bytearray()
        while True:
            event = await receive()
            if event["type"] == "http.disconnect":
                return
            body += event.get("body", b"")
            if len(body) > self._max_request_bytes:
                limit = self._max_request_bytes
                detail = f"request body exceeds the limit of {limit} bytes (max_request_bytes)"
                await _send(send, too_large(detail))
                return
            if not event.get("more_body", False):
                break
        await _send(send, await reply_to(self._handler, bytes(body)))


async def _send(send: Send, reply: Reply, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [
        (b"content-type", reply.content_type.encode()),
        (b"content-length", str(len(reply.body)).encode()),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": reply.status, "headers": headers})
    await send({"type": "http.response.body", "body": reply.body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        event = await receive()
        if event["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif event["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
