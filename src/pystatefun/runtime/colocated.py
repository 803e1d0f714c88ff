"""Co-located functions: function servers the runtime starts, keeps alive and stops.

An ``io.pystatefun.endpoints.v1/colocated`` endpoint names a command. Its server gets an
address on this machine (``listening``): a Unix socket or a free port of 127.0.0.1. The
dispatcher calls it through an ``HttpEndpoint`` that ``ColocatedServers.module`` puts in the
co-located endpoint's place: the same transport, retries and dead letters as any remote function.

- **Start**: the command runs (``childprocess``) and the runtime waits until its address
  accepts a connection, up to ``startupTimeout``. A server that cannot start stops the
  runtime's start with a ``ModuleError`` at the endpoint's line, with its last output.
- **A crash** is logged with the exit code, and the server is started again after a delay
  that doubles from ``restartBackoff.initial`` to ``max`` (back to ``initial`` once a server
  stayed up for ``max``). Meanwhile its calls fail and are retried like those to any endpoint
  that is down, so no message is lost.
- **Stop**, after the dispatcher finished its batches: SIGTERM to the server's process group,
  SIGKILL after ``shutdownGrace``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import shlex
import shutil
import signal
import time
from pathlib import Path
from typing import final

from pystatefun.errors import ModuleError
from pystatefun.module import ColocatedEndpoint, HttpEndpoint, Module
from pystatefun.runtime.childprocess import ChildProcess
from pystatefun.runtime.listening import (
    ListenAddress,
    environment,
    listen_address,
    remove_stale_sockets,
    substitute,
)

__all__ = ["ColocatedServer", "ColocatedServers"]

_log = logging.getLogger("pystatefun.runtime.colocated")


def _exit(code: int) -> str:
    if code >= 0:
        return f"exited with code {code}"
    try:
        return f"was killed by {signal.Signals(-code).name}"
    except ValueError:
        return f"was killed by signal {-code}"


def _last_output(process: ChildProcess) -> str:
    if not process.tail:
        return "; it wrote nothing"
    return "; its last output:\n" + "\n".join(f"    {line}".rstrip() for line in process.tail)


@final
class ColocatedServer:
    """Starts, watches, restarts and stops the server of one co-located endpoint."""

    def __init__(self, endpoint: ColocatedEndpoint, module_file: Path, data_dir: Path) -> None:
        self.endpoint = endpoint
        self._module_file = module_file
        self.address: ListenAddress = listen_address(endpoint, data_dir)
        #: How the dispatcher calls the server: like a remote endpoint, at its address.
        self.http_endpoint = HttpEndpoint(
            functions=endpoint.functions,
            url_path_template=self.address.base_url + endpoint.path,
            max_num_batch_requests=endpoint.max_num_batch_requests,
            transport=endpoint.transport,
            location=endpoint.location,
        )
        self._process: ChildProcess | None = None
        self._supervisor: asyncio.Task[None] | None = None
        self.restarts = 0

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.returncode is None else None

    async def start(self) -> None:
        """Start the server and wait until it listens, then watch it; a ``ModuleError`` at the
        endpoint's line if it cannot start."""
        await self._launch()
        name = f"pystatefun-colocated-{self.endpoint.location.line}"
        self._supervisor = asyncio.create_task(self._supervise(), name=name)

    async def stop(self) -> None:
        """Stop watching, then stop the server and remove its socket."""
        if self._supervisor is not None:
            self._supervisor.cancel()
            await asyncio.gather(self._supervisor, return_exceptions=True)
        process = self._process
        if process is not None:
            running = process.returncode is None
            code = await process.stop(self.endpoint.shutdown_grace_s)
            if running:
                label, pid = process.label, process.pid
                _log.info("[%s] stopped the server (pid %d): it %s", label, pid, _exit(code))
        self.address.remove()

    def _error(self, field: str, reason: str) -> ModuleError:
        line = self.endpoint.location.line
        return ModuleError(reason, file=self._module_file, line=line, field=field)

    async def _launch(self) -> None:
        argv, env = self._command()
        try:
            self.address.prepare()
        except OSError as exc:
            reason = f"cannot prepare {self.address} for the server: {exc}"
            raise self._error("spec.listen", reason) from exc
        cwd = self.endpoint.working_dir
        shown = shlex.join(argv)
        try:
            process = await ChildProcess.spawn(
                argv, cwd=str(cwd), env=env, label=self.endpoint.functions
            )
        except OSError as exc:
            reason = f"cannot start `{shown}` in {cwd}: {exc.strerror or exc}"
            raise self._error("spec.command", reason) from exc
        self._process = process
        try:
            listening = await process.wait_listening(
                self.address.connect, self.endpoint.startup_timeout_s
            )
        except TimeoutError:
            await process.stop(self.endpoint.shutdown_grace_s)
            env_names = ", ".join(f"${name}" for name in self.address.variables)
            raise self._error(
                "spec.command",
                f"the server `{shown}` did not listen on {self.address} within startupTimeout "
                f"({self.endpoint.startup_timeout_s:g} s), so it was stopped"
                f"{_last_output(process)}\nMake it listen there (its address is in the "
                f"placeholders and in {env_names}), or raise startupTimeout if it starts slowly.",
            ) from None
        if not listening:
            code = await process.stop(0)  # what it started goes with it
            raise self._error(
                "spec.command",
                f"the server `{shown}` {_exit(code)} before it listened on {self.address}"
                f"{_last_output(process)}\nRun the command in {cwd} to see why.",
            )
        _log.info(
            "[%s] started (pid %d), listening on %s", process.label, process.pid, self.address
        )

    def _command(self) -> tuple[list[str], dict[str, str]]:
        """The argv (its program resolved to a path) and environment of the server."""
        values = self.address.placeholders
        env = environment(self.endpoint, self.address)
        cwd = self.endpoint.working_dir
        if not cwd.is_dir():
            raise self._error(
                "spec.workingDir",
                f"{cwd} is not a directory; a relative workingDir is relative to the module file",
            )
        argv = [substitute(word, values) for word in self.endpoint.command]
        argv[0] = self._program(argv[0], env.get("PATH", os.defpath))
        return argv, env

    def _program(self, name: str, search_path: str) -> str:
        cwd = self.endpoint.working_dir
        if "/" in name:
            path = cwd / name
            if not path.is_file():
                raise self._error("spec.command[0]", f"{path} does not exist or is not a file")
            if not os.access(path, os.X_OK):
                raise self._error(
                    "spec.command[0]",
                    f"{path} is not executable; make it so (chmod +x), or run it with its "
                    f'interpreter: [sh, {name}] or ["{{python}}", {name}]',
                )
            return str(path)
        found = shutil.which(name, path=search_path)
        if found is None:
            raise self._error(
                "spec.command[0]",
                f"{name!r} is not found on PATH ({search_path}); install it, or give its path: "
                f"absolute, or relative to workingDir ({cwd}) like ./{name}",
            )
        return found

    async def _supervise(self) -> None:
        """Restart the server whenever it exits, until ``stop``."""
        endpoint = self.endpoint
        delay = endpoint.restart_backoff_initial_s
        while True:
            process = self._process
            assert process is not None
            code = await process.wait()
            process.signal_group(signal.SIGKILL)  # what it started goes with it
            up_s = time.monotonic() - process.started
            if up_s >= endpoint.restart_backoff_max_s:
                delay = endpoint.restart_backoff_initial_s
            _log.warning(
                "[%s] the server (pid %d) %s after %.1f s; restarting it in %.1f s (calls to "
                "it fail meanwhile, and are retried)",
                process.label,
                process.pid,
                _exit(code),
                up_s,
                delay,
            )
            delay = await self._restart(delay)

    async def _restart(self, delay: float) -> float:
        """Start the server again after ``delay``, doubling it after every failed start;
        returns the delay for the next restart."""
        limit = self.endpoint.restart_backoff_max_s
        while True:
            await asyncio.sleep(delay)
            delay = min(delay * 2, limit)
            try:
                await self._launch()
            except ModuleError as exc:
                _log.error("%s\nTrying again in %.1f s.", exc, delay)
                continue
            except Exception:  # noqa: BLE001 - a bug must not end the restarts
                label = self.endpoint.functions
                _log.exception("[%s] restart failed; trying again in %.1f s", label, delay)
                continue
            self.restarts += 1
            return delay


@final
class ColocatedServers:
    """The servers of a module's co-located endpoints, and the module as the dispatcher sees it."""

    def __init__(self, module: Module, data_dir: Path) -> None:
        self._data_dir = data_dir
        self.servers = [
            ColocatedServer(endpoint, module.source, data_dir)
            for endpoint in module.endpoints
            if isinstance(endpoint, ColocatedEndpoint)
        ]
        calls = {id(server.endpoint): server.http_endpoint for server in self.servers}
        #: ``module`` with each co-located endpoint replaced by the HTTP endpoint of its server.
        self.module: Module = module
        if calls:
            endpoints = tuple(calls.get(id(e), e) for e in module.endpoints)
            self.module = dataclasses.replace(module, endpoints=endpoints)

    @property
    def restarts(self) -> int:
        return sum(server.restarts for server in self.servers)

    async def start(self) -> None:
        """Start every server and wait until all listen. If one cannot start, the others are
        stopped and its ``ModuleError`` is raised."""
        if not self.servers:
            return
        remove_stale_sockets(self._data_dir)
        try:
            started = await asyncio.gather(
                *(server.start() for server in self.servers), return_exceptions=True
            )
        except BaseException:  # cancelled (Ctrl-C during the start): leave nothing running
            await self.stop()
            raise
        failed = [result for result in started if isinstance(result, BaseException)]
        if failed:
            await self.stop()
            raise failed[0]

    async def stop(self) -> None:
        await asyncio.gather(*(server.stop() for server in self.servers))
