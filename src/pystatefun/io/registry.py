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

__all__ = ["EGRESS_KINDS", "INGRESS_KINDS", "SHARED_STORE_KINDS", "build_egress", "build_ingress"]

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
#: Kinds that run on cluster workers: the Kafka ingress reads only the partitions whose
#: positions the worker owns, and the publishing egresses publish only the records of the
#: partitions it owns (``RuntimeHandle.egress_shards``). The Kinesis ingress reads every shard
#: into the whole store, so on several workers it would read the same records twice.
SHARED_STORE_KINDS = frozenset(
    (
        "io.statefun.playground.v1/ingress",
        "io.statefun.playground.v1/egress",
        "io.statefun.kafka.v1/ingress",
        "io.statefun.kafka.v1/egress",
        "io.statefun.kinesis.v1/egress",
    )
)

#: Client libraries connectors import, and the extra of ``pystatefun`` that installs each.
_EXTRAS: Mapping[str, str] = MappingProxyType(
    {"confluent_kafka": "kafka", "boto3": "kinesis", "botocore": "kinesis"}
)

_IngressBuilder = Callable[[IngressSpec, ConnectorContext], Ingress]
_EgressBuilder = Callable[[EgressSpec, ConnectorContext], Egress]


def _builder(
    kinds: Mapping[str, str], spec: IngressSpec | EgressSpec, role: str, *, shared_store: bool
) -> object:
    module = kinds.get(spec.KIND)
    if module is None:
        known = ", ".join(kinds) or "none"
        raise spec.location.error(
            f"pystatefun reads and checks {spec.KIND}, but cannot run it yet: no {role} "
            f"connector serves it (those that run: {known}); see docs/compatibility.md",
            field="kind",
        )
    if shared_store and spec.KIND not in SHARED_STORE_KINDS:
        raise spec.location.error(
            f"{spec.KIND} does not run in cluster mode yet (each worker would read and "
            "publish every record); run this module embedded, or see "
            "docs/deployment/cluster.md#limitations",
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
    build = cast(
        _IngressBuilder, _builder(INGRESS_KINDS, spec, "ingress", shared_store=context.shared_store)
    )
    return build(spec, context)


def build_egress(spec: EgressSpec, context: ConnectorContext) -> Egress:
    """The connector of an egress the module declares (see ``build_ingress``)."""
    build = cast(
        _EgressBuilder, _builder(EGRESS_KINDS, spec, "egress", shared_store=context.shared_store)
    )
    return build(spec, context)
