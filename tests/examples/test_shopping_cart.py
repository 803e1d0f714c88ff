"""The shopping-cart example (examples/shopping-cart/): its functions in the in-memory harness,
then the whole application end to end, as real ``pystatefun serve`` and ``pystatefun run``
processes driven over the playground ingress and egress (``module.yaml``), and as one
``pystatefun run`` process that runs the same functions embedded (``module-embedded.yaml``)."""

from __future__ import annotations

import importlib.util
import json
import sqlite3
import time
import urllib.request
from pathlib import Path
from types import ModuleType

from support.processes import start_listening_process
from support.runtime_process import PYSTATEFUN, start_runtime
from support.smoke_client import VERIFY_DEADLINE_S, await_records, drain

from pystatefun.testing import FunctionHarness

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "shopping-cart"
INVENTORY, CART = "shop/inventory", "shop/cart"


def _load_example() -> ModuleType:
    spec = importlib.util.spec_from_file_location("shopping_cart", EXAMPLE / "functions.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


shop = _load_example()
WINDOW_S = shop.RESERVATION_WINDOW.total_seconds()


def stocked(quantity: int = 10) -> FunctionHarness:
    harness = FunctionHarness(shop.functions)
    harness.send(INVENTORY, "apple", {"quantity": quantity}, shop.RESTOCK)
    harness.run()
    return harness


def add(harness: FunctionHarness, quantity: int, cart: str = "c1") -> None:
    harness.send(CART, cart, {"sku": "apple", "quantity": quantity}, shop.ADD_ITEM)
    harness.run()  # the cart, the inventory it asked, the cart again with the answer


def reserved(harness: FunctionHarness) -> tuple[int, int]:
    return (
        harness.state(INVENTORY, "apple", "stock"),
        harness.state(INVENTORY, "apple", "reserved"),
    )


def test_a_reservation_is_released_when_its_window_closes() -> None:
    harness = stocked()
    add(harness, 3)
    assert harness.state(CART, "c1", "items", type=shop.ITEMS) == {"apple": 3}
    assert reserved(harness) == (10, 3)
    [expiry] = harness.delayed()
    assert expiry.token == "expire-apple"

    assert harness.advance(WINDOW_S - 1) == 0  # not due yet
    assert harness.advance(1) > 0  # the expiry fires: the cart releases, the inventory applies
    assert reserved(harness) == (10, 0)
    assert harness.state(CART, "c1", "items", type=shop.ITEMS) == {}
    assert harness.delayed() == []


def test_adding_the_same_item_again_restarts_its_window() -> None:
    harness = stocked()
    add(harness, 1)
    harness.advance(WINDOW_S - 60)
    add(harness, 2)
    assert [timer.token for timer in harness.delayed()] == ["expire-apple"]  # one, re-scheduled
    harness.advance(60)
    assert reserved(harness) == (10, 3)  # the first window would have closed by now
    harness.advance(WINDOW_S)
    assert reserved(harness) == (10, 0)


def test_checkout_commits_the_stock_cancels_the_expiry_and_emits_the_receipt() -> None:
    harness = stocked()
    add(harness, 4)
    harness.send(CART, "c1", {}, shop.CHECKOUT)
    harness.run()
    assert reserved(harness) == (6, 0)
    assert harness.delayed() == []
    assert harness.state(CART, "c1", "items", type=shop.ITEMS) == {}
    [receipt] = harness.egress("io.statefun.playground/egress")
    assert receipt.topic == "receipts"
    assert json.loads(receipt.text) == {"cart": "c1", "items": {"apple": 4}}

    assert harness.advance(2 * WINDOW_S) == 0  # the cancelled expiry never fires
    assert reserved(harness) == (6, 0)


def test_removing_an_item_releases_it() -> None:
    harness = stocked()
    add(harness, 2)
    harness.send(CART, "c1", {"sku": "apple"}, shop.REMOVE_ITEM)
    harness.run()
    assert reserved(harness) == (10, 0)
    assert harness.delayed() == []


def test_more_than_the_free_stock_is_refused() -> None:
    harness = stocked(5)
    add(harness, 4, cart="c1")
    add(harness, 2, cart="c2")  # only 1 left unreserved
    assert harness.state(CART, "c2", "items", type=shop.ITEMS) is None  # nothing recorded
    assert reserved(harness) == (5, 4)
    assert [timer.target.id for timer in harness.delayed()] == ["c1"]


def post(url: str, typename: str, body: object, *, reply: bool = False) -> tuple[int, str]:
    headers = {"Content-Type": f"application/vnd.{typename}"}
    if reply:
        headers["Pystatefun-Request-Reply"] = "true"
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        return int(response.status), response.read().decode()


def wait_until_reserved(data_dir: Path) -> None:
    """Poll (bounded) until no message waits and the one reservation expiry is scheduled."""
    deadline = time.monotonic() + VERIFY_DEADLINE_S
    database = f"file:{data_dir / 'pystatefun.sqlite3'}?mode=ro"
    while True:
        with sqlite3.connect(database, uri=True) as db:
            waiting, timers = db.execute(
                "SELECT (SELECT COUNT(*) FROM inbox), (SELECT COUNT(*) FROM timers)"
            ).fetchone()
        if (waiting, timers) == (0, 1):
            return
        assert time.monotonic() < deadline, f"not reserved: {waiting} waiting, {timers} timers"
        time.sleep(0.05)  # the data dir is pull-only: poll it, bounded by the deadline


def module_copy(directory: Path, name: str, rewrites: dict[str, str]) -> Path:
    """The example's module ``name`` with ``rewrites`` made (each text is there once), its
    ingress and egress on free ports."""
    text = (EXAMPLE / name).read_text()
    for old, new in {**rewrites, "port: 8090": "port: 0", "port: 8091": "port: 0"}.items():
        assert text.count(old) == 1, old
        text = text.replace(old, new)
    path = directory / name
    path.write_text(text)
    return path


def run_the_shop(module: Path, data_dir: Path) -> None:
    """Run ``module`` and shop through its ingress: restock, add to a cart, check out."""
    runtime = start_runtime(module, data_dir)
    try:
        ingress = runtime.ingress
        assert post(f"{ingress}/shop/inventory/apple", "shop/Restock", {"quantity": 5})[0] == 202
        added = {"sku": "apple", "quantity": 2}
        assert post(f"{ingress}/shop/cart/c1", "shop/AddItem", added)[0] == 202
        # The reservation is recorded when the inventory's answer reaches the cart, after
        # the 202. The outside sees it as the cart's expiry, scheduled in the data dir.
        wait_until_reserved(data_dir)
        status, text = post(f"{ingress}/shop/cart/c1", "shop/Checkout", {}, reply=True)
        assert status == 200
        assert json.loads(text) == {"cart": "c1", "items": {"apple": 2}}
        assert await_records(runtime, "receipts", 1) == [text]
        assert drain(runtime, "receipts") == []
        assert runtime.terminate() == 0
    finally:
        runtime.kill()


def test_the_application_runs_end_to_end(tmp_path: Path) -> None:
    server = start_listening_process(
        [PYSTATEFUN, "serve", f"{EXAMPLE / 'functions.py'}:functions", "--port", "0"],
        drain=True,
    )
    try:
        served_at = {"http://127.0.0.1:8000/statefun": f"{server.url}/statefun"}
        run_the_shop(module_copy(tmp_path, "module.yaml", served_at), tmp_path / "data")
    finally:
        server.stop()


def test_the_embedded_variant_runs_end_to_end_with_no_function_server(tmp_path: Path) -> None:
    # The copy is elsewhere: import the example's own functions.py by its absolute path.
    imported = {"import: functions.py:": f"import: {EXAMPLE / 'functions.py'}:"}
    module = module_copy(tmp_path, "module-embedded.yaml", imported)
    run_the_shop(module, tmp_path / "data")
