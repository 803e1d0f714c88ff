"""``upgrade_module``: StateFun 3.0 and 2.x modules to the current format, and back through
``load_module``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from pystatefun.errors import ModuleError
from pystatefun.module import Transport, load_module
from pystatefun.module.upgrade import Upgraded, upgrade_module

Write = Callable[..., Path]  # fixtures from conftest.py

# StateFun's own 3.0 e2e module (release-3.0.0, statefun-exactly-once-remote-e2e), endpoints only.
V30_ENDPOINTS = """
version: "3.0"
module:
  meta:
    type: remote
  spec:
    endpoints:
      - endpoint:
          meta:
            kind: http
          spec:
            functions: org.apache.flink.statefun.e2e.remote/*
            urlPathTemplate: http://remote-function:8000/service
            maxNumBatchRequests: 10000
            timeouts:                  # OkHttp: call/connect/read/write
              call: 1minutes
              connect: 10seconds
              read: 10second
              write: 10seconds
"""

V30_IO = """
    ingresses:
      - ingress:
          meta:
            type: io.statefun.kafka/ingress
            id: org.apache.flink.statefun.e2e.remote/invoke
          spec:
            address: kafka-broker:9092
            consumerGroupId: remote-module-e2e
            startupPosition: {type: earliest}
            topics:
              - topic: invoke
                valueType: statefun.e2e/org.apache.flink.statefun.e2e.remote.Invoke
                targets: [org.apache.flink.statefun.e2e.remote/counter]
    egresses:
      - egress:
          meta:
            type: io.statefun.kinesis/egress
            id: org.apache.flink.statefun.e2e.remote/invoke-results
          spec:
            awsRegion: {type: specific, id: eu-west-1}
"""

# StateFun 2.0's python greeter example module.
V10 = """
version: "1.0"
module:
  meta:
    type: remote
  spec:
    functions:
      - function:
          meta:
            kind: http
            type: example/greeter
          spec:
            endpoint: http://python-worker:8000/statefun
            states:
              - seen_count
            maxNumBatchRequests: 500
            timeout: 2min
    ingresses:
      - ingress:
          meta:
            type: statefun.kafka.io/routable-protobuf-ingress
            id: example/names
          spec:
            address: kafka-broker:9092
"""


def test_a_3_0_module_converts_and_loads(write: Write) -> None:
    path = write(V30_ENDPOINTS)
    upgraded = upgrade_module(path)
    assert (upgraded.version, upgraded.notes) == ("3.0", ())
    assert upgraded.yaml.startswith(
        "# Converted from the StateFun 3.0 module format by `pystatefun module upgrade`.\n"
    )
    assert list(yaml.safe_load_all(upgraded.yaml)) == [
        {
            "kind": "io.statefun.endpoints.v1/http",
            "spec": {
                "functions": "org.apache.flink.statefun.e2e.remote/*",
                "urlPathTemplate": "http://remote-function:8000/service",
                "maxNumBatchRequests": 10000,
                "timeouts": {
                    "call": "1minutes",
                    "connect": "10seconds",
                    "read": "10second",
                    "write": "10seconds",
                },
            },
        }
    ]
    (endpoint,) = load_module(write(upgraded.yaml, "upgraded.yaml")).endpoints
    assert endpoint.functions == "org.apache.flink.statefun.e2e.remote/*"
    assert endpoint.max_num_batch_requests == 10000
    assert endpoint.transport.kind == Transport.OKHTTP
    assert endpoint.transport.call_timeout_s == 60.0


def test_3_0_kafka_and_kinesis_become_v1_kinds_with_the_meta_id(write: Write) -> None:
    upgraded = upgrade_module(write(V30_ENDPOINTS + V30_IO))
    _, ingress, egress = yaml.safe_load_all(upgraded.yaml)
    assert ingress["kind"] == "io.statefun.kafka.v1/ingress"
    assert list(ingress["spec"])[:3] == ["id", "address", "consumerGroupId"]
    assert ingress["spec"]["id"] == "org.apache.flink.statefun.e2e.remote/invoke"
    assert ingress["spec"]["topics"][0]["targets"] == [
        "org.apache.flink.statefun.e2e.remote/counter"
    ]
    assert egress == {
        "kind": "io.statefun.kinesis.v1/egress",
        "spec": {
            "id": "org.apache.flink.statefun.e2e.remote/invoke-results",
            "awsRegion": {"type": "specific", "id": "eu-west-1"},
        },
    }
    assert upgraded.notes == ()  # both run as they are


def test_3_0_as_documented_is_fixed_too(write: Write) -> None:
    """The 3.0 docs put `functions` under meta and named the key `timeout`."""
    text = """
    version: "3.0"
    module:
      meta: {type: remote}
      spec:
        endpoints:
          - endpoint:
              meta: {kind: http, functions: ex/*}
              spec: {urlPathTemplate: "http://h/{function.name}", timeout: 30s}
    """
    upgraded = upgrade_module(write(text))
    (endpoint,) = load_module(write(upgraded.yaml, "new.yaml")).endpoints
    assert (endpoint.functions, endpoint.transport.call_timeout_s) == ("ex/*", 30.0)
    assert upgraded.notes == (
        "endpoint ex/*: moved `functions` from meta to spec",
        "endpoint ex/*: `timeout` became timeouts.call",
    )


def test_a_1_0_module_converts_its_functions_and_notes_the_rest(write: Write) -> None:
    path = write(V10)
    upgraded = upgrade_module(path)
    assert upgraded.version == "1.0"
    assert upgraded.yaml == (
        "# Converted from the StateFun 1.0 module format by `pystatefun module upgrade`.\n"
        "# `states` are now declared in the SDK, not in the module: bind the function with\n"
        '#   ValueSpec("seen_count", <its Type>),\n'
        "# in the specs=[...] of @functions.bind(...).\n"
        "kind: io.statefun.endpoints.v1/http\n"
        "spec:\n"
        "  functions: example/greeter\n"
        "  urlPathTemplate: http://python-worker:8000/statefun\n"
        "  maxNumBatchRequests: 500\n"
        "  timeouts:\n"
        "    call: 2min\n"
    )
    assert upgraded.notes[0].startswith("2.x functions speak the 2.x protocol: serve them with")
    assert upgraded.notes[1].startswith(
        f"{path}:18: a 2.x ingress is not converted: its protobuf settings have no 3.x"
    )
    (endpoint,) = load_module(write(upgraded.yaml, "new.yaml")).endpoints
    assert endpoint.url_for("example/greeter") == "http://python-worker:8000/statefun"
    assert endpoint.transport.call_timeout_s == 120.0
    assert endpoint.max_num_batch_requests == 500


def test_2_0_states_with_expiration_and_all_timeouts(write: Write) -> None:
    text = """
    version: "2.0"
    module:
      meta: {type: remote}
      spec:
        functions:
          - function:
              meta: {kind: http, type: ex/a}
              spec:
                endpoint: http+unix:///run/fn.sock/statefun
                states:
                  - name: seen
                    expireAfter: 1 min
                  - name: last
                    expireAfter: 10s
                    expireMode: after-write
                  - name: plain
                timeout: 1 min
                connectTimeout: 1s
                readTimeout: 2s
                writeTimeout: 3s
          - function:
              meta: {kind: grpc, type: ex/b}
              spec: {host: h, port: 1}
    """
    path = write(text)
    upgraded = upgrade_module(path)
    assert (
        '#   ValueSpec("seen", <its Type>, expire_after_call=timedelta(milliseconds=60000)),'
        in (upgraded.yaml)
    )
    assert (
        '#   ValueSpec("last", <its Type>, expire_after_write=timedelta(milliseconds=10000)),'
        in (upgraded.yaml)
    )
    assert '#   ValueSpec("plain", <its Type>),' in upgraded.yaml
    assert upgraded.notes[1] == (
        f"{path}:22: a 'grpc' function is not converted: 3.x functions are served over HTTP only"
    )
    (endpoint,) = load_module(write(upgraded.yaml, "new.yaml")).endpoints
    transport = endpoint.transport
    assert (transport.call_timeout_s, transport.connect_timeout_s) == (60.0, 1.0)
    assert (transport.read_timeout_s, transport.write_timeout_s) == (2.0, 3.0)


@pytest.mark.parametrize(
    ("text", "line", "field", "says"),
    [
        (
            "kind: io.statefun.playground.v1/ingress\nspec: {port: 1}\n",
            None,
            None,
            "not a legacy module (there is no top-level `version:`), so there is nothing to",
        ),
        ('version: "4.0"\n', 1, "version", "unknown format version '4.0'; `module upgrade`"),
        (
            'version: "3.0"\nmodule:\n  meta: {type: embedded}\n',
            3,
            "module.meta.type",
            "'embedded' is not `remote`: only remote modules are YAML",
        ),
        (
            'version: "3.0"\nmodule:\n  meta: {type: remote}\n  spec:\n    endpoints:\n'
            "      - endpoint:\n          meta: {kind: grpc}\n",
            7,
            "module.spec.endpoints[0].endpoint.meta.kind",
            "'grpc' is not `http`, the only 3.0 endpoint kind",
        ),
        (
            'version: "3.0"\nmodule:\n  meta: {type: remote}\n  spec:\n    endpoints: 3\n',
            5,
            "module.spec.endpoints",
            "must be a list, not 3",
        ),
        (
            'version: "3.0"\nmodule:\n  meta: {type: remote}\n  spec:\n    ingresses:\n'
            "      - ingress:\n          meta: {type: my/ingress, id: a/b}\n          spec: {}\n",
            7,
            "module.spec.ingresses[0].ingress.meta.type",
            "'my/ingress' is not a 3.0 I/O type that converts; known: io.statefun.kafka/ingress",
        ),
        (
            'version: "1.0"\nmodule:\n  meta: {type: remote}\n  spec:\n    functions:\n'
            "      - function:\n          meta: {kind: http, type: a/b}\n          spec: {}\n",
            8,
            "module.spec.functions[0].function.spec.endpoint",
            "required field is missing",
        ),
        ('version: "3.0"\n---\nkind: x\n', 1, None, "a legacy module is a single YAML document"),
        ('version: "3.0"\nmodule: {}\n', 2, "module.meta.type", "missing; a legacy module says"),
        (
            'version: "2.0"\nmodule:\n  meta: {type: remote}\n  spec:\n    functions:\n'
            "      - function:\n          meta: {kind: http}\n          spec: {endpoint: x}\n",
            7,
            "module.spec.functions[0].function.meta.type",
            "the function's `<namespace>/<name>` type is missing",
        ),
    ],
)
def test_errors(write: Write, text: str, line: int | None, field: str | None, says: str) -> None:
    path = write(text)
    with pytest.raises(ModuleError) as caught:
        upgrade_module(path)
    assert (caught.value.file, caught.value.line, caught.value.field) == (path, line, field)
    assert caught.value.reason.startswith(says), caught.value.reason


def test_a_module_that_declares_nothing(write: Write) -> None:
    upgraded = upgrade_module(write('version: "3.0"\nmodule:\n  meta: {type: remote}\n'))
    assert upgraded == Upgraded(
        "# Converted from the StateFun 3.0 module format by `pystatefun module upgrade`.\n"
        "# The legacy module declared nothing that converts.\n",
        (),
        "3.0",
    )
