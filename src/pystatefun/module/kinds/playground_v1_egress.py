"""``io.statefun.playground.v1/egress``: the local-development HTTP egress.

Functions send ``EgressRecord``s (``{"topic": ..., "payload": ...}``) to the egress id
``io.statefun.playground/egress``; clients pop them per topic. Annotated example::

    kind: io.statefun.playground.v1/egress
    spec:
      port: 8091          # required: TCP port, 1-65535; 0 picks a free port
      topics:             # required: at least one; each a distinct, non-empty string
        - greetings
    # GET /greetings on that port pops the oldest record (200 + payload) or answers 404.

A module has at most one playground egress.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from pystatefun.module._components import PlaygroundEgress
from pystatefun.module._fields import Port, Topic
from pystatefun.module._source import SourceDocument
from pystatefun.module._validation import SPEC_CONFIG, Problems, validate

__all__ = ["KIND", "Spec", "parse"]

KIND = "io.statefun.playground.v1/egress"


class Spec(BaseModel):
    """``spec:`` of an ``io.statefun.playground.v1/egress`` document."""

    model_config = SPEC_CONFIG

    port: Port
    topics: Annotated[list[Topic], Field(min_length=1)]


def parse(document: SourceDocument) -> PlaygroundEgress:
    """The egress that ``document`` (a whole ``kind``/``spec`` document) declares."""
    spec = validate(document, Spec, document.value.get("spec"), ("spec",))
    problems = Problems()
    for index, topic in enumerate(spec.topics):
        if topic in spec.topics[:index]:
            first = spec.topics.index(topic)
            line = document.location(("spec", "topics", first)).line
            problems.add(
                document.problem(
                    ("spec", "topics", index),
                    f"topic {topic!r} is listed twice (also at line {line}); list each topic once",
                )
            )
    problems.raise_any()
    return PlaygroundEgress(port=spec.port, topics=tuple(spec.topics), location=document.location())
