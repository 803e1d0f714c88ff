"""What a user meets when a data dir is damaged, missing, or a command fails half-way: one coded
error with its page (never a traceback), and nothing left behind.

Every command is run as a real ``pystatefun`` subprocess on a real SQLite file, damaged the way
a user damages one (``truncate -s 100000``, or overwritten with other bytes).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from support.modules import write_module

from pystatefun.errors import NoSuchDeadLetterError
from pystatefun.store import DataDir

PYSTATEFUN = Path(sys.executable).parent / "pystatefun"


def _cli(*args: object, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYSTATEFUN, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False
    )


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A data dir of 20,000 addresses (about 1.4 MB): larger than the 100,000 bytes it is cut
    to, so the cut loses pages that queries read."""
    base = tmp_path_factory.mktemp("loaded")
    source = base / "users.csv"
    source.write_text("id,visits\n" + "".join(f"u{n},{n}\n" for n in range(20_000)))
    made = _cli("bootstrap", source, "--type", "t/c", "--id-column", "id",
                "--state", "visits=visits:int", "--data-dir", base / "data")  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert (base / "data" / "pystatefun.sqlite3").stat().st_size > 200_000
    return base


def _damaged(loaded: Path, tmp_path: Path, how: str) -> Path:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    database = data_dir / "pystatefun.sqlite3"
    original = (loaded / "data" / "pystatefun.sqlite3").read_bytes()
    if how == "truncated":
        database.write_bytes(original[:100_000])  # truncate -s 100000
    else:
        database.write_bytes(b"these are not the bytes of a database " * 100)
    return data_dir


def _commands(data_dir: Path, tmp_path: Path, loaded: Path) -> dict[str, list[object]]:
    module = write_module(tmp_path / "module.yaml", {"t/*": "http://127.0.0.1:9/{function.name}"})
    at = ["--data-dir", data_dir]
    return {
        "run": ["run", module, *at],
        "state ls": ["state", "ls", *at],
        "state get": ["state", "get", "t/c/u5", *at],
        "state export": ["state", "export", *at],
        "sql": ["sql", "SELECT COUNT(*) FROM state_values", *at],
        "savepoint create": ["savepoint", "create", tmp_path / "out.psfsp", *at],
        "bootstrap": [
            "bootstrap",
            loaded / "users.csv",
            "--type",
            "t/c",
            "--id-column",
            "id",
            "--state",
            "visits=visits:int",
            *at,
        ],
        "dead-letters list": ["dead-letters", "list", *at],
        "dead-letters redrive": ["dead-letters", "redrive", "--all", *at],
        "dead-letters delete": ["dead-letters", "delete", "--all", *at],
    }


@pytest.mark.parametrize("how", ["truncated", "overwritten"])
def test_a_damaged_data_dir_is_one_coded_error_on_every_command(
    loaded: Path, tmp_path: Path, how: str
) -> None:
    data_dir = _damaged(loaded, tmp_path, how)
    before = (data_dir / "pystatefun.sqlite3").read_bytes()
    for name, args in _commands(data_dir, tmp_path, loaded).items():
        result = _cli(*args)
        assert result.returncode == 1, (name, result.stdout, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert "Traceback" not in result.stderr, (name, result.stderr)
        assert lines[0].startswith(f"Error: {data_dir / 'pystatefun.sqlite3'} is damaged"), name
        assert lines[0].endswith("[PSF-ST0001]"), (name, lines)
        assert "pystatefun savepoint restore" in lines[0], name
        assert lines[-1] == "What it means and what to do: docs/errors/PSF-ST0001.md", name
        assert not (tmp_path / "out.psfsp").exists(), name
        # Nothing wrote to the damaged file (SQLite may leave its WAL beside it).
        assert (data_dir / "pystatefun.sqlite3").read_bytes() == before, name


def test_a_missing_data_dir_is_named_and_not_created(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"
    for args in (
        ("state", "ls"),
        ("dead-letters", "list"),
        ("savepoint", "create", tmp_path / "s"),
    ):
        result = _cli(*args, "--data-dir", missing)
        assert result.returncode == 1
        assert f"no pystatefun data dir at {missing}" in result.stderr
        assert "[PSF-RT0003]" in result.stderr
        assert not missing.exists()


def test_a_failed_restore_leaves_no_data_dir(tmp_path: Path) -> None:
    damaged = tmp_path / "cut.psfsp"
    fixture = Path(__file__).parents[2] / "fixtures" / "savepoints" / "v2.psfsp"
    damaged.write_bytes(fixture.read_bytes()[:-20])
    result = _cli("savepoint", "restore", damaged, "--data-dir", tmp_path / "new")
    assert result.returncode == 1
    assert "[PSF-SP0001]" in result.stderr
    assert not (tmp_path / "new").exists()
    # Into an existing empty directory: its files go, the directory stays.
    (tmp_path / "empty").mkdir()
    result = _cli("savepoint", "restore", damaged, "--data-dir", tmp_path / "empty")
    assert result.returncode == 1
    assert list((tmp_path / "empty").iterdir()) == []


def test_run_on_a_busy_port_leaves_no_data_dir(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        module = tmp_path / "module.yaml"
        module.write_text(
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: t/*\n"
            "  urlPathTemplate: http://127.0.0.1:9/{function.name}\n---\n"
            f"kind: io.statefun.playground.v1/ingress\nspec:\n  port: {port}\n"
        )
        result = _cli("run", module, "--data-dir", tmp_path / "data")
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "[PSF-RT0003]" in result.stderr
    assert not (tmp_path / "data").exists()


def test_dead_letters_by_unknown_ids_change_nothing_and_fail(loaded: Path, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    result = _cli("savepoint", "restore", Path(__file__).parents[2] / "fixtures" / "savepoints"
                  / "v2.psfsp", "--data-dir", data_dir)  # fmt: skip
    assert result.returncode == 0, result.stderr
    [letter] = DataDir(data_dir).dead_letters()
    for command in ("redrive", "delete"):
        result = _cli("dead-letters", command, "--id", letter.dead_letter_id, "--id", 99,
                      "--data-dir", data_dir)  # fmt: skip
        assert result.returncode == 1
        assert "no dead letter with id 99; nothing was changed" in result.stderr
        assert "[PSF-ST0002]" in result.stderr
        assert len(DataDir(data_dir).dead_letters()) == 1
    with pytest.raises(NoSuchDeadLetterError) as error:
        DataDir(data_dir).redrive([7, 99], now_ms=0)
    assert error.value.ids == [7, 99]
    deleted = _cli("dead-letters", "delete", "--id", letter.dead_letter_id, "--data-dir", data_dir)
    assert (deleted.returncode, deleted.stdout) == (0, "1\n")
    assert DataDir(data_dir).dead_letters() == []
    assert _cli("dead-letters", "delete", "--data-dir", data_dir).returncode == 2  # usage


def test_bootstrap_prints_only_its_summary_when_not_on_a_terminal(
    loaded: Path, tmp_path: Path
) -> None:
    result = _cli("bootstrap", loaded / "users.csv", "--type", "t/c", "--id-column", "id",
                  "--state", "visits=visits:int", "--data-dir", tmp_path / "d")  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("loaded 20,000 value(s) of 20,000 address(es) of t/c into ")


def test_state_get_takes_the_address_as_logs_print_it(loaded: Path) -> None:
    at = ("--data-dir", loaded / "data")
    one, two = _cli("state", "get", "t/c/u5", *at), _cli("state", "get", "t/c", "u5", *at)
    assert (one.returncode, two.returncode) == (0, 0), (one.stderr, two.stderr)
    assert json.loads(one.stdout) == json.loads(two.stdout)
    assert json.loads(one.stdout) == {"visits": {"typename": "io.statefun.types/int", "value": 5}}
    unknown = _cli("state", "get", "t/c/nobody", *at)
    assert (unknown.returncode, unknown.stderr) == (1, "Error: t/c/nobody holds no state\n")
    not_an_address = _cli("state", "get", "nonsense", *at)
    assert not_an_address.returncode == 2
    assert "give TYPENAME ID (shop/cart alice) or namespace/type/id" in not_an_address.stderr
