"""The fields both Kinesis kinds share: ``awsRegion``, ``awsCredentials`` and
``clientConfigProperties``, read as StateFun reads them, with every mistake at its field.

``clientConfigProperties`` are the Java AWS client's settings in StateFun (the KCL's
``ClientConfiguration`` for the ingress, the KPL's configuration for the egress). pystatefun
talks to Kinesis with botocore, so it takes the names that have a botocore counterpart
(``CLIENT_SETTINGS``), accepts with a warning those that only tune the Java libraries
(``JAVA_ONLY_SETTINGS``: they have nothing to tune here), and refuses any other name, so that
a typo does not go unnoticed. Names are matched ignoring the case of their first letter, as
StateFun does.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import BaseModel, Field, StringConstraints

from pystatefun.module._client_properties import client_properties
from pystatefun.module._kinesis_components import AwsCredentials, AwsRegion
from pystatefun.module._source import FieldPath, SourceDocument
from pystatefun.module._validation import SPEC_CONFIG, Problems

__all__ = [
    "CLIENT_SETTINGS",
    "JAVA_ONLY_SETTINGS",
    "AwsSpec",
    "Credentials",
    "Region",
    "credentials",
    "kinesis_client_properties",
    "region",
]

_TEXT = Annotated[str, StringConstraints(strict=True, min_length=1)]

#: Settings with a botocore counterpart: name -> what its value is (``ms``: milliseconds,
#: ``count``: a whole number of at least 1, ``retries``: at least 0).
CLIENT_SETTINGS: Mapping[str, str] = MappingProxyType(
    {
        "SocketTimeout": "ms",  # botocore read_timeout
        "RequestTimeout": "ms",  # the KPL's name for the same: read_timeout
        "ConnectionTimeout": "ms",  # botocore connect_timeout
        "ConnectTimeout": "ms",  # the KPL's name for the same
        "MaxConnections": "count",  # botocore max_pool_connections
        "MaxErrorRetry": "retries",  # botocore retries.max_attempts
    }
)
#: Settings of the Java libraries with nothing to tune in pystatefun: accepted, with a warning.
JAVA_ONLY_SETTINGS = frozenset(
    {
        "AggregationEnabled", "AggregationMaxCount", "AggregationMaxSize", "CollectionMaxCount",
        "CollectionMaxSize", "ConnectionMaxIdleMillis", "ConnectionTTL",
        "CredentialsRefreshDelay", "FailIfThrottled", "LogLevel", "MetricsGranularity",
        "MetricsLevel", "MetricsNamespace", "MetricsUploadDelay", "MinConnections", "RateLimit",
        "RecordMaxBufferedTime", "RecordTtl", "ThreadPoolSize", "ThreadingModel", "UseGzip",
        "UseTcpKeepAlive",
    }
)  # fmt: skip
_CANONICAL = {name.lower(): name for name in (*CLIENT_SETTINGS, *JAVA_ONLY_SETTINGS)}


class Region(BaseModel):
    """``awsRegion:`` of a Kinesis ingress or egress."""

    model_config = SPEC_CONFIG

    type: _TEXT
    id: _TEXT | None = None
    endpoint: _TEXT | None = None


class Credentials(BaseModel):
    """``awsCredentials:`` of a Kinesis ingress or egress."""

    model_config = SPEC_CONFIG

    type: _TEXT
    access_key_id: _TEXT | None = Field(None, alias="accessKeyId")
    secret_access_key: _TEXT | None = Field(None, alias="secretAccessKey")
    profile_name: _TEXT | None = Field(None, alias="profileName")
    profile_path: _TEXT | None = Field(None, alias="profilePath")


class AwsSpec(BaseModel):
    """The fields of ``spec:`` that both Kinesis kinds have."""

    model_config = SPEC_CONFIG

    id: _TEXT
    aws_region: Region | None = Field(None, alias="awsRegion")
    aws_credentials: Credentials | None = Field(None, alias="awsCredentials")
    client_config_properties: list[dict[str, Any]] | dict[str, Any] | None = Field(
        None, alias="clientConfigProperties"
    )


def _known_type(
    document: SourceDocument,
    path: FieldPath,
    given: str,
    known: tuple[str, ...],
    problems: Problems,
) -> bool:
    """``given`` (the ``type`` at ``path``) is one of ``known``; else a problem there."""
    if given in known:
        return True
    problems.add(document.problem((*path, "type"), f"{given!r} is not one of {', '.join(known)}"))
    return False


def region(document: SourceDocument, raw: Region | None, problems: Problems) -> AwsRegion:
    """The region ``raw`` declares (``default`` if absent)."""
    if raw is None:
        return AwsRegion()
    path: FieldPath = ("spec", "awsRegion")
    if not _known_type(document, path, raw.type, AwsRegion.TYPES, problems):
        return AwsRegion()
    if raw.type != "default" and raw.id is None:
        problems.add(document.problem(path, f"type {raw.type} needs `id`, the region's id "
                                      "(e.g. eu-west-1)"))  # fmt: skip
    if raw.type == "custom-endpoint":
        parts = urlsplit(raw.endpoint or "")
        if raw.endpoint is None:
            example = "https://kinesis.eu-west-1.amazonaws.com"
            problems.add(document.problem(path, "type custom-endpoint needs `endpoint`, a URL "
                                          f"such as {example}"))  # fmt: skip
        elif parts.scheme not in ("http", "https") or not parts.hostname:
            problems.add(document.problem((*path, "endpoint"), f"{raw.endpoint!r} is not an "
                                          "http or https URL with a host"))  # fmt: skip
    endpoint = raw.endpoint if raw.type == "custom-endpoint" else None
    return AwsRegion(type=raw.type, id=raw.id if raw.type != "default" else None,
                     endpoint=endpoint)  # fmt: skip


def credentials(
    document: SourceDocument, raw: Credentials | None, problems: Problems
) -> AwsCredentials:
    """The credentials ``raw`` declares (``default`` if absent)."""
    if raw is None:
        return AwsCredentials()
    path: FieldPath = ("spec", "awsCredentials")
    if not _known_type(document, path, raw.type, AwsCredentials.TYPES, problems):
        return AwsCredentials()
    if raw.type == "basic":
        for name, value in (("accessKeyId", raw.access_key_id),
                            ("secretAccessKey", raw.secret_access_key)):  # fmt: skip
            if value is None:
                problems.add(document.problem(path, f"type basic needs `{name}`"))
        return AwsCredentials(type="basic", access_key_id=raw.access_key_id,
                              secret_access_key=raw.secret_access_key)  # fmt: skip
    if raw.type == "profile":
        if raw.profile_name is None:
            problems.add(document.problem(path, "type profile needs `profileName`"))
        return AwsCredentials(type="profile", profile_name=raw.profile_name,
                              profile_path=raw.profile_path)  # fmt: skip
    return AwsCredentials()


def _setting_problem(name: str, value: str) -> str | None:
    kind = CLIENT_SETTINGS[name]
    least = 0 if kind == "retries" else 1
    if not value.isdigit() or int(value) < least:
        unit = " (milliseconds)" if kind == "ms" else ""
        return f"{name} takes a whole number of at least {least}{unit}, not {value!r}"
    return None


def kinesis_client_properties(
    document: SourceDocument, raw: object, problems: Problems
) -> tuple[tuple[str, str], ...]:
    """``clientConfigProperties`` by canonical name (see the module docs), sorted."""
    found: dict[str, str] = {}
    entries = client_properties(document, raw, problems, "clientConfigProperties")
    for key, (value, path) in entries.items():
        name = _CANONICAL.get(key.lower())
        if name is None:
            known = ", ".join(CLIENT_SETTINGS)
            problems.add(document.problem(path, f"{key!r} is not a client setting pystatefun "
                                          f"knows; it takes {known} (and ignores the Java "
                                          "libraries' own, such as ThreadingModel)"))  # fmt: skip
        elif name in JAVA_ONLY_SETTINGS:
            document.warn(path, f"{name} tunes StateFun's Java Kinesis library and has no "
                          "effect in pystatefun; ignored")  # fmt: skip
        elif (wrong := _setting_problem(name, value)) is not None:
            problems.add(document.problem(path, wrong))
        else:
            found[name] = value
    return tuple(sorted(found.items()))
