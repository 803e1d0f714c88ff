"""What a Kinesis ingress or egress declares, as the runtime consumes it: the AWS region and
credentials to reach Kinesis with, the streams an ingress reads, the client settings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, final

from pystatefun.module._location import Location

__all__ = ["AwsCredentials", "AwsRegion", "KinesisEgress", "KinesisIngress", "KinesisStream"]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class AwsRegion:
    """Where Kinesis is: ``default`` (the AWS SDK's provider chain: ``AWS_REGION``, the
    profile's region, ...), ``specific`` (region ``id``), or ``custom-endpoint`` (``endpoint``,
    a URL, signed for region ``id``: a VPC endpoint, a local Kinesis-compatible server)."""

    TYPES: ClassVar[tuple[str, ...]] = ("default", "specific", "custom-endpoint")

    type: str = "default"
    id: str | None = None
    endpoint: str | None = None


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class AwsCredentials:
    """Who calls Kinesis: ``default`` (the AWS SDK's provider chain: environment, profile,
    instance role, ...), ``basic`` (``access_key_id``/``secret_access_key``), or ``profile``
    (``profile_name`` of the shared credentials file, or of ``profile_path``)."""

    TYPES: ClassVar[tuple[str, ...]] = ("default", "basic", "profile")

    type: str = "default"
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    profile_name: str | None = None
    profile_path: str | None = None


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class KinesisStream:
    """One stream a Kinesis ingress reads: its records' data are ``value_type`` typed values,
    each sent to every function type of ``targets`` with the record's partition key as the id."""

    stream: str
    value_type: str
    targets: tuple[str, ...]


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class KinesisIngress:
    """StateFun's Kinesis ingress: ``streams`` read from Kinesis in ``region`` as
    ``credentials``. ``startup_position`` is where a shard with no stored position starts:
    ``latest``, ``earliest`` or ``date`` (``startup_date_ms``). ``client_properties`` are the
    AWS client settings (``SocketTimeout``, ...), by their canonical names."""

    KIND: ClassVar[str] = "io.statefun.kinesis.v1/ingress"
    STARTUP_POSITIONS: ClassVar[tuple[str, ...]] = ("latest", "earliest", "date")

    id: str
    region: AwsRegion = field(default_factory=AwsRegion)
    credentials: AwsCredentials = field(default_factory=AwsCredentials)
    streams: tuple[KinesisStream, ...]
    startup_position: str = "latest"
    startup_date_ms: int | None = None
    client_properties: tuple[tuple[str, str], ...] = ()
    location: Location = field(compare=False)


@final
@dataclass(frozen=True, slots=True, kw_only=True)
class KinesisEgress:
    """StateFun's Kinesis egress ``id``: records functions send with the SDK's Kinesis egress
    record, put to Kinesis in ``region`` as ``credentials``, at most
    ``max_outstanding_records`` in flight at once."""

    KIND: ClassVar[str] = "io.statefun.kinesis.v1/egress"

    id: str
    region: AwsRegion = field(default_factory=AwsRegion)
    credentials: AwsCredentials = field(default_factory=AwsCredentials)
    max_outstanding_records: int = 1000
    client_properties: tuple[tuple[str, str], ...] = ()
    location: Location = field(compare=False)
