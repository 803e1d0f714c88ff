"""Routing egress records from function replies to the egresses the module declares.

Only the playground egress exists so far. It accepts ``TypedValue``s of type
``io.statefun.playground/EgressRecord`` whose JSON is ``{"topic": ..., "payload": "<utf-8>"}``
and queues the payload under its topic, durably (DESIGN §4).
"""

from __future__ import annotations

import json
from typing import final

from pystatefun.errors import TerminalError
from pystatefun.protocol import TypedValue
from pystatefun.store import Payload

__all__ = ["PLAYGROUND_EGRESS", "PLAYGROUND_RECORD_TYPENAME", "EgressRouter"]

PLAYGROUND_EGRESS = "io.statefun.playground/egress"
PLAYGROUND_RECORD_TYPENAME = "io.statefun.playground/EgressRecord"


@final
class EgressRouter:
    """Knows the declared egresses; turns an egress message into (egress, topic, payload)."""

    def __init__(self, playground_topics: tuple[str, ...] | None) -> None:
        self._playground_topics = playground_topics

    def route(self, egress: str, value: TypedValue, where: str) -> tuple[str, str, Payload]:
        if egress != PLAYGROUND_EGRESS or self._playground_topics is None:
            declared = [PLAYGROUND_EGRESS] if self._playground_topics is not None else []
            raise TerminalError(
                f"{where} sent a record to egress {egress!r}, which the module does not declare "
                f"(declared: {', '.join(declared) or 'none'}); declare it in the module YAML"
            )
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
        if topic not in self._playground_topics:
            raise TerminalError(
                f"{where} sent a record to playground topic {topic!r}, which the egress does not "
                f"declare (topics: {', '.join(self._playground_topics)}); add it to `topics`"
            )
        return PLAYGROUND_EGRESS, topic, Payload("text/plain", payload.encode("utf-8"))
