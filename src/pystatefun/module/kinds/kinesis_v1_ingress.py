"""``io.statefun.kinesis.v1/ingress``: records of Kinesis streams, routed to functions
(StateFun 3.1+).

Annotated example::

    kind: io.statefun.kinesis.v1/ingress
    spec:
      id: com.example/users              # required: a typename naming this ingress
      awsRegion:                         # default: type default (the AWS SDK's chain)
        type: specific                   # default | specific (id) |
        id: eu-west-1                    #   custom-endpoint (endpoint, id)
      awsCredentials:                    # default: type default (the AWS SDK's chain)
        type: basic                      # default | basic (accessKeyId, secretAccessKey) |
        accessKeyId: AKIA...             #   profile (profileName, profilePath optional)
        secretAccessKey: ...
      startupPosition:                   # where a shard with no stored position starts
        type: latest                     # latest (default) | earliest | date
        # date: 2020-02-01 04:15:00.000 +0000   (date: yyyy-MM-dd HH:mm:ss.SSS Z)
      streams:                           # required: at least one
        - stream: user-stream            # required
          valueType: com.example/User    # required: the typename of every record's data
          targets:                       # required: function types; each gets every
            - com.example/greeter        #   record, addressed by its partition key
      clientConfigProperties:            # AWS client settings, by their Java names
        - SocketTimeout: 9999

A record's data becomes the message (``TypedValue(valueType, data)``); its partition key the
target address's id.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated

from pydantic import BaseModel, Field, StringConstraints

from pystatefun.module._aws_fields import (
    AwsSpec,
    credentials,
    kinesis_client_properties,
    region,
)
from pystatefun.module._kinesis_components import KinesisIngress, KinesisStream
from pystatefun.module._source import FieldPath, SourceDocument
from pystatefun.module._startup_dates import startup_date_ms
from pystatefun.module._typenames import check_routing, check_typename
from pystatefun.module._validation import SPEC_CONFIG, Problems, validate

__all__ = ["KIND", "Spec", "parse"]

KIND = KinesisIngress.KIND
_SPEC: FieldPath = ("spec",)
_TEXT = Annotated[str, StringConstraints(strict=True, min_length=1)]


class _Stream(BaseModel):
    model_config = SPEC_CONFIG

    stream: _TEXT
    value_type: _TEXT = Field(alias="valueType")
    targets: Annotated[list[_TEXT], Field(min_length=1)]


class _StartupPosition(BaseModel):
    model_config = SPEC_CONFIG

    type: _TEXT
    date: _TEXT | None = None


class Spec(AwsSpec):
    """``spec:`` of an ``io.statefun.kinesis.v1/ingress`` document."""

    model_config = SPEC_CONFIG

    startup_position: _StartupPosition | None = Field(None, alias="startupPosition")
    streams: Annotated[list[_Stream], Field(min_length=1)]


def _streams(document: SourceDocument, spec: Spec, problems: Problems) -> list[KinesisStream]:
    streams: list[KinesisStream] = []
    first: dict[str, int] = {}
    for index, stream in enumerate(spec.streams):
        path: FieldPath = ("spec", "streams", index)
        check_routing(document, path, stream.value_type, stream.targets, problems)
        if stream.stream in first:
            problems.add(document.problem((*path, "stream"), f"stream {stream.stream!r} is "
                                          f"listed already (streams[{first[stream.stream]}]); "
                                          "list its targets once"))  # fmt: skip
        first.setdefault(stream.stream, index)
        streams.append(KinesisStream(stream=stream.stream, value_type=stream.value_type,
                                     targets=tuple(stream.targets)))  # fmt: skip
    return streams


def _startup(document: SourceDocument, spec: Spec, problems: Problems) -> tuple[str, int | None]:
    position = spec.startup_position
    if position is None:
        return "latest", None
    path: FieldPath = ("spec", "startupPosition")
    if position.type not in KinesisIngress.STARTUP_POSITIONS:
        known = ", ".join(KinesisIngress.STARTUP_POSITIONS)
        problems.add(document.problem((*path, "type"), f"{position.type!r} is not one of {known}"))
        return "latest", None
    if position.type == "date":
        date = problems.attempt(partial(startup_date_ms, document, position.date, (*path, "date")))
        return "date", date
    return position.type, None


def parse(document: SourceDocument) -> KinesisIngress:
    """The ingress that ``document`` (a whole ``kind``/``spec`` document) declares."""
    problems = Problems()
    spec = problems.attempt(partial(validate, document, Spec, document.value.get("spec"), _SPEC))
    if spec is None:
        raise problems.error()
    check_typename(document, ("spec", "id"), spec.id, "typename", problems)
    aws_region = region(document, spec.aws_region, problems)
    aws_credentials = credentials(document, spec.aws_credentials, problems)
    streams = _streams(document, spec, problems)
    startup, date = _startup(document, spec, problems)
    properties = kinesis_client_properties(document, spec.client_config_properties, problems)
    problems.raise_any()
    return KinesisIngress(
        id=spec.id,
        region=aws_region,
        credentials=aws_credentials,
        streams=tuple(streams),
        startup_position=startup,
        startup_date_ms=date,
        client_properties=properties,
        location=document.location(),
    )
