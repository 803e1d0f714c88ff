"""``pystatefun cluster up | down | status``: a local NATS JetStream cluster to develop on, and
what a running pystatefun cluster's workers serve.

``up`` and ``down`` are thin over ``pystatefun.cluster.LocalCluster``, ``status`` over
``pystatefun.store.jetstream.cluster_status``; both are imported when the command runs.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import click

from pystatefun.cli._options import cluster_options

__all__ = ["cluster", "ranges"]

_DIR = click.option(
    "--dir",
    "directory",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    default=Path("pystatefun-cluster"),
    show_default=True,
    help="Where the local cluster's configs, logs, data and state file live.",
)


@click.group()
def cluster() -> None:
    """Cluster mode: start a local NATS cluster, see what a cluster's workers serve."""


@cluster.command()
@_DIR
@click.option(
    "--nodes",
    type=click.IntRange(1),
    default=None,
    help="How many nats-server processes (default: as many as DIR records, or 3).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=0, min_open=True),
    default=30.0,
    show_default=True,
    help="Seconds to wait for the cluster to elect its JetStream leader.",
)
def up(directory: Path, nodes: int | None, timeout: float) -> None:
    """Start a local NATS JetStream cluster on 127.0.0.1 (for development and tests), detached.

    Prints each server's client URL (for `pystatefun run --cluster`), then `ready` once
    JetStream can serve replicated streams. When the cluster of DIR runs already, prints the
    same; after `down`, starts the same cluster again, with its data.
    """
    from pystatefun.cluster import LocalCluster  # noqa: PLC0415 - keeps start-up fast

    local = LocalCluster(directory, ready_timeout_s=timeout)
    before = {node.name for node in local.running()}
    urls = local.up(nodes)
    started = len(urls) - len(before)
    if started:
        click.echo(
            f"started {started} of {len(urls)} nats-server processes in {directory}", err=True
        )
    else:
        click.echo(f"the cluster of {directory} runs already", err=True)
    for url in urls:
        click.echo(url)
    click.echo("ready")


@cluster.command()
@_DIR
@click.option("--purge", is_flag=True, help="Also remove what `up` made in DIR, data included.")
def down(directory: Path, purge: bool) -> None:
    """Stop the local cluster of DIR (SIGTERM, then SIGKILL), keeping its data unless --purge."""
    from pystatefun.cluster import LocalCluster  # noqa: PLC0415 - keeps start-up fast

    stopped = LocalCluster(directory).down(purge=purge)
    for node in stopped:
        click.echo(f"stopped {node.name} (PID {node.pid}, {node.url})")
    if not stopped:
        click.echo(f"no server of {directory} runs")
    if purge:
        click.echo(f"removed the cluster's files from {directory}")


def ranges(numbers: Iterable[int]) -> str:
    """``0-7,9,12-13``: sorted numbers as compact ranges ("-" for none)."""
    spans: list[list[int]] = []
    for number in sorted(set(numbers)):
        if spans and number == spans[-1][1] + 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    return ",".join(f"{a}" if a == b else f"{a}-{b}" for a, b in spans) or "-"


def _show(status: dict[str, object]) -> None:
    streams = status["streams"]
    assert isinstance(streams, list)
    for stream in streams:
        click.echo(
            f"cluster {status['cluster']}  stream {stream['stream']}  replicas "
            f"{stream['replicas']}  leader {stream['leader'] or '-'}  last seq {stream['last_seq']}"
        )
    workers = status["workers"]
    assert isinstance(workers, list)
    rows = [("WORKER", "PARTITIONS", "LAG")]
    rows += [(str(w["worker"]), ranges(w["serving"]), str(w["lag"])) for w in workers]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for name, partitions, lag in rows:
        click.echo(f"{name:<{widths[0]}}  {partitions:<{widths[1]}}  {lag}")
    if not workers:
        click.echo("(no worker is running)")
    owners = status["owners"]
    assert isinstance(owners, dict)
    unowned = [int(p) for p, worker in owners.items() if worker is None]
    if unowned:
        click.echo(f"owned by no worker: partitions {ranges(unowned)}")


@cluster.command()
@cluster_options("The NATS URLs of the cluster's servers.", required=True)
@click.option("--json", "as_json", is_flag=True, help="Print the status as one JSON document.")
def status(cluster_urls: str, cluster_name: str, as_json: bool) -> None:
    """The workers of a running pystatefun cluster, the partitions each serves, and their lag.

    Listens for the workers' heartbeats for about two seconds. The lag of a worker is how many
    stream records it has still to read.
    """
    from pystatefun.cli._cluster_worker import ClusterWorker  # noqa: PLC0415
    from pystatefun.store.jetstream import cluster_status  # noqa: PLC0415 - the cluster extra

    target = ClusterWorker.of(cluster_urls, name=cluster_name, worker=None)
    document = cluster_status(target.servers, target.name)
    if as_json:
        click.echo(json.dumps(document, indent=2))
    else:
        _show(document)
