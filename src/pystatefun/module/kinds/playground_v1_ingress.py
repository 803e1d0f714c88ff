"""``io.statefun.playground.v1/ingress``: the local-development HTTP ingress.

Upstream's playground image serves it; examples and tests rely on it. Annotated example::

    kind: io.statefun.playground.v1/ingress
    spec:
      port: 8090   # required: TCP port, 1-65535; 0 picks a free port
    # Any request to /<namespace>/<type>/<id> on that port sends its body to that address.
    # Content-Type "application/vnd.<typename>" names the message type;
    # without it the type is io.statefun.types/string.

A module has at most one playground ingress; its id is ``io.statefun.playground/ingress``.
"""

from __future__ import annotations

from pydantic import BaseModel

from pystatefun.module._components import PlaygroundIngress
from pystatefun.module._fields import Port
from pystatefun.module._source import SourceDocument
from pystatefun.module._validation import SPEC_CONFIG, validate

__all__ = ["KIND", "Spec", "parse"]

KIND = "io.statefun.playground.v1/ingress"


class Spec(BaseModel):
    """``spec:`` of an ``io.statefun.playground.v1/ingress`` document."""

    model_config = SPEC_CONFIG

    port: Port


def parse(document: SourceDocument) -> PlaygroundIngress:
    """The ingress that ``document`` (a whole ``kind``/``spec`` document) declares."""
    spec = validate(document, Spec, document.value.get("spec"), ("spec",))
    return PlaygroundIngress(port=spec.port, location=document.location())
