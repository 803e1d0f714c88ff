"""``pystatefun cluster status``: the workers of a cluster, what each serves, how far behind.

Read from outside, without joining: the directory, each data stream's state (its last
sequence, replicas and RAFT leader), every partition's marker (who claimed it last, whether it
was released), and the workers' heartbeats for a little longer than one heartbeat period
(each says which partitions it serves and how many of the records it reads it had still to
read: its lag).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pystatefun.errors import ClusterStorageError
from pystatefun.store.jetstream._blocking import connect, run_blocking
from pystatefun.store.jetstream._connection import read_live
from pystatefun.store.jetstream._directory import read_directory
from pystatefun.store.jetstream._layout import ClusterLayout

if TYPE_CHECKING:
    from nats.aio.msg import Msg

__all__ = ["cluster_status"]

#: How long status listens for heartbeats: more than a worker's heartbeat period (1 s).
LISTEN_S = 1.6


def cluster_status(servers: Sequence[str], cluster: str) -> dict[str, object]:
    """The cluster's state as a JSON-able document (see the module's docstring)."""
    return run_blocking(lambda: _status(servers, cluster))


async def _status(servers: Sequence[str], cluster: str) -> dict[str, object]:
    nc = await connect(servers)
    try:
        js = nc.jetstream(timeout=10)
        heard: dict[str, dict[str, object]] = {}

        async def beat(message: Msg) -> None:
            body = json.loads(message.data)
            if body.get("leaving"):
                heard.pop(str(body.get("worker")), None)
            else:
                heard[str(body.get("worker"))] = body

        subscription = await nc.subscribe(ClusterLayout.heartbeat_subject(cluster), cb=beat)
        directory = await read_directory(js, cluster, replicas=1)
        if directory is None:
            raise ClusterStorageError(
                f"cluster {cluster!r} holds nothing: no worker ever ran on it (check "
                "--cluster-name)"
            )
        layout = directory.layout(cluster)
        infos = [await js.stream_info(name) for name in layout.stream_names]
        markers = [marker for name in layout.stream_names
                   for marker in await read_live(js, name, f"{layout.prefix}.pm.*")]  # fmt: skip
        await asyncio.sleep(LISTEN_S)
        await subscription.unsubscribe()
    finally:
        await nc.close()
    owners = {}
    for marker in markers:
        body = marker.body or {}
        owners[layout.parse(marker.subject)[1]] = (
            None if body.get("released") else body.get("worker")
        )
    workers = [
        {"worker": name, "serving": body.get("serving", []), "lag": _lag(body)}
        for name, body in sorted(heard.items())
    ]
    streams = [
        {"stream": info.config.name, "replicas": info.config.num_replicas,
         "leader": None if info.cluster is None else info.cluster.leader,
         "last_seq": info.state.last_seq}
        for info in infos
    ]  # fmt: skip
    return {
        "cluster": cluster,
        **streams[0],  # the first stream's, as the one line of a one-stream cluster
        "streams": streams,
        "partitions": layout.partitions,
        "key_groups": layout.key_groups,
        "workers": workers,
        "owners": {str(p): owners.get(p) for p in range(layout.partitions)},
    }


def _lag(heartbeat: dict[str, object]) -> int:
    """How many records a worker had still to read of those it reads, over all its tails."""
    pending = heartbeat.get("pending", 0)
    return pending if isinstance(pending, int) else 0
