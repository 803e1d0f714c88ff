"""The web console on the admin port, in a real browser: a ``pystatefun run`` process, known
messages sent through its ingress, then Debian's Chromium (headless, driven by Playwright)
asserting on what a person sees. Every wait is one of Playwright's waiting assertions; each
test saves a screenshot and checks it is a real PNG. With ``PYSTATEFUN_UPDATE_SCREENSHOTS=1``
the load test also writes docs/images/console.png.

The module: ``con/*`` co-located (``pystatefun serve``; remote calls, so latencies are timed):
``con/counter`` keeps an int, a JSON profile and three raw bytes, and on its first message
sends itself a delayed message an hour ahead; ``park/*`` is served nowhere that answers, so
its messages wait in their mailbox (blocked, retried); ``zz/none`` has no endpoint, so its
messages are dead letters at once.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect
from support.browser import chromium, is_png
from support.runtime_process import RuntimeProcess, start_runtime

from pystatefun import savepoint as savepoints

WAIT_MS = 30_000  # a re-drive is picked up within 5 s; a loaded CI machine is slower
DOCS_SCREENSHOT = Path(__file__).resolve().parents[3] / "docs" / "images" / "console.png"

FUNCTIONS = """\
from datetime import timedelta

from pystatefun.sdk import (
    IntType, StatefulFunctions, ValueSpec, make_json_type, message_builder, simple_type,
)

PROFILE = make_json_type("con/Profile")
BLOB = simple_type("con/Blob", serialize_fn=bytes, deserialize_fn=bytes)
functions = StatefulFunctions()


@functions.bind("con/counter", specs=[ValueSpec("count", IntType), ValueSpec("profile", PROFILE),
                                      ValueSpec("blob", BLOB)])
def counter(context, message):
    count = (context.storage.count or 0) + 1
    context.storage.count = count
    context.storage.profile = {"name": context.address.id, "visits": count}
    context.storage.blob = bytes([0, 255, count % 256])
    if count == 1:
        reminder = message_builder("con/counter", context.address.id, str_value="reminder")
        context.send_after(timedelta(hours=1), reminder, cancellation_token="remind")
"""

MODULE = """\
kind: io.pystatefun.endpoints.v1/colocated
spec:
  functions: con/*
  command: ["{python}", -m, pystatefun, serve, console_functions.py:functions,
            --unix-socket, "{socket}"]
  transport: {call: 20s}
---
kind: io.statefun.endpoints.v2/http
spec:
  functions: park/*
  urlPathTemplate: http://127.0.0.1:9/statefun
  transport: {call: 1s}
---
kind: io.statefun.playground.v1/ingress
spec: {port: 0}
---
kind: io.statefun.playground.v1/egress
spec: {port: 0, topics: [out]}
"""


def _start(directory: Path, *extra: str) -> RuntimeProcess:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "console_functions.py").write_text(FUNCTIONS)
    (directory / "module.yaml").write_text(MODULE)
    return start_runtime(directory / "module.yaml", directory / "data", "--admin-port", "0",
                         "--durability", "os", "--dead-letter-after", "1000", *extra)  # fmt: skip


def _send(runtime: RuntimeProcess, path: str, body: str) -> None:
    request = urllib.request.Request(f"{runtime.ingress}/{path}", data=body.encode())
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 202


def _get(url: str, token: str | None = None) -> tuple[int, str]:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    expect.set_options(timeout=WAIT_MS)
    with chromium() as launched:
        yield launched


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RuntimeProcess]:
    """The runtime, sent 5 messages for con/counter/alice, 3 for bob, 2 for park/waiting/a
    and 1 for zz/none/x."""
    runtime = _start(tmp_path_factory.mktemp("console"), "--savepoint-dir",
                     str(tmp_path_factory.mktemp("savepoints")))  # fmt: skip
    try:
        for path, times in (("con/counter/alice", 5), ("con/counter/bob", 3),
                            ("park/waiting/a", 2), ("zz/none/x", 1)):  # fmt: skip
            for n in range(times):
                _send(runtime, path, f"p{n + 1}")
        yield runtime
    finally:
        runtime.terminate()


@pytest.fixture
def page(browser: Browser, app: RuntimeProcess) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def _screenshot(page: Page, path: Path) -> None:
    page.screenshot(path=str(path))
    assert is_png(path), path


def test_the_overview_and_the_function_types_show_the_messages_sent(
    page: Page, app: RuntimeProcess, tmp_path: Path
) -> None:
    page.goto(f"{app.admin}/")
    expect(page.locator("#status")).to_have_text("serving")
    expect(page.locator("#total-in")).to_have_text("8 total")  # alice's 5 and bob's 3
    expect(page.locator("#total-out")).to_have_text("2 sent · 0 egress")  # two reminders
    expect(page.locator("#dead-letters")).to_have_text("1")
    expect(page.locator("#delayed")).to_have_text("2")
    counter = page.locator('#functions tr[data-type="con/counter"] td')
    expect(counter.nth(1)).to_have_text("8")  # in
    expect(counter.nth(3)).to_have_text("2")  # out
    expect(counter.nth(9)).to_contain_text("ms")  # p50 of its remote calls
    parked = page.locator('#functions tr[data-type="park/waiting"] td')
    expect(parked.nth(6)).to_have_text("1")  # blocked
    expect(parked.nth(8)).not_to_have_text("0")  # failures, counted as they happen
    expect(page.locator("#latency")).to_contain_text("ms")
    _screenshot(page, tmp_path / "overview.png")


def test_an_address_shows_its_state_decoded_its_mailbox_and_its_timers(
    page: Page, app: RuntimeProcess, tmp_path: Path
) -> None:
    page.goto(f"{app.admin}/#address/con%2Fcounter/alice")
    state = page.locator("#address-state tbody")
    expect(page.locator("#address-title")).to_have_text("con/counter/alice")
    expect(state.locator("tr", has_text="count")).to_contain_text("int 5")
    expect(state.locator("tr", has_text="profile")).to_contain_text(
        'json {"name": "alice", "visits": 5}'
    )
    expect(state.locator("tr", has_text="blob")).to_contain_text("hex 00 ff 05")
    timers = page.locator("#address-timers tbody tr")
    expect(timers).to_have_count(1)
    expect(timers.first).to_contain_text("remind")
    expect(timers.first).to_contain_text("string reminder")
    expect(timers.first).to_contain_text("in 59m")
    _screenshot(page, tmp_path / "address.png")

    page.fill("#address-type", "park/waiting")
    page.fill("#address-id", "a")
    page.click("#address-button")
    expect(page.locator("#address-title")).to_have_text("park/waiting/a")
    mailbox = page.locator("#address-mailbox tbody tr")
    expect(mailbox).to_have_count(2)
    expect(mailbox.nth(0)).to_contain_text("an ingress")
    expect(mailbox.nth(0)).to_contain_text("string p1")
    expect(mailbox.nth(1)).to_contain_text("string p2")

    page.fill("#address-type", "nonsense")
    page.click("#address-button")
    expect(page.locator("#address-error")).to_contain_text("'nonsense' is not a function type")
    expect(page.locator("#address-result")).to_be_hidden()


def test_a_dead_letter_is_re_driven_and_then_deleted(
    page: Page, app: RuntimeProcess, tmp_path: Path
) -> None:
    page.goto(f"{app.admin}/#dead-letters")
    letters = page.locator("#dead-table tbody tr")
    expect(letters).to_have_count(1)
    expect(letters.first).to_contain_text("zz/none/x")
    expect(letters.first).to_contain_text("PSF-RT0002")
    first_id = letters.first.get_attribute("data-id")
    _screenshot(page, tmp_path / "dead-letters.png")

    letters.first.locator('[data-action="redrive"]').click()
    expect(page.locator("#dead-flash")).to_contain_text(
        f"Re-drove dead letter {first_id}: 1 message(s)"
    )
    # Served by nothing still, the message fails again: a new dead letter, the old one gone.
    expect(page.locator(f'#dead-table tr[data-id="{first_id}"]')).to_have_count(0)
    expect(letters).to_have_count(1)
    expect(letters.first).to_contain_text("zz/none/x")
    second_id = letters.first.get_attribute("data-id")
    assert second_id != first_id

    delete = letters.first.locator('[data-action="delete"]')
    delete.click()
    expect(delete).to_have_text("Delete for good?")  # a second click deletes
    delete.click()
    expect(page.locator("#dead-flash")).to_have_text(f"Deleted dead letter {second_id}.")
    expect(page.locator("#dead-empty")).to_be_visible()
    expect(page.locator("#dead-letters")).to_have_text("0")


def test_the_sql_box_shows_rows_and_refuses_a_write(
    page: Page, app: RuntimeProcess, tmp_path: Path
) -> None:
    page.goto(f"{app.admin}/#sql")
    page.fill("#sql-query", 'SELECT id, value FROM "con/counter.count" ORDER BY id')
    page.click("#sql-run")
    rows = page.locator("#sql-result tbody tr")
    expect(rows).to_have_count(2)
    expect(page.locator("#sql-result thead")).to_have_text("idvalue")
    expect(rows.nth(0)).to_have_text("alice5")
    expect(rows.nth(1)).to_have_text("bob3")
    expect(page.locator("#sql-info")).to_contain_text("2 row(s)")
    _screenshot(page, tmp_path / "sql.png")

    page.fill("#sql-query", "DELETE FROM state")
    page.click("#sql-run")
    expect(page.locator("#sql-error")).to_contain_text("attempt to write a readonly database")
    expect(page.locator("#sql-error")).to_contain_text("only reads")


def test_the_savepoint_button_writes_a_savepoint_file(
    page: Page, app: RuntimeProcess, tmp_path: Path
) -> None:
    page.goto(f"{app.admin}/#savepoint")
    page.click("#savepoint-take")
    expect(page.locator("#savepoint-path")).to_contain_text(".psfsp")
    path = Path(page.locator("#savepoint-path").inner_text())
    expect(page.locator("#savepoint-counts tbody tr", has_text="state")).to_contain_text("6")
    _screenshot(page, tmp_path / "savepoint.png")
    assert path.is_file()
    assert path.parent == Path(page.locator("#savepoint-dir").inner_text())
    _, counts = savepoints.info(path)  # reads it through and checks it
    assert counts["state"] == 6  # alice's and bob's count, profile and blob
    assert counts["timer"] == 2
    assert not list(path.parent.glob("*.partial"))


def test_with_a_token_the_page_asks_for_it_and_the_api_refuses_without_it(
    browser: Browser, tmp_path: Path
) -> None:
    (tmp_path / "token").write_text("s3cret-admin\n")
    runtime = _start(tmp_path / "app", "--admin-token-file", str(tmp_path / "token"))
    try:
        _send(runtime, "con/counter/alice", "hello")
        status, body = _get(f"{runtime.admin}/api/overview")
        assert status == 401
        assert json.loads(body)["code"] == "unauthorized"
        assert _get(f"{runtime.admin}/metrics")[0] == 401
        assert _get(f"{runtime.admin}/health") == (200, "alive\n")
        assert _get(f"{runtime.admin}/ready")[0] == 200
        assert _get(f"{runtime.admin}/api/overview", "s3cret-admin")[0] == 200
        status, html = _get(f"{runtime.admin}/")  # the page, which holds no data
        assert status == 200
        assert "con/counter" not in html

        context = browser.new_context(viewport={"width": 1366, "height": 768})
        page = context.new_page()
        page.goto(f"{runtime.admin}/")
        expect(page.locator("#login")).to_be_visible()
        expect(page.locator("#app")).to_be_hidden()
        _screenshot(page, tmp_path / "login.png")
        page.fill("#token", "wrong")
        page.click("#login-button")
        expect(page.locator("#login-error")).to_have_text("The token was refused.")
        page.fill("#token", "s3cret-admin")
        page.click("#login-button")
        expect(page.locator("#app")).to_be_visible()
        expect(page.locator("#total-in")).to_have_text("1 total")
        context.close()
    finally:
        runtime.terminate()


def _load(runtime: RuntimeProcess, stop: threading.Event, pace_s: float) -> None:
    n = 0
    while not stop.wait(pace_s * (1 + 0.6 * math.sin(n / 60))):  # paced; nothing waits on it
        _send(runtime, f"con/counter/u{n % 10}", "visit")
        n += 1


def test_live_figures_and_charts_update_under_load_without_a_reload(
    browser: Browser, tmp_path: Path
) -> None:
    """With PYSTATEFUN_UPDATE_SCREENSHOTS=1, for 45 s of charts, then docs/images/console.png."""
    docs = os.environ.get("PYSTATEFUN_UPDATE_SCREENSHOTS") == "1"
    runtime = _start(tmp_path / "app")
    stop = threading.Event()
    loader = threading.Thread(target=_load, args=(runtime, stop, 0.04 if docs else 0.02))
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    try:
        page = context.new_page()
        page.goto(f"{runtime.admin}/")
        expect(page.locator("#total-in")).to_have_text("0 total")
        loader.start()
        if docs:  # a dead letter, as a real runtime has now and then
            _send(runtime, "zz/none/x", "lost")
        expect(page.locator("#rate-in")).to_have_text(re.compile(r"^[1-9]"))  # per second
        expect(page.locator("#total-in")).not_to_have_text("0 total")
        points = 45 if docs else 3
        page.wait_for_function(
            f"() => Number(document.getElementById('chart-messages').dataset.points) >= {points}",
            timeout=(points + 30) * 1000,
        )
        expect(page.locator('#functions tr[data-type="con/counter"]')).to_be_visible()
        _screenshot(page, tmp_path / "load.png")
        if docs:
            DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
            _screenshot(page, DOCS_SCREENSHOT)
    finally:
        stop.set()
        if loader.is_alive():
            loader.join(timeout=60)
        context.close()
        runtime.terminate()
