"""``pystatefun savepoint create | restore | info``: a data dir's (or a cluster's) contents in
one file."""

from __future__ import annotations

import datetime
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from pystatefun import savepoint as savepoints
from pystatefun.cli._options import cluster_options, data_dir_option, streams_option

if TYPE_CHECKING:
    from pystatefun.cli._cluster_worker import ClusterWorker

__all__ = ["savepoint"]


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{n:,} {kind}" for kind, n in counts.items() if n) or "nothing"


@click.group()
def savepoint() -> None:
    """Savepoints: back up a data dir, move it to another machine, restore it."""


def _cluster(urls: str | None, name: str, streams: int | None = None) -> ClusterWorker | None:
    if urls is None:
        if streams is not None:
            raise click.UsageError("--streams is for a restore into a cluster (--cluster)")
        return None
    from pystatefun.cli._cluster_worker import ClusterWorker  # noqa: PLC0415 - only if asked

    return ClusterWorker.of(urls, name=name, worker=None, streams=streams)


def _one_source(ctx: click.Context, cluster: ClusterWorker | None) -> None:
    given = ctx.get_parameter_source("data_dir") is not click.core.ParameterSource.DEFAULT
    if cluster is not None and given:
        raise click.UsageError("give --data-dir or --cluster, not both")


@savepoint.command()
@click.argument("path", type=click.Path(path_type=Path))
@data_dir_option("The data dir to save; its runtime may be running (it is not paused).")
@cluster_options("Save this cluster instead (its NATS URLs); its workers may be running.")
@click.pass_context
def create(ctx: click.Context, path: Path, data_dir: Path, cluster_urls: str | None,
           cluster_name: str) -> None:  # fmt: skip
    """Write the savepoint of the data dir (or cluster) to PATH: state (with TTLs), waiting
    messages, timers, dead letters, unread egress records and idempotency keys, as of one
    commit."""
    cluster = _cluster(cluster_urls, cluster_name)
    _one_source(ctx, cluster)
    started = time.monotonic()
    try:
        if cluster is None:
            counts, source = savepoints.create(data_dir, path), str(data_dir)
        else:
            from pystatefun.store.jetstream import cluster_contents  # noqa: PLC0415

            contents = cluster_contents(cluster.servers, cluster.name)
            counts, source = savepoints.write(contents, path), f"cluster {cluster.name!r}"
    except OSError as exc:
        raise click.ClickException(f"cannot write {path}: {exc}") from exc
    click.echo(
        f"saved {source} to {path}: {_counts(counts)} "
        f"({path.stat().st_size:,} bytes, {time.monotonic() - started:.2f} s)",
        err=True,
    )


@savepoint.command()
@click.argument("path", type=click.Path(path_type=Path))
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="The new data dir to restore into (it must not hold anything yet).",
)
@cluster_options(
    "Restore into this cluster instead (its NATS URLs): it must hold nothing yet, and no "
    "worker may run on it until the restore is done."
)
@click.option(
    "--key-groups",
    type=click.IntRange(1),
    default=None,
    help="Key groups of the new data dir or cluster; default: the savepoint's.",
)
@streams_option("Streams the new cluster spreads its partitions over [default: 1].")
def restore(path: Path, *, data_dir: Path | None, cluster_urls: str | None, cluster_name: str,
            key_groups: int | None, streams: int | None) -> None:  # fmt: skip
    """Restore the savepoint PATH into a new data dir (or cluster), then `pystatefun run` it."""
    cluster = _cluster(cluster_urls, cluster_name, streams)
    if (data_dir is None) == (cluster is None):
        raise click.UsageError("give --data-dir or --cluster (one of them)")
    started = time.monotonic()
    target = str(data_dir) if cluster is None else f"cluster {cluster.name!r}"
    try:
        if cluster is None:
            assert data_dir is not None
            counts = savepoints.restore(path, data_dir, key_groups)
        else:
            counts = savepoints.load(path, cluster.loader, key_groups)
    except OSError as exc:
        raise click.ClickException(f"cannot restore {path} into {target}: {exc}") from exc
    click.echo(
        f"restored {path} into {target}: {_counts(counts)} ({time.monotonic() - started:.2f} s)",
        err=True,
    )


@savepoint.command()
@click.argument("path", type=click.Path(path_type=Path))
def info(path: Path) -> None:
    """Check the savepoint PATH record by record and print what it holds, as JSON."""
    try:
        header, counts = savepoints.info(path)
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc}") from exc
    created = datetime.datetime.fromtimestamp(header["created_at_ms"] / 1000, datetime.UTC)
    document = {**header, "created_at": created.isoformat(), "counts": counts, "valid": True}
    click.echo(json.dumps(document, indent=1))
