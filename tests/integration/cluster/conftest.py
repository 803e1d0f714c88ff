"""The cluster tests share one real NATS JetStream server per session, and one three-node
cluster of them for the tests that need replicas (``support/nats.py``)."""

from support.nats import local_cluster, nats_url  # noqa: F401 - fixtures
