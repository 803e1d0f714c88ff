"""Serve functions with aiohttp.

>>> web.run_app(make_app(functions), host="127.0.0.1", port=8000)

Importing this module imports aiohttp; ``pystatefun.sdk`` itself never does. aiohttp is an
optional dependency (``pip install 'pystatefun[aiohttp]'``): without it, importing this module
raises ``ModuleNotFoundError`` (an ``ImportError``) saying so, since the fix is an install, not
a change to the code.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

try:
    from aiohttp import web
except ModuleNotFoundError as missing:
    if missing.name != "aiohttp":
        raise  # aiohttp is there but broken: its own error says more
    raise ModuleNotFoundError(
        "pystatefun.sdk.aiohttp needs aiohttp: pip install 'pystatefun[aiohttp]'", name="aiohttp"
    ) from missing

from pystatefun.sdk._functions import StatefulFunctions
from pystatefun.sdk._handler import RequestReplyHandler
from pystatefun.sdk._serving import DEFAULT_MAX_REQUEST_BYTES, reply_to, too_large

__all__ = ["make_app", "request_handler"]


def request_handler(
    functions: StatefulFunctions | RequestReplyHandler,
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> Callable[[web.Request], Awaitable[web.Response]]:
    """An aiohttp request handler for mounting into an application of your own."""
    handler = (
        functions if isinstance(functions, RequestReplyHandler) else RequestReplyHandler(functions)
    )

    async def handle(request: web.Request) -> web.Response:
        size = request.content_length
        if size is not None and size > max_request_bytes:
            reply = too_large(
                f"request body of {size} bytes exceeds the limit of {max_request_bytes} bytes "
                "(max_request_bytes)"
            )
        else:
            try:
                body = await request.read()
            except web.HTTPRequestEntityTooLarge as exc:
                # The application's client_max_size was lower than max_request_bytes.
                reply = too_large(f"{exc.text}; raise the aiohttp application's client_max_size")
            else:
                reply = await reply_to(handler, body)
        return web.Response(
            status=reply.status,
            body=reply.body,
            content_type=None,
            headers={"Content-Type": reply.content_type},
        )

    return handle


def make_app(
    functions: StatefulFunctions | RequestReplyHandler,
    path: str = "/statefun",
    max_request_bytes: int = DEFAULT_MAX_REQUEST_BYTES,
) -> web.Application:
    """An aiohttp application that answers StateFun requests POSTed to ``path``."""
    app = web.Application(client_max_size=max_request_bytes)
    app.router.add_post(path, request_handler(functions, max_request_bytes))
    return app
