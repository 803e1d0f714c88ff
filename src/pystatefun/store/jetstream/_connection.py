"""The NATS side of the cluster engine: streams, atomic batch publishes, reading a stream back.

nats-py speaks JetStream's management API but not atomic batches, so a batch is published the
way the protocol defines it: every message carries ``Nats-Batch-Id`` and its
``Nats-Batch-Sequence``, all but the last by plain publish, the last with ``Nats-Batch-Commit``
as a request whose reply is the batch's one acknowledgement. The server stores the batch whole
or not at all, with consecutive sequences ending at the acknowledged one.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, final

from nats.errors import ConnectionClosedError, NoRespondersError, NoServersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StreamConfig
from nats.js.errors import (
    APIError,
    NoStreamResponseError,
    NotFoundError,
    ServiceUnavailableError,
)

from pystatefun.errors import ClusterStorageError
from pystatefun.store.content_json import content_from_json, content_to_json
from pystatefun.store.contents import Content, MessageContent
from pystatefun.store.jetstream._view import Held, Mark, Outbound

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js import JetStreamContext

    from pystatefun.store.jetstream._batch import Record

__all__ = [
    "UNREACHABLE",
    "BatchRefusedError",
    "BatchTimeoutError",
    "ClusterNotReadyError",
    "StoredRecord",
    "decode",
    "ensure_stream",
    "held_of",
    "last_on",
    "publish_batch",
    "read_live",
]

#: How long a tombstone stays before it expires too: long after anything could read what it
#: replaced (its rollup removed that at once).
TOMBSTONE_TTL = "1h"
GONE = "Psf-Gone"
WRONG_LAST_SEQUENCE = 10071
_NOT_CLUSTERED = 10074  # replicas > 1 are not supported in non-clustered mode
_NO_PEERS = 10005  # no suitable peers for placement: a server of the cluster is offline


class ClusterNotReadyError(Exception):
    """The NATS cluster cannot place a stream now (a server is offline): try again."""


#: Errors after which a request may be tried again: the servers away, or the stream without a
#: RAFT leader for a moment (no responders, service unavailable) while it elects one.
UNREACHABLE: tuple[type[BaseException], ...] = (
    NatsTimeoutError, ConnectionClosedError, NoServersError, NoRespondersError,
    ServiceUnavailableError, NoStreamResponseError, ClusterNotReadyError, OSError,
)  # fmt: skip
_FETCH_S = 10.0  # one pull of a whole-stream read
_READ_DEADLINE_S = 60.0  # the pulls of one read, answered or not
_ROLLED_UP = ("st", "dd", "po", "pm", "rx", "rl")  # kinds whose subjects hold one record each


class BatchRefusedError(Exception):
    """The server refused a batch (nothing of it was stored); ``err_code`` says why."""

    def __init__(self, description: str, err_code: int | None) -> None:
        super().__init__(description if err_code is None else f"{description} ({err_code})")
        self.err_code = err_code
        # A fence that failed: a subject written since. The servers say so with 10071, and in
        # some races (a stream leader changing) with other codes and the same words.
        self.wrong_sequence = err_code == WRONG_LAST_SEQUENCE or description.startswith(
            "wrong last sequence"
        )


class BatchTimeoutError(Exception):
    """No acknowledgement came: the batch may or may not have been stored."""


@final
@dataclass(frozen=True, slots=True)
class StoredRecord:
    """A record read back from a stream (``content`` None: a tombstone or a marker)."""

    subject: str
    seq: int
    content: Content | None
    body: dict[str, Any] | None  # markers and directory records: their JSON
    batch: str | None = None  # the id of the batch that stored it
    batch_first: int = 0  # the sequence of that batch's first record (0: none)


def _body(content: Held | None) -> bytes:
    if content is None:
        return b""
    if isinstance(content, Mark):
        return json.dumps({"upto": content.upto}).encode()
    if isinstance(content, Outbound):
        content = content.message
    return json.dumps(content_to_json(content), ensure_ascii=False, separators=(",", ":")).encode()


def held_of(record: StoredRecord, kind: str) -> Held | None:
    """What ``record`` of ``kind`` holds in a view: the outbox's and relay marks' records are
    the engine's own kinds (None: a tombstone)."""
    if kind == "ob" and isinstance(record.content, MessageContent):
        return Outbound(record.content)
    if kind in ("rx", "rl"):
        return None if record.body is None else Mark(int(record.body["upto"]))
    return record.content


def _encode(record: Record, kind: str) -> tuple[bytes, dict[str, str]]:
    headers: dict[str, str] = {}
    if record.content is None and kind != "pm":
        headers = {GONE: "1", "Nats-Rollup": "sub", "Nats-TTL": TOMBSTONE_TTL}
        body = b""
    else:
        body = _body(record.content)
        if kind in _ROLLED_UP:
            headers["Nats-Rollup"] = "sub"
    if record.expect_seq is not None:
        headers["Nats-Expected-Last-Subject-Sequence"] = str(record.expect_seq)
    return body, headers


async def publish_batch(
    nc: Client,
    records: list[Record],
    *,
    batch_id: str,
    kind_of: dict[str, str],
    marker_body: bytes,
    timeout: float,
) -> int:
    """Publish ``records`` as one atomic batch; the sequence of its last message.

    ``kind_of`` maps a subject to its kind (the caller knows the layout); markers get
    ``marker_body``. Raises ``BatchRefusedError`` or ``BatchTimeoutError``."""
    last = len(records)
    for n, record in enumerate(records, start=1):
        kind = kind_of[record.subject]
        body, headers = _encode(record, kind)
        if kind == "pm":
            body = marker_body
            headers["Nats-Rollup"] = "sub"
        headers["Nats-Batch-Id"] = batch_id
        headers["Nats-Batch-Sequence"] = str(n)
        if n < last:
            await nc.publish(record.subject, body, headers=headers)
            continue
        headers["Nats-Batch-Commit"] = "1"
        try:
            reply = await nc.request(record.subject, body, headers=headers, timeout=timeout)
        except NatsTimeoutError as exc:
            raise BatchTimeoutError(f"no acknowledgement within {timeout} s") from exc
        ack = json.loads(reply.data or b"{}")
        error = ack.get("error")
        if error is not None or "seq" not in ack:
            error = error or {"description": f"unexpected reply {reply.data!r}"}
            raise BatchRefusedError(error.get("description", ""), error.get("err_code"))
        seq: int = ack["seq"]
        return seq
    raise ValueError("an empty batch")


def decode(subject: str, seq: int, data: bytes, headers: dict[str, str] | None) -> StoredRecord:
    """A stored message as a record (a tombstone: no content)."""
    batch, first = None, 0
    if headers is not None and (batch := headers.get("Nats-Batch-Id")) is not None:
        first = seq - int(headers.get("Nats-Batch-Sequence", "1")) + 1
    if headers and headers.get(GONE):
        return StoredRecord(subject, seq, None, None, batch, first)
    body = json.loads(data) if data else {}
    if "t" in body:
        return StoredRecord(subject, seq, content_from_json(body), None, batch, first)
    return StoredRecord(subject, seq, None, body, batch, first)


async def ensure_stream(
    js: JetStreamContext, *, name: str, subjects: list[str], replicas: int
) -> int:
    """Create the stream unless it exists; the replicas it has."""
    try:
        info = await js.stream_info(name)
    except NotFoundError:
        pass
    else:
        return info.config.num_replicas or 1
    config = StreamConfig(
        name=name,
        subjects=subjects,
        num_replicas=replicas,
        allow_atomic=True,
        allow_rollup_hdrs=True,
        allow_msg_ttl=True,
        allow_direct=True,
        deny_delete=False,
    )
    try:
        info = await js.add_stream(config)
    except APIError as exc:
        if exc.err_code == _NO_PEERS:
            raise ClusterNotReadyError(f"stream {name} cannot be placed now: {exc}") from exc
        if exc.err_code != _NOT_CLUSTERED or replicas == 1:
            raise
        config.num_replicas = 1
        info = await js.add_stream(config)
    return info.config.num_replicas or 1


async def last_on(js: JetStreamContext, stream: str, subject: str) -> StoredRecord | None:
    """The last message on ``subject`` (None: there is none), as the stream's leader has it:
    a replica's answer may lag, and a commit's fate is decided on this."""
    try:
        message = await js.get_msg(stream, subject=subject)
    except NotFoundError:
        return None
    return decode(subject, message.seq or 0, message.data or b"", message.headers)


async def read_live(js: JetStreamContext, stream: str, subject: str) -> list[StoredRecord]:
    """The last message of every subject under ``subject`` (a filter), in stream order."""
    config = ConsumerConfig(
        deliver_policy=DeliverPolicy.LAST_PER_SUBJECT,
        ack_policy=AckPolicy.NONE,
        inactive_threshold=30.0,
        mem_storage=True,
    )
    subscription = await js.pull_subscribe(subject, stream=stream, config=config)
    info = await subscription.consumer_info()
    give_up = time.monotonic() + _READ_DEADLINE_S
    try:
        pending = info.num_pending or 0
        found: list[StoredRecord] = []
        while pending:
            try:
                fetched = await subscription.fetch(min(pending, 1000), timeout=_FETCH_S)
            except NatsTimeoutError:
                # No answer to the pull (seen once in CI under load): ask what is left, and
                # pull again, within a bound.
                if time.monotonic() > give_up:
                    raise ClusterStorageError(
                        f"stream {stream} did not answer a read for {_READ_DEADLINE_S:.0f} s "
                        f"({pending} record(s) still to read); check its NATS servers"
                    ) from None
                pending = (await subscription.consumer_info()).num_pending or 0
                continue
            for message in fetched:
                meta = message.metadata
                found.append(decode(message.subject, meta.sequence.stream, message.data,
                                    message.headers))  # fmt: skip
                pending = meta.num_pending
        return found
    finally:
        await subscription.unsubscribe()
        await js.delete_consumer(stream, info.name)
