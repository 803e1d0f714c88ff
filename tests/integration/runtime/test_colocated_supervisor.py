"""The supervisor of co-located function servers, on real processes: where the server listens,
a start that fails (a missing command, a server that exits, one that never listens) with an
error at the module's line, and a shutdown that leaves nothing running, even what the server
started and a server that ignores SIGTERM."""

from __future__ import annotations

import logging
import shlex
import socket
import sys
from pathlib import Path

import pytest
from support.colocated import gone, write_module

from pystatefun.errors import ModuleError
from pystatefun.module import ColocatedEndpoint, load_module
from pystatefun.runtime.colocated import ColocatedServer, ColocatedServers

PYTHON = "{python}"


def servers(tmp_path: Path, command: list[str], **spec: object) -> ColocatedServers:
    module = load_module(write_module(tmp_path / "module.yaml", command, **spec))
    data_dir = tmp_path / "data"
    data_dir.mkdir(exist_ok=True)
    return ColocatedServers(module, data_dir)


async def start_error(group: ColocatedServers) -> ModuleError:
    with pytest.raises(ModuleError) as caught:
        await group.start()
    return caught.value


def pids(tmp_path: Path) -> tuple[int, int]:
    server, child = (tmp_path / "pids").read_text().split()
    return int(server), int(child)


async def test_a_unix_socket_in_the_data_dir_replacing_a_stale_one(tmp_path: Path) -> None:
    group = servers(tmp_path, [PYTHON, "listener.py", str(tmp_path / "pids")])
    (server,) = group.servers
    socket_path = tmp_path / "data" / "colocated-1.sock"
    stale = tmp_path / "data" / "colocated-9.sock"
    for path in (socket_path, stale):  # left by a runtime that was killed
        with socket.socket(socket.AF_UNIX) as left:
            left.bind(str(path))
    assert server.address.socket == socket_path
    assert server.http_endpoint.url_for("co/x") == f"http+unix://{socket_path}/statefun"
    assert group.module.endpoints == (server.http_endpoint,)
    await group.start()
    try:
        assert server.pid == pids(tmp_path)[0]
        assert socket_path.is_socket()
        assert not stale.exists()
    finally:
        await group.stop()
    assert not socket_path.exists()


async def test_a_long_data_dir_puts_the_socket_in_a_private_temporary_dir(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    group = servers(deep, [PYTHON, "listener.py", str(tmp_path / "pids")])
    (server,) = group.servers
    private = server.address.private_dir
    assert private is not None
    assert server.address.socket == private / "colocated-1.sock"
    assert len(str(server.address.socket)) <= 100
    await group.start()
    try:
        assert private.stat().st_mode & 0o777 == 0o700
        assert server.address.socket.is_socket()
    finally:
        await group.stop()
    assert not private.exists()


async def test_tcp_on_a_free_port_of_127_0_0_1(tmp_path: Path) -> None:
    group = servers(tmp_path, [PYTHON, "listener.py", str(tmp_path / "pids")], listen="tcp")
    (server,) = group.servers
    port = server.address.port
    assert server.http_endpoint.url_for("co/x") == f"http://127.0.0.1:{port}/statefun"
    await group.start()
    await group.stop()


async def test_a_missing_command(tmp_path: Path) -> None:
    group = servers(tmp_path, ["no-such-command-for-pystatefun"])
    error = await start_error(group)
    assert (error.file, error.line, error.field) == (tmp_path / "module.yaml", 1, "spec.command[0]")
    assert error.reason.startswith("'no-such-command-for-pystatefun' is not found on PATH (")
    assert error.reason.endswith(
        f"install it, or give its path: absolute, or relative to workingDir ({tmp_path}) like "
        "./no-such-command-for-pystatefun"
    )


async def test_a_file_that_is_not_executable(tmp_path: Path) -> None:
    group = servers(tmp_path, ["./listener.py"])
    error = await start_error(group)
    assert error.field == "spec.command[0]"
    assert error.reason.startswith(f"{tmp_path / 'listener.py'} is not executable")


async def test_a_working_dir_that_does_not_exist(tmp_path: Path) -> None:
    error = await start_error(servers(tmp_path, [PYTHON, "x.py"], workingDir="nowhere"))
    assert (error.line, error.field) == (1, "spec.workingDir")
    assert error.reason.startswith(f"{tmp_path / 'nowhere'} is not a directory")


async def test_a_server_that_exits_before_it_listens(tmp_path: Path) -> None:
    script = "import sys; print('cannot find my functions', file=sys.stderr); sys.exit(3)"
    error = await start_error(servers(tmp_path, [PYTHON, "-c", script]))
    assert (error.line, error.field) == (1, "spec.command")
    socket_path = tmp_path / "data" / "colocated-1.sock"
    assert error.reason == (
        f"the server `{shlex.join([sys.executable, '-c', script])}` exited with code 3 before it "
        "listened on "
        f"unix socket {socket_path}; its last output:\n    cannot find my functions\n"
        f"Run the command in {tmp_path} to see why."
    )
    assert str(error).startswith(f"{tmp_path / 'module.yaml'}:1: spec.command: the server")


async def test_a_server_that_never_listens_is_stopped(tmp_path: Path) -> None:
    script = "import os, time; print(os.getpid(), flush=True); time.sleep(600)"
    group = servers(tmp_path, [PYTHON, "-c", script], startupTimeout="300ms", shutdownGrace="5s")
    error = await start_error(group)
    assert error.field == "spec.command"
    assert " did not listen on unix socket " in error.reason
    assert "within startupTimeout (0.3 s), so it was stopped; its last output:\n" in error.reason
    assert error.reason.endswith(
        "Make it listen there (its address is in the placeholders and in $PYSTATEFUN_SOCKET), "
        "or raise startupTimeout if it starts slowly."
    )
    (server,) = group.servers
    assert server.pid is None  # stopped, and reaped


async def test_one_server_that_cannot_start_stops_the_others(tmp_path: Path) -> None:
    path = write_module(tmp_path / "module.yaml", [PYTHON, "listener.py", str(tmp_path / "pids")])
    other = (
        "kind: io.pystatefun.endpoints.v1/colocated\nspec: {functions: o/*, command: ['false']}\n"
    )
    path.write_text(f"{other}---\n{path.read_text()}")
    module = load_module(path)
    assert [type(e) for e in module.endpoints] == [ColocatedEndpoint, ColocatedEndpoint]
    (tmp_path / "data").mkdir()
    group = ColocatedServers(module, tmp_path / "data")
    with pytest.raises(ModuleError, match="exited with code 1 before it listened"):
        await group.start()
    assert all(gone(pid) for pid in pids(tmp_path))


async def test_stop_ends_the_server_and_what_it_started(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "pystatefun.runtime.colocated")
    group = servers(tmp_path, [PYTHON, "listener.py", str(tmp_path / "pids")])
    await group.start()
    await group.stop()
    assert all(gone(pid) for pid in pids(tmp_path))
    assert "stopped the server" in caplog.text
    assert "killing it" not in caplog.text


async def test_a_server_that_ignores_sigterm_is_killed_after_the_grace(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "pystatefun.runtime.colocated")
    command = [PYTHON, "listener.py", str(tmp_path / "pids"), "--ignore-sigterm"]
    group = servers(tmp_path, command, shutdownGrace="200ms")
    await group.start()
    await group.stop()
    assert all(gone(pid) for pid in pids(tmp_path))
    assert "still running 0.2s after SIGTERM; killing it (SIGKILL)" in caplog.text
    assert "it was killed by SIGKILL" in caplog.text


def test_a_server_object_needs_no_event_loop_until_it_starts(tmp_path: Path) -> None:
    module = load_module(write_module(tmp_path / "module.yaml", ["x"]))
    (endpoint,) = module.endpoints
    assert isinstance(endpoint, ColocatedEndpoint)
    server = ColocatedServer(endpoint, module.source, tmp_path)
    assert (server.pid, server.restarts) == (None, 0)
