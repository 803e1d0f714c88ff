"""A cluster's directory record: what every worker must agree on, written once.

The record names the key groups, partitions and streams (fixed when the cluster is made, like a
data dir's key groups), the instance id, and which generation of the data stream is live.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, final

from pystatefun.errors import ClusterStorageError
from pystatefun.store.jetstream._connection import (
    WRONG_LAST_SEQUENCE,
    ensure_stream,
    last_on,
)
from pystatefun.store.jetstream._layout import ClusterLayout

if TYPE_CHECKING:
    from nats.js import JetStreamContext

__all__ = ["Directory", "read_directory", "refused_directory", "write_directory"]


@final
@dataclass(frozen=True, slots=True)
class Directory:
    """The directory record, and the sequence it was read at (for a fenced rewrite)."""

    key_groups: int
    partitions: int
    generation: int
    instance_id: str
    created_at_ms: int
    streams: int = 1
    seq: int = 0

    def layout(self, name: str) -> ClusterLayout:
        return ClusterLayout(name, self.key_groups, self.partitions, self.generation,
                             self.streams)  # fmt: skip


async def read_directory(js: JetStreamContext, name: str, *, replicas: int) -> Directory | None:
    """The cluster's directory record (None: the cluster holds nothing yet)."""
    stream = ClusterLayout.directory_stream(name)
    await ensure_stream(
        js, name=stream, subjects=[ClusterLayout.directory_subject(name)], replicas=replicas
    )
    found = await last_on(js, stream, ClusterLayout.directory_subject(name))
    if found is None or found.body is None:
        return None
    body = found.body
    return Directory(body["key_groups"], body["partitions"], body["generation"],
                     body["instance_id"], body["created_at_ms"], body.get("streams", 1),
                     found.seq)  # fmt: skip


async def write_directory(
    js: JetStreamContext,
    name: str,
    *,
    key_groups: int,
    partitions: int,
    generation: int,
    streams: int,
    after: Directory | None,
    keep_instance: bool = False,
) -> Directory:
    """Write the directory record, fenced on the one read (``after``; None: there was none):
    refused if another writer came between. A new instance id unless ``keep_instance``."""
    instance_id = after.instance_id if after and keep_instance else None
    record = Directory(
        key_groups,
        partitions,
        generation,
        instance_id or uuid.uuid4().hex,
        int(time.time() * 1000),
        streams,
    )
    body = {k: v for k, v in asdict(record).items() if k != "seq"}
    headers = {
        "Nats-Rollup": "sub",
        "Nats-Expected-Last-Subject-Sequence": str(after.seq if after else 0),
    }
    ack = await js.publish(
        ClusterLayout.directory_subject(name), json.dumps(body).encode(), headers=headers
    )
    return Directory(**body, seq=ack.seq)


def refused_directory(name: str, err_code: int | None) -> ClusterStorageError:
    """Why a directory write was refused, for the caller to raise."""
    if err_code == WRONG_LAST_SEQUENCE:
        return ClusterStorageError(
            f"cluster {name!r}: another process changed the cluster's directory at the same "
            "time (a restore, or a worker creating the cluster); run the command again"
        )
    return ClusterStorageError(f"cluster {name!r}: the directory record was refused ({err_code})")
