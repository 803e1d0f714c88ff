"""``io.statefun.kinesis.v1/egress``: records functions send, put to Kinesis (StateFun 3.1+).

Annotated example::

    kind: io.statefun.kinesis.v1/egress
    spec:
      id: com.example/out                # required: the typename functions send records to
      awsRegion:                         # as the ingress's; default: type default
        type: specific
        id: eu-west-1
      awsCredentials:                    # as the ingress's; default: type default
        type: default
      maxOutstandingRecords: 9999        # default 1000: the most records in flight at once
      clientConfigProperties:            # AWS client settings, by their Java names
        - RequestTimeout: 6000

Functions send with the SDK's Kinesis egress record (``kinesis_egress_message`` in the
official Python SDK and in pystatefun's), naming this id, the stream, the partition key, the
value and, optionally, an explicit hash key.
"""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any

from pydantic import BaseModel, Field, StringConstraints

from pystatefun.module._aws_fields import (
    Credentials,
    Region,
    credentials,
    kinesis_client_properties,
    region,
)
from pystatefun.module._components import PlaygroundEgress
from pystatefun.module._fields import PositiveInt
from pystatefun.module._kinesis_components import KinesisEgress
from pystatefun.module._source import FieldPath, SourceDocument
from pystatefun.module._validation import SPEC_CONFIG, Problems, validate
from pystatefun.types import split_typename

__all__ = ["KIND", "Spec", "parse"]

KIND = KinesisEgress.KIND
_SPEC: FieldPath = ("spec",)
_TEXT = Annotated[str, StringConstraints(strict=True, min_length=1)]


class Spec(BaseModel):
    """``spec:`` of an ``io.statefun.kinesis.v1/egress`` document."""

    model_config = SPEC_CONFIG

    id: _TEXT
    aws_region: Region | None = Field(None, alias="awsRegion")
    aws_credentials: Credentials | None = Field(None, alias="awsCredentials")
    max_outstanding_records: PositiveInt = Field(1000, alias="maxOutstandingRecords")
    client_config_properties: list[dict[str, Any]] | dict[str, Any] | None = Field(
        None, alias="clientConfigProperties"
    )


def parse(document: SourceDocument) -> KinesisEgress:
    """The egress that ``document`` (a whole ``kind``/``spec`` document) declares."""
    problems = Problems()
    spec = problems.attempt(partial(validate, document, Spec, document.value.get("spec"), _SPEC))
    if spec is None:
        raise problems.error()
    if spec.id == PlaygroundEgress.ID:
        problems.add(document.problem(("spec", "id"), f"{spec.id!r} is the playground egress's "
                                      "id; name this egress otherwise"))  # fmt: skip
    elif split_typename(spec.id) is None:
        problems.add(document.problem(("spec", "id"), f"{spec.id!r} is not a typename like "
                                      "'com.example/out'"))  # fmt: skip
    aws_region = region(document, spec.aws_region, problems)
    aws_credentials = credentials(document, spec.aws_credentials, problems)
    properties = kinesis_client_properties(document, spec.client_config_properties, problems)
    problems.raise_any()
    return KinesisEgress(
        id=spec.id,
        region=aws_region,
        credentials=aws_credentials,
        max_outstanding_records=spec.max_outstanding_records,
        client_properties=properties,
        location=document.location(),
    )
