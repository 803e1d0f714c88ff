"""``pystatefun sql`` / ``pystatefun state`` and ``StateSnapshot`` on a live runtime: a real
SQLite data dir that the runtime keeps writing while it is read, and the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.inprocess import FakeClock, post, running, wait_for

from pystatefun.errors import DataDirError
from pystatefun.query import StateSnapshot
from pystatefun.runtime import Runtime

PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
FUNCTIONS = """\
from datetime import timedelta
from pystatefun.sdk import IntType, StatefulFunctions, ValueSpec, make_json_type

CART = make_json_type("shop/Cart")
functions = StatefulFunctions()


@functions.bind("shop/cart", specs=[
    ValueSpec("items", CART),
    ValueSpec("adds", IntType),
    ValueSpec("seen", IntType, expire_after_write=timedelta(seconds=10)),
])
def cart(context, message):
    sku = message.as_string()
    items = context.storage.items or {}
    items[sku] = items.get(sku, 0) + 1
    context.storage.items = items
    context.storage.adds = (context.storage.adds or 0) + 1
    context.storage.seen = 1
"""
STRING = {"Content-Type": "application/vnd.io.statefun.types/string"}


def _module(tmp_path: Path) -> Path:
    (tmp_path / "cart_fns.py").write_text(FUNCTIONS)
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: shop/*\n"
        "  import: cart_fns.py:functions\n---\n"
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n"
    )
    return module


async def _add(runtime: Runtime, cart: str, sku: str) -> None:
    status, _, _ = await post(f"{runtime.ingress_url}/shop/cart/{cart}", sku.encode(), STRING)
    assert status == 202


async def _settled(runtime: Runtime, adds: int) -> None:
    """Until every message is processed and durable (what a snapshot can see)."""

    def done() -> bool:
        with StateSnapshot(runtime.options.data_dir) as snapshot:
            _, rows = snapshot.query(
                "SELECT coalesce(sum(value), 0) FROM state_values WHERE name = 'adds'"
            )
        return bool(rows[0][0] == adds)

    await wait_for(done)


async def test_views_decode_values_and_json_functions_work_on_a_live_runtime(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    clock = FakeClock()
    async with running(_module(tmp_path), data_dir, clock_ms=clock) as runtime:
        for cart, sku in [("c1", "apple"), ("c1", "apple"), ("c1", "pear"), ("c2", "fig")]:
            await _add(runtime, cart, sku)
        await _settled(runtime, 4)
        with StateSnapshot(data_dir, now_ms=clock.now_ms) as snapshot:
            names = [(v.namespace, v.type, v.name, v.addresses) for v in snapshot.views]
            assert names == [("shop", "cart", n, 2) for n in ("adds", "items", "seen")]
            _, rows = snapshot.query(
                "SELECT id, json_extract(value, '$.apple') FROM \"shop/cart.items\" ORDER BY id"
            )
            assert rows == [("c1", 2), ("c2", None)]
            _, rows = snapshot.query('SELECT typeof(value), value FROM "shop/cart.adds"')
            assert sorted(rows) == [("integer", 1), ("integer", 3)]
            # TTL: values that expired by the snapshot's time are not there.
        with StateSnapshot(data_dir, now_ms=clock.now_ms + 11_000) as later:
            assert [v.name for v in later.views] == ["adds", "items"]
            assert later.state_of(later.addresses("shop/cart")[0])["adds"][1] == 3


async def test_a_snapshot_is_consistent_while_the_runtime_keeps_committing(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    async with running(_module(tmp_path), data_dir) as runtime:
        await _add(runtime, "c1", "apple")
        await _settled(runtime, 1)
        with StateSnapshot(data_dir) as snapshot:
            for n in range(5):
                await _add(runtime, f"n{n}", "kiwi")  # committed while the snapshot is open
            await _settled(runtime, 6)  # a new snapshot sees them...
            _, rows = snapshot.query('SELECT count(*) FROM "shop/cart.adds"')
            assert rows == [(1,)]  # ...the open one still does not: one point in time
            assert [a.id for a in snapshot.addresses()] == ["c1"]


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PYSTATEFUN), *args], capture_output=True, text=True, timeout=60, check=False
    )


async def test_the_cli_reads_a_running_runtime_and_refuses_to_write(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    async with running(_module(tmp_path), data_dir) as runtime:
        for cart, sku in [("c1", "apple"), ("c2", "fig"), ("c2", "fig")]:
            await _add(runtime, cart, sku)
        await _settled(runtime, 3)
        where = ("--data-dir", str(data_dir))
        done = _cli("sql", 'SELECT id, value FROM "shop/cart.adds" ORDER BY id', *where)
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["id  value", "--  -----", "c1  1", "c2  2"]
        assert done.stderr.strip() == "2 row(s)"
        as_json = _cli("sql", "SELECT name, count(*) AS n FROM state_values GROUP BY name",
                       "--format", "json", *where)  # fmt: skip
        assert json.loads(as_json.stdout) == [
            {"name": "adds", "n": 2},
            {"name": "items", "n": 2},
            {"name": "seen", "n": 2},
        ]
        got = json.loads(_cli("state", "get", "shop/cart", "c2", *where).stdout)
        assert got["items"] == {"typename": "shop/Cart", "value": '{"fig": 2}'}
        exported = _cli("state", "export", "shop/cart", *where)
        assert [json.loads(line)["id"] for line in exported.stdout.splitlines()] == ["c1", "c2"]
        assert _cli("state", "ls", "shop/cart", "--format", "csv", *where).stdout.split() == [
            "id",
            "c1",
            "c2",
        ]
        refused = _cli("sql", "DELETE FROM state", *where)
        assert refused.returncode == 1
        assert "readonly" in refused.stderr
        assert "only reads" in refused.stderr
        missing = _cli("state", "get", "shop/cart", "nobody", *where)
        assert (missing.returncode, "holds no state" in missing.stderr) == (1, True)
        bad_sql = _cli("sql", "SELEC 1", *where)
        assert bad_sql.returncode == 1
        assert "SQL error" in bad_sql.stderr
        no_view = _cli("sql", 'SELECT * FROM "shop/nothing.here"', *where)
        assert "pystatefun state ls" in no_view.stderr
        # The runtime was never blocked: it still takes and processes messages.
        await _add(runtime, "c3", "plum")
        await _settled(runtime, 4)


def test_a_missing_data_dir_is_named(tmp_path: Path) -> None:
    with pytest.raises(DataDirError, match="no pystatefun data dir"):
        StateSnapshot(tmp_path / "nowhere")
    done = _cli("state", "ls", "--data-dir", str(tmp_path / "nowhere"))
    assert done.returncode == 1
    assert "no pystatefun data dir" in done.stderr
