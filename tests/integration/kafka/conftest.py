"""The Kafka tests share one real broker per session (``support/kafka.py``)."""

from support.kafka import kafka_broker  # noqa: F401 - a fixture
