"""``io.statefun.kafka.v1/ingress`` and ``/egress``: StateFun's fields, its defaults (startup at
latest, at-least-once delivery, 15 min transactions), properties as single-entry maps, and every
mistake named at its line and field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from support.modules import assert_problems, run_refused

from pystatefun.errors import ModuleError
from pystatefun.module import KafkaEgress, KafkaIngress, KafkaTopic, dump_module, load_module

Write = Callable[..., Path]  # fixtures from ../conftest.py
LoadError = Callable[[Path], ModuleError]

INGRESS = """\
kind: io.statefun.kafka.v1/ingress
spec:
  id: com.example/users
  address: broker-1:9092,broker-2:9092
  consumerGroupId: greeters
  topics:
    - topic: names
      valueType: com.example/Name
      targets: [com.example/greeter, com.example/counter]
    - topic: other
      valueType: io.statefun.types/string
      targets: [com.example/greeter]
  startupPosition:
    type: specific-offsets
    offsets: [{"names/0": 91}, {"names/1": 11}]
  autoOffsetResetPosition: earliest
  properties:
    - security.protocol: SASL_SSL
    - enable.idempotence: true
"""
EGRESS = """\
kind: io.statefun.kafka.v1/egress
spec:
  id: com.example/greets
  deliverySemantic:
    type: exactly-once
    transactionTimeout: 1 min
  properties:
    - bootstrap.servers: broker:9092
    - compression.type: zstd
"""


def test_every_ingress_field(write: Write) -> None:
    (ingress,) = load_module(write(INGRESS)).ingresses
    assert ingress == KafkaIngress(
        id="com.example/users",
        bootstrap_servers="broker-1:9092,broker-2:9092",
        consumer_group_id="greeters",
        topics=(
            KafkaTopic(
                topic="names",
                value_type="com.example/Name",
                targets=("com.example/greeter", "com.example/counter"),
            ),
            KafkaTopic(
                topic="other",
                value_type="io.statefun.types/string",
                targets=("com.example/greeter",),
            ),
        ),
        startup_position="specific-offsets",
        specific_offsets=(("names", 0, 91), ("names", 1, 11)),
        auto_offset_reset="earliest",
        properties=(("enable.idempotence", "true"), ("security.protocol", "SASL_SSL")),
        location=ingress.location,
    )


def test_defaults_and_settings_taken_from_properties(write: Write) -> None:
    path = write(
        "kind: io.statefun.kafka.v1/ingress\nspec:\n  id: a/b\n  topics:\n    - topic: t\n"
        "      valueType: a/V\n      targets: [a/f]\n  properties:\n"
        "    - bootstrap.servers: k:9092\n    - group.id: g\n"
    )
    (ingress,) = load_module(path).ingresses
    assert (ingress.bootstrap_servers, ingress.consumer_group_id) == ("k:9092", "g")
    assert (ingress.startup_position, ingress.auto_offset_reset) == ("latest", "latest")
    assert ingress.properties == ()  # the two went to their fields


def test_a_start_at_a_date(write: Write) -> None:
    path = write(INGRESS.replace(
        '    type: specific-offsets\n    offsets: [{"names/0": 91}, {"names/1": 11}]\n',
        "    type: date\n    date: 2020-02-01 04:15:00.250 +0100\n",
    ))  # fmt: skip
    (ingress,) = load_module(path).ingresses
    assert ingress.startup_position == "date"
    assert ingress.startup_date_ms == 1_580_526_900_250  # 03:15:00.250 UTC


def test_every_egress_field_and_the_defaults(write: Write) -> None:
    (egress,) = load_module(write(EGRESS)).egresses
    assert egress == KafkaEgress(
        id="com.example/greets",
        bootstrap_servers="broker:9092",
        delivery_semantic="exactly-once",
        transaction_timeout_ms=60_000,
        properties=(("compression.type", "zstd"),),
        location=egress.location,
    )
    plain = write("kind: io.statefun.kafka.v1/egress\nspec: {id: a/e, address: k:1}\n")
    (default,) = load_module(plain).egresses
    assert (default.delivery_semantic, default.transaction_timeout_ms) == ("at-least-once", 900_000)
    both = "    transactionTimeout: 1 min\n    transactionTimeoutMillis: 5000\n"
    millis = write(EGRESS.replace("    transactionTimeout: 1 min\n", both))
    assert load_module(millis).egresses[0].transaction_timeout_ms == 5000  # the deprecated wins


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
        (INGRESS.replace("  address: broker-1:9092,broker-2:9092\n", "").replace(
            "  consumerGroupId: greeters\n", ""),
         [(2, "spec", "no `address`"), (2, "spec", "no `consumerGroupId`")]),
        (INGRESS.replace("targets: [com.example/greeter, com.example/counter]",
                         "targets: [com.example/greeter, counter]"),
         [(9, "spec.topics[0].targets[1]", "'counter' is not a function type")]),
        (INGRESS.replace("    type: specific-offsets\n", "    type: somewhere\n"),
         [(14, "spec.startupPosition.type", "'somewhere' is not one of group-offsets")]),
        (INGRESS.replace('{"names/1": 11}', '{"names": 11}'),
         [(15, "spec.startupPosition.offsets[1]", "is not '<topic>/<partition>': <offset>")]),
        (INGRESS.replace("  autoOffsetResetPosition: earliest\n",
                         "  autoOffsetResetPosition: never\n"),
         [(16, "spec.autoOffsetResetPosition", "'never' is not earliest or latest")]),
        (INGRESS.replace("    - enable.idempotence: true\n", "    - {a: 1, b: 2}\n"),
         [(19, "spec.properties[1]", "each property is one `name: value` entry")]),
        (INGRESS.replace("    - topic: other\n", "    - topic: ''\n"),
         [(10, "spec.topics[1].topic", "the empty string is not allowed")]),
        (EGRESS.replace("type: exactly-once", "type: twice"),
         [(5, "spec.deliverySemantic.type", "'twice' is not one of none, at-least-once")]),
        (EGRESS.replace("transactionTimeout: 1 min", "transactionTimeout: 10 ms"),
         [(6, "spec.deliverySemantic.transactionTimeout", "10 ms is too short")]),
        (EGRESS.replace("id: com.example/greets", "id: io.statefun.playground/egress"),
         [(3, "spec.id", "'io.statefun.playground/egress' is the playground egress's id")]),
        (EGRESS.replace("    - bootstrap.servers: broker:9092\n", ""),
         [(2, "spec", "no `address`")]),
    ],
)  # fmt: skip
def test_mistakes_are_named_at_their_line_and_field(
    write: Write, load_error: LoadError, text: str, problems: list[tuple[int, str, str]]
) -> None:
    assert_problems(load_error(write(text)), problems)


def test_ids_are_unique_per_role(write: Write, load_error: LoadError) -> None:
    error = load_error(write(EGRESS + "---\n" + EGRESS))
    assert error.line == 13
    assert "egress id 'com.example/greets' is already declared at line 3" in error.reason
    both = write(INGRESS + "---\n" + EGRESS.replace("com.example/greets", "com.example/users"))
    assert len(load_module(both).egresses) == 1  # an ingress and an egress may share an id


def test_run_refuses_a_kind_no_connector_serves_and_creates_nothing(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from types import MappingProxyType

    from pystatefun.io import registry

    # As for a kind that is read and checked before its connector lands.
    monkeypatch.setattr(registry, "EGRESS_KINDS", MappingProxyType({}))
    path = write(EGRESS)
    output = run_refused(path, tmp_path / "data")
    assert (
        f"Error: {path}:1: kind: pystatefun reads and checks io.statefun.kafka.v1/egress, but "
        "cannot run it yet" in output
    )


@pytest.mark.parametrize(("text", "role"), [(INGRESS, "ingress"), (EGRESS, "egress")])
def test_without_the_kafka_client_run_says_which_extra_to_install(
    write: Write, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, role: str
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "confluent_kafka", None)  # as if not installed
    for name in ("ingress", "reader", "egress", "publisher"):
        monkeypatch.delitem(sys.modules, f"pystatefun.io.kafka_{name}", raising=False)
    path = write(text)
    output = run_refused(path, tmp_path / "data")
    assert (
        f"Error: {path}:1: kind: the io.statefun.kafka.v1/{role} connector needs the Python "
        "package confluent_kafka, which is not installed: pip install 'pystatefun[kafka]'" in output
    )
