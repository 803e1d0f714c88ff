"""The cluster tests share one real NATS JetStream server per session (``support/nats.py``)."""

from support.nats import nats_url  # noqa: F401 - a fixture
