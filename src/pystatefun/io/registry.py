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

from pystatefun.errors import ConfigurationError
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


def _builder(kinds: Mapping[str, str], kind: str, role: str) -> object:
    module = kinds.get(kind)
    if module is None:
        known = ", ".join(kinds) or "none"
        raise ConfigurationError(f"no {role} connector for kind {kind!r} (known: {known})")
    return getattr(importlib.import_module(module), f"build_{role}")


def build_ingress(spec: IngressSpec, context: ConnectorContext) -> Ingress:
    """The connector of an ingress the module declares."""
    build = cast(_IngressBuilder, _builder(INGRESS_KINDS, spec.KIND, "ingress"))
    return build(spec, context)


def build_egress(spec: EgressSpec, context: ConnectorContext) -> Egress:
    """The connector of an egress the module declares."""
    build = cast(_EgressBuilder, _builder(EGRESS_KINDS, spec.KIND, "egress"))
    return build(spec, context)
