"""The ride-sharing example (examples/ride-sharing/): its matching logic in the in-memory harness,
with a fake clock for the request timeouts, then the whole application end to end as real
processes: ``pystatefun serve`` for the remote functions, ``pystatefun run`` for the module,
whose geo-cells and rides run embedded."""

from __future__ import annotations

import importlib.util
import json
import sys
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from types import ModuleType

import pytest
from support.processes import start_listening_process
from support.runtime_process import PYSTATEFUN, RuntimeProcess, start_runtime
from support.smoke_client import VERIFY_DEADLINE_S, drain, quiescent

from pystatefun.sdk import Type
from pystatefun.testing import FunctionHarness

pytestmark = pytest.mark.timeout(300)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "ride-sharing"
POLL_S = 0.05  # the playground egress is pull-only: poll it, bounded by a deadline


def _load(name: str) -> ModuleType:
    if str(EXAMPLE) not in sys.path:
        sys.path.insert(0, str(EXAMPLE))  # the function files import messages.py beside them
    spec = importlib.util.spec_from_file_location(f"ride_sharing_{name}", EXAMPLE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


embedded, remote = _load("embedded"), _load("remote")
rides = sys.modules["messages"]  # the types and names, as both files imported them
PASSENGER, DRIVER, CELL, RIDE = rides.PASSENGER, rides.DRIVER, rides.CELL, rides.RIDE
RUN_TO_THE_END = ["requested", "driver-assigned", "in-progress", "finished"]


def app() -> FunctionHarness:
    return FunctionHarness(embedded.functions, remote.functions)


def command(harness: FunctionHarness, typename: str, to: str, kind: Type, body: dict) -> None:
    harness.send(typename, to, body, kind)
    harness.run()


def join(harness: FunctionHarness, driver: str, cell: str) -> None:
    command(harness, DRIVER, driver, rides.JOIN_CELL, {"cell": cell})


def request(harness: FunctionHarness, passenger: str, cell: str, wait_s: int = 60) -> None:
    command(harness, PASSENGER, passenger, rides.REQUEST_RIDE, {"cell": cell, "max_wait_s": wait_s})


def finish(harness: FunctionHarness, driver: str, ride: str, cell: str) -> None:
    command(harness, DRIVER, driver, rides.PICK_UP, {"ride": ride})
    command(harness, DRIVER, driver, rides.DROP_OFF, {"ride": ride, "cell": cell})


def events(harness: FunctionHarness) -> list[dict]:
    records = harness.egress(rides.PLAYGROUND_EGRESS)
    assert {record.topic for record in records} <= {rides.EVENTS_TOPIC}
    return [json.loads(record.text) for record in records]


def history(harness: FunctionHarness, ride: str) -> list[str]:
    return [event["status"] for event in events(harness) if event["ride"] == ride]


def drivers_of(harness: FunctionHarness) -> dict[str, str]:
    """Ride -> the driver it was assigned to, from the driver-assigned events."""
    assigned = [e for e in events(harness) if e["status"] == "driver-assigned"]
    by_ride = {event["ride"]: event["driver"] for event in assigned}
    assert len(by_ride) == len(assigned), f"a ride was assigned twice: {assigned}"
    return by_ride


def free_in(harness: FunctionHarness, cell: str) -> list[str]:
    return harness.state(CELL, cell, "drivers", type=rides.CELL_DRIVERS) or []


def waiting_in(harness: FunctionHarness, cell: str) -> list[str]:
    waiting = harness.state(CELL, cell, "waiting", type=rides.CELL_WAITING) or []
    return [entry["ride"] for entry in waiting]


def test_a_free_driver_takes_a_request_at_once_and_the_ride_runs_to_the_end() -> None:
    harness = app()
    join(harness, "d1", "12-34")
    assert free_in(harness, "12-34") == ["d1"]
    request(harness, "alice", "12-34")
    assert drivers_of(harness) == {"alice-1": "d1"}
    assert harness.delayed() == []  # matched at once: no timeout was ever scheduled
    assert harness.state(PASSENGER, "alice", "ride", type=rides.PASSENGER_RIDE) == {
        "ride": "alice-1",
        "status": "driver-assigned",
        "driver": "d1",
    }

    finish(harness, "d1", "alice-1", "12-35")  # the passenger is dropped off one cell over
    assert history(harness, "alice-1") == RUN_TO_THE_END
    assert events(harness)[-1]["dropoff"] == "12-35"
    assert harness.state(PASSENGER, "alice", "ride", type=rides.PASSENGER_RIDE) is None
    assert free_in(harness, "12-34") == []
    assert free_in(harness, "12-35") == ["d1"]  # free again where the ride ended
    request(harness, "alice", "12-35")  # the passenger can ride again
    assert drivers_of(harness) == {"alice-1": "d1", "alice-2": "d1"}


def test_a_waiting_request_is_matched_when_a_driver_comes_and_its_timeout_is_cancelled() -> None:
    harness = app()
    request(harness, "alice", "12-34", wait_s=60)
    assert waiting_in(harness, "12-34") == ["alice-1"]
    [timeout] = harness.delayed()
    assert (timeout.token, timeout.target.id) == ("wait-alice-1", "12-34")

    harness.advance(59)
    join(harness, "d1", "12-34")
    assert drivers_of(harness) == {"alice-1": "d1"}
    assert harness.delayed() == []  # the match cancelled the timeout
    assert harness.advance(120) == 0  # nothing fires
    assert history(harness, "alice-1") == ["requested", "driver-assigned"]


def test_a_request_that_finds_no_driver_in_its_wait_times_out() -> None:
    harness = app()
    request(harness, "alice", "12-34", wait_s=30)
    assert harness.advance(29) == 0
    assert harness.advance(1) > 0  # the cell's timeout fires: the ride times out
    assert history(harness, "alice-1") == ["requested", "timed-out"]
    assert waiting_in(harness, "12-34") == []
    assert harness.state(PASSENGER, "alice", "ride", type=rides.PASSENGER_RIDE) is None

    join(harness, "d1", "12-34")  # too late: the driver stays free, nobody is assigned
    assert free_in(harness, "12-34") == ["d1"]
    assert drivers_of(harness) == {}


def test_drivers_and_requests_are_matched_first_come_first_served_each_ride_once() -> None:
    harness = app()
    join(harness, "d1", "12-34")
    join(harness, "d2", "12-34")
    join(harness, "d3", "12-35")  # another cell: never matched with 12-34's requests
    for passenger in ("alice", "bob", "carol"):
        request(harness, passenger, "12-34")
    assert drivers_of(harness) == {"alice-1": "d1", "bob-1": "d2"}
    assert waiting_in(harness, "12-34") == ["carol-1"]

    finish(harness, "d2", "bob-1", "12-34")  # d2 is free in 12-34 again: carol's turn
    assert drivers_of(harness) == {"alice-1": "d1", "bob-1": "d2", "carol-1": "d2"}
    assert free_in(harness, "12-34") == []
    assert free_in(harness, "12-35") == ["d3"]
    assert harness.delayed() == []


def test_an_offer_that_reaches_a_driver_who_moved_on_goes_to_the_next_driver() -> None:
    harness = app()
    # The race, set up: 12-34 still lists d1 as free, but d1 has moved to 12-35 and its
    # DriverLeaves has not reached 12-34 yet.
    harness.set_state(CELL, "12-34", "drivers", ["d1"], rides.CELL_DRIVERS)
    harness.set_state(
        DRIVER, "d1", "status", {"state": "free", "cell": "12-35"}, rides.DRIVER_STATUS
    )
    request(harness, "alice", "12-34")
    assert drivers_of(harness) == {}  # d1 declined: the ride waits again, with its timeout
    assert waiting_in(harness, "12-34") == ["alice-1"]
    assert [timer.token for timer in harness.delayed()] == ["wait-alice-1"]
    assert harness.state(DRIVER, "d1", "status", type=rides.DRIVER_STATUS) == {
        "state": "free",
        "cell": "12-35",
    }

    join(harness, "d2", "12-34")
    assert drivers_of(harness) == {"alice-1": "d2"}
    assert harness.delayed() == []


def test_a_driver_who_moves_or_goes_off_duty_leaves_its_cell() -> None:
    harness = app()
    join(harness, "d1", "12-34")
    join(harness, "d1", "12-35")
    assert (free_in(harness, "12-34"), free_in(harness, "12-35")) == ([], ["d1"])
    command(harness, DRIVER, "d1", rides.GO_OFF_DUTY, {})
    assert free_in(harness, "12-35") == []
    request(harness, "alice", "12-35")
    assert drivers_of(harness) == {}


def test_a_passenger_rides_one_ride_at_a_time() -> None:
    harness = app()
    request(harness, "alice", "12-34")
    request(harness, "alice", "12-35")
    assert [event["ride"] for event in events(harness)] == ["alice-1"]
    assert harness.state(PASSENGER, "alice", "rides") == 1


def test_a_driver_ignores_commands_about_a_ride_it_does_not_drive() -> None:
    harness = app()
    join(harness, "d1", "12-34")
    request(harness, "alice", "12-34")
    command(harness, DRIVER, "d1", rides.DROP_OFF, {"ride": "alice-1", "cell": "12-34"})
    command(harness, DRIVER, "d1", rides.PICK_UP, {"ride": "bob-1"})
    assert history(harness, "alice-1") == ["requested", "driver-assigned"]  # not picked up
    finish(harness, "d1", "alice-1", "12-34")
    assert history(harness, "alice-1") == RUN_TO_THE_END


# --- end to end --------------------------------------------------------------------------------

# Who is on duty where, and who asks for a ride where. Every request in 12-34 and 12-35 finds a
# driver sooner or later (12-34 has three requests for two drivers); 40-40 has no driver, so
# its request, with a one-second wait, times out.
DRIVERS = {"d1": "12-34", "d2": "12-34", "d3": "12-35"}
REQUESTS = {"p1": "12-34", "p2": "12-34", "p3": "12-34", "p4": "12-35"}
LONG_WAIT_S, SHORT_WAIT_S = 600, 1
MATCHED = [*(f"{passenger}-1" for passenger in REQUESTS), "p1-2"]  # p1 rides twice


def module_copy(directory: Path, endpoint: str) -> Path:
    """The example's module.yaml, calling ``endpoint``, importing embedded.py from the example,
    its ingress and egress on free ports."""
    text = (EXAMPLE / "module.yaml").read_text()
    for old, new, count in [
        ("urlPathTemplate: http://127.0.0.1:8000/statefun", f"urlPathTemplate: {endpoint}", 2),
        ("import: embedded.py:functions", f"import: {EXAMPLE / 'embedded.py'}:functions", 1),
        ("port: 8090", "port: 0", 1),
        ("port: 8091", "port: 0", 1),
    ]:
        assert text.count(old) == count, old
        text = text.replace(old, new)
    path = directory / "module.yaml"
    path.write_text(text)
    return path


def post(runtime: RuntimeProcess, address: str, kind: Type, body: dict) -> str:
    """Send a command through the ingress; a passenger's request waits for its ride's id."""
    headers = {"Content-Type": f"application/vnd.{kind.typename}"}
    if address.startswith(PASSENGER):
        headers["Pystatefun-Request-Reply"] = "true"
    url = f"{runtime.ingress}/{address}"
    data = json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers=headers, method="POST")
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 202)
        return str(response.read().decode())


def ask_for_ride(runtime: RuntimeProcess, passenger: str, cell: str, wait_s: int) -> str:
    body = {"cell": cell, "max_wait_s": wait_s}
    return post(runtime, f"{PASSENGER}/{passenger}", rides.REQUEST_RIDE, body)


def drive(runtime: RuntimeProcess, event: dict) -> None:
    """What a driver's app does once assigned: pick the passenger up, drop them off."""
    driver, ride = f"{DRIVER}/{event['driver']}", event["ride"]
    post(runtime, driver, rides.PICK_UP, {"ride": ride})
    post(runtime, driver, rides.DROP_OFF, {"ride": ride, "cell": event["cell"]})


def run_the_rides(runtime: RuntimeProcess) -> dict[str, list[dict]]:
    """Drivers on duty, requests made; then act as the drivers until every ride has ended.
    p1 asks again once its first ride is over. Returns each ride's events, in order."""
    for driver, cell in DRIVERS.items():
        post(runtime, f"{DRIVER}/{driver}", rides.JOIN_CELL, {"cell": cell})
    for passenger, cell in REQUESTS.items():
        assert ask_for_ride(runtime, passenger, cell, LONG_WAIT_S) == f"{passenger}-1"
    assert ask_for_ride(runtime, "p2", "12-35", LONG_WAIT_S) == "p2-1"  # one at a time
    assert ask_for_ride(runtime, "p5", "40-40", SHORT_WAIT_S) == "p5-1"
    # p1's second ride is requested when its first has finished.
    ended = dict.fromkeys([*MATCHED, "p5-1"], False)
    history: dict[str, list[dict]] = defaultdict(list)
    deadline = time.monotonic() + VERIFY_DEADLINE_S
    while not all(ended.values()):
        assert time.monotonic() < deadline, f"rides did not end: {dict(history)}"
        for event in map(json.loads, drain(runtime, rides.EVENTS_TOPIC)):
            history[event["ride"]].append(event)
            ended[event["ride"]] = event["status"] in ("finished", "timed-out")
            if event["status"] == "driver-assigned":
                drive(runtime, event)
            if event["ride"] == "p1-1" and event["status"] == "finished":
                assert ask_for_ride(runtime, "p1", "12-35", LONG_WAIT_S) == "p1-2"
        time.sleep(POLL_S)
    return history


def await_quiescent(data_dir: Path) -> None:
    """The last updates to passengers and cells follow the last events: wait (bounded)."""
    deadline = time.monotonic() + VERIFY_DEADLINE_S
    while not quiescent(data_dir):
        assert time.monotonic() < deadline, "messages or timers are still pending"
        time.sleep(POLL_S)


def test_the_application_runs_end_to_end(tmp_path: Path) -> None:
    server = start_listening_process(
        [PYSTATEFUN, "serve", f"{EXAMPLE / 'remote.py'}:functions", "--port", "0"], drain=True
    )
    try:
        data_dir = tmp_path / "data"
        runtime = start_runtime(module_copy(tmp_path, f"{server.url}/statefun"), data_dir)
        try:
            history = run_the_rides(runtime)
            await_quiescent(data_dir)  # every timeout fired or was cancelled
            assert drain(runtime, rides.EVENTS_TOPIC) == []
            assert runtime.terminate() == 0
        finally:
            runtime.kill()
    finally:
        server.stop()

    statuses = {ride: [event["status"] for event in events] for ride, events in history.items()}
    assert statuses == {
        **dict.fromkeys(MATCHED, RUN_TO_THE_END),
        "p5-1": ["requested", "timed-out"],
    }
    for ride in MATCHED:  # each ride got a driver of its own cell
        assigned = history[ride][1]
        assert DRIVERS[assigned["driver"]] == assigned["cell"], assigned
