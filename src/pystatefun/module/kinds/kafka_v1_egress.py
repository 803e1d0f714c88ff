"""``io.statefun.kafka.v1/egress``: records functions send, published to Kafka (StateFun 3.1+).

Annotated example::

    kind: io.statefun.kafka.v1/egress
    spec:
      id: com.example/greets            # required: the typename functions send records to
      address: kafka-broker:9092        # the brokers (bootstrap.servers); or in properties
      deliverySemantic:                 # default: at-least-once
        type: exactly-once              # none | at-least-once | exactly-once
        transactionTimeout: 15 min      # exactly-once: the longest a transaction stays open;
                                        # at most the brokers' transaction.max.timeout.ms
      properties:                       # passed to the Kafka producer as they are
        - compression.type: zstd        # a list of single-entry maps, as StateFun reads them

Functions send with the SDK's Kafka egress record (``kafka_egress_message`` in the official
Python SDK, ``kafka_egress_message``/``KafkaProducerRecord`` in pystatefun's), naming this id,
the topic, the key and the value. ``transactionTimeoutMillis`` (deprecated upstream) is read
too, and wins over ``transactionTimeout``, as in StateFun.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from pystatefun.module._client_properties import client_properties
from pystatefun.module._components import KafkaEgress
from pystatefun.module._fields import DurationMs, PositiveInt
from pystatefun.module._source import FieldPath, SourceDocument
from pystatefun.module._typenames import check_egress_id
from pystatefun.module._validation import SPEC_CONFIG, Problems, validate

__all__ = ["KIND", "Spec", "parse"]

KIND = KafkaEgress.KIND
_SPEC: FieldPath = ("spec",)
_TEXT = Annotated[str, StringConstraints(strict=True, min_length=1)]
_DEFAULT_TIMEOUT_MS = 15 * 60 * 1000


class _DeliverySemantic(BaseModel):
    model_config = SPEC_CONFIG

    type: _TEXT = "at-least-once"
    transaction_timeout: DurationMs | None = Field(None, alias="transactionTimeout")
    transaction_timeout_millis: PositiveInt | None = Field(None, alias="transactionTimeoutMillis")


class Spec(BaseModel):
    """``spec:`` of an ``io.statefun.kafka.v1/egress`` document."""

    model_config = SPEC_CONFIG

    id: _TEXT
    address: _TEXT | None = None
    delivery_semantic: _DeliverySemantic | None = Field(None, alias="deliverySemantic")
    properties: list[dict[str, object]] | dict[str, object] | None = None


def parse(document: SourceDocument) -> KafkaEgress:
    """The egress that ``document`` (a whole ``kind``/``spec`` document) declares."""
    problems = Problems()
    spec = problems.attempt(partial(validate, document, Spec, document.value.get("spec"), _SPEC))
    if spec is None:
        raise problems.error()
    properties = {
        k: v for k, (v, _) in client_properties(document, spec.properties, problems).items()
    }
    check_egress_id(document, spec.id, problems)
    bootstrap = spec.address or properties.pop("bootstrap.servers", None)
    if bootstrap is None:
        problems.add(document.problem(("spec",), "no `address` (nor bootstrap.servers in "
                                      "`properties`): name the Kafka brokers"))  # fmt: skip
    semantic = spec.delivery_semantic or _DeliverySemantic.model_validate({})
    if semantic.type not in KafkaEgress.DELIVERY_SEMANTICS:
        known = ", ".join(KafkaEgress.DELIVERY_SEMANTICS)
        problems.add(document.problem(("spec", "deliverySemantic", "type"),
                                      f"{semantic.type!r} is not one of {known}"))  # fmt: skip
    timeout_ms = semantic.transaction_timeout_millis or semantic.transaction_timeout
    if timeout_ms is not None and timeout_ms < 1000:
        problems.add(document.problem(("spec", "deliverySemantic", "transactionTimeout"),
                                      f"{timeout_ms} ms is too short for a transaction; give "
                                      "at least 1 s"))  # fmt: skip
    problems.raise_any()
    assert bootstrap is not None
    return KafkaEgress(
        id=spec.id,
        bootstrap_servers=bootstrap,
        delivery_semantic=semantic.type,
        transaction_timeout_ms=timeout_ms or _DEFAULT_TIMEOUT_MS,
        properties=tuple(sorted(properties.items())),
        location=document.location(),
    )
