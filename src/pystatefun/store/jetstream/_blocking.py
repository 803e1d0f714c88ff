"""Entry points for commands that are not asynchronous: a savepoint, a restore, a query.

nats-py is asynchronous and the savepoint and bootstrap commands (and ``BulkLoader``) are not,
so each of these runs its work on an event loop of its own, in a thread: the caller may itself
be inside an event loop (a test, a runtime) without the two meeting.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pystatefun.errors import ClusterStorageError
from pystatefun.store.contents import Contents
from pystatefun.store.jetstream._directory import read_directory
from pystatefun.store.jetstream._reading import read_contents

if TYPE_CHECKING:
    from nats.aio.client import Client

__all__ = ["cluster_contents", "connect", "run_blocking"]

_T = TypeVar("_T")
_log = logging.getLogger("pystatefun.store")


def run_blocking(make: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """Run a coroutine on an event loop of its own, in a thread, and return its result."""
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="pystatefun-nats") as pool:
        return pool.submit(lambda: asyncio.run(make())).result()


async def connect(servers: Sequence[str], *, reconnect: bool = False) -> Client:
    """A connection to one of ``servers``, or a coded error saying they are down
    (``reconnect``: it keeps reconnecting for good, as a worker must)."""
    import nats  # noqa: PLC0415 - the cluster extra, needed only here

    # nats-py's own callbacks log each failed attempt with a traceback: one line is enough,
    # and none before the first connection (the error raised below says it all)
    connected = False

    async def error(exc: Exception) -> None:
        if connected:
            _log.warning("NATS connection: %s", exc or type(exc).__name__)

    async def disconnected() -> None:
        if not client.is_closed:  # not when it was closed on purpose
            _log.warning("NATS connection lost; reconnecting to %s", ", ".join(servers))

    async def reconnected() -> None:
        _log.warning("NATS connection restored")

    try:
        client = await nats.connect(
            list(servers),
            connect_timeout=5,
            max_reconnect_attempts=2,
            reconnect_time_wait=0.5,
            error_cb=error,
            disconnected_cb=disconnected,
            reconnected_cb=reconnected,
        )
    except Exception as exc:
        raise ClusterStorageError(
            f"cannot reach the NATS servers {', '.join(servers)} ({exc}); start them "
            "(`pystatefun cluster up` for a local cluster) or fix --cluster"
        ) from exc
    connected = True
    if reconnect:  # not before: the first connection would wait for good on a wrong URL
        client.options["max_reconnect_attempts"] = -1
    return client


def cluster_contents(servers: Sequence[str], cluster: str) -> Contents:
    """Every record of the cluster as of one commit (workers may go on committing).

    Each stream is read from every subject's last record on; records committed while the
    read goes on arrive after it, in order, and the read ends where nothing is pending: what
    it holds then is the stream as of its last record, a batch boundary (batches are stored
    whole). Several streams make one consistent cut (``_reading``)."""

    async def read() -> Contents:
        nc = await connect(servers)
        try:
            js = nc.jetstream(timeout=10)
            directory = await read_directory(js, cluster, replicas=1)
            if directory is None:
                raise ClusterStorageError(
                    f"cluster {cluster!r} holds nothing: no worker ever ran on it (check "
                    "--cluster-name)"
                )
            return await read_contents(js, directory.layout(cluster))
        finally:
            await nc.close()

    return run_blocking(read)
