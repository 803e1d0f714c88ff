"""``pystatefun run --cluster``: which NATS cluster, which cluster in it, and this worker's name.

The options are checked when the command starts (a URL that cannot be one is a usage error,
before anything connects); the engine is made once the runtime's options are known.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, final
from urllib.parse import urlsplit

import click

if TYPE_CHECKING:
    from pystatefun.runtime.options import RuntimeOptions
    from pystatefun.store import Contents
    from pystatefun.store.jetstream import JetStreamEngine, JetStreamLoader

__all__ = ["ClusterWorker", "cluster_urls"]

_SCHEMES = ("nats", "tls")


def cluster_urls(text: str) -> list[str]:
    """The NATS URLs of ``--cluster`` (comma-separated), each checked."""
    urls = [part.strip() for part in text.split(",") if part.strip()]
    if not urls:
        raise click.BadParameter("give at least one URL, like nats://127.0.0.1:4222")
    for url in urls:
        parts = urlsplit(url)
        try:
            port = parts.port
        except ValueError:
            port = None
        if parts.scheme not in _SCHEMES or not parts.hostname or port is None:
            raise click.BadParameter(
                f"{url!r} is not a NATS server URL; write nats://HOST:PORT (tls://HOST:PORT "
                "for TLS), several separated by commas"
            )
    return urls


@final
@dataclass(frozen=True, slots=True)
class ClusterWorker:
    """One worker of the cluster ``name`` at ``servers``."""

    servers: tuple[str, ...]
    name: str
    worker: str
    streams: int | None = None  # for a new cluster; None: one, or the cluster's

    @staticmethod
    def of(
        urls: str, *, name: str, worker: str | None, streams: int | None = None
    ) -> ClusterWorker:
        from pystatefun.store.jetstream._layout import check_cluster_name  # noqa: PLC0415

        try:
            check_cluster_name(name)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="'--cluster-name'") from exc
        servers = tuple(cluster_urls(urls))
        worker = worker or f"{socket.gethostname()}-{os.getpid()}"
        return ClusterWorker(servers, name, worker, streams)

    def loader(self, key_groups: int) -> JetStreamLoader:
        """A loader into this cluster, which must hold nothing yet (a savepoint restore)."""
        from pystatefun.store.jetstream import JetStreamLoader  # noqa: PLC0415 - cluster extra

        return JetStreamLoader(
            self.servers,
            cluster=self.name,
            fresh=True,
            clock_ms=lambda: int(time.time() * 1000),
            key_groups=key_groups,
            streams=self.streams,
        )

    def contents(self) -> Contents:
        """The whole cluster's records as of one commit, read from outside (blocking): what a
        savepoint of it holds, whichever partitions this worker serves."""
        from pystatefun.store.jetstream import cluster_contents  # noqa: PLC0415 - cluster extra

        return cluster_contents(self.servers, self.name)

    def engine(self, options: RuntimeOptions) -> JetStreamEngine:
        from pystatefun.store.jetstream import JetStreamEngine  # noqa: PLC0415 - cluster extra

        return JetStreamEngine(self.servers, cluster=self.name, worker=self.worker,
                               clock_ms=options.clock_ms, streams=self.streams)  # fmt: skip
