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
  primitive values as text); 504 when none comes within the reply timeout: either the message
  is accepted and will be processed (resend it only with an ``Idempotency-Key``), or it was
  taken back before it was processed (``nothing happened``: send it again).

Egress, on its port: ``GET /<topic>`` removes and answers the oldest record (200, the payload as
UTF-8 text), 404 when the topic is empty, 405 for a topic the egress does not declare. Records
are durable and each is answered once.

Both serve on ``pystatefun.http.HttpServer`` (the ingress is the runtime's front door, so its
CPU per request matters); statuses and texts are those of the aiohttp server they replaced.
"""

from __future__ import annotations

from typing import Any, final
from urllib.parse import unquote

from pystatefun.errors import DataDirError, ProtocolError, StoppingError
from pystatefun.http import HttpLimits, HttpRequest, HttpResponse, HttpServer
from pystatefun.io.api import ConnectorHandle, IngestOutcome, IngestResult
from pystatefun.protocol.typed_values import PRIMITIVES, Primitive
from pystatefun.types import Address

__all__ = ["PlaygroundEgressServer", "PlaygroundIngressServer", "decode_text", "encode_text"]

_VND = "application/vnd."
_TEXT = "text/plain"
_TEXT_UTF8 = "text/plain; charset=utf-8"
_EGRESS_MAX_BODY_BYTES = 1024 * 1024  # aiohttp's default client_max_size, as before
_DEFAULT_TYPENAME = "io.statefun.types/string"
_TRUE = {"true", "1", "yes"}
_FALSE = {"false", "0", "no"}
_SHUTDOWN_TIMEOUT_S = 5.0
_DEFAULT_LIMITS = HttpLimits()


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
    def __init__(self, host: str, port: int, limits: HttpLimits) -> None:
        self._host, self._port = host, port
        self._limits = limits
        self._server: HttpServer | None = None
        self.port = port

    async def _start(self, server: HttpServer) -> None:
        try:
            await server.start(self._host, self._port)
        except OSError as exc:
            raise DataDirError(
                f"cannot listen on {self._host}:{self._port}: {exc.strerror or exc}; is another "
                "process using the port? Change `port` in the module, or stop that process."
            ) from exc
        self._server = server
        self.port = server.port

    async def stop(self) -> None:
        """Stop listening; requests in progress get ``_SHUTDOWN_TIMEOUT_S`` to finish."""
        if self._server is not None:
            await self._server.stop(_SHUTDOWN_TIMEOUT_S)
            self._server = None

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"


@final
class PlaygroundIngressServer(_Server):
    def __init__(
        self,
        handle: ConnectorHandle,
        host: str,
        port: int,
        max_bytes: int,
        *,
        limits: HttpLimits = _DEFAULT_LIMITS,
    ) -> None:
        super().__init__(host, port, limits)
        self._handle = handle
        self._max_bytes = max_bytes

    async def start(self) -> None:
        await self._start(
            HttpServer(
                self._ingest,
                max_body_bytes=self._max_bytes,
                too_large=self._too_large,
                limits=self._limits,
            )
        )

    async def _ingest(self, request: HttpRequest) -> HttpResponse:
        parsed = self._parse(request)
        if isinstance(parsed, HttpResponse):
            return parsed
        target, typename = parsed
        body = request.body
        if typename in PRIMITIVES:
            try:
                body = encode_text(typename, body.decode("utf-8"))
            except (ValueError, TypeError, UnicodeDecodeError) as exc:
                return _text(400, f"message to {target}: the body is not a {typename}: {exc}")
        headers = request.headers
        wait = headers.get("pystatefun-request-reply", "").lower() in _TRUE
        key = headers.get("idempotency-key") or None
        result = await self._handle.ingest(target, typename, body, key, wait)
        return _respond(target, result)

    def _too_large(self, request: HttpRequest, size: int | None) -> HttpResponse:
        """A body over the limit, refused before it is read, unless the request is wrong
        already (a bad path or type says more than the size)."""
        parsed = self._parse(request)
        if isinstance(parsed, HttpResponse):
            return parsed
        return _too_large(parsed[0], size, self._max_bytes)

    def _parse(self, request: HttpRequest) -> tuple[Address, str] | HttpResponse:
        """The target and typename of a request, or the 4xx that explains why not."""
        path = _decoded(request.path)
        parts = path[1:].split("/")
        if len(parts) != 3 or not all(parts):
            return _text(
                404, f"{path!r} is not /<namespace>/<type>/<id>, e.g. /example/greeter/alice"
            )
        target = Address(*parts)
        content_type = request.headers.get("content-type", "")
        typename = _DEFAULT_TYPENAME
        if content_type.startswith(_VND):
            typename = content_type[len(_VND) :].split(";")[0].strip()
        if "/" not in typename.strip("/"):
            return _text(
                415,
                f"Content-Type {content_type!r}: the typename must be "
                "namespace/name, as in application/vnd.com.example/Greeting",
            )
        return target, typename


def _decoded(path: str) -> str:
    """The request path with %-escapes decoded, as aiohttp's router matched it (an escape that
    is not UTF-8 stays as it was)."""
    if "%" not in path:
        return path
    try:
        return unquote(path, errors="strict")
    except UnicodeDecodeError:
        return path


def _respond(target: Address, result: IngestResult) -> HttpResponse:
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
    if result.outcome is IngestOutcome.WITHDRAWN:
        return _text(
            504,
            f"no reply came in time, and the message to {target} was taken back before it was "
            "processed: nothing happened; send it again",
        )
    if result.outcome is IngestOutcome.REPLIED:
        reply_type = result.reply_typename or _DEFAULT_TYPENAME
        try:
            reply_body = decode_text(reply_type, result.reply_value)
        except ProtocolError:
            reply_body = result.reply_value or b""
        return HttpResponse(200, reply_body, {"Content-Type": f"{_VND}{reply_type}"})
    duplicate = result.outcome is IngestOutcome.DUPLICATE
    return HttpResponse(202, b"", {"Pystatefun-Duplicate": "true"} if duplicate else {})


@final
class PlaygroundEgressServer(_Server):
    def __init__(
        self,
        handle: ConnectorHandle,
        host: str,
        port: int,
        egress: str,
        topics: tuple[str, ...],
        *,
        limits: HttpLimits = _DEFAULT_LIMITS,
    ) -> None:
        super().__init__(host, port, limits)
        self._handle, self._egress, self._topics = handle, egress, topics

    async def start(self) -> None:
        # Requests carry no body; the limit only bounds what a confused client can send.
        await self._start(
            HttpServer(self._pop, max_body_bytes=_EGRESS_MAX_BODY_BYTES, limits=self._limits)
        )

    async def _pop(self, request: HttpRequest) -> HttpResponse:
        topic = _decoded(request.path)[1:]
        if not topic or "/" in topic:
            return _text(404, "404: Not Found")
        if request.method != "GET":
            # HEAD too: it would remove a record it cannot return.
            return _text(405, "405: Method Not Allowed", {"Allow": "GET"})
        if topic not in self._topics:
            return _text(405, f"topic {topic!r} is not declared; topics: {', '.join(self._topics)}")
        record = await self._handle.pop_egress(self._egress, topic)
        if record is None:
            return HttpResponse(404)
        return HttpResponse(200, record, {"Content-Type": _TEXT})


def _text(status: int, message: str, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(
        status, (message + "\n").encode(), {"Content-Type": _TEXT_UTF8, **(headers or {})}
    )


def _too_large(target: Address, size: int | None, limit: int) -> HttpResponse:
    of = f"over {limit}" if size is None else str(size)
    return _text(
        413,
        f"message to {target} of {of} bytes exceeds the ingress limit of {limit} "
        "bytes; send less, or raise --ingress-max-bytes",
    )
