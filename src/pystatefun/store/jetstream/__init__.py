"""Cluster mode's storage: a NATS JetStream stream that several workers share by partition.

``JetStreamEngine`` is the ``StorageEngine`` a worker runs on (``pystatefun run --cluster``);
``_layout`` says where each record lives, ``_commits`` how a step becomes one atomic, fenced
batch. docs/deployment/cluster.md is the user's side of it.
"""

from pystatefun.store.jetstream._blocking import cluster_contents
from pystatefun.store.jetstream.engine import DEFAULT_PARTITIONS, JetStreamEngine
from pystatefun.store.jetstream.loader import JetStreamLoader
from pystatefun.store.jetstream.status import cluster_status

__all__ = [
    "DEFAULT_PARTITIONS",
    "JetStreamEngine",
    "JetStreamLoader",
    "cluster_contents",
    "cluster_status",
]
