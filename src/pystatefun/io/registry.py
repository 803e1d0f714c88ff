"""Connectors by module ``kind``: the one place that knows which code serves which kind.

The runtime asks ``build_ingress``/``build_egress`` for the connector of each ingress and egress
its module declares. A connector is a module of ``pystatefun.io`` with a ``build(spec,
context)`` function; registering it is one line in ``_INGRESSES`` or ``_EGRESSES``. Modules are
imported only when a module uses their kind, so a connector's client library (a Kafka client,
say) costs nothing to modules that do not use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import cast

from pystatefun.errors import ModuleError
from pystatefun.io.api import ConnectorContext, Egress, Ingress
from pystatefun.module import EgressSpec, IngressSpec

__all__ = ["EGRESS_KINDS", "INGRESS_KINDS", "build_egress", "build_ingress"]

#: Ingress kind -> the module that builds its connector.
INGRESS_KINDS: Mapping[str, str] = MappingProxyType(
    {"io.statefun.playground.v1/ingress": "pystatefun.io.playground"}
)
#: Egress kind -> the module that builds its connector.
EGRESS_KINDS: Mapping[str, str] = MappingProxyType(
    {"io.statefun.playground.v1/egress": "pystatefun.io.playground"}
)

_IngressBuilder = Callable[[IngressSpec, ConnectorContext], Ingress]
_EgressBuilder = Callable[[EgressSpec, ConnectorContext], Egress]


def _builder(kinds: Mapping[str, str], spec: IngressSpec | EgressSpec, role: str) -> object:
    module = kinds.get(spec.KIND)
    if module is None:
        known = ", ".join(kinds) or "none"
        raise ModuleError(
            f"pystatefun reads and checks {spec.KIND}, but cannot run it yet: no {role} "
            f"connector serves it (those that run: {known}); see docs/compatibility.md",
            file=spec.location.file,
            line=spec.location.line,
            field="kind",
        )
    return getattr(importlib.import_module(module), f"build_{role}")


def build_ingress(spec: IngressSpec, context: ConnectorContext) -> Ingress:
    """The connector of an ingress the module declares; ``ModuleError`` at its document if
    no connector serves its kind."""
    build = cast(_IngressBuilder, _builder(INGRESS_KINDS, spec, "ingress"))
    return build(spec, context)


def build_egress(spec: EgressSpec, context: ConnectorContext) -> Egress:
    """The connector of an egress the module declares (see ``build_ingress``)."""
    build = cast(_EgressBuilder, _builder(EGRESS_KINDS, spec, "egress"))
    return build(spec, context)
