"""The playground HTTP ingress and egress (DESIGN §4), upstream's local-development contract.

Ingress, on its port: any method to ``/<namespace>/<type>/<id>``; the body is the message; its
type comes from ``Content-Type: application/vnd.<typename>`` (default
``io.statefun.types/string``). For a primitive type (``io.statefun.types/*``) the body is the
value as text (``42``, ``true``, ``hello``) and is encoded as the type's wrapper, so that
``message.as_int()`` works; any other type's body is passed as it is. The answer is 202 once the
message is durably in the mailbox. Extras over upstream:

- ``Idempotency-Key: <key>``: a retry with the same key within the window adds nothing (202 with
  ``Pystatefun-Duplicate: true``);
- ``Pystatefun-Request-Reply: true``: the request waits for the function to send a message to
  ``context.caller`` and answers 200 with it (``Content-Type: application/vnd.<typename>``,
  primitive values as text); 504 when none comes within the reply timeout (the message is
  accepted and will be processed: resend it only with an ``Idempotency-Key``).

Egress, on its port: ``GET /<topic>`` removes and answers the oldest record (200, the payload as
UTF-8 text), 404 when the topic is empty, 405 for a topic the egress does not declare. Records
are durable and each is answered once.
"""

from __future__ import annotations

from typing import Any, final

from aiohttp import web

from pystatefun.errors import DataDirError, ProtocolError, StoppingError
from pystatefun.io.api import ConnectorHandle, IngestOutcome, IngestResult
from pystatefun.protocol.typed_values import PRIMITIVES, Primitive
from pystatefun.types import Address

__all__ = ["PlaygroundEgressServer", "PlaygroundIngressServer", "decode_text", "encode_text"]

_VND = "application/vnd."
_TEXT = "text/plain"
_DEFAULT_TYPENAME = "io.statefun.types/string"
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
_SHUTDOWN_TIMEOUT_S = 5.0


def encode_text(typename: str, text: str) -> bytes:
    """A primitive value given as text, encoded as its wrapper; ValueError if it does not parse."""
    primitive: Primitive[Any] = PRIMITIVES[typename]
    kind = primitive.python_type
    stripped = text.strip()
    if kind is bool:
        if stripped.lower() not in _TRUE | _FALSE:
            raise ValueError(f"{text!r} is not a bool; send true or false")
        return primitive.encode(stripped.lower() in _TRUE)
    if kind is int:
        return primitive.encode(int(stripped))
    if kind is float:
        return primitive.encode(float(stripped))
    return primitive.encode(text)


def decode_text(typename: str, value: bytes | None) -> bytes:
    """The HTTP body for a value: primitives as text, anything else as its bytes."""
    if value is None:
        return b""
    if typename in PRIMITIVES:
        decoded = PRIMITIVES[typename].decode(value)
        return (str(decoded).lower() if isinstance(decoded, bool) else str(decoded)).encode()
    return value


class _Server:
    def __init__(self, host: str, port: int) -> None:
        self._host, self._port = host, port
        self._runner: web.AppRunner | None = None
        self.port = port

    async def _start(self, app: web.Application) -> None:
        # Requests in progress get this long to finish when the runtime stops.
        self._runner = web.AppRunner(
            app, access_log=None, handle_signals=False, shutdown_timeout=_SHUTDOWN_TIMEOUT_S
        )
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self._host, self._port).start()
        except OSError as exc:
            await self._runner.cleanup()
            raise DataDirError(
                f"cannot listen on {self._host}:{self._port}: {exc.strerror or exc}; is another "
                "process using the port? Change `port` in the module, or stop that process."
            ) from exc
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        """Stop listening; requests in progress finish first."""
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"


@final
class PlaygroundIngressServer(_Server):
    def __init__(self, handle: ConnectorHandle, host: str, port: int, max_bytes: int) -> None:
        super().__init__(host, port)
        self._handle = handle
        self._max_bytes = max_bytes

    async def start(self) -> None:
        app = web.Application(client_max_size=self._max_bytes)
        app.router.add_route("*", "/{path:.*}", self._ingest)
        await self._start(app)

    async def _ingest(self, request: web.Request) -> web.Response:
        parsed = await self._parse(request)
        if isinstance(parsed, web.Response):
            return parsed
        target, typename, body = parsed
        wait = request.headers.get("Pystatefun-Request-Reply", "").lower() in _TRUE
        key = request.headers.get("Idempotency-Key") or None
        result = await self._handle.ingest(target, typename, body, key, wait)
        return _respond(target, result)

    async def _parse(self, request: web.Request) -> tuple[Address, str, bytes] | web.Response:
        """The target, typename and message bytes of a request, or the 4xx that explains why not."""
        parts = request.match_info["path"].split("/")
        if len(parts) != 3 or not all(parts):
            return _text(
                404,
                f"{request.path!r} is not /<namespace>/<type>/<id>, e.g. /example/greeter/alice",
            )
        target = Address(*parts)
        content_type = request.headers.get("Content-Type", "")
        typename = _DEFAULT_TYPENAME
        if content_type.startswith(_VND):
            typename = content_type[len(_VND) :].split(";")[0].strip()
        if "/" not in typename.strip("/"):
            return _text(
                415,
                f"Content-Type {content_type!r}: the typename must be "
                "namespace/name, as in application/vnd.com.example/Greeting",
            )
        size = request.content_length or 0
        if size > self._max_bytes:
            return _too_large(target, size, self._max_bytes)
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _too_large(target, size, self._max_bytes)
        if typename in PRIMITIVES:
            try:
                body = encode_text(typename, body.decode("utf-8"))
            except (ValueError, TypeError, UnicodeDecodeError) as exc:
                return _text(400, f"message to {target}: the body is not a {typename}: {exc}")
        return target, typename, body


def _respond(target: Address, result: IngestResult) -> web.Response:
    if result.outcome is IngestOutcome.STOPPING:
        return _text(
            503,
            str(
                StoppingError(
                    "the runtime is stopping and took nothing; send the "
                    "message again once it has restarted"
                )
            ),
        )
    if result.outcome is IngestOutcome.REPLY_TIMEOUT:
        return _text(
            504,
            f"the message to {target} was accepted, but no reply came in time; it is "
            "processed all the same: do not resend it without an Idempotency-Key",
        )
    if result.outcome is IngestOutcome.REPLIED:
        reply_type = result.reply_typename or _DEFAULT_TYPENAME
        try:
            reply_body = decode_text(reply_type, result.reply_value)
        except ProtocolError:
            reply_body = result.reply_value or b""
        return web.Response(
            status=200, body=reply_body, headers={"Content-Type": f"{_VND}{reply_type}"}
        )
    duplicate = result.outcome is IngestOutcome.DUPLICATE
    return web.Response(status=202, headers={"Pystatefun-Duplicate": "true"} if duplicate else {})


@final
class PlaygroundEgressServer(_Server):
    def __init__(
        self, handle: ConnectorHandle, host: str, port: int, egress: str, topics: tuple[str, ...]
    ) -> None:
        super().__init__(host, port)
        self._handle, self._egress, self._topics = handle, egress, topics

    async def start(self) -> None:
        app = web.Application()
        # allow_head=False: a HEAD must not remove a record it cannot return.
        app.router.add_get("/{topic}", self._pop, allow_head=False)
        await self._start(app)

    async def _pop(self, request: web.Request) -> web.Response:
        topic = request.match_info["topic"]
        if topic not in self._topics:
            return _text(405, f"topic {topic!r} is not declared; topics: {', '.join(self._topics)}")
        record = await self._handle.pop_egress(self._egress, topic)
        if record is None:
            return web.Response(status=404)
        return web.Response(status=200, body=record, headers={"Content-Type": _TEXT})


def _text(status: int, message: str) -> web.Response:
    return web.Response(status=status, text=message + "\n")


def _too_large(target: Address, size: int, limit: int) -> web.Response:
    return _text(
        413,
        f"message to {target} of {size} bytes exceeds the ingress limit of {limit} "
        "bytes; send less, or raise --ingress-max-bytes",
    )
