"""The Kafka ingress's consumer lag, as librdkafka's statistics report it: per assigned
partition, its ``consumer_lag``; a partition not assigned, or whose lag librdkafka does not
know yet (-1), is left out; a report that does not parse keeps the last figures."""

from __future__ import annotations

import json
from pathlib import Path

from pystatefun.io.kafka_reader import KafkaReader
from pystatefun.module import KafkaIngress, load_module


def _reader(tmp_path: Path) -> KafkaReader:
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.statefun.kafka.v1/ingress\nspec:\n  id: com.example/in\n"
        "  address: 127.0.0.1:9\n  consumerGroupId: g\n  topics:\n"
        "    - topic: t\n      valueType: com.example/V\n      targets: [ns/fn]\n"
    )
    (spec,) = load_module(module).ingresses
    assert isinstance(spec, KafkaIngress)
    reader = KafkaReader(spec, stored={}, on_records=lambda key, batch: None, backlog=lambda: 0)
    reader._assigned = {("t", 0), ("t", 1)}
    return reader


def _report(**lags: int) -> str:
    partitions = {number: {"consumer_lag": lag} for number, lag in lags.items()}
    partitions["-1"] = {"consumer_lag": -1}  # librdkafka's internal unassigned partition
    return json.dumps({"topics": {"t": {"partitions": partitions}}})


def test_each_assigned_partition_reports_its_lag(tmp_path: Path) -> None:
    reader = _reader(tmp_path)
    reader._on_statistics(_report(**{"0": 7, "1": 0, "2": 4}))
    assert reader.lag == {"t/0": 7, "t/1": 0}  # partition 2 is read by another worker


def test_an_unknown_lag_is_left_out_and_a_bad_report_changes_nothing(tmp_path: Path) -> None:
    reader = _reader(tmp_path)
    reader._on_statistics(_report(**{"0": 3, "1": -1}))
    assert reader.lag == {"t/0": 3}
    reader._on_statistics("not json")
    assert reader.lag == {"t/0": 3}
