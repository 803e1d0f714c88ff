"""``io.statefun.kinesis.v1/ingress`` and ``/egress``: StateFun's fields, its defaults (the
default region and credentials chains, startup at latest, 1000 outstanding records),
``clientConfigProperties`` as single-entry maps checked by name, and every mistake named at its
line and field."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest
from support.modules import assert_problems, run_refused

from pystatefun.errors import ModuleError
from pystatefun.module import (
    AwsCredentials,
    AwsRegion,
    KinesisEgress,
    KinesisIngress,
    KinesisStream,
    dump_module,
    load_module,
)

Write = Callable[..., Path]  # fixtures from ../conftest.py
LoadError = Callable[[Path], ModuleError]

INGRESS = """\
kind: io.statefun.kinesis.v1/ingress
spec:
  id: com.example/users
  awsRegion:
    type: custom-endpoint
    endpoint: http://127.0.0.1:4566
    id: us-east-1
  awsCredentials:
    type: basic
    accessKeyId: AKIDEXAMPLE
    secretAccessKey: secret
  startupPosition:
    type: date
    date: 2020-02-01 04:15:00.250 +0100
  streams:
    - stream: user-stream
      valueType: com.example/User
      targets: [com.example/greeter, com.example/counter]
    - stream: other
      valueType: io.statefun.types/string
      targets: [com.example/greeter]
  clientConfigProperties:
    - SocketTimeout: 9999
    - maxConnections: 7
"""
EGRESS = """\
kind: io.statefun.kinesis.v1/egress
spec:
  id: com.example/out
  awsRegion:
    type: specific
    id: eu-west-1
  awsCredentials:
    type: profile
    profileName: prod
    profilePath: /etc/aws/credentials
  maxOutstandingRecords: 9999
  clientConfigProperties:
    - RequestTimeout: 6000
    - MaxErrorRetry: 0
"""


def test_every_ingress_field(write: Write) -> None:
    (ingress,) = load_module(write(INGRESS)).ingresses
    assert ingress == KinesisIngress(
        id="com.example/users",
        region=AwsRegion(type="custom-endpoint", id="us-east-1", endpoint="http://127.0.0.1:4566"),
        credentials=AwsCredentials(
            type="basic", access_key_id="AKIDEXAMPLE", secret_access_key="secret"
        ),
        streams=(
            KinesisStream(
                stream="user-stream",
                value_type="com.example/User",
                targets=("com.example/greeter", "com.example/counter"),
            ),
            KinesisStream(
                stream="other",
                value_type="io.statefun.types/string",
                targets=("com.example/greeter",),
            ),
        ),
        startup_position="date",
        startup_date_ms=1_580_526_900_250,  # 03:15:00.250 UTC
        client_properties=(("MaxConnections", "7"), ("SocketTimeout", "9999")),
        location=ingress.location,
    )
    assert "secret" not in repr(ingress)  # credentials stay out of logs


def test_ingress_defaults(write: Write) -> None:
    path = write(
        "kind: io.statefun.kinesis.v1/ingress\nspec:\n  id: a/b\n  streams:\n"
        "    - {stream: s, valueType: a/V, targets: [a/f]}\n"
    )
    (ingress,) = load_module(path).ingresses
    assert isinstance(ingress, KinesisIngress)
    assert ingress.region == AwsRegion(type="default")
    assert ingress.credentials == AwsCredentials(type="default")
    assert (ingress.startup_position, ingress.startup_date_ms) == ("latest", None)
    assert ingress.client_properties == ()
    earliest = write(path.read_text() + "  startupPosition: {type: earliest}\n", "e.yaml")
    assert load_module(earliest).ingresses[0].startup_position == "earliest"  # type: ignore[union-attr]


def test_every_egress_field_and_the_defaults(write: Write) -> None:
    (egress,) = load_module(write(EGRESS)).egresses
    assert egress == KinesisEgress(
        id="com.example/out",
        region=AwsRegion(type="specific", id="eu-west-1"),
        credentials=AwsCredentials(
            type="profile", profile_name="prod", profile_path="/etc/aws/credentials"
        ),
        max_outstanding_records=9999,
        client_properties=(("MaxErrorRetry", "0"), ("RequestTimeout", "6000")),
        location=egress.location,
    )
    plain = write("kind: io.statefun.kinesis.v1/egress\nspec: {id: a/e}\n", "plain.yaml")
    (default,) = load_module(plain).egresses
    assert default == KinesisEgress(id="a/e", location=default.location)
    assert default.max_outstanding_records == 1000
    assert (default.region.type, default.credentials.type) == ("default", "default")  # type: ignore[union-attr]


def test_java_only_settings_are_accepted_with_a_warning(
    write: Write, caplog: pytest.LogCaptureFixture
) -> None:
    """StateFun's own example sets the KPL's ThreadingModel: such a module still loads."""
    path = write(EGRESS.replace("    - MaxErrorRetry: 0\n", "    - ThreadingModel: POOLED\n"))
    with caplog.at_level(logging.WARNING, logger="pystatefun.module"):
        module = load_module(path)
    assert module.egresses[0].client_properties == (("RequestTimeout", "6000"),)  # type: ignore[union-attr]
    assert module.warnings == (
        f"{path}:14: spec.clientConfigProperties[1]: ThreadingModel tunes StateFun's Java "
        "Kinesis library and has no effect in pystatefun; ignored",
    )


def test_a_module_dumps_and_loads_the_same(write: Write, tmp_path: Path) -> None:
    module = load_module(write(INGRESS + "---\n" + EGRESS))
    again = tmp_path / "again.yaml"
    again.write_text(dump_module(module))
    assert load_module(again) == module


@pytest.mark.parametrize(
    ("text", "problems"),
    [
        (INGRESS.replace("  id: com.example/users\n", "  id: users\n"),
         [(3, "spec.id", "'users' is not a typename")]),
        (INGRESS.replace("    type: custom-endpoint\n", "    type: somewhere\n"),
         [(5, "spec.awsRegion.type", "'somewhere' is not one of default, specific, "
           "custom-endpoint")]),
        (INGRESS.replace("    endpoint: http://127.0.0.1:4566\n", "").replace(
            "    id: us-east-1\n", ""),
         [(4, "spec.awsRegion", "type custom-endpoint needs `id`"),
          (4, "spec.awsRegion", "type custom-endpoint needs `endpoint`")]),
        (INGRESS.replace("http://127.0.0.1:4566", "127.0.0.1:4566"),
         [(6, "spec.awsRegion.endpoint", "'127.0.0.1:4566' is not an http or https URL")]),
        (INGRESS.replace("    secretAccessKey: secret\n", ""),
         [(8, "spec.awsCredentials", "type basic needs `secretAccessKey`")]),
        (INGRESS.replace("    type: basic\n", "    type: anonymous\n"),
         [(9, "spec.awsCredentials.type", "'anonymous' is not one of default, basic, profile")]),
        (INGRESS.replace("    type: date\n", "    type: trim-horizon\n"),
         [(13, "spec.startupPosition.type", "'trim-horizon' is not one of latest, earliest, "
           "date")]),
        (INGRESS.replace("2020-02-01 04:15:00.250 +0100", "yesterday"),
         [(14, "spec.startupPosition.date", "'yesterday' is not a date like")]),
        (INGRESS.replace("targets: [com.example/greeter, com.example/counter]",
                         "targets: [com.example/greeter, counter]"),
         [(18, "spec.streams[0].targets[1]", "'counter' is not a function type")]),
        (INGRESS.replace("valueType: com.example/User", "valueType: User"),
         [(17, "spec.streams[0].valueType", "'User' is not a typename")]),
        (INGRESS.replace("    - stream: other\n", "    - stream: user-stream\n"),
         [(19, "spec.streams[1].stream", "stream 'user-stream' is listed already")]),
        (INGRESS.replace("    - stream: other\n", "    - stream: ''\n"),
         [(19, "spec.streams[1].stream", "the empty string is not allowed")]),
        (INGRESS.replace("    - SocketTimeout: 9999\n", "    - SocketTimeout: soon\n").replace(
            "    - maxConnections: 7\n", "    - NoSuchSetting: 1\n"),
         [(23, "spec.clientConfigProperties[0]", "SocketTimeout takes a whole number of at "
           "least 1 (milliseconds), not 'soon'"),
          (24, "spec.clientConfigProperties[1]", "'NoSuchSetting' is not a client setting "
           "pystatefun knows; it takes SocketTimeout, RequestTimeout")]),
        (INGRESS.replace("    - maxConnections: 7\n", "    - {a: 1, b: 2}\n"),
         [(24, "spec.clientConfigProperties[1]", "each property is one `name: value` entry")]),
        (EGRESS.replace("maxOutstandingRecords: 9999", "maxOutstandingRecords: 0"),
         [(11, "spec.maxOutstandingRecords", "0 is out of range")]),
        (EGRESS.replace("    profileName: prod\n", ""),
         [(7, "spec.awsCredentials", "type profile needs `profileName`")]),
        (EGRESS.replace("    id: eu-west-1\n", ""),
         [(4, "spec.awsRegion", "type specific needs `id`")]),
        (EGRESS.replace("id: com.example/out", "id: io.statefun.playground/egress"),
         [(3, "spec.id", "'io.statefun.playground/egress' is the playground egress's id")]),
        (EGRESS.replace("    - MaxErrorRetry: 0\n", "    - MaxErrorRetry: -1\n"),
         [(14, "spec.clientConfigProperties[1]", "MaxErrorRetry takes a whole number of at "
           "least 0")]),
    ],
)  # fmt: skip
def test_mistakes_are_named_at_their_line_and_field(
    write: Write, load_error: LoadError, text: str, problems: list[tuple[int, str, str]]
) -> None:
    assert_problems(load_error(write(text)), problems)


def test_every_mistake_of_a_document_is_reported_at_once(
    write: Write, load_error: LoadError
) -> None:
    text = (
        INGRESS.replace("  id: com.example/users\n", "  id: users\n")
        .replace("    type: basic\n", "    type: anonymous\n")
        .replace("    type: date\n", "    type: never\n")
        .replace("    - maxConnections: 7\n", "    - Nope: 1\n")
    )
    error = load_error(write(text))
    assert [p.field for p in error.problems] == [
        "spec.id",
        "spec.awsCredentials.type",
        "spec.startupPosition.type",
        "spec.clientConfigProperties[1]",
    ]


def test_ids_are_unique_per_role(write: Write, load_error: LoadError) -> None:
    error = load_error(write(EGRESS + "---\n" + EGRESS))
    assert error.line == 18
    assert "egress id 'com.example/out' is already declared at line 3" in error.reason
    both = write(INGRESS + "---\n" + EGRESS.replace("com.example/out", "com.example/users"))
    assert len(load_module(both).egresses) == 1  # an ingress and an egress may share an id


@pytest.mark.parametrize(("text", "role"), [(INGRESS, "ingress"), (EGRESS, "egress")])
def test_without_boto3_run_says_which_extra_to_install(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, role: str
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "boto3", None)  # as if not installed
    for name in [m for m in sys.modules if m.startswith("pystatefun.io.kinesis")]:
        monkeypatch.delitem(sys.modules, name)
    path = write(text)
    output = run_refused(path, tmp_path / "data")
    assert (
        f"Error: {path}:1: kind: the io.statefun.kinesis.v1/{role} connector needs the Python "
        "package boto3, which is not installed: pip install 'pystatefun[kinesis]'" in output
    )
