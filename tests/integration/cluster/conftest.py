"""The cluster tests share one real NATS JetStream server per session, one three-node cluster
of them for the tests that need replicas (``support/nats.py``), a real Kafka broker
(``support/kafka.py``), a local Kinesis-compatible server (``support/kinesis.py``: moto's
server mode, since Kinesis itself cannot run here), and the official Python SDK's function
server for the crash test."""

from support.function_servers import official_python_function_server  # noqa: F401 - a fixture
from support.kafka import kafka_broker  # noqa: F401 - a fixture
from support.kinesis import kinesis_server  # noqa: F401 - a fixture
from support.nats import local_cluster, nats_url  # noqa: F401 - fixtures
