"""Options several commands share, so they read and default the same everywhere."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

__all__ = ["DEFAULT_DATA_DIR", "cluster_options", "data_dir_option", "streams_option"]

#: Where `pystatefun run` keeps its data when no --data-dir is given.
DEFAULT_DATA_DIR = Path("pystatefun-data")


def data_dir_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--data-dir DIR``, by default ``./pystatefun-data``, explained by ``help_text``."""
    return click.option(
        "--data-dir",
        type=click.Path(path_type=Path),
        default=DEFAULT_DATA_DIR,
        show_default=True,
        help=help_text,
    )


def cluster_options(
    help_text: str, *, required: bool = False
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--cluster URLS`` (explained by ``help_text``; passed as ``cluster_urls``) and
    ``--cluster-name NAME``: which cluster, checked by ``ClusterWorker.of``."""
    urls = click.option(
        "--cluster",
        "cluster_urls",
        metavar="nats://H:P[,nats://H:P...]",
        required=required,
        help=help_text,
    )
    name = click.option(
        "--cluster-name",
        default="pystatefun",
        show_default=True,
        help="Which cluster of that NATS cluster: every worker with the same module, URL and "
        "name is part of one database.",
    )
    return lambda command: urls(name(command))


def streams_option(help_text: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``--streams K``: how many JetStream streams a new cluster spreads its partitions over."""
    return click.option("--streams", type=click.IntRange(1, 16), default=None, help=help_text)
