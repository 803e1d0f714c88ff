"""The web console's JSON API without a browser: values decoded for people, input refused with
what to send instead, the SQL box read-only, savepoints whole or not at all, and the figures
summed from an ``Observation``."""

from __future__ import annotations

import datetime
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from pystatefun.admin.console_address import address_of, decoded
from pystatefun.admin.console_api import ConsoleApi
from pystatefun.admin.console_errors import BadInputError
from pystatefun.admin.console_figures import overview
from pystatefun.admin.console_savepoints import savepoint_path
from pystatefun.http import HttpRequest
from pystatefun.protocol.typed_values import BOOL, DOUBLE, INT, STRING
from pystatefun.runtime.metrics import LATENCY_BOUNDS_S, FunctionCounts, FunctionLoad, Histogram
from pystatefun.runtime.observation import Observation
from pystatefun.store import (
    DataDir,
    DeadLetterEntry,
    NewMessage,
    NewTimer,
    Payload,
    SqliteEngine,
    StateValue,
    Step,
    StorageEngine,
)
from pystatefun.types import Address

ALICE = Address("shop", "cart", "alice")
NOW_MS = 1_700_000_000_000


def test_values_are_decoded_as_people_read_them() -> None:
    assert decoded(Payload(INT.typename, INT.encode(42)))["text"] == "42"
    assert decoded(Payload(INT.typename, INT.encode(42)))["kind"] == "int"
    assert decoded(Payload(BOOL.typename, BOOL.encode(True)))["text"] == "true"
    assert decoded(Payload(DOUBLE.typename, DOUBLE.encode(2.5)))["kind"] == "float"
    text = decoded(Payload(STRING.typename, STRING.encode("héllo")))
    assert (text["kind"], text["text"]) == ("string", "héllo")
    document = decoded(Payload("shop/Cart", b'{"items": [1, 2],  "owner": "al"}'))
    assert (document["kind"], document["text"]) == ("json", '{"items": [1, 2], "owner": "al"}')
    raw = decoded(Payload("shop/Blob", b"\x00\xff\x10"))
    assert (raw["kind"], raw["text"], raw["size"]) == ("hex", "00 ff 10", 3)
    assert decoded(Payload("shop/Blob", None))["kind"] == "empty"


def test_bytes_that_are_not_their_primitive_type_and_long_ones_are_shown_as_hex() -> None:
    assert decoded(Payload(INT.typename, b"\xff\xff"))["kind"] == "hex"
    long = decoded(Payload("shop/Blob", bytes(5000)))
    assert str(long["text"]).endswith("… (904 bytes more)")


@pytest.mark.parametrize(
    ("typename", "address_id", "says"),
    [
        (None, "a", "give the function type as ?type="),
        ("shop/cart", "", "give the address's id as &id="),
        ("nonsense", "a", "'nonsense' is not a function type"),
    ],
)
def test_a_malformed_address_is_refused_saying_what_to_send(
    typename: str | None, address_id: str, says: str
) -> None:
    with pytest.raises(BadInputError, match=says.replace("?", r"\?")):
        address_of(typename, address_id)


class _Runtime:
    """What the admin port asks of a runtime, over a real engine."""

    def __init__(self, engine: StorageEngine, observation: Observation | None = None) -> None:
        self.engine = engine
        self.ready = True
        self.observation = observation

    @property
    def readiness(self) -> tuple[bool, str]:
        return self.ready, "serving" if self.ready else "recovering"

    async def observe(self) -> Observation:
        assert self.observation is not None
        return self.observation


@pytest.fixture
async def engine(tmp_path: Path) -> AsyncIterator[SqliteEngine]:
    opened = SqliteEngine(DataDir(tmp_path / "data"), durability="os", clock_ms=lambda: NOW_MS)
    await opened.open(8)
    state = StateValue("count", Payload(INT.typename, INT.encode(3)), 0, 0, None)
    waiting = NewMessage(ALICE, None, Payload(STRING.typename, STRING.encode("hi")))
    later = NewTimer(NOW_MS + 60_000, ALICE, "t", ALICE, Payload(STRING.typename, None))
    step = Step(state_address=ALICE, state_puts=[state], messages=[waiting], timer_ops=[later])
    await opened.commit(step)
    dead = DeadLetterEntry(
        ALICE, "it failed [PSF-RT0005]", 3, (NewMessage(ALICE, None, Payload("x/y", b"z")),)
    )
    await opened.commit(Step(dead_letter=dead))
    yield opened
    await opened.close()


def _api(engine: StorageEngine, tmp_path: Path, **given: object) -> ConsoleApi:
    options: dict[str, object] = {"data_dir": tmp_path / "data", "savepoint_dir": tmp_path / "sp"}
    options.update(given)
    return ConsoleApi(_Runtime(engine), **options)


async def _ask(
    api: ConsoleApi, method: str, path: str, body: object = None, **headers: str
) -> tuple[int, dict[str, object]]:
    query = ""
    if "?" in path:
        path, query = path.split("?", 1)
    if body is not None:
        headers.setdefault("content-type", "application/json")
    request = HttpRequest(
        method, path, query, headers, b"" if body is None else json.dumps(body).encode()
    )
    answer = await api.answer(request, path)
    return answer.status, json.loads(answer.body)


async def test_an_address_shows_its_state_mailbox_and_timers(
    engine: SqliteEngine, tmp_path: Path
) -> None:
    status, found = await _ask(
        _api(engine, tmp_path), "GET", "/api/address?type=shop/cart&id=alice"
    )
    assert status == 200
    value = {"typename": INT.typename, "size": 5, "kind": "int", "text": "3"}
    assert found["state"] == [
        {"name": "count", "expires_at_ms": None, "expired": False, "value": value}
    ]
    assert [m["value"]["text"] for m in found["mailbox"]] == ["hi"]
    assert [t["token"] for t in found["timers"]] == ["t"]


async def test_bad_requests_get_json_refusals_that_say_what_to_do(
    engine: SqliteEngine, tmp_path: Path
) -> None:
    api = _api(engine, tmp_path)
    assert await _ask(api, "GET", "/api/address?type=shop&id=a") == (
        400,
        {
            "error": "'shop' is not a function type: write it as <namespace>/<name>, e.g. "
            "shop/cart",
            "code": "bad-input",
        },
    )
    status, refused = await _ask(api, "GET", "/api/nothing")
    assert (status, refused["code"]) == (404, "not-found")
    status, refused = await _ask(api, "GET", "/api/sql")
    assert (status, refused["code"]) == (405, "method")
    request = HttpRequest("POST", "/api/sql", "", {"content-type": "text/plain"}, b"SELECT 1")
    answer = await api.answer(request, "/api/sql")  # what an HTML form on another site sends
    assert answer.status == 415
    status, refused = await _ask(api, "POST", "/api/dead-letters/redrive", {"ids": []})
    assert (status, refused["code"]) == (400, "bad-input")
    status, refused = await _ask(api, "POST", "/api/dead-letters/redrive", {"ids": ["1"]})
    assert status == 400
    status, refused = await _ask(api, "POST", "/api/dead-letters/delete", {"ids": [999]})
    assert (status, refused["code"]) == (404, "no-such-dead-letter")
    status, refused = await _ask(
        api, "POST", "/api/savepoints", {}, origin="http://evil.example", host="127.0.0.1:9090"
    )
    assert (status, refused["code"]) == (403, "cross-origin")


async def test_before_the_runtime_serves_the_store_is_not_read(
    engine: SqliteEngine, tmp_path: Path
) -> None:
    runtime = _Runtime(engine)
    runtime.ready = False
    api = ConsoleApi(runtime, data_dir=None, savepoint_dir=None)
    status, refused = await _ask(api, "GET", "/api/dead-letters")
    assert (status, refused["code"]) == (503, "not-ready")


async def test_dead_letters_are_listed_re_driven_and_deleted(
    engine: SqliteEngine, tmp_path: Path
) -> None:
    api = _api(engine, tmp_path)
    _, listed = await _ask(api, "GET", "/api/dead-letters")
    [letter] = listed["dead_letters"]
    assert (letter["address"], letter["attempts"], letter["message_count"]) == (
        "shop/cart/alice",
        3,
        1,
    )
    assert await _ask(api, "POST", "/api/dead-letters/redrive", {"ids": [letter["id"]]}) == (
        200,
        {"redriven_messages": 1, "ids": [letter["id"]]},
    )
    assert (await _ask(api, "GET", "/api/dead-letters"))[1] == {"dead_letters": [], "total": 0}


async def test_the_sql_box_reads_rows_bounded_and_refuses_writes(
    engine: SqliteEngine, tmp_path: Path
) -> None:
    api = _api(engine, tmp_path)
    status, result = await _ask(
        api, "POST", "/api/sql", {"query": 'SELECT id, value FROM "shop/cart.count"'}
    )
    assert (status, result["columns"], result["rows"], result["truncated"]) == (
        200,
        ["id", "value"],
        [["alice", 3]],
        False,
    )
    many = (
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 600) SELECT i FROM n"
    )
    status, result = await _ask(api, "POST", "/api/sql", {"query": many})
    assert (len(result["rows"]), result["truncated"]) == (500, True)
    for write in ("DELETE FROM state", "CREATE TEMP TABLE t (x)", "SELECT 1; DELETE FROM state"):
        status, refused = await _ask(api, "POST", "/api/sql", {"query": write})
        assert (status, refused["code"]) == (400, "bad-input"), write
    assert (await engine.read_state(ALICE))["count"].payload.value == INT.encode(3)
    status, refused = await _ask(api, "POST", "/api/sql", {"query": 42})
    assert status == 400


async def test_on_a_cluster_worker_sql_says_what_to_use_instead(
    engine: SqliteEngine, tmp_path: Path
) -> None:
    status, refused = await _ask(
        _api(engine, tmp_path, data_dir=None), "POST", "/api/sql", {"query": "SELECT 1"}
    )
    assert (status, refused["code"]) == (409, "not-available")
    assert "not available in cluster mode" in str(refused["error"])
    assert "pystatefun sql --savepoint" in str(refused["error"])


async def test_a_savepoint_is_written_whole_into_its_directory(
    engine: SqliteEngine, tmp_path: Path
) -> None:
    status, written = await _ask(_api(engine, tmp_path), "POST", "/api/savepoints", {})
    assert status == 200
    path = Path(str(written["path"]))
    assert path.parent == tmp_path / "sp"
    assert path.is_file()
    assert (written["counts"]["state"], written["counts"]["timer"]) == (1, 1)
    (tmp_path / "blocked").write_text("a file where the directory should be")
    status, refused = await _ask(
        _api(engine, tmp_path, savepoint_dir=tmp_path / "blocked"), "POST", "/api/savepoints", {}
    )
    assert (status, refused["code"]) == (409, "not-available")
    status, refused = await _ask(
        _api(engine, tmp_path, savepoint_dir=None), "POST", "/api/savepoints", {}
    )
    assert "--savepoint-dir" in str(refused["error"])


def test_savepoint_names_never_collide(tmp_path: Path) -> None:
    now = datetime.datetime(2026, 12, 7, 18, 30, 5, tzinfo=datetime.UTC)
    first = savepoint_path(tmp_path, now)
    assert first.name == "savepoint-20261207T183005Z.psfsp"
    first.write_bytes(b"")
    assert savepoint_path(tmp_path, now).name == "savepoint-20261207T183005Z-2.psfsp"


def test_the_overview_sums_the_function_types() -> None:
    counter, reporter = FunctionCounts(), FunctionCounts()
    counter.messages_in, counter.messages_out, reporter.messages_in = 5, 2, 2
    counter.remote_latency.observe(0.003)
    reporter.remote_latency.observe(0.2)
    seen = Observation(
        functions={"a/counter": counter, "a/reporter": reporter},
        load={"a/counter": FunctionLoad(4, 1, 1)},
        step_commit=Histogram(LATENCY_BOUNDS_S),
        group_commit=Histogram((1, 2)),
        cache_hits=0,
        cache_misses=0,
        dead_lettered=1,
        delayed_pending=3,
        dead_letters=1,
        readings=(),
    )
    figures = overview(seen, ready=(True, "serving"), now_ms=NOW_MS)
    assert (figures["messages_in"], figures["messages_out"], figures["backlog"]) == (7, 2, 4)
    assert figures["latency"]["count"] == 2
    assert sum(figures["latency"]["counts"]) == 2
