"""Connectors by module ``kind``: the one place that knows which code serves which kind.

The runtime asks ``build_ingress``/``build_egress`` for the connector of each ingress and egress
its module declares. A connector is a module of ``pystatefun.io`` with a ``build_ingress(spec,
context)`` (or ``build_egress``) function; registering it is one line in ``INGRESS_KINDS`` or
``EGRESS_KINDS``. Modules are
imported only when a module uses their kind, so a connector's client library (a Kafka client,
say) costs nothing to modules that do not use it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import cast

from pystatefun.io.api import ConnectorContext, Egress, Ingress
from pystatefun.module import EgressSpec, IngressSpec

__all__ = ["EGRESS_KINDS", "INGRESS_KINDS", "build_egress", "build_ingress"]

#: Ingress kind -> the module that builds its connector.
INGRESS_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "io.statefun.playground.v1/ingress": "pystatefun.io.playground",
        "io.statefun.kafka.v1/ingress": "pystatefun.io.kafka_ingress",
        "io.statefun.kinesis.v1/ingress": "pystatefun.io.kinesis_ingress",
    }
)
#: Egress kind -> the module that builds its connector.
EGRESS_KINDS: Mapping[str, str] = MappingProxyType(
    {
        "io.statefun.playground.v1/egress": "pystatefun.io.playground",
        "io.statefun.kafka.v1/egress": "pystatefun.io.kafka_egress",
        "io.statefun.kinesis.v1/egress": "pystatefun.io.kinesis_egress",
    }
)

#: The kinds whose connectors run on a store that several workers share (cluster mode). The
#: Client libraries connectors import, and the extra of ``pystatefun`` that installs each.
_EXTRAS: Mapping[str, str] = MappingProxyType(
    {"confluent_kafka": "kafka", "boto3": "kinesis", "botocore": "kinesis"}
)

_IngressBuilder = Callable[[IngressSpec, ConnectorContext], Ingress]
_EgressBuilder = Callable[[EgressSpec, ConnectorContext], Egress]


def _builder(kinds: Mapping[str, str], spec: IngressSpec | EgressSpec, role: str) -> object:
    module = kinds.get(spec.KIND)
    if module is None:
        known = ", ".join(kinds) or "none"
        raise spec.location.error(
            f"pystatefun reads and checks {spec.KIND}, but cannot run it yet: no {role} "
            f"connector serves it (those that run: {known}); see docs/compatibility.md",
            field="kind",
        )
    try:
        connector = importlib.import_module(module)
    except ModuleNotFoundError as missing:
        extra = _EXTRAS.get((missing.name or "").partition(".")[0])
        if extra is None:
            raise
        raise spec.location.error(
            f"the {spec.KIND} connector needs the Python package {missing.name}, which is not "
            f"installed: pip install 'pystatefun[{extra}]'",
            field="kind",
        ) from None
    return getattr(connector, f"build_{role}")


def build_ingress(spec: IngressSpec, context: ConnectorContext) -> Ingress:
    """The connector of an ingress the module declares; ``ModuleError`` at its document if
    no connector serves its kind."""
    build = cast(_IngressBuilder, _builder(INGRESS_KINDS, spec, "ingress"))
    return build(spec, context)


def build_egress(spec: EgressSpec, context: ConnectorContext) -> Egress:
    """The connector of an egress the module declares (see ``build_ingress``)."""
    build = cast(_EgressBuilder, _builder(EGRESS_KINDS, spec, "egress"))
    return build(spec, context)
