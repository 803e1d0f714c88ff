"""``io.statefun.kafka.v1/ingress``: records of Kafka topics, routed to functions (StateFun 3.1+).

Annotated example::

    kind: io.statefun.kafka.v1/ingress
    spec:
      id: com.example/users             # required: a typename naming this ingress
      address: kafka-broker:9092        # the brokers (bootstrap.servers); or in properties
      consumerGroupId: my-group         # the consumer group (group.id); or in properties
      topics:                           # required: at least one
        - topic: names                  # required
          valueType: com.example/Name   # required: the typename of every record's value
          targets:                      # required: function types; each gets every record,
            - com.example/greeter       #   addressed by the record's key
      startupPosition:                  # where a partition with no stored position starts
        type: latest                    # group-offsets | earliest | latest (default) |
                                        # specific-offsets | date
        # offsets: [{"names/0": 91}, {"names/1": 11}]   (specific-offsets)
        # date: 2020-02-01 04:15:00.000 +0000          (date: yyyy-MM-dd HH:mm:ss.SSS Z)
      autoOffsetResetPosition: latest   # earliest | latest (default): for group-offsets
                                        # without a committed offset
      properties:                       # passed to the Kafka client as they are (SASL, SSL);
        - security.protocol: SSL        # a list of single-entry maps, as StateFun reads them

The named fields win over the same settings in ``properties``. A record's value becomes the
message (``TypedValue(valueType, value)``); its key, as UTF-8, the target address's id.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from pystatefun.module._client_properties import client_properties
from pystatefun.module._components import KafkaIngress, KafkaTopic
from pystatefun.module._source import FieldPath, SourceDocument
from pystatefun.module._startup_dates import startup_date_ms
from pystatefun.module._typenames import check_routing, check_typename
from pystatefun.module._validation import SPEC_CONFIG, Problems, validate

__all__ = ["KIND", "Spec", "parse"]

KIND = KafkaIngress.KIND
_SPEC: FieldPath = ("spec",)
_TEXT = Annotated[str, StringConstraints(strict=True, min_length=1)]


class _Topic(BaseModel):
    model_config = SPEC_CONFIG

    topic: _TEXT
    value_type: _TEXT = Field(alias="valueType")
    targets: Annotated[list[_TEXT], Field(min_length=1)]


class _StartupPosition(BaseModel):
    model_config = SPEC_CONFIG

    type: _TEXT
    offsets: list[dict[str, Any]] | None = None
    date: _TEXT | None = None


class Spec(BaseModel):
    """``spec:`` of an ``io.statefun.kafka.v1/ingress`` document."""

    model_config = SPEC_CONFIG

    id: _TEXT
    address: _TEXT | None = None
    consumer_group_id: _TEXT | None = Field(None, alias="consumerGroupId")
    topics: Annotated[list[_Topic], Field(min_length=1)]
    startup_position: _StartupPosition | None = Field(None, alias="startupPosition")
    auto_offset_reset_position: _TEXT = Field("latest", alias="autoOffsetResetPosition")
    properties: list[dict[str, Any]] | dict[str, Any] | None = None


def _startup(
    document: SourceDocument, spec: Spec, problems: Problems
) -> tuple[str, tuple[tuple[str, int, int], ...], int | None]:
    """The startup position, its offsets and its date."""
    position = spec.startup_position
    if position is None:
        return "latest", (), None
    path: FieldPath = ("spec", "startupPosition")
    if position.type not in KafkaIngress.STARTUP_POSITIONS:
        known = ", ".join(KafkaIngress.STARTUP_POSITIONS)
        problems.add(document.problem((*path, "type"), f"{position.type!r} is not one of {known}"))
        return "latest", (), None
    if position.type == "specific-offsets":
        offsets = problems.attempt(partial(_offsets, document, position.offsets, path)) or ()
        return position.type, offsets, None
    if position.type == "date":
        date = problems.attempt(partial(startup_date_ms, document, position.date, (*path, "date")))
        return position.type, (), date
    return position.type, (), None


def _offsets(
    document: SourceDocument, raw: list[dict[str, Any]] | None, path: FieldPath
) -> tuple[tuple[str, int, int], ...]:
    if not raw:
        raise document.error((*path, "offsets"), "specific-offsets needs `offsets`, e.g. "
                             '[{"names/0": 91}]')  # fmt: skip
    offsets = []
    for index, entry in enumerate(raw):
        for key, value in entry.items():
            topic, slash, partition = str(key).rpartition("/")
            if not (slash and topic and partition.isdigit()) or not isinstance(value, int):
                raise document.error(
                    (*path, "offsets", index),
                    f"{key!r}: {value!r} is not '<topic>/<partition>': <offset>, e.g. "
                    "'names/0': 91",
                )
            offsets.append((topic, int(partition), value))
    return tuple(offsets)


def parse(document: SourceDocument) -> KafkaIngress:
    """The ingress that ``document`` (a whole ``kind``/``spec`` document) declares."""
    problems = Problems()
    raw = document.value.get("spec")
    spec = problems.attempt(partial(validate, document, Spec, raw, _SPEC))
    if spec is None:
        raise problems.error()
    properties = {
        k: v for k, (v, _) in client_properties(document, spec.properties, problems).items()
    }
    check_typename(document, ("spec", "id"), spec.id, "typename", problems)
    topics = []
    for index, topic in enumerate(spec.topics):
        path: FieldPath = ("spec", "topics", index)
        check_routing(document, path, topic.value_type, topic.targets, problems)
        topics.append(KafkaTopic(topic=topic.topic, value_type=topic.value_type,
                                 targets=tuple(topic.targets)))  # fmt: skip
    bootstrap = spec.address or properties.pop("bootstrap.servers", None)
    group = spec.consumer_group_id or properties.pop("group.id", None)
    if bootstrap is None:
        problems.add(document.problem(("spec",), "no `address` (nor bootstrap.servers in "
                                      "`properties`): name the Kafka brokers"))  # fmt: skip
    if group is None:
        problems.add(document.problem(("spec",), "no `consumerGroupId` (nor group.id in "
                                      "`properties`): name the consumer group"))  # fmt: skip
    if spec.auto_offset_reset_position not in ("earliest", "latest"):
        problems.add(document.problem(("spec", "autoOffsetResetPosition"),
                                      f"{spec.auto_offset_reset_position!r} is not earliest "
                                      "or latest"))  # fmt: skip
    startup, offsets, date = _startup(document, spec, problems)
    problems.raise_any()
    assert bootstrap is not None and group is not None  # noqa: PT018 - checked just above
    return KafkaIngress(
        id=spec.id,
        bootstrap_servers=bootstrap,
        consumer_group_id=group,
        topics=tuple(topics),
        startup_position=startup,
        specific_offsets=offsets,
        startup_date_ms=date,
        auto_offset_reset=spec.auto_offset_reset_position,
        properties=tuple(sorted(properties.items())),
        location=document.location(),
    )
