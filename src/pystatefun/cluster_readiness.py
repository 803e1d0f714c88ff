"""Whether the servers of a local cluster (``pystatefun cluster up``) are ready for clients.

A server's monitoring ``/healthz`` turned 200 a moment before a client's first ``add_stream``
found a JetStream responder (NoResponders right after ``ready``, once in CI), so ready also
means a real ``$JS.API.INFO`` round trip through every server and a meta group that counts
all of them.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from pystatefun.errors import ClusterStorageError

if TYPE_CHECKING:
    from pystatefun.cluster import LocalNode

__all__ = ["healthy", "jetstream_answers"]

_HOST = "127.0.0.1"


def jetstream_answers(nodes: list[LocalNode]) -> bool:
    """Whether every server answers ``$JS.API.INFO`` and reports a meta group of all of them
    (asked on an event loop of its own: ``LocalCluster`` is synchronous and is called from
    inside running loops too)."""
    # the cluster extra's client, needed only once servers run
    from pystatefun.store.jetstream._blocking import run_blocking  # noqa: PLC0415

    return run_blocking(lambda: _ask_jetstream(nodes))


async def _ask_jetstream(nodes: list[LocalNode]) -> bool:
    import nats.errors  # noqa: PLC0415 - the cluster extra, needed only here

    from pystatefun.store.jetstream._blocking import connect  # noqa: PLC0415

    for node in nodes:
        try:
            client = await connect([node.url])
        except ClusterStorageError:
            return False
        try:
            reply = await client.request("$JS.API.INFO", b"", timeout=2)
            answer = json.loads(reply.data)
        except (nats.errors.Error, ValueError):
            return False
        finally:
            await client.close()
        if "error" in answer:
            return False
    return len(nodes) == 1 or _meta_group_complete(nodes)


def _meta_group_complete(nodes: list[LocalNode]) -> bool:
    """Whether the meta leader (asked through any server) counts every other server as a
    current peer: a stream with one replica per server can be placed."""
    for node in nodes:
        url = f"http://{_HOST}:{node.monitor_port}/jsz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                meta = json.loads(response.read()).get("meta_cluster", {})
        except (OSError, ValueError):
            return False
        if meta.get("leader") == node.name:
            current = [r for r in meta.get("replicas", []) if r.get("current")]
            return len(current) == len(nodes) - 1
    return False


def healthy(node: LocalNode) -> bool:
    """Whether the server's ``/healthz`` answers 200: it runs, JetStream is enabled, and it
    is current with the meta leader its cluster elected."""
    url = f"http://{_HOST}:{node.monitor_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except urllib.error.HTTPError as error:
        error.close()
        return False
    except OSError:
        return False
