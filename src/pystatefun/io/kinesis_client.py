"""The boto3 Kinesis client of a Kinesis ingress or egress, made from its spec.

- ``awsRegion``: ``default`` leaves the region to boto3's chain (``AWS_REGION``,
  ``AWS_DEFAULT_REGION``, the profile's ``region``); ``specific`` names it;
  ``custom-endpoint`` also sends every call to ``endpoint`` (``endpoint_url``).
- ``awsCredentials``: ``default`` is boto3's chain (environment, shared credentials file, SSO,
  container or instance role); ``basic`` the given key pair; ``profile`` a profile of the
  shared credentials file, or of ``profilePath``.
- ``clientConfigProperties`` become botocore's ``Config``: ``SocketTimeout``/``RequestTimeout``
  (ms) its ``read_timeout``, ``ConnectionTimeout``/``ConnectTimeout`` (ms) its
  ``connect_timeout``, ``MaxConnections`` its ``max_pool_connections``, ``MaxErrorRetry`` its
  retries (``standard`` mode, ``_RETRIES`` by default).

boto3 is synchronous: the connectors call the client off the event loop (``asyncio.to_thread``);
a botocore client may be shared by threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from pystatefun.module import AwsCredentials, AwsRegion

if TYPE_CHECKING:
    from mypy_boto3_kinesis import KinesisClient

__all__ = ["describe_error", "error_code", "make_client"]

_RETRIES = 3
_CONNECT_TIMEOUT_S = 10.0
_READ_TIMEOUT_S = 30.0


def _config(properties: dict[str, str]) -> Config:
    def seconds(*names: str, default: float) -> float:
        given = [int(properties[n]) for n in names if n in properties]
        return given[0] / 1000 if given else default

    retries = int(properties.get("MaxErrorRetry", _RETRIES))
    return Config(
        connect_timeout=seconds("ConnectionTimeout", "ConnectTimeout", default=_CONNECT_TIMEOUT_S),
        read_timeout=seconds("SocketTimeout", "RequestTimeout", default=_READ_TIMEOUT_S),
        max_pool_connections=int(properties.get("MaxConnections", 10)),
        retries={"mode": "standard", "max_attempts": retries},
    )


def make_client(
    region: AwsRegion,
    credentials: AwsCredentials,
    client_properties: tuple[tuple[str, str], ...],
) -> KinesisClient:
    """A Kinesis client as the spec says; ``BotoCoreError`` if boto3 cannot make one (no region
    anywhere, a profile that does not exist)."""
    core = botocore.session.Session()
    if credentials.type == "profile" and credentials.profile_path is not None:
        core.set_config_variable("credentials_file", credentials.profile_path)
    session = boto3.session.Session(
        botocore_session=core,
        profile_name=credentials.profile_name if credentials.type == "profile" else None,
        region_name=region.id,
        aws_access_key_id=credentials.access_key_id,
        aws_secret_access_key=credentials.secret_access_key,
    )
    return session.client(
        "kinesis", endpoint_url=region.endpoint, config=_config(dict(client_properties))
    )


def error_code(error: Exception) -> str | None:
    """The AWS error code of a failed call (``ResourceNotFoundException``), if it has one."""
    if isinstance(error, ClientError):
        return error.response.get("Error", {}).get("Code")
    return None


def describe_error(error: BotoCoreError | ClientError) -> str:
    """One line for the log: the AWS code and message, or botocore's own words."""
    if isinstance(error, ClientError):
        details = error.response.get("Error", {})
        return f"{details.get('Code', 'error')}: {details.get('Message', str(error))}"
    return str(error)
