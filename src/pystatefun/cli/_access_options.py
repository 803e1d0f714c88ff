"""The admin port and the front door of ``pystatefun run``, as one parameter (``access``).

``--admin-port``/``--admin-host``; ``--ingress-token`` and ``--admin-token`` (or their
``-file`` forms, or the environment: a token on the command line is visible to every user of
the machine in its process list); ``--tls-cert``/``--tls-key`` for every port it listens on;
``--savepoint-dir``, where the admin port's web console writes the savepoints it takes.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

import click

__all__ = ["Access", "access_options"]


@final
@dataclass(frozen=True, slots=True)
class Access:
    """Where the admin port listens (None: it does not), the tokens, and the TLS files."""

    admin_at: tuple[str, int] | None = None
    ingress_token: str | None = field(default=None, repr=False)
    admin_token: str | None = field(default=None, repr=False)
    tls: tuple[Path, Path] | None = None  # certificate chain, key
    savepoint_dir: Path | None = None  # None: beside the data dir (``<data dir>-savepoints``)


def _token(value: str | None, file: Path | None, option: str) -> str | None:
    if value is not None and file is not None:
        raise click.UsageError(f"give --{option} or --{option}-file, not both")
    if file is not None:
        try:
            value = file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise click.UsageError(f"--{option}-file {file}: cannot read it ({exc})") from exc
    if value is not None and not value.strip():
        raise click.UsageError(f"--{option}: the token is empty")
    return None if value is None else value.strip()


def access_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Add the admin-port, token and TLS options to ``command``, which receives ``access``."""

    @functools.wraps(command)
    def with_access(*args: Any, **values: Any) -> Any:
        port, host = values.pop("admin_port"), values.pop("admin_host")
        cert, key = values.pop("tls_cert"), values.pop("tls_key")
        if (cert is None) != (key is None):
            raise click.UsageError("--tls-cert and --tls-key go together")
        access = Access(
            admin_at=None if port is None else (host, port),
            ingress_token=_token(values.pop("ingress_token"), values.pop("ingress_token_file"),
                                 "ingress-token"),
            admin_token=_token(values.pop("admin_token"), values.pop("admin_token_file"),
                               "admin-token"),
            tls=None if cert is None else (cert, key),
            savepoint_dir=values.pop("savepoint_dir"),
        )  # fmt: skip
        return command(*args, access=access, **values)

    path = click.Path(exists=True, dir_okay=False, path_type=Path)
    options = [
        click.option("--admin-port", type=click.IntRange(0, 65535), default=None,
                     help="Serve /metrics, /health, /ready and the web console on this port (0: a "
                     "free one; its URL is printed as `admin URL`). Off unless given."),
        click.option("--admin-host", default="127.0.0.1", show_default=True,
                     help="Interface the admin port listens on."),
        click.option("--ingress-token", envvar="PYSTATEFUN_INGRESS_TOKEN",
                     help="Bearer token the playground ingress and egress require (401 "
                     "without it). Also $PYSTATEFUN_INGRESS_TOKEN."),
        click.option("--ingress-token-file", type=path,
                     help="Read the ingress token from this file."),
        click.option("--admin-token", envvar="PYSTATEFUN_ADMIN_TOKEN",
                     help="Bearer token /metrics and the web console's API require (/health and "
                     "/ready stay open, for probes). Also $PYSTATEFUN_ADMIN_TOKEN."),
        click.option("--admin-token-file", type=path, help="Read the admin token from this file."),
        click.option("--tls-cert", type=path,
                     help="PEM certificate chain: the ingress, egress and admin ports speak TLS."),
        click.option("--tls-key", type=path, help="The certificate's PEM key (unencrypted)."),
        click.option("--savepoint-dir", type=click.Path(file_okay=False, path_type=Path),
                     help="Where the admin port's web console writes the savepoints it takes "
                     "[default: DATA_DIR-savepoints, beside the data dir rather than in it: a "
                     "backup must outlive the loss of the data dir, and a restore wants an "
                     "empty one]."),
    ]  # fmt: skip
    decorated: Callable[..., Any] = with_access
    for option in reversed(options):
        decorated = option(decorated)
    return decorated
