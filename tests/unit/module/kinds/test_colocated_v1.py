"""``io.pystatefun.endpoints.v1/colocated``: fields, defaults, each error at its line, the dump
round trip and the ``module validate`` line."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from pystatefun.errors import ModuleError
from pystatefun.module import ColocatedEndpoint, Transport, dump_module, load_module

Write = Callable[..., Path]  # fixtures from ../conftest.py
LoadError = Callable[[Path], ModuleError]

HEAD = "kind: io.pystatefun.endpoints.v1/colocated\nspec:\n"
MINIMAL = "  functions: shop/*\n  command: [pystatefun, serve, f.py:functions]\n"


def endpoint(write: Write, spec: str) -> ColocatedEndpoint:
    loaded = load_module(write(HEAD + spec))
    assert loaded.warnings == ()
    found = loaded.endpoints[0]
    assert isinstance(found, ColocatedEndpoint)
    return found


def test_defaults(write: Write, tmp_path: Path) -> None:
    loaded = endpoint(write, MINIMAL)
    assert loaded == ColocatedEndpoint(
        functions="shop/*",
        command=("pystatefun", "serve", "f.py:functions"),
        listen="unix",
        path="/statefun",
        env=(),
        working_dir=tmp_path,
        startup_timeout_s=30.0,
        restart_backoff_initial_s=0.5,
        restart_backoff_max_s=30.0,
        shutdown_grace_s=10.0,
        max_num_batch_requests=1000,
        transport=Transport(
            kind=Transport.ASYNC,
            call_timeout_s=120.0,
            connect_timeout_s=20.0,
            read_timeout_s=None,
            write_timeout_s=None,
            pool_ttl_s=15.0,
            pool_size=1024,
            payload_max_bytes=33_554_432,
        ),
        location=loaded.location,
    )
    assert (loaded.location.line, loaded.matches("shop/cart"), loaded.matches("x/y")) == (
        1,
        True,
        False,
    )


def test_overrides(write: Write, tmp_path: Path) -> None:
    loaded = endpoint(
        write,
        """\
  functions: shop/cart
  command:
    - "{python}"
    - server.py
    - --port
    - "{port}"
  listen: tcp
  path: /fn/{function.name}
  env: {HOST: "{host}", MODE: fast}
  workingDir: servers
  startupTimeout: 5s
  restartBackoff: {initial: 100ms, max: 2s}
  shutdownGrace: 0
  maxNumBatchRequests: 0
  transport:
    type: io.statefun.transports.v1/okhttp
    timeouts: {call: 30s}
""",
    )
    assert loaded.command == ("{python}", "server.py", "--port", "{port}")
    assert (loaded.listen, loaded.path) == (ColocatedEndpoint.TCP, "/fn/{function.name}")
    assert loaded.env == (("HOST", "{host}"), ("MODE", "fast"))
    assert loaded.working_dir == tmp_path / "servers"
    assert (loaded.startup_timeout_s, loaded.shutdown_grace_s) == (5.0, 0.0)
    assert (loaded.restart_backoff_initial_s, loaded.restart_backoff_max_s) == (0.1, 2.0)
    assert loaded.max_num_batch_requests == 0
    assert (loaded.transport.kind, loaded.transport.call_timeout_s) == (Transport.OKHTTP, 30.0)


def test_an_absolute_working_dir_stays(write: Write) -> None:
    assert endpoint(write, MINIMAL + "  workingDir: /srv/app\n").working_dir == Path("/srv/app")


@pytest.mark.parametrize(
    ("spec", "line", "field", "says"),
    [
        ("  functions: a/*\n", 2, "spec.command", "required field is missing"),
        (
            "  functions: a/*\n  command: pystatefun serve f.py:functions\n",
            4,
            "spec.command",
            "'pystatefun serve f.py:functions' is one string; give the command as a list of its "
            "words",
        ),
        ("  functions: a/*\n  command: []\n", 4, "spec.command", "[] is empty; give at least one"),
        (
            "  functions: a/*\n  command: ['', x]\n",
            4,
            "spec.command",
            "the program (the first word of the command) is empty",
        ),
        (
            "  functions: a/*\n  command:\n    - serve\n    - {socket}\n",
            6,
            "spec.command[1]",
            '{socket} is read by YAML as a mapping; quote the placeholder: "{socket}"',
        ),
        ("  functions: a/*\n  command: [serve, 8000]\n", 4, "spec.command[1]", "8000 is not a str"),
        (
            "  functions: a/*\n  command: [serve, --port, '{port}']\n",
            4,
            "spec.command[2]",
            "{port} is only set with `listen: tcp`; with `listen: unix` the placeholders are "
            "{socket}, {python}",
        ),
        (
            "  functions: a/*\n  command: [serve, '{socket}']\n  listen: tcp\n",
            4,
            "spec.command[1]",
            "{socket} is only set with `listen: unix`; with `listen: tcp` the placeholders are "
            "{host}, {port}, {python}",
        ),
        (
            "  functions: a/*\n  command: [serve]\n  env:\n    PORT: '{port}'\n",
            6,
            "spec.env.PORT",
            "{port} is only set with `listen: tcp`",
        ),
        ("  functions: a/*\n  command: [serve]\n  env: {N: 1}\n", 5, "spec.env.N", "1 is not a s"),
        ("  functions: a/*\n  command: [serve]\n  listen: udp\n", 5, "spec.listen", "'udp'"),
        (
            "  functions: a/*\n  command: [serve]\n  path: statefun\n",
            5,
            "spec.path",
            "'statefun' does not start with '/'",
        ),
        (
            "  functions: a/*\n  command: [serve]\n  path: '/{function.namespace}'\n",
            5,
            "spec.path",
            "'/{function.namespace}' has a placeholder other than {function.name}",
        ),
        (
            "  functions: a/*\n  command: [serve]\n  startupTimeout: 0s\n",
            5,
            "spec.startupTimeout",
            "a timeout of '0s' is zero",
        ),
        (
            "  functions: a/*\n  command: [serve]\n  restartBackoff:\n    initial: 5s\n"
            "    max: 1s\n",
            7,
            "spec.restartBackoff.max",
            "max (1000 ms) is shorter than initial (5000 ms)",
        ),
        (
            "  functions: a/*\n  command: [serve]\n  shutdownGrace: soon\n",
            5,
            "spec.shutdownGrace",
            "'soon' is not a duration",
        ),
        (
            "  functions: a/*\n  command: [serve]\n  transport:\n    trust_cacerts: ca.pem\n",
            6,
            "spec.transport.trust_cacerts",
            "a co-located server is called over a Unix socket or 127.0.0.1 without TLS",
        ),
        (
            "  functions: a/*\n  command: [serve]\n  transport:\n    type: my/grpc\n",
            6,
            "spec.transport.type",
            "unknown transport type 'my/grpc'",
        ),
    ],
)
def test_errors(
    write: Write, load_error: LoadError, spec: str, line: int, field: str, says: str
) -> None:
    path = write(HEAD + spec)
    error = load_error(path)
    assert (error.file, error.line, error.field) == (path, line, field)
    assert error.reason.startswith(says), error.reason


def test_unknown_fields_are_warnings_with_a_suggestion(write: Write) -> None:
    path = write(HEAD + MINIMAL + "  restartBackof: {}\n  restartBackoff: {maximum: 1s}\n")
    warnings = load_module(path).warnings
    assert warnings[-2].startswith(
        f"{path}:5: spec.restartBackof: unknown field, ignored (as StateFun does); did you "
        "mean 'restartBackoff'?"
    )
    assert warnings[-1].startswith(f"{path}:6: spec.restartBackoff.maximum: unknown field")


def test_load_dump_load_gives_the_same_module(write: Write, tmp_path: Path) -> None:
    spec = MINIMAL + "  env: {A: '{socket}'}\n  shutdownGrace: 0\n  workingDir: x\n"
    loaded = load_module(write(HEAD + spec))
    again = load_module(write(dump_module(loaded), "dumped.yaml"))
    assert again == loaded
    assert again.endpoints[0].working_dir == tmp_path / "x"  # type: ignore[union-attr]


def test_module_validate_describes_it(write: Write) -> None:
    path = write(HEAD + MINIMAL.replace("f.py:functions]", "f.py:functions, '{socket}']"))
    result = subprocess.run(
        [Path(sys.executable).parent / "pystatefun", "module", "validate", path],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"{path}:1: co-located endpoint shop/* -> `pystatefun serve f.py:functions "
        "'{socket}'` (over a unix socket at /statefun; async transport: call 120s, connect 20s; "
        "batches of up to 1000)\n"
    )
