"""Where a co-located function server listens, and how it is told: placeholders and variables.

With ``listen: unix`` the socket is ``colocated-<line>.sock`` in the data dir (the data dir's
lock makes it ours), unless that path is too long for ``AF_UNIX`` or would confuse an
``http+unix`` URL; then it goes in a private directory (mode 0700) under the system's temporary
directory. With ``listen: tcp`` it is a free port of 127.0.0.1, picked once. The server learns
its address from the ``{socket}``, ``{host}`` and ``{port}`` placeholders of its command and from
``PYSTATEFUN_SOCKET``, ``PYSTATEFUN_HOST`` and ``PYSTATEFUN_PORT``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import socket
import stat
import sys
import tempfile
from pathlib import Path
from typing import final

from pystatefun.module import ColocatedEndpoint

__all__ = [
    "ListenAddress",
    "environment",
    "listen_address",
    "remove_socket",
    "remove_stale_sockets",
    "substitute",
]

#: Longest socket path used in the data dir: AF_UNIX allows 107 bytes on Linux, 103 on macOS.
_SOCKET_PATH_MAX = 100
_SOCKET_GLOB = "colocated-*.sock"
_LOOPBACK = "127.0.0.1"


@final
@dataclasses.dataclass(frozen=True, slots=True)
class ListenAddress:
    """Where one server listens: a Unix socket (and the private directory holding it, if
    any), or a port of 127.0.0.1."""

    socket: Path | None
    port: int | None = None
    private_dir: Path | None = None

    @property
    def placeholders(self) -> dict[str, str]:
        if self.socket is not None:
            return {"socket": str(self.socket), "python": sys.executable}
        return {"host": _LOOPBACK, "port": str(self.port), "python": sys.executable}

    @property
    def variables(self) -> dict[str, str]:
        """The address as environment variables: ``PYSTATEFUN_SOCKET``, or ``_HOST`` and
        ``_PORT``."""
        values = self.placeholders.items()
        return {f"PYSTATEFUN_{name.upper()}": v for name, v in values if name != "python"}

    @property
    def base_url(self) -> str:
        if self.socket is not None:
            return f"http+unix://{self.socket}"
        return f"http://{_LOOPBACK}:{self.port}"

    def __str__(self) -> str:
        return f"unix socket {self.socket}" if self.socket else f"{_LOOPBACK}:{self.port}"

    def prepare(self) -> None:
        """Make room for the server to listen: its directory, and no stale socket."""
        if self.private_dir is not None:
            self.private_dir.mkdir(mode=0o700, exist_ok=True)
        if self.socket is not None:
            remove_socket(self.socket)

    def remove(self) -> None:
        if self.socket is not None:
            remove_socket(self.socket)
        if self.private_dir is not None:
            with contextlib.suppress(OSError):
                self.private_dir.rmdir()

    async def connect(self) -> None:
        """Open a connection and close it; raises ``OSError`` while nothing listens."""
        if self.socket is not None:
            _, writer = await asyncio.open_unix_connection(str(self.socket))
        else:
            _, writer = await asyncio.open_connection(_LOOPBACK, self.port)
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


def remove_stale_sockets(data_dir: Path) -> None:
    """Remove the sockets of co-located servers a runtime left in ``data_dir`` when it was
    killed (its lock is ours now, so none of them is in use)."""
    for path in data_dir.glob(_SOCKET_GLOB):
        remove_socket(path)


def remove_socket(path: Path) -> None:
    """Remove ``path`` if it is a socket (left by a server that is gone); nothing else."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISSOCK(path.lstat().st_mode):
            path.unlink()


def listen_address(endpoint: ColocatedEndpoint, data_dir: Path) -> ListenAddress:
    """Where the server of ``endpoint`` will listen. A Unix socket goes in the data dir when its
    path is short enough for ``AF_UNIX``, else in a private directory of the system's temporary
    directory; a TCP port is picked now, and kept for the life of the runtime."""
    if endpoint.listen == ColocatedEndpoint.TCP:
        with socket.socket() as probe:
            probe.bind((_LOOPBACK, 0))
            return ListenAddress(None, port=probe.getsockname()[1])
    name = f"colocated-{endpoint.location.line}.sock"
    path = data_dir.absolute() / name
    # An http+unix URL's socket is its first path segment ending in .sock: none may come before.
    if len(os.fsencode(path)) <= _SOCKET_PATH_MAX and not any(
        part.endswith(".sock") for part in path.parent.parts
    ):
        return ListenAddress(path)
    private = Path(tempfile.gettempdir()) / f"pystatefun-{secrets.token_hex(6)}"
    return ListenAddress(private / name, private_dir=private)


def substitute(text: str, values: dict[str, str]) -> str:
    """``text`` with each ``{name}`` of ``values`` replaced."""
    for name, value in values.items():
        text = text.replace(f"{{{name}}}", value)
    return text


def environment(endpoint: ColocatedEndpoint, address: ListenAddress) -> dict[str, str]:
    """The runtime's environment, plus the server's address and the endpoint's ``env``.

    When the runtime runs from a virtualenv, its ``bin`` directory goes first on ``PATH``, as
    if the virtualenv were activated: ``pystatefun`` and ``python`` are then the runtime's own.
    """
    env = dict(os.environ)
    if sys.prefix != sys.base_prefix:
        bin_dir = os.path.dirname(sys.executable)
        path = env.get("PATH", os.defpath)
        if path.split(os.pathsep)[0] != bin_dir:
            env["PATH"] = f"{bin_dir}{os.pathsep}{path}"
    env.setdefault("PYTHONUNBUFFERED", "1")  # Python servers' output reaches the log at once
    env |= address.variables
    values = address.placeholders
    env |= {name: substitute(value, values) for name, value in endpoint.env}
    return env
