"""One parser per versioned component ``kind``, each with its annotated YAML example.

A kind's module has ``KIND`` (its type name), ``Spec`` (the pydantic model of its ``spec:``)
and ``parse(document)``. Adding a kind is adding a module and a line to ``PARSERS``; its page in
``docs/module-yaml/`` is required by the docs tests.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType

from pystatefun.module._components import EgressSpec, Endpoint, IngressSpec
from pystatefun.module._source import SourceDocument
from pystatefun.module.kinds import (
    colocated_v1,
    embedded_v1,
    endpoints_v1_http,
    endpoints_v2_http,
    kafka_v1_egress,
    kafka_v1_ingress,
    kinesis_v1_egress,
    kinesis_v1_ingress,
    playground_v1_egress,
    playground_v1_ingress,
)

__all__ = ["NOT_YET_SUPPORTED", "PARSERS", "Component", "Parser"]

Component = Endpoint | IngressSpec | EgressSpec
Parser = Callable[[SourceDocument], Component]

PARSERS: Mapping[str, Parser] = MappingProxyType(
    {
        endpoints_v2_http.KIND: endpoints_v2_http.parse,
        endpoints_v1_http.KIND: endpoints_v1_http.parse,
        playground_v1_ingress.KIND: playground_v1_ingress.parse,
        playground_v1_egress.KIND: playground_v1_egress.parse,
        embedded_v1.KIND: embedded_v1.parse,
        colocated_v1.KIND: colocated_v1.parse,
        kafka_v1_ingress.KIND: kafka_v1_ingress.parse,
        kafka_v1_egress.KIND: kafka_v1_egress.parse,
        kinesis_v1_ingress.KIND: kinesis_v1_ingress.parse,
        kinesis_v1_egress.KIND: kinesis_v1_egress.parse,
    }
)
# StateFun kinds that pystatefun recognises but cannot run yet: a module that uses them gets an
# error saying so, not "unknown kind", which would suggest a typo.
NOT_YET_SUPPORTED: frozenset[str] = frozenset()
