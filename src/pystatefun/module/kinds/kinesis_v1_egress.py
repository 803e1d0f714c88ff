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
from typing import Annotated

from pydantic import Field, StringConstraints

from pystatefun.module._aws_fields import (
    AwsSpec,
    credentials,
    kinesis_client_properties,
    region,
)
from pystatefun.module._fields import PositiveInt
from pystatefun.module._kinesis_components import KinesisEgress
from pystatefun.module._source import FieldPath, SourceDocument
from pystatefun.module._typenames import check_egress_id
from pystatefun.module._validation import SPEC_CONFIG, Problems, validate

__all__ = ["KIND", "Spec", "parse"]

KIND = KinesisEgress.KIND
_SPEC: FieldPath = ("spec",)
_TEXT = Annotated[str, StringConstraints(strict=True, min_length=1)]


class Spec(AwsSpec):
    """``spec:`` of an ``io.statefun.kinesis.v1/egress`` document."""

    model_config = SPEC_CONFIG

    max_outstanding_records: PositiveInt = Field(1000, alias="maxOutstandingRecords")


def parse(document: SourceDocument) -> KinesisEgress:
    """The egress that ``document`` (a whole ``kind``/``spec`` document) declares."""
    problems = Problems()
    spec = problems.attempt(partial(validate, document, Spec, document.value.get("spec"), _SPEC))
    if spec is None:
        raise problems.error()
    check_egress_id(document, spec.id, problems)
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
