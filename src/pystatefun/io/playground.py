"""The playground HTTP ingress and egress, upstream's local-development contract, as connectors.

Ingress, on its port: ``POST`` or ``PUT`` to ``/<namespace>/<type>/<id>``; the body is the
message; its type comes from ``Content-Type: application/vnd.<typename>`` (default
``io.statefun.types/string``). For a primitive type (``io.statefun.types/*``) the body is the
value as text (``42``, ``true``, ``hello``) and is encoded as the type's wrapper, so that
``message.as_int()`` works; any other type's body is passed as it is. The answer is 202 once the
message is durably in the mailbox. Other methods are refused with 405 (a ``GET`` probe must not
send a message). Extras over upstream:

- ``Idempotency-Key: <key>``: a retry with the same key within the window adds nothing (202 with
  ``Pystatefun-Duplicate: true``);
- ``Pystatefun-Request-Reply: true``: the request waits for the function to send a message to
  ``context.caller`` and answers 200 with it (``Content-Type: application/vnd.<typename>``,
  primitive values as text); 504 when none comes within the reply timeout: either the message
  is accepted and will be processed (resend it only with an ``Idempotency-Key``), or it was
  taken back before it was processed (``nothing happened``: send it again); 422 when the message
  went to the dead letters (``Pystatefun-Dead-Letter: <id>``).

Egress, on its port: ``GET /<topic>`` removes and answers the oldest record (200, the payload as
UTF-8 text), 404 when the topic is empty, 405 for a topic the egress does not declare. Records
are durable and each is answered once. Functions send ``io.statefun.playground/EgressRecord``
JSON (``{"topic": ..., "payload": "<utf-8>"}``) to the egress id
``io.statefun.playground/egress``.

Both serve on ``pystatefun.http.HttpServer`` (the ingress is the runtime's front door, so its
CPU per request matters).
"""

from __future__ import annotations

import json
from typing import final
from urllib.parse import unquote

from pystatefun.errors import DataDirError, ProtocolError, StoppingError, TerminalError
from pystatefun.http import HttpLimits, HttpRequest, HttpResponse, HttpServer
from pystatefun.http.front_door import FrontDoor
from pystatefun.io.api import (
    ConnectorContext,
    IngestOutcome,
    IngestResult,
    RuntimeHandle,
)
from pystatefun.io.connector_server import ConnectorServer
from pystatefun.module import PlaygroundEgress, PlaygroundIngress
from pystatefun.protocol import TypedValue
from pystatefun.protocol.typed_values import PRIMITIVES, text_of, value_from_text
from pystatefun.reading import Reading
from pystatefun.store import EgressOut, Payload
from pystatefun.store.engine import UNWRITABLE_RETRY_S
from pystatefun.types import Address, split_typename

__all__ = [
    "PLAYGROUND_EGRESS",
    "PLAYGROUND_RECORD_TYPENAME",
    "PlaygroundEgressServer",
    "PlaygroundIngressServer",
    "build_egress",
    "build_ingress",
    "decode_text",
    "encode_text",
]

PLAYGROUND_EGRESS = PlaygroundEgress.ID
PLAYGROUND_RECORD_TYPENAME = "io.statefun.playground/EgressRecord"
_VND = "application/vnd."
_TEXT = "text/plain"
_TEXT_UTF8 = "text/plain; charset=utf-8"
_EGRESS_MAX_BODY_BYTES = 1024 * 1024  # requests carry no body; this bounds a confused client
_DEFAULT_TYPENAME = "io.statefun.types/string"
_SENDING_METHODS = ("POST", "PUT")
_DEFAULT_LIMITS = HttpLimits()


def encode_text(typename: str, text: str) -> bytes:
    """A primitive value given as text, encoded as its wrapper; ValueError if it does not parse."""
    primitive = PRIMITIVES[typename]
    value = value_from_text(typename, text)
    return primitive.encode(value)  # type: ignore[arg-type] # the value is of its type


def decode_text(typename: str, value: bytes | None) -> bytes:
    """The HTTP body for a value: primitives as text, anything else as its bytes."""
    if value is None:
        return b""
    if typename in PRIMITIVES:
        return text_of(typename, value).encode()
    return value


def build_ingress(spec: object, context: ConnectorContext) -> PlaygroundIngressServer:
    """The connector of an ``io.statefun.playground.v1/ingress``."""
    assert isinstance(spec, PlaygroundIngress)
    return PlaygroundIngressServer(
        host=context.host,
        port=context.port(spec.port),
        max_body_bytes=context.ingress_max_bytes,
        limits=context.http_limits,
        front_door=context.front_door,
    )


def build_egress(spec: object, context: ConnectorContext) -> PlaygroundEgressServer:
    """The connector of an ``io.statefun.playground.v1/egress``."""
    assert isinstance(spec, PlaygroundEgress)
    return PlaygroundEgressServer(
        host=context.host,
        port=context.port(spec.port),
        topics=spec.topics,
        limits=context.http_limits,
        front_door=context.front_door,
    )


@final
class PlaygroundIngressServer(ConnectorServer):
    """The ``Ingress`` of ``io.statefun.playground.v1/ingress``."""

    def __init__(
        self, *, host: str, port: int, max_body_bytes: int, limits: HttpLimits | None = None,
        front_door: FrontDoor | None = None,
    ) -> None:  # fmt: skip
        super().__init__(host, port, limits or HttpLimits(), front_door or FrontDoor())
        self._max_bytes = max_body_bytes

    async def start(self, runtime: RuntimeHandle) -> None:
        server = HttpServer(
            self._answer,
            max_body_bytes=self._max_bytes,
            too_large=self._too_large,
            limits=self._limits,
        )
        await self._start(runtime, server)

    def readings(self) -> list[Reading]:
        return self._readings("ingress", PlaygroundIngress.KIND)

    async def _answer(self, request: HttpRequest) -> HttpResponse:
        return await self._through_door(request, self._ingest)

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
        result = await self.runtime.ingest(
            target,
            typename,
            body,
            idempotency_key=headers.get("idempotency-key") or None,
            wait_for_reply=_flag(headers.get("pystatefun-request-reply", "")),
            trace=headers.get("traceparent"),
        )
        return _respond(target, result)

    def _too_large(self, request: HttpRequest, size: int | None) -> HttpResponse:
        """A body over the limit, refused before it is read, unless the request is wrong
        already (a bad method, path or type says more than the size)."""
        parsed = self._parse(request)
        response = (
            parsed
            if isinstance(parsed, HttpResponse)
            else _too_large(parsed[0], size, self._max_bytes)
        )
        self._statuses[response.status] += 1
        return response

    def _parse(self, request: HttpRequest) -> tuple[Address, str] | HttpResponse:
        """The target and typename of a request, or the 4xx that explains why not."""
        path = _decoded(request.path)
        parts = path[1:].split("/")
        if len(parts) != 3 or not all(parts):
            return _text(
                404, f"{path!r} is not /<namespace>/<type>/<id>, e.g. /example/greeter/alice"
            )
        target = Address(*parts)
        if request.method not in _SENDING_METHODS:
            return _text(
                405,
                f"{request.method} does not send a message; send it to {target} with POST or "
                "PUT (the body is the message)",
                {"Allow": ", ".join(_SENDING_METHODS)},
            )
        content_type = request.headers.get("content-type", "")
        typename = _DEFAULT_TYPENAME
        if content_type.startswith(_VND):
            typename = content_type[len(_VND) :].split(";")[0].strip()
        if split_typename(typename) is None:
            return _text(
                415,
                f"Content-Type {content_type!r}: the typename must be "
                "namespace/name, as in application/vnd.com.example/Greeting",
            )
        return target, typename


def _flag(header: str) -> bool:
    """A yes/no header, read as a bool is read everywhere (``true``, ``1``, ``yes``)."""
    try:
        return bool(value_from_text("io.statefun.types/bool", header))
    except ValueError:
        return False


def _decoded(path: str) -> str:
    """The request path with %-escapes decoded (an escape that is not UTF-8 stays as it was)."""
    if "%" not in path:
        return path
    try:
        return unquote(path, errors="strict")
    except UnicodeDecodeError:
        return path


def _unanswered(target: Address, result: IngestResult) -> HttpResponse | None:  # noqa: PLR0911 - one per outcome
    """The answer to a request that got no reply (or took nothing); None for the others."""
    outcome = result.outcome
    if outcome is IngestOutcome.UNANSWERED and result.error is not None:
        return _text(
            504,
            f"the message for {target} may or may not have been stored: {result.error}. Check "
            "before sending it again (a request with an Idempotency-Key may always be sent "
            "again)",
        )
    if outcome is IngestOutcome.STOPPING:
        stopping = StoppingError(
            "the runtime is stopping and took nothing; send the message again once it has restarted"
        )
        return _text(503, str(stopping), {"Retry-After": "1"})
    if outcome is IngestOutcome.UNAVAILABLE:
        return _text(
            503,
            f"the message for {target} could not be stored now (its cluster partition is "
            "moving to another worker); nothing was added: send it again",
            {"Retry-After": "1"},
        )
    if outcome is IngestOutcome.UNANSWERED:
        return _text(
            504,
            f"the cluster worker that serves {target} took the request and never answered "
            "(it stopped or was cut off), so the message may or may not have been processed: "
            "check before sending it again (a request with an Idempotency-Key may always be "
            "sent again)",
        )
    if outcome is IngestOutcome.REPLY_TIMEOUT:
        return _text(
            504,
            f"the message to {target} was accepted, but no reply came in time; it is "
            "processed all the same: do not resend it without an Idempotency-Key",
        )
    if outcome is IngestOutcome.WITHDRAWN:
        return _text(
            504,
            f"no reply came in time, and the message to {target} was taken back before it was "
            "processed: nothing happened; send it again",
        )
    return None


def _respond(target: Address, result: IngestResult) -> HttpResponse:
    outcome = result.outcome
    unanswered = _unanswered(target, result)
    if unanswered is not None:
        return unanswered
    if outcome is IngestOutcome.UNWRITABLE:
        return _text(
            503,
            f"the message for {target} was not stored: {result.error}. Nothing was added; "
            "send it again later (the runtime resumes by itself once it can write)",
            {"Retry-After": str(UNWRITABLE_RETRY_S)},
        )
    if outcome is IngestOutcome.DEAD_LETTERED:
        return _text(
            422,
            f"the message to {target} could not be processed and is in the dead letters as "
            f"dead letter {result.dead_letter_id}: {result.error}. After fixing the cause, "
            f"re-drive it: pystatefun dead-letters redrive --id {result.dead_letter_id}",
            {"Pystatefun-Dead-Letter": str(result.dead_letter_id)},
        )
    if outcome is IngestOutcome.REPLIED:
        reply_type = result.reply_typename or _DEFAULT_TYPENAME
        try:
            reply_body = decode_text(reply_type, result.reply_value)
        except ProtocolError:
            reply_body = result.reply_value or b""
        return HttpResponse(200, reply_body, {"Content-Type": f"{_VND}{reply_type}"})
    duplicate = outcome is IngestOutcome.DUPLICATE
    return HttpResponse(202, b"", {"Pystatefun-Duplicate": "true"} if duplicate else {})


@final
class PlaygroundEgressServer(ConnectorServer):
    """The ``Egress`` of ``io.statefun.playground.v1/egress``: committed records wait in the
    store, and ``GET /<topic>`` pops them."""

    egress_id = PLAYGROUND_EGRESS

    def __init__(
        self, *, host: str, port: int, topics: tuple[str, ...], limits: HttpLimits | None = None,
        front_door: FrontDoor | None = None,
    ) -> None:  # fmt: skip
        super().__init__(host, port, limits or HttpLimits(), front_door or FrontDoor())
        self._topics = topics

    async def start(self, runtime: RuntimeHandle) -> None:
        server = HttpServer(self._answer, max_body_bytes=_EGRESS_MAX_BODY_BYTES,
                            limits=self._limits)  # fmt: skip
        await self._start(runtime, server)

    def readings(self) -> list[Reading]:
        return self._readings("egress", PlaygroundEgress.KIND)

    async def _answer(self, request: HttpRequest) -> HttpResponse:
        return await self._through_door(request, self._pop)

    def committed(self) -> None:
        """Nothing to do: clients read the records (``GET /<topic>``)."""

    def route(self, value: TypedValue, where: str) -> EgressOut:
        """An ``EgressRecord`` as the payload to queue under its topic."""
        if value.typename != PLAYGROUND_RECORD_TYPENAME:
            raise TerminalError(
                f"{where} sent a {value.typename!r} to {PLAYGROUND_EGRESS}, which accepts only "
                f'{PLAYGROUND_RECORD_TYPENAME!r} JSON records {{"topic": ..., "payload": ...}}'
            )
        try:
            record = json.loads(value.value)
            topic, payload = record["topic"], record["payload"]
            if not isinstance(topic, str) or not isinstance(payload, str):
                raise TypeError("topic and payload must be strings")
        except (ValueError, KeyError, TypeError, RecursionError) as exc:  # nested too deeply
            raise TerminalError(
                f"{where} sent an invalid {PLAYGROUND_RECORD_TYPENAME}: {exc}; expected JSON "
                '{"topic": "<topic>", "payload": "<string>"}'
            ) from exc
        if topic not in self._topics:
            raise TerminalError(
                f"{where} sent a record to playground topic {topic!r}, which the egress does not "
                f"declare (topics: {', '.join(self._topics)}); add it to `topics`"
            )
        return EgressOut(PLAYGROUND_EGRESS, topic, Payload(_TEXT, payload.encode("utf-8")))

    async def _pop(self, request: HttpRequest) -> HttpResponse:
        topic = _decoded(request.path)[1:]
        if not topic or "/" in topic:
            return _text(404, "404: Not Found")
        if request.method != "GET":
            # HEAD too: it would remove a record it cannot return.
            return _text(405, "405: Method Not Allowed", {"Allow": "GET"})
        if topic not in self._topics:
            return _text(405, f"topic {topic!r} is not declared; topics: {', '.join(self._topics)}")
        try:
            record = await self.runtime.pop_egress(PLAYGROUND_EGRESS, topic)
        except DataDirError as exc:  # a full disk: popping is a write, and nothing was popped
            return _text(503, str(exc), {"Retry-After": str(UNWRITABLE_RETRY_S)})
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
