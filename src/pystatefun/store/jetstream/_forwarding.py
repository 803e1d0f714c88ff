"""Steps with an idempotency key, committed by the worker that owns the key's partition.

An ingress request with an ``Idempotency-Key`` may reach any worker, and the key belongs to one
partition. Checking the key and writing it must happen in one place, or two workers could
both find it unused (each before it saw the other's write) and both append the message. So
only a partition's owner writes its keys: a worker that takes such a request for another
worker's partition sends the step over core NATS to the owner (``psf.<cluster>.fwd.<instance>``),
which commits it like its own and answers with the outcome. The owner's markers fence those
commits as any other, so a partition's keys have exactly one writer at any time.

While a partition moves (released, or its owner dead and not yet taken over), the forwarder
waits and asks again, up to ``FORWARD_DEADLINE_S``; a request whose answer was lost is asked
again too, which the key itself makes safe (the owner answers "duplicate" if it committed it).

The runtime asks owners too (``ask``, on ``psf.<cluster>.ask.<instance>``): a request-reply
request is answered by the worker serving its address, the only one that sees the reply. The
owner answers through the runtime's own handler (``answer_asked``). Such a request is sent
once: without a key, asking again after a lost answer could deliver it twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, final

from nats.errors import TimeoutError as NatsTimeoutError

from pystatefun.errors import ClusterStorageError
from pystatefun.store.content_json import content_from_json, content_to_json
from pystatefun.store.contents import DedupKey, MessageContent
from pystatefun.store.engine import OwnerMovingError
from pystatefun.store.jetstream._connection import UNREACHABLE
from pystatefun.store.jetstream._layout import ClusterLayout
from pystatefun.store.jetstream._ownership import Ownership
from pystatefun.store.steps import NewMessage, Step, StepOutcome

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.aio.msg import Msg
    from nats.aio.subscription import Subscription

__all__ = ["FORWARD_DEADLINE_S", "Forwarding", "forwardable"]

_log = logging.getLogger("pystatefun.store")
#: How long a forwarded step may wait for its partition's owner, moves included.
FORWARD_DEADLINE_S = 30.0
_REQUEST_TIMEOUT_S = 10.0
_MOVED = "moved"
# The first byte of an answer to an ``ask``: the runtime's answer follows, none took it, or
# the runtime took it and failed while answering (asking again could run it twice).
_ANSWERED, _NOT_TAKEN, _FAILED = b"a", b"n", b"f"


def forwardable(step: Step) -> bool:
    """A step that only appends messages under an idempotency key (an ingress request's)."""
    return (
        step.dedup_key is not None
        and step.state_address is None
        and not (step.consumed or step.fired_timers or step.timer_ops or step.egress)
        and not (step.positions or step.dead_letter or step.state_puts or step.state_deletes)
    )


def _encoded(step: Step) -> bytes:
    assert step.dedup_key is not None
    messages = [content_to_json(MessageContent(m.target, m.caller, m.payload, 0))
                for m in step.messages]  # fmt: skip
    key = content_to_json(DedupKey(step.dedup_key, step.dedup_expires_at_ms))
    return json.dumps({"messages": messages, "key": key}).encode()


def _decoded(data: bytes) -> Step:
    body = json.loads(data)
    key = content_from_json(body["key"])
    assert isinstance(key, DedupKey)
    step = Step(dedup_key=key.key, dedup_expires_at_ms=key.expires_at_ms)
    for record in body["messages"]:
        message = content_from_json(record)
        assert isinstance(message, MessageContent)
        step.messages.append(NewMessage(message.target, message.caller, message.payload))
    return step


@final
class Forwarding:
    """Sends keyed steps to their partition's owner, and commits those sent to this worker."""

    def __init__(
        self,
        nc: Client,
        layout: ClusterLayout,
        ownership: Ownership,
        *,
        commit: Callable[[Step], Awaitable[StepOutcome]],
        commit_here: Callable[[Step], Awaitable[StepOutcome]],
    ) -> None:
        self._nc = nc
        self._layout = layout
        self._ownership = ownership
        self._commit = commit  # a step of this worker's own
        self._commit_here = commit_here  # a step another worker sent
        self._subscriptions: list[Subscription] = []
        self._answer_asked: Callable[[bytes], Awaitable[bytes]] | None = None
        self._serving: asyncio.Task[None] | None = None
        self._group: asyncio.TaskGroup | None = None
        self._stopped = asyncio.Event()

    def _subject(self, instance: str, kind: str = "fwd") -> str:
        return f"psf.{self._layout.name}.{kind}.{instance}"

    async def start(self) -> None:
        ready = asyncio.Event()
        self._serving = asyncio.create_task(self._serve(ready), name="pystatefun-forwarded")
        await ready.wait()
        instance = self._ownership.instance
        self._subscriptions = [
            await self._nc.subscribe(self._subject(instance), cb=self._received),
            await self._nc.subscribe(self._subject(instance, "ask"), cb=self._asked),
        ]

    def answer_asked(self, answer: Callable[[bytes], Awaitable[bytes]]) -> None:
        """Answer what other workers ``ask`` this one with ``answer`` (the runtime's)."""
        self._answer_asked = answer

    async def stop(self) -> None:
        """Take no more forwarded steps; those being committed finish first."""
        for subscription in self._subscriptions:
            await subscription.unsubscribe()
        self._subscriptions = []
        self._stopped.set()
        if self._serving is not None:
            await self._serving
            self._serving = None

    async def _serve(self, ready: asyncio.Event) -> None:
        async with asyncio.TaskGroup() as group:
            self._group = group
            ready.set()
            await self._stopped.wait()
        self._group = None

    async def _received(self, message: Msg) -> None:
        if self._group is not None:
            self._group.create_task(self._answer(message))

    async def _asked(self, message: Msg) -> None:
        if self._group is not None:
            self._group.create_task(self._answer_ask(message))

    async def _answer_ask(self, message: Msg) -> None:
        answer = self._answer_asked
        body = _NOT_TAKEN
        if answer is not None:
            try:
                body = _ANSWERED + await answer(message.data)
            except Exception:  # noqa: BLE001 - one bad request stops nothing else
                _log.exception("a request another worker asked could not be answered")
                body = _FAILED
        try:
            await message.respond(body)
        except Exception as exc:  # noqa: BLE001 - the asker reports it unanswered
            _log.warning("the answer to a request another worker asked was lost (%s)", exc)

    async def _answer(self, message: Msg) -> None:
        try:
            step = _decoded(message.data)
            home = self._layout.partition_of_key(step.dedup_key or "")
            if home not in self._ownership.serving:
                body: dict[str, object] = {_MOVED: True}
            else:
                outcome = await self._commit_here(step)
                body = {"committed": outcome.committed, "duplicate": outcome.duplicate,
                        "error": outcome.error}  # fmt: skip
        except ClusterStorageError as exc:
            body = {_MOVED: True, "error": exc.message}  # this worker commits nothing more
        except Exception:  # noqa: BLE001 - one bad request stops nothing else
            _log.exception("a forwarded step could not be committed")
            body = {"committed": False, "error": "the owner could not commit it"}
        try:
            await message.respond(json.dumps(body).encode())
        except Exception as exc:  # noqa: BLE001 - the forwarder asks again
            _log.warning("the answer to a forwarded step was lost (%s)", exc)

    # --- the forwarding side -----------------------------------------------------------------

    async def forward(self, step: Step, home: int) -> StepOutcome:
        """Have ``home``'s owner commit ``step`` (this worker, should it own it meanwhile)."""
        give_up, delay = time.monotonic() + FORWARD_DEADLINE_S, 0.05
        while True:
            owner = self._owner(home)
            if owner == self._ownership.instance:
                return await self._commit(step)
            if owner is not None:
                answer = await self._ask(owner, step)
                if answer is not None:
                    return answer
            if time.monotonic() > give_up:
                return StepOutcome(
                    committed=False,
                    error=f"partition {home} of cluster {self._layout.name!r} had no owner "
                    f"that answered for {FORWARD_DEADLINE_S:.0f} s; send the message again",
                )
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.5)

    async def ask(self, home: int, request: bytes, *, timeout_s: float) -> bytes:
        """The runtime's answer to ``request`` from the owner of partition ``home`` (see
        ``StorageEngine.ask_owner``): asked once, never again after it was sent."""
        owner = self._owner(home)
        if owner is None:
            raise OwnerMovingError(f"partition {home} has no live owner this instant")
        try:
            reply = await self._nc.request(self._subject(owner, "ask"), request, timeout=timeout_s)
        except NatsTimeoutError as exc:
            raise TimeoutError(
                f"worker instance {owner} took the request and did not answer in {timeout_s:.1f} s"
            ) from exc
        except UNREACHABLE as exc:  # no responders: it went away before it was asked
            raise OwnerMovingError(f"partition {home}'s owner could not be asked: {exc}") from exc
        if reply.data.startswith(_FAILED):
            raise TimeoutError(f"worker instance {owner} took the request and failed answering it")
        if not reply.data.startswith(_ANSWERED):
            raise OwnerMovingError(f"the owner of partition {home} did not take the request")
        return reply.data[len(_ANSWERED) :]

    def _owner(self, home: int) -> str | None:
        """The instance that owns ``home`` now, as far as the markers and heartbeats tell."""
        ownership = self._ownership
        if home in ownership.serving:
            return ownership.instance
        marker = ownership.markers.get(home)
        body = {} if marker is None else (marker.body or {})
        if body.get("released") or body.get("worker") not in ownership.membership.live:
            return None
        instance = body.get("instance")
        return instance if isinstance(instance, str) else None

    async def _ask(self, owner: str, step: Step) -> StepOutcome | None:
        """The owner's answer; None if it had none (moving, away): ask again later."""
        try:
            reply = await self._nc.request(
                self._subject(owner), _encoded(step), timeout=_REQUEST_TIMEOUT_S
            )
        except UNREACHABLE:
            return None
        body = json.loads(reply.data)
        if body.get(_MOVED):
            return None
        error = body.get("error")
        return StepOutcome(
            committed=bool(body.get("committed")),
            duplicate=bool(body.get("duplicate")),
            error=None if error is None else str(error),
        )
