"""Restate 1.7.12 as a benchmark peer: ``restate-server`` plus the Python SDK service.

Two processes, both bound to 127.0.0.1 only, on ports picked free at ``start``:

- ``server``: the ``restate-server`` binary from npm ``@restatedev/restate-server@1.7.12``
  (the platform package ``@restatedev/restate-server-linux-x64`` ships it as
  ``bin/restate-server``), one node with every role, ``listen-mode = "tcp"`` (no unix sockets)
  and explicit ``bind-address`` for its three listeners: node-to-node fabric (also serves the
  node's ``/health``), admin API and HTTP ingress.
- ``service``: ``bench/restate_service/services.py`` on hypercorn (``restate-sdk==1.2.0``) in
  its own virtualenv; Restate reaches it over h2c with the keep-alive settings Restate's docs
  recommend (see ``hypercorn_config`` there).

Both are installed by ``ensure_installed`` into ``bench/.cache/`` (gitignored).

Durability (finding for 1.7.12, from ``restate-server --dump-config`` and the server's source,
``crates/types/src/config/log_server.rs``): a request is acknowledged once it is in the log
(Bifrost). 1.7's default loglet provider is ``replicated`` even on one node, with this node's
``log-server`` storing the records in RocksDB with ``rocksdb-disable-wal-fsync = false`` by
default, i.e. the WAL is fsynced on every commit batch before the store is acknowledged (its
writer sets RocksDB ``WriteOptions::set_sync(!rocksdb_disable_wal_fsync)``). Checked here with
``strace -f -c -e trace=fdatasync`` on the server: 100 sequential adds made 300 ``fdatasync``
calls (3 per add). The partition store (state, journal) is derived from the log and rebuilt
from it after a crash, so it needs no fsync of its own. So Restate is durable by default; the
config we write states that explicitly (``[bifrost] default-provider = "replicated"``;
``rocksdb-disable-wal-fsync = false`` under ``[log-server]`` and ``[bifrost.local]``;
``rocksdb-disable-wal`` left at its default ``false``), so a changed default could not silently
weaken the comparison.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

from .peer import Request
from .processes import end, free_port

__all__ = ["RESTATE_VERSION", "SDK_VERSION", "RestatePeer", "ensure_installed"]

RESTATE_VERSION = "1.7.12"
SDK_VERSION = "1.2.0"
HYPERCORN_SPEC = "hypercorn>=0.17,<0.19"
# The service runs on uvloop, as pystatefun's processes do: the same event loop on both sides.
UVLOOP_SPEC = "uvloop>=0.19,<1"

BENCH = Path(__file__).resolve().parent.parent
CACHE = BENCH / ".cache"
NPM_PREFIX = CACHE / "restate-npm"
SERVER_BINARY = NPM_PREFIX / "node_modules/@restatedev/restate-server-linux-x64/bin/restate-server"
VENV = CACHE / "venv-restate"
VENV_PYTHON = VENV / "bin" / "python"
SERVICES = BENCH / "restate_service" / "services.py"

NODE_NAME = "bench-node"
JSON_HEADERS = {"content-type": "application/json"}
LOG_TAIL_LINES = 40


def _say(message: str) -> None:
    print(f"[restate] {message}", file=sys.stderr, flush=True)


def _run(argv: list[str], env: dict[str, str] | None = None) -> None:
    _say("$ " + " ".join(argv))
    subprocess.run(argv, check=True, env=env, stdout=sys.stderr)


def _server_version() -> str | None:
    if not SERVER_BINARY.is_file():
        return None
    done = subprocess.run(
        [str(SERVER_BINARY), "--version"], capture_output=True, text=True, check=False
    )
    return done.stdout.strip().rsplit(" ", 1)[-1] if done.returncode == 0 else None


def _venv_ready() -> bool:
    if not VENV_PYTHON.exists():
        return False
    probe = (
        "import importlib.metadata as m, hypercorn, restate, uvloop; "
        f"assert m.version('restate-sdk') == {SDK_VERSION!r}"
    )
    done = subprocess.run([str(VENV_PYTHON), "-c", probe], capture_output=True, check=False)
    return done.returncode == 0


def ensure_installed() -> None:
    """Install restate-server (npm) and the SDK virtualenv (PyPI) under bench/.cache; idempotent."""
    version = _server_version()
    if version == RESTATE_VERSION:
        _say(f"restate-server {version} present: {SERVER_BINARY}")
    else:
        _say(f"installing restate-server {RESTATE_VERSION} (found: {version})")
        NPM_PREFIX.mkdir(parents=True, exist_ok=True)
        # Its one install script (dependency @scarf/scarf) reports the download: turn it off.
        env = {**os.environ, "SCARF_ANALYTICS": "false"}
        _run(
            [
                "npm",
                "install",
                "--no-audit",
                "--no-fund",
                "--prefix",
                str(NPM_PREFIX),
                f"@restatedev/restate-server@{RESTATE_VERSION}",
            ],
            env,
        )
        if _server_version() != RESTATE_VERSION:
            raise RuntimeError(f"npm install did not provide {SERVER_BINARY}")
    if _venv_ready():
        _say(f"venv with restate-sdk {SDK_VERSION} present: {VENV}")
        return
    _say(f"creating {VENV} with restate-sdk=={SDK_VERSION}, {HYPERCORN_SPEC}, {UVLOOP_SPEC}")
    if not VENV_PYTHON.exists():
        _run([sys.executable, "-m", "venv", str(VENV)])
    _run(
        [
            str(VENV_PYTHON),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            f"restate-sdk=={SDK_VERSION}",
            HYPERCORN_SPEC,
            UVLOOP_SPEC,
        ]
    )
    if not _venv_ready():
        raise RuntimeError(f"{VENV} still lacks restate-sdk {SDK_VERSION}, hypercorn or uvloop")


def _http(method: str, url: str, body: bytes | None = None, timeout: float = 2.0) -> bytes:
    """One request; raises urllib.error.URLError/HTTPError or OSError on failure."""
    # Restate's ingress rejects a content-type on a call to a handler without input.
    headers = JSON_HEADERS if body else {}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)  # noqa: S310 (our own loopback URLs)
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return bytes(response.read())


def _tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"(no log at {path})"
    return "\n".join(text.splitlines()[-lines:])


def _not_applied(wanted: dict[str, object], loaded: dict[str, object], at: str = "") -> list[str]:
    """Dotted names of the settings in ``wanted`` whose value ``loaded`` does not have."""
    missing: list[str] = []
    for key, value in wanted.items():
        have = loaded.get(key)
        if isinstance(value, dict) and isinstance(have, dict):
            missing += _not_applied(value, have, f"{at}{key}.")
        elif have != value:
            missing.append(f"{at}{key}={value!r} (loaded: {have!r})")
    return missing


class RestatePeer:
    """Restate server + Python SDK service; see the module docstring."""

    name = "restate"

    def __init__(self, *, start_timeout_s: float = 60.0, partitions: int | None = None) -> None:
        self.start_timeout_s = start_timeout_s
        self.partitions = partitions  # None: Restate's default (24)
        self.ingress = ""
        self.admin = ""
        self.node = ""
        self.service_url = ""
        self.scratch: Path | None = None
        self._server: subprocess.Popen[bytes] | None = None
        self._service: subprocess.Popen[bytes] | None = None
        self._logs: list[IO[bytes]] = []
        self._server_starts = 0

    # --- lifecycle ----------------------------------------------------------------------------

    def start(self) -> None:
        ensure_installed()
        self.scratch = Path(tempfile.mkdtemp(prefix="bench-restate-"))
        ingress, admin, fabric, service = (free_port() for _ in range(4))
        self.ingress = f"http://127.0.0.1:{ingress}"
        self.admin = f"http://127.0.0.1:{admin}"
        self.node = f"http://127.0.0.1:{fabric}"
        self.service_url = f"http://127.0.0.1:{service}"
        self._write_config(ingress, admin, fabric)
        try:
            started = time.monotonic()
            self._spawn_server()
            self._spawn_service(service)
            deadline = started + self.start_timeout_s
            self._wait_ready(deadline)
            self._register(deadline)
            self._wait_ingress(deadline)
            _say(f"ready in {time.monotonic() - started:.2f}s; ingress {self.ingress}")
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        end(self._service, 10.0)
        end(self._server, 30.0)
        self._service = self._server = None
        for log in self._logs:
            log.close()
        self._logs.clear()
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

    def processes(self) -> dict[str, int]:
        assert self._server is not None, "not started"
        assert self._service is not None, "not started"
        return {"server": self._server.pid, "service": self._service.pid}

    def kill_server(self) -> None:
        assert self._server is not None, "not started"
        self._server.kill()  # SIGKILL to this PID
        self._server.wait()

    def restart_server(self) -> None:
        """Same base dir, config (ports) and node name; returns at once."""
        assert self._server is not None, "not started"
        assert self._server.poll() is not None, "server still running: kill_server first"
        self._spawn_server()

    def preload(self, entities: int) -> bool:
        return False

    # --- requests -----------------------------------------------------------------------------

    def add(self, key: str, amount: int, *, wait: bool) -> Request:
        path = f"/counter/{key}/add" if wait else f"/counter/{key}/add/send"
        return Request("POST", path, json.dumps(amount).encode(), dict(JSON_HEADERS))

    # Handlers without input (get, schedule, lateness) are called with GET: Restate's ingress
    # rejects any content-type on a call to a handler without input (400 "Expected body and
    # content-type to be empty"), and HTTP clients add one to a bodiless POST (aiohttp sends
    # application/octet-stream). A GET carries none, and the ingress serves any handler on GET.

    def get(self, key: str) -> Request:
        return Request("GET", f"/counter/{key}/get")

    def chain(self, key: str) -> Request:
        return Request("POST", f"/chain-a/{key}/hop", b"1", dict(JSON_HEADERS))

    def schedule_tick(self, key: str) -> Request:
        return Request("GET", f"/ticker/{key}/schedule")

    def lateness(self, key: str) -> Request:
        return Request("GET", f"/ticker/{key}/lateness")

    def parse_int(self, body: bytes) -> int:
        value = json.loads(body)
        if not isinstance(value, int):
            raise ValueError(f"expected an integer, got {body[:200]!r}")
        return value

    def parse_lateness(self, body: bytes) -> list[float]:
        value = json.loads(body)
        if not isinstance(value, list):
            raise ValueError(f"expected a list, got {body[:200]!r}")
        return [float(item) for item in value]

    # --- internals ----------------------------------------------------------------------------

    def _write_config(self, ingress: int, admin: int, fabric: int) -> None:
        assert self.scratch is not None
        partitions = (
            f"default-num-partitions = {self.partitions}\n" if self.partitions is not None else ""
        )
        config = f"""\
# Written by bench/harness/restate_peer.py: one node, loopback only, durable log.
cluster-name = "pystatefun-bench"
node-name = "{NODE_NAME}"
base-dir = "{self.scratch / "restate-data"}"
auto-provision = true
{partitions}disable-telemetry = true
log-disable-ansi-codes = true
listen-mode = "tcp"
bind-address = "127.0.0.1:{fabric}"
advertised-address = "http://127.0.0.1:{fabric}/"

[admin]
listen-mode = "tcp"
bind-address = "127.0.0.1:{admin}"
advertised-admin-endpoint = "http://127.0.0.1:{admin}/"

[ingress]
listen-mode = "tcp"
bind-address = "127.0.0.1:{ingress}"
advertised-ingress-endpoint = "http://127.0.0.1:{ingress}/"

[bifrost]
default-provider = "replicated"

[bifrost.local]
rocksdb-disable-wal-fsync = false

[log-server]
rocksdb-disable-wal-fsync = false
"""
        path = self.scratch / "restate.toml"
        path.write_text(config)
        # restate-server ignores unknown keys silently: check that every setting we wrote is in
        # the configuration it actually loads.
        dumped = subprocess.run(
            [str(SERVER_BINARY), "--config-file", str(path), "--dump-config"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        missing = _not_applied(tomllib.loads(config), tomllib.loads(dumped))
        if missing:
            raise RuntimeError(f"restate-server did not apply config settings: {missing}")

    def _log(self, name: str) -> IO[bytes]:
        assert self.scratch is not None
        log = (self.scratch / name).open("ab")
        self._logs.append(log)
        return log

    def _spawn_server(self) -> None:
        assert self.scratch is not None
        self._server_starts += 1
        log = self._log("server.log")
        log.write(f"\n=== start #{self._server_starts} at {time.time():.3f} ===\n".encode())
        log.flush()
        self._server = subprocess.Popen(
            [str(SERVER_BINARY), "--config-file", str(self.scratch / "restate.toml"), "--no-logo"],
            cwd=self.scratch,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def _spawn_service(self, port: int) -> None:
        assert self.scratch is not None
        log = self._log("service.log")
        self._service = subprocess.Popen(
            [str(VENV_PYTHON), str(SERVICES), "--bind", f"127.0.0.1:{port}"],
            cwd=self.scratch,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )

    def _failure(self, what: str) -> RuntimeError:
        assert self.scratch is not None
        return RuntimeError(
            f"restate peer: {what}\n--- server.log (tail) ---\n"
            f"{_tail(self.scratch / 'server.log')}\n--- service.log (tail) ---\n"
            f"{_tail(self.scratch / 'service.log')}"
        )

    def _check_alive(self) -> None:
        for role, proc in (("server", self._server), ("service", self._service)):
            if proc is not None and proc.poll() is not None:
                raise self._failure(f"{role} exited with code {proc.returncode}")

    def _poll(self, deadline: float, what: str, probe: str, method: str = "GET") -> bytes:
        """Poll ``probe`` until it answers 2xx; the processes must stay alive meanwhile."""
        while True:
            self._check_alive()
            try:
                return _http(method, probe)
            except urllib.error.HTTPError as error:
                last = f"{error.code} {error.read()[:300]!r}"
            except (urllib.error.URLError, OSError) as error:
                last = repr(error)
            if time.monotonic() > deadline:
                raise self._failure(f"timed out waiting for {what} ({probe}); last: {last}")
            time.sleep(0.05)

    def _wait_ready(self, deadline: float) -> None:
        self._poll(deadline, "service health", f"{self.service_url}/health")
        self._poll(deadline, "admin health", f"{self.admin}/health")
        self._poll(deadline, "ingress health", f"{self.ingress}/restate/health")
        while True:  # the node's own status: every role Ready (partition processors running)
            status = json.loads(self._poll(deadline, "node health", f"{self.node}/health"))
            if status.get("worker_status") == "Ready" and status.get("admin_status") == "Ready":
                return
            if time.monotonic() > deadline:
                raise self._failure(f"node not ready: {status}")
            time.sleep(0.05)

    def _register(self, deadline: float) -> None:
        body = json.dumps({"uri": self.service_url}).encode()
        while True:
            self._check_alive()
            try:
                _http("POST", f"{self.admin}/deployments", body, timeout=10.0)
                return
            except urllib.error.HTTPError as error:
                detail = error.read()[:500]
                if time.monotonic() > deadline:
                    raise self._failure(
                        f"registering {self.service_url}: {error.code} {detail!r}"
                    ) from error
            except (urllib.error.URLError, OSError) as error:
                if time.monotonic() > deadline:
                    raise self._failure(f"registering {self.service_url}: {error}") from error
            time.sleep(0.1)

    def _wait_ingress(self, deadline: float) -> None:
        """The ingress routes to the registered objects: a get on a probe key answers."""
        probe = self.get("__ready__")
        self._poll(deadline, "ingress routing", f"{self.ingress}{probe.path}", probe.method)
