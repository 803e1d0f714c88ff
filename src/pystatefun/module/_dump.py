"""``dump_module``: a ``Module`` back to module YAML that loads as an equal ``Module``.

The output is canonical rather than a copy of the input: every endpoint is written as
``io.statefun.endpoints.v2/http`` with its transport spelled out, defaults included, so it also
shows what a module means once defaults are applied.
"""

from __future__ import annotations

from typing import Any

import yaml

from pystatefun.module._components import (
    AwsCredentials,
    AwsRegion,
    ColocatedEndpoint,
    EgressSpec,
    EmbeddedEndpoint,
    Endpoint,
    HttpEndpoint,
    IngressSpec,
    KafkaEgress,
    KafkaIngress,
    KinesisEgress,
    KinesisIngress,
    Module,
    PlaygroundEgress,
    PlaygroundIngress,
    Transport,
)
from pystatefun.module._durations import format_duration
from pystatefun.module._startup_dates import format_startup_date
from pystatefun.module.kinds import (
    colocated_v1,
    embedded_v1,
    endpoints_v2_http,
    playground_v1_egress,
    playground_v1_ingress,
)

__all__ = ["dump_module"]


def dump_module(module: Module) -> str:
    """The YAML text of ``module``: one document per component, in the order endpoints,
    ingresses, egresses. ``load_module`` of it gives a module equal to ``module``."""
    documents: list[dict[str, Any]] = [
        *(_endpoint(endpoint) for endpoint in module.endpoints),
        *(_ingress(ingress) for ingress in module.ingresses),
        *(_egress(egress) for egress in module.egresses),
    ]
    return yaml.safe_dump_all(documents, sort_keys=False, allow_unicode=True)


def _duration(seconds: float) -> str:
    return format_duration(round(seconds * 1000))


def _transport(transport: Transport) -> dict[str, Any]:
    call = _duration(transport.call_timeout_s)
    connect = _duration(transport.connect_timeout_s)
    read = transport.read_timeout_s
    write = transport.write_timeout_s
    timeouts = {
        "call": call,
        "connect": connect,
        "read": _duration(transport.call_timeout_s if read is None else read),
        "write": _duration(transport.call_timeout_s if write is None else write),
    }
    if transport.kind == Transport.OKHTTP:
        return {"type": transport.kind, "timeouts": timeouts}
    spec: dict[str, Any] = {"type": transport.kind}
    if read is None and write is None:
        spec |= {"call": call, "connect": connect}
    else:
        spec["timeouts"] = timeouts
    spec |= {
        "pool_ttl": _duration(transport.pool_ttl_s),
        "pool_size": transport.pool_size,
        "payload_max_bytes": transport.payload_max_bytes,
    }
    for name in ("trust_cacerts", "client_cert", "client_key", "client_key_password"):
        if (path := getattr(transport, name)) is not None:
            spec[name] = str(path)
    return spec


def _endpoint(endpoint: Endpoint) -> dict[str, Any]:
    if isinstance(endpoint, EmbeddedEndpoint):
        embedded = {
            "functions": endpoint.functions,
            "import": endpoint.import_path,
            "maxNumBatchRequests": endpoint.max_num_batch_requests,
            "execution": endpoint.execution,
            "threads": endpoint.threads,
        }
        return {"kind": embedded_v1.KIND, "spec": embedded}
    if isinstance(endpoint, ColocatedEndpoint):
        return _colocated_endpoint(endpoint)
    return _http_endpoint(endpoint)


def _colocated_endpoint(endpoint: ColocatedEndpoint) -> dict[str, Any]:
    spec = {
        "functions": endpoint.functions,
        "command": list(endpoint.command),
        "listen": endpoint.listen,
        "path": endpoint.path,
        "env": dict(endpoint.env),
        "workingDir": str(endpoint.working_dir),
        "startupTimeout": _duration(endpoint.startup_timeout_s),
        "restartBackoff": {
            "initial": _duration(endpoint.restart_backoff_initial_s),
            "max": _duration(endpoint.restart_backoff_max_s),
        },
        "shutdownGrace": _duration(endpoint.shutdown_grace_s),
        "maxNumBatchRequests": endpoint.max_num_batch_requests,
        "transport": _transport(endpoint.transport),
    }
    return {"kind": colocated_v1.KIND, "spec": spec}


def _http_endpoint(endpoint: HttpEndpoint) -> dict[str, Any]:
    spec = {
        "functions": endpoint.functions,
        "urlPathTemplate": endpoint.url_path_template,
        "maxNumBatchRequests": endpoint.max_num_batch_requests,
        "transport": _transport(endpoint.transport),
    }
    return {"kind": endpoints_v2_http.KIND, "spec": spec}


def _ingress(ingress: IngressSpec) -> dict[str, Any]:
    if isinstance(ingress, PlaygroundIngress):
        return {"kind": playground_v1_ingress.KIND, "spec": {"port": ingress.port}}
    if isinstance(ingress, KinesisIngress):
        return _kinesis_ingress(ingress)
    startup: dict[str, Any] = {"type": ingress.startup_position}
    if ingress.specific_offsets:
        startup["offsets"] = [{f"{t}/{p}": o} for t, p, o in ingress.specific_offsets]
    if ingress.startup_date_ms is not None:
        startup["date"] = format_startup_date(ingress.startup_date_ms)
    spec = {
        "id": ingress.id,
        "address": ingress.bootstrap_servers,
        "consumerGroupId": ingress.consumer_group_id,
        "topics": [
            {"topic": t.topic, "valueType": t.value_type, "targets": list(t.targets)}
            for t in ingress.topics
        ],
        "startupPosition": startup,
        "autoOffsetResetPosition": ingress.auto_offset_reset,
        "properties": [{key: value} for key, value in ingress.properties],
    }
    return {"kind": KafkaIngress.KIND, "spec": spec}


def _egress(egress: EgressSpec) -> dict[str, Any]:
    if isinstance(egress, PlaygroundEgress):
        playground = {"port": egress.port, "topics": list(egress.topics)}
        return {"kind": playground_v1_egress.KIND, "spec": playground}
    if isinstance(egress, KinesisEgress):
        spec = {
            "id": egress.id,
            **_aws(egress.region, egress.credentials),
            "maxOutstandingRecords": egress.max_outstanding_records,
            "clientConfigProperties": [{k: v} for k, v in egress.client_properties],
        }
        return {"kind": KinesisEgress.KIND, "spec": spec}
    semantic = {
        "type": egress.delivery_semantic,
        "transactionTimeout": f"{egress.transaction_timeout_ms} ms",
    }
    spec = {
        "id": egress.id,
        "address": egress.bootstrap_servers,
        "deliverySemantic": semantic,
        "properties": [{key: value} for key, value in egress.properties],
    }
    return {"kind": KafkaEgress.KIND, "spec": spec}


def _aws(region: AwsRegion, credentials: AwsCredentials) -> dict[str, Any]:
    """``awsRegion`` and ``awsCredentials``, without the fields their type does not use."""
    given = {
        "id": region.id,
        "endpoint": region.endpoint,
        "accessKeyId": credentials.access_key_id,
        "secretAccessKey": credentials.secret_access_key,
        "profileName": credentials.profile_name,
        "profilePath": credentials.profile_path,
    }
    regions = {"type": region.type, **{k: given[k] for k in ("id", "endpoint") if given[k]}}
    names = ("accessKeyId", "secretAccessKey", "profileName", "profilePath")
    kept = {k: given[k] for k in names if given[k]}
    return {"awsRegion": regions, "awsCredentials": {"type": credentials.type, **kept}}


def _kinesis_ingress(ingress: KinesisIngress) -> dict[str, Any]:
    startup: dict[str, Any] = {"type": ingress.startup_position}
    if ingress.startup_date_ms is not None:
        startup["date"] = format_startup_date(ingress.startup_date_ms)
    spec = {
        "id": ingress.id,
        **_aws(ingress.region, ingress.credentials),
        "startupPosition": startup,
        "streams": [
            {"stream": s.stream, "valueType": s.value_type, "targets": list(s.targets)}
            for s in ingress.streams
        ],
        "clientConfigProperties": [{k: v} for k, v in ingress.client_properties],
    }
    return {"kind": KinesisIngress.KIND, "spec": spec}
