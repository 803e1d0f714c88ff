"""The command line starts fast: ``pystatefun`` imports a command's module only when that
command is used, ``--help`` lists every command from a static table that cannot drift from the
commands themselves, and reading a data dir loads no runtime, HTTP stack or pydantic.

No test here times anything (bench/cli_startup.py measures); they check what gets imported, in a
fresh interpreter each, since this process has long imported everything.
"""

from __future__ import annotations

import inspect
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest

from pystatefun.cli import COMMANDS, cli
from pystatefun.cli._errors import CodedGroup

PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
# What a command that only reads a data dir (or prints help) must never load.
HEAVY = (
    "pystatefun.runtime",
    "pystatefun.bootstrap",
    "pystatefun.module",
    "pystatefun.http.server",  # the light part of pystatefun.http (HttpLimits) is allowed
    "pystatefun.http.client",
    "pystatefun.http._loop",
    "pystatefun.http._connection",
    "pystatefun.io",
    "pystatefun.sdk",
    "pystatefun.savepoint",
    "pystatefun.store.sqlite",
    "pystatefun.store.memory",
    "pydantic",
    "pydantic_core",
    "yaml",
    "httptools",
    "uvloop",
    "aiohttp",
    "asyncio",
    "ssl",
    "concurrent",
)
# Runs the command line as the console script does, then writes every module loaded since the
# interpreter started (before the command line's import) to the file named by argv[1].
PROBE = """\
import json, sys
before = set(sys.modules)
from pystatefun.cli import cli
try:
    cli.main(sys.argv[2:], prog_name="pystatefun", standalone_mode=False)
finally:
    with open(sys.argv[1], "w") as out:
        json.dump(sorted(set(sys.modules) - before), out)
"""


def _loaded_by(tmp_path: Path, *args: str) -> tuple[set[str], str]:
    """The modules a fresh interpreter loads to run ``pystatefun ARGS``, and its stdout."""
    record = tmp_path / "modules.json"
    result = subprocess.run(
        [sys.executable, "-c", PROBE, record, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return set(json.loads(record.read_text())), result.stdout


def _heavy(loaded: set[str]) -> list[str]:
    return sorted(m for m in loaded if any(m == h or m.startswith(f"{h}.") for h in HEAVY))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir with two carts, made the way a user would: ``pystatefun bootstrap``."""
    scratch = tmp_path_factory.mktemp("startup")
    (scratch / "carts.csv").write_text("id,items\nalice,3\nbob,5\n")
    mapping = ["--type", "shop/cart", "--id-column", "id", "--state", "items=items:int"]
    subprocess.run(
        [PYSTATEFUN, "bootstrap", scratch / "carts.csv", *mapping, "--data-dir", scratch / "data"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return scratch / "data"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_says_what_each_command_says_of_itself(name: str) -> None:
    command = cli.load(name)
    assert command.name == name
    assert command.help is not None
    assert COMMANDS[name].short_help == inspect.cleandoc(command.help).splitlines()[0]
    assert COMMANDS[name].short_help == command.get_short_help_str(limit=sys.maxsize)


def test_the_table_has_every_command() -> None:
    assert cli.list_commands(click.Context(cli)) == sorted(COMMANDS)


@pytest.mark.parametrize("width", [40, 60, 80, 100, 200])
def test_help_is_what_a_group_of_the_imported_commands_says(width: int) -> None:
    """Word for word, at every width (click shortens each line to fit)."""
    eager = CodedGroup(
        "pystatefun",
        commands=[cli.load(name) for name in COMMANDS],
        params=cli.params,
        help=cli.help,
        context_settings=cli.context_settings,
    )

    def help_of(group: click.Group) -> str:
        # The context settings as the console script applies them (click caches the help
        # option of a group once it ran, so a bare Context would depend on earlier tests).
        context = click.Context(
            group, info_name="pystatefun", terminal_width=width, **cli.context_settings
        )
        return group.get_help(context)

    assert help_of(cli) == help_of(eager)
    assert "\n  dead-letters  Batches" in help_of(cli)  # the commands are there at all


def test_help_imports_no_command(tmp_path: Path) -> None:
    loaded, out = _loaded_by(tmp_path, "--help")
    assert "Read the state of addresses, live and read-only." in out  # it ran
    assert "click" in loaded
    ours = {m for m in loaded if m.startswith("pystatefun")}
    lazy = {"pystatefun.cli", "pystatefun.cli._lazy", "pystatefun.cli._errors"}
    assert ours == {"pystatefun", "pystatefun.errors", *lazy}
    assert not _heavy(loaded)
    assert "sqlite3" not in loaded
    assert "google.protobuf" not in loaded


def test_a_command_imports_its_own_module_only(tmp_path: Path) -> None:
    loaded, out = _loaded_by(tmp_path, "savepoint", "--help")
    assert "Savepoints: back up a data dir" in out
    commands = {m for m in loaded if m.startswith("pystatefun.cli._")}
    lazy = {"pystatefun.cli._lazy", "pystatefun.cli._errors"}
    assert commands == {*lazy, "pystatefun.cli._savepoint", "pystatefun.cli._options"}


def test_run_help_does_not_load_the_runtime(tmp_path: Path) -> None:
    loaded, out = _loaded_by(tmp_path, "run", "--help")
    assert "--dead-letter-after" in out
    assert "pystatefun.cli._run" in loaded
    assert not _heavy(loaded)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["state", "ls"], '"shop/cart.items"'),
        (["state", "get", "shop/cart", "alice"], '"value": 3'),
        (["sql", "SELECT count(*) AS carts FROM state_values", "--format", "csv"], "carts\n2"),
        (["dead-letters", "list"], ""),
    ],
)
def test_reading_a_data_dir_loads_no_runtime_http_or_pydantic(
    tmp_path: Path, data_dir: Path, args: list[str], says: str
) -> None:
    loaded, out = _loaded_by(tmp_path, *args, "--data-dir", str(data_dir))
    assert says in out  # it ran, on the data dir
    assert "pystatefun.store.datadir" in loaded  # the probe works: the check is not vacuous
    assert not _heavy(loaded)


def test_an_unknown_command_is_still_told_the_nearest_one() -> None:
    result = subprocess.run(
        [PYSTATEFUN, "stat"], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 2
    assert "Error: No such command 'stat'. Did you mean 'state'?" in result.stderr


def test_every_command_imports_without_aiohttp() -> None:
    """aiohttp is an extra: no command may need it (loaded here all at once)."""
    code = (
        "import json, sys; from pystatefun.cli import COMMANDS, cli\n"
        "for name in COMMANDS: cli.load(name)\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert {"pystatefun.cli._serve", "pystatefun.cli._run", "pystatefun.bootstrap"} <= set(loaded)
    assert not [m for m in loaded if m.split(".")[0] == "aiohttp"]


@pytest.mark.parametrize("command", ["up", "down", "status"])
def test_cluster_help_loads_neither_nats_nor_the_local_cluster(
    tmp_path: Path, command: str
) -> None:
    loaded, out = _loaded_by(tmp_path, "cluster", command, "--help")
    assert "Usage: pystatefun cluster" in out
    commands = {m for m in loaded if m.startswith("pystatefun.cli._")}
    lazy = {"pystatefun.cli._lazy", "pystatefun.cli._errors"}
    assert commands == {*lazy, "pystatefun.cli._cluster", "pystatefun.cli._options"}
    assert "pystatefun.cluster" not in loaded
    assert not [m for m in loaded if m.split(".")[0] == "nats" or m.startswith("pystatefun.store")]
    assert not _heavy(loaded)
