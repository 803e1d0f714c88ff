"""``pystatefun run MODULE``: run a module embedded, on a local data dir, until SIGTERM/SIGINT."""

from __future__ import annotations

import logging
import signal
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pystatefun.cli._access_options import Access, access_options
from pystatefun.cli._cluster_worker import ClusterWorker
from pystatefun.cli._errors import CodedError
from pystatefun.cli._http_options import http_limits_options
from pystatefun.cli._log_options import log_options
from pystatefun.cli._options import cluster_options, data_dir_option, streams_option
from pystatefun.errors import PystatefunError

if TYPE_CHECKING:  # the runtime, asyncio and pydantic load when the command runs, not for --help
    from pystatefun.admin import AdminServer
    from pystatefun.http import HttpLimits
    from pystatefun.module import Module
    from pystatefun.runtime.options import RuntimeOptions
    from pystatefun.runtime.service import Runtime

__all__ = ["run"]

_log = logging.getLogger("pystatefun.cli")


async def _serve(
    module: Module,
    options: RuntimeOptions,
    cluster: ClusterWorker | None,
    access: Access,
) -> None:

    from pystatefun.runtime.service import Runtime  # noqa: PLC0415

    engine = None if cluster is None else cluster.engine(options)
    runtime = Runtime(module, options, engine=engine)
    admin = None if access.admin_at is None else await _admin(runtime, access, cluster)
    try:
        await _run(runtime, module)
    finally:
        if admin is not None:
            await admin.stop()
        if options.tracer is not None:  # export the spans still buffered
            import asyncio  # noqa: PLC0415 - loaded by now; `run --help` must not load it

            await asyncio.to_thread(options.tracer.shutdown)


async def _admin(runtime: Runtime, access: Access, cluster: ClusterWorker | None) -> AdminServer:
    """The admin port, listening before the runtime opens its store (a probe hears
    "recovering" meanwhile); its URL on stdout at once. Its console's SQL box reads the data
    dir (a cluster worker's is scratch: none), and its savepoints are of the whole store (a
    cluster's read from outside, as `savepoint create --cluster` does)."""
    from pystatefun.admin import AdminServer  # noqa: PLC0415 - keeps start-up fast
    from pystatefun.errors import DataDirError  # noqa: PLC0415
    from pystatefun.http import FrontDoor  # noqa: PLC0415

    assert access.admin_at is not None
    host, port = access.admin_at
    door = FrontDoor(access.admin_token, runtime.front_door.tls)
    data_dir = runtime.options.data_dir
    savepoints = access.savepoint_dir or Path(f"{data_dir.resolve()}-savepoints")
    admin = AdminServer(
        runtime, host=host, port=port, front_door=door, savepoint_dir=savepoints,
        data_dir=data_dir if cluster is None else None,
        savepoint_contents=None if cluster is None else cluster.contents,
    )  # fmt: skip
    try:
        await admin.start()
    except OSError as exc:
        raise DataDirError(
            f"the admin port cannot listen on {host}:{port}: {exc.strerror or exc}; is another "
            "process using the port? Give another --admin-port, or stop that process."
        ) from exc
    click.echo(f"admin {admin.url}")
    return admin


async def _run(runtime: Runtime, module: Module) -> None:
    import asyncio  # noqa: PLC0415 - keeps start-up fast

    await runtime.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    # Data on stdout: where to send messages and read records; then "ready".
    for role, url in runtime.listening():
        click.echo(f"{role} {url}")
    click.echo("ready")
    _log.info("running %s; SIGTERM or Ctrl-C stops gracefully", module.source)
    waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(runtime.failed.wait())]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiting in waits:
            waiting.cancel()
        _log.info("stopping: finishing in-flight invocations")
        await runtime.stop()
    if runtime.failure is not None:
        raise click.ClickException(f"{runtime.failure}; restart to recover from the last commit")


@click.command()
@click.argument("module_file", metavar="MODULE", type=click.Path(path_type=Path))
@data_dir_option("Where state, mailboxes and timers live (created if new).")
@click.option(
    "--durability",
    type=click.Choice(["fsync", "os"]),
    default="fsync",
    show_default=True,
    help="fsync: a commit survives power loss; os: it survives a process crash.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Interface the playground ingress and egress listen on.",
)
@click.option(
    "--dead-letter-after",
    type=click.IntRange(1),
    default=5,
    show_default=True,
    help="Failed calls to an endpoint that cannot be reached (each a whole call timeout) "
    "before a batch is dead-lettered.",
)
@click.option(
    "--function-error-attempts",
    type=click.IntRange(1),
    default=3,
    show_default=True,
    help="Tries of a batch whose function raised before it is split to find the one message "
    "it cannot take (which alone is dead-lettered).",
)
@click.option(
    "--function-error-backoff",
    type=click.FloatRange(min=0, min_open=True),
    default=0.2,
    show_default=True,
    help="Seconds before the second try of such a batch, doubling for each next one.",
)
@click.option(
    "--shutdown-grace",
    type=click.FloatRange(0),
    default=30.0,
    show_default=True,
    help="Seconds in-flight invocations may take to finish on SIGTERM.",
)
@click.option(
    "--reply-timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds a request-reply ingress request waits for the answer (then 504).",
)
@click.option(
    "--ingress-max-bytes",
    type=click.IntRange(1),
    default=32 * 1024 * 1024,
    show_default=True,
    help="Largest ingress message accepted (larger: 413).",
)
@click.option(
    "--dedup-window",
    type=click.FloatRange(min=0, min_open=True),
    default=24 * 3600.0,
    show_default=True,
    help="Seconds an ingress Idempotency-Key is remembered.",
)
@click.option(
    "--max-inflight",
    type=click.IntRange(1),
    default=256,
    show_default=True,
    help="Invocations in flight at once, across addresses (one per address at most): the "
    "ceiling of the adaptive limit.",
)
@click.option(
    "--min-inflight",
    type=click.IntRange(1),
    default=24,
    show_default=True,
    help="Floor of the adaptive in-flight limit (it shrinks to this while calls queue at the "
    "function servers, so that mailboxes fill into batches).",
)
@click.option(
    "--cache-mib",
    type=click.IntRange(1),
    default=64,
    show_default=True,
    help="SQLite page cache: the memory bound for state (state itself may exceed RAM).",
)
@click.option(
    "--state-cache-addresses",
    type=click.IntRange(0),
    default=10_000,
    show_default=True,
    help="Addresses whose state stays in memory (least recently invoked out first); 0: none.",
)
@click.option(
    "--key-groups",
    type=click.IntRange(1),
    default=128,
    show_default=True,
    help="Partitions of the address space; fixed when the data dir is created.",
)
@cluster_options(
    "Run as one worker of a cluster whose state lives in this NATS JetStream cluster "
    "(docs/deployment/cluster.md); --data-dir is then local scratch only."
)
@click.option(
    "--worker",
    "worker_name",
    help="This worker's name in the cluster (default: host name and process id).",
)
@streams_option(
    "Streams (RAFT groups) a new cluster spreads its 16 partitions over; fixed when the "
    "cluster is made [default: 1, or the cluster's]."
)
@click.option(
    "--port-offset",
    type=click.IntRange(0, 60000),
    default=0,
    show_default=True,
    help="Added to every port the module's ingresses and egresses listen on (several workers "
    "on one host); function endpoints' URLs are left as they are.",
)
@access_options
@http_limits_options
@log_options("%(asctime)s %(levelname)s %(name)s: %(message)s")
def run(  # click passes options by keyword
    module_file: Path,
    *,
    data_dir: Path,
    durability: str,
    host: str,
    dead_letter_after: int,
    function_error_attempts: int,
    function_error_backoff: float,
    shutdown_grace: float,
    reply_timeout: float,
    ingress_max_bytes: int,
    dedup_window: float,
    max_inflight: int,
    min_inflight: int,
    cache_mib: int,
    state_cache_addresses: int,
    key_groups: int,
    cluster_urls: str | None,
    cluster_name: str,
    worker_name: str | None,
    streams: int | None,
    port_offset: int,
    access: Access,
    http_limits: HttpLimits,
) -> None:
    """Run MODULE (a StateFun module YAML) embedded in this process.

    Prints `ingress URL`, `egress URL` and `ready` on stdout once serving (and `admin URL`
    first, with --admin-port). Stops gracefully on
    SIGTERM or Ctrl-C: in-flight invocations finish and commit, then it exits 0. With
    --cluster, this process is one worker of a cluster that keeps its state in NATS JetStream.
    """
    from pystatefun import tracing  # noqa: PLC0415
    from pystatefun.http import run_event_loop  # noqa: PLC0415 - keeps start-up fast
    from pystatefun.module import load_module  # noqa: PLC0415
    from pystatefun.runtime.options import RuntimeOptions  # noqa: PLC0415

    try:
        module = load_module(module_file)
        options = RuntimeOptions(
            data_dir=data_dir,
            durability=durability,  # type: ignore[arg-type]
            host=host,
            dead_letter_after_attempts=dead_letter_after,
            function_error_attempts=function_error_attempts,
            function_error_backoff_s=function_error_backoff,
            shutdown_grace_s=shutdown_grace,
            reply_timeout_s=reply_timeout,
            ingress_max_bytes=ingress_max_bytes,
            dedup_window_s=dedup_window,
            max_inflight=max_inflight,
            min_inflight=min_inflight,
            cache_mib=cache_mib,
            state_cache_addresses=state_cache_addresses,
            key_groups=key_groups,
            http_limits=http_limits,
            port_offset=port_offset,
            ingress_token=access.ingress_token,
            tls=access.tls,
            tracer=tracing.from_environment(),  # the OTEL_* variables
        )
        cluster = _worker(cluster_urls, name=cluster_name, worker=worker_name, streams=streams)
        run_event_loop(_serve(module, options, cluster, access))  # uvloop when installed
    except PystatefunError as exc:
        raise CodedError(exc) from exc


def _worker(
    urls: str | None, *, name: str, worker: str | None, streams: int | None
) -> ClusterWorker | None:
    """The cluster worker this runtime is (None: embedded)."""
    if urls is None:
        return None
    return ClusterWorker.of(urls, name=name, worker=worker, streams=streams)
