"""``pystatefun bootstrap``: CSV and JSON Lines into a data dir or a savepoint, rows that do not
fit reported by line with nothing loaded, and the loaded state read by a running function
(served by our SDK over HTTP: any SDK reads the same bytes)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.inprocess import function_server, post, running, wait_for

from pystatefun import savepoint
from pystatefun.bootstrap import BootstrapError, MappingError, bootstrap, parse_state_column
from pystatefun.bootstrap.mapping import StateColumn
from pystatefun.protocol.typed_values import BOOL, INT, LONG, STRING
from pystatefun.query import StateSnapshot
from pystatefun.sdk import (
    IntType,
    StatefulFunctions,
    StringType,
    ValueSpec,
    make_json_type,
)

PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
PROFILE = make_json_type("example/Profile")
CSV = (
    "user_id,visits,name,profile,vip\n"
    'alice,3,Alice,"{""tier"": 2}",yes\n'
    'bob,0,Bob,"{""tier"": 1}",no\n'
)


def _columns() -> list[StateColumn]:
    return [
        parse_state_column(spec)
        for spec in (
            "visits=visits:int",
            "last_seen_name=name:string",
            "profile=profile:json:example/Profile",
            "vip=vip:bool",
        )
    ]


@pytest.mark.parametrize("value", [0, 1, -1, 7, 2**31 - 1, -(2**31), 300, 128, -129])
def test_fast_encodings_are_the_sdks_bytes(value: int) -> None:
    assert parse_state_column("a=c:int").encode(value) == INT.encode(value)
    assert parse_state_column("a=c:long").encode(value * 2**20) == LONG.encode(value * 2**20)
    text = "x" * abs(value % 400) + "é"
    assert parse_state_column("a=c:string").encode(text) == STRING.encode(text)
    assert parse_state_column("a=c:bool").encode(bool(value)) == BOOL.encode(bool(value))
    assert parse_state_column("a=c:int").encode(str(value)) == INT.encode(value)


def test_bad_mappings_and_values_say_what_to_fix() -> None:
    with pytest.raises(MappingError, match="NAME=COLUMN:TYPE"):
        parse_state_column("visits")
    with pytest.raises(MappingError, match="unknown type 'integer'"):
        parse_state_column("visits=v:integer")
    with pytest.raises(MappingError, match="not an int"):
        parse_state_column("a=c:int").encode("seven")
    with pytest.raises(MappingError, match="does not fit"):
        parse_state_column("a=c:int").encode(2**31)
    with pytest.raises(MappingError, match="not JSON"):
        parse_state_column("a=c:json:x/Y").encode("{oops")


async def test_a_csv_loads_into_a_data_dir_that_functions_then_read(tmp_path: Path) -> None:
    source = tmp_path / "users.csv"
    source.write_text(CSV)
    data_dir = tmp_path / "data"
    report = bootstrap(
        source, typename="example/user", id_column="user_id", columns=_columns(), data_dir=data_dir
    )
    assert (report.rows, report.addresses, report.values, report.failed) == (2, 2, 8, 0)
    with StateSnapshot(data_dir) as snapshot:
        assert snapshot.state_of(snapshot.addresses("example/user")[0]) == {
            "last_seen_name": ("io.statefun.types/string", "Alice"),
            "profile": ("example/Profile", '{"tier": 2}'),
            "visits": ("io.statefun.types/int", 3),
            "vip": ("io.statefun.types/bool", 1),
        }

    functions = StatefulFunctions()
    seen: list[tuple[int, str, dict[str, int]]] = []

    @functions.bind(
        "example/user",
        specs=[
            ValueSpec("visits", IntType),
            ValueSpec("last_seen_name", StringType),
            ValueSpec("profile", PROFILE),
        ],
    )
    def user(context, message):  # type: ignore[no-untyped-def]
        visits = context.storage.visits + 1
        context.storage.visits = visits
        seen.append((visits, context.storage.last_seen_name, context.storage.profile))

    async with function_server(functions) as url:
        module = tmp_path / "module.yaml"
        module.write_text(
            "kind: io.statefun.endpoints.v2/http\nspec:\n  functions: example/*\n"
            f"  urlPathTemplate: {url}\n---\n"
            "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n"
        )
        async with running(module, data_dir) as runtime:
            status, _, _ = await post(f"{runtime.ingress_url}/example/user/alice", b"hi")
            assert status == 202
            await wait_for(lambda: seen)
    assert seen == [(4, "Alice", {"tier": 2})]


def test_rows_that_do_not_fit_are_reported_by_line_and_nothing_is_loaded(tmp_path: Path) -> None:
    source = tmp_path / "users.jsonl"
    rows = [
        {"user_id": "a", "visits": 1, "name": "A", "profile": {"tier": 1}, "vip": True},
        {"user_id": "b", "visits": "many", "name": "B", "profile": {}, "vip": False},
        {"user_id": "", "visits": 1, "name": "C", "profile": {}, "vip": False},
        {"user_id": "a", "visits": 2, "name": "A2", "profile": {}, "vip": False},
        {"user_id": "d", "visits": 2, "profile": {}, "vip": False},
    ]
    source.write_text("\n".join(json.dumps(r) for r in rows) + "\n[1, 2]\n{broken\n")
    data_dir = tmp_path / "data"
    with pytest.raises(BootstrapError) as error:
        bootstrap(
            source,
            typename="example/user",
            id_column="user_id",
            columns=_columns(),
            data_dir=data_dir,
        )
    report = error.value.report
    assert report is not None
    assert [line for line, _ in report.errors] == [2, 3, 4, 5, 6, 7]
    reasons = dict(report.errors)
    assert "'many' is not an int" in reasons[2]
    assert "no id" in reasons[3]
    assert "again (first at line 1)" in reasons[4]
    assert "no value in column 'name'" in reasons[5]
    assert "must be an object" in reasons[6]
    assert "not JSON" in reasons[7]
    assert "6 of 7 row(s) do not fit, so nothing was loaded" in str(error.value)
    assert not data_dir.exists()  # made for the load, removed with it

    out = tmp_path / "out.psfsp"
    with pytest.raises(BootstrapError):
        bootstrap(
            source, typename="example/user", id_column="user_id", columns=_columns(), savepoint=out
        )
    assert not out.exists()
    assert list(tmp_path.glob("*.partial")) == []


def test_a_missing_column_is_named_before_any_row(tmp_path: Path) -> None:
    source = tmp_path / "users.csv"
    source.write_text(CSV)
    columns = [parse_state_column("visits=visit_count:int")]
    with pytest.raises(BootstrapError, match="no column 'visit_count'; the columns are user_id"):
        bootstrap(
            source,
            typename="example/user",
            id_column="user_id",
            columns=columns,
            data_dir=tmp_path / "d",
        )


def test_the_cli_writes_a_savepoint_that_restores(tmp_path: Path) -> None:
    source = tmp_path / "users.csv"
    source.write_text(CSV)
    out = tmp_path / "users.psfsp"
    done = subprocess.run(
        [str(PYSTATEFUN), "bootstrap", source, "--type", "example/user", "--id-column",
         "user_id", "--state", "visits=visits:int", "--state", "vip=vip:bool",
         "--savepoint", out],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "loaded 4 value(s) of 2 address(es) of example/user" in done.stderr
    header, counts = savepoint.info(out)
    assert counts == {"state": 4}
    assert header["bootstrap"] == {"source": "users.csv", "type": "example/user"}
    savepoint.restore(out, tmp_path / "data", key_groups=5)
    with StateSnapshot(tmp_path / "data") as snapshot:
        _, rows = snapshot.query('SELECT id, value FROM "example/user.visits" ORDER BY id')
    assert rows == [("alice", 3), ("bob", 0)]
    bad = subprocess.run(
        [str(PYSTATEFUN), "bootstrap", source, "--type", "example/user", "--id-column",
         "user_id", "--state", "visits"], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert bad.returncode == 2
    assert "NAME=COLUMN:TYPE" in bad.stderr


@pytest.mark.parametrize("parallel", [True, False])
def test_reading_in_a_child_process_loads_and_fails_the_same(
    tmp_path: Path, parallel: bool
) -> None:
    """Large inputs are read and encoded in a forked child while the parent writes; small ones
    in one process. Both load the same rows, and report the same bad rows."""
    good = tmp_path / "good.csv"
    good.write_text("user_id,visits\n" + "".join(f"u{n},{n}\n" for n in range(50_000)))
    target = {
        "typename": "example/user",
        "id_column": "user_id",
        "columns": [parse_state_column("visits=visits:int")],
    }
    report = bootstrap(good, **target, data_dir=tmp_path / "data", parallel=parallel)
    assert (report.rows, report.values, report.failed) == (50_000, 50_000, 0)
    with StateSnapshot(tmp_path / "data") as snapshot:
        _, rows = snapshot.query('SELECT count(*), sum(value) FROM "example/user.visits"')
    assert rows == [(50_000, sum(range(50_000)))]
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,visits\nu1,1\nu2,two\n" + "".join(f"v{n},{n}\n" for n in range(30_000)))
    with pytest.raises(BootstrapError) as error:
        bootstrap(bad, **target, data_dir=tmp_path / "other", parallel=parallel)
    assert error.value.report is not None
    assert error.value.report.errors == [
        (3, "column 'visits' (state 'visits'): 'two' is not an int")
    ]
    assert error.value.report.rows == 30_002
    assert not (tmp_path / "other").exists()
    unreadable = tmp_path / "users.txt"
    unreadable.write_text("user_id\n")
    with pytest.raises(BootstrapError, match="cannot tell the format"):
        bootstrap(unreadable, **target, data_dir=tmp_path / "third", parallel=parallel)


def test_parquet_loads_like_csv(tmp_path: Path) -> None:
    import pyarrow as pa  # the dev extra installs it
    import pyarrow.parquet as pq

    table = pa.table({
        "user_id": ["alice", "bob"],
        "visits": [3, 0],
        "profile": ['{"tier": 2}', '{"tier": 1}'],
        "extra": [1.5, 2.5],
    })  # fmt: skip
    source = tmp_path / "users.parquet"
    pq.write_table(table, source)
    columns = [parse_state_column(s) for s in ("visits=visits:int", "profile=profile:json:x/P")]
    report = bootstrap(
        source,
        typename="example/user",
        id_column="user_id",
        columns=columns,
        data_dir=tmp_path / "d",
    )
    assert (report.rows, report.values) == (2, 4)
    with StateSnapshot(tmp_path / "d") as snapshot:
        _, rows = snapshot.query('SELECT id, value FROM "example/user.visits" ORDER BY id')
    assert rows == [("alice", 3), ("bob", 0)]
    missing = [parse_state_column("visits=count:int")]
    with pytest.raises(BootstrapError, match="no column 'count'"):
        bootstrap(
            source,
            typename="example/user",
            id_column="user_id",
            columns=missing,
            data_dir=tmp_path / "e",
        )
