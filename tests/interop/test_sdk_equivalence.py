"""Every SDK answers the same batches with the same effects.

- The Go and Java SDKs, serving ``interop_functions.py``'s logic (``tests/sdks/go/interop.go``,
  ``tests/sdks/java/.../Interop.java``), get the batches ``test_function_equivalence.py`` sends
  to the official Python SDK (``support/interop_cases.py``), and random ones; the official
  Python SDK's reply is the reference, and its state mutations feed the next round, so that
  every SDK gets the same bytes.
- All five SDKs (ours and the official Python, JavaScript, Go and Java SDKs) get the greeter's
  batches: its missing-state handshake and its every effect.

What is compared is what the replies ask of a runtime, decoded (``support/effects.py``),
message for message: the missing states, the state mutations, the messages, the delayed messages
and cancellations, the egress records. Not the bytes: SDKs legitimately differ in the order of
the state mutations and missing states (the Go SDK lists them in map order), in the bytes of a
JSON value (Go appends a newline, Python puts spaces after separators), and in whether
protobuf defaults are written.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from support.effects import effects
from support.interop_cases import CASES, COUNTER_ROUNDS, COUNTER_STATES, INVALID, Case, carry
from support.processes import ListeningProcess
from support.sdk_servers import SDKS, SdkServers, invoke, post
from support.wire import to_function as batch
from support.wire import typed as value

from pystatefun import sdk
from pystatefun.protocol import FromFunction, ToFunction

pytestmark = pytest.mark.interop

OTHERS = ("official-go", "official-java")
DAY_MS = 24 * 60 * 60 * 1000
#: Invalid batches an SDK answers with 200 anyway. The Go SDK never checks a state's type
#: against its spec: it reads a stored long's bytes as an int (and writes the count back as an
#: int). A runtime that keeps a registered state's type, as StateFun's and ours do, never sends
#: such a batch.
ACCEPTED_INVALID = {("official-go", "state-type-mismatch")}


Ask = Callable[[ToFunction], FromFunction]


def official(official_server: ListeningProcess) -> Ask:
    """The official Python SDK's interop server, which answers at ``/``."""

    def ask(request: ToFunction) -> FromFunction:
        status, body = post(official_server.url + "/", request.SerializeToString())
        assert status == 200, body.decode(errors="replace")
        return FromFunction.FromString(body)

    return ask


def served(server: ListeningProcess) -> Ask:
    return lambda request: invoke(server, request)


def python_millis(millis: int) -> int:
    """The delay the Python SDKs send for ``timedelta(milliseconds=millis)``: they compute
    ``int(delay.total_seconds() * 1000.0)``, which truncates a float, so some delays go out a
    millisecond short (32751 ms as 32750). The other SDKs send the exact milliseconds."""
    return int(timedelta(milliseconds=millis).total_seconds() * 1000.0)


def as_python_sends(found: dict[str, Any]) -> dict[str, Any]:
    """``found``'s effects with each delay as the Python SDKs would send it."""
    delayed = [
        d if d[0] == "cancel" else (d[0], python_millis(d[1]), *d[2:])
        for d in found.get("delayed", [])
    ]
    return {**found, "delayed": delayed} if "delayed" in found else found


def same_effects(expected: Ask, actual: Ask, case: Case) -> list[dict[str, Any]]:
    """``case``'s rounds, each answered by both with the same effects (returned, in order).
    ``expected`` is a Python SDK, so ``actual``'s delays are compared as the Python SDKs would
    send them (``python_millis``)."""
    state = dict(case.state)
    seen = []
    for invocations in case.rounds:
        request = batch(case.typename, case.target_id, state, invocations)
        reference, reply = expected(request), actual(request)
        found = as_python_sends(effects(reply))
        assert found == effects(reference), f"{reply}\nexpected:\n{reference}"
        seen.append(effects(reply))
        state = carry(state, reference)
    return seen


@pytest.mark.parametrize("sdk_name", OTHERS)
@pytest.mark.parametrize("case", list(CASES))
def test_interop_batches_have_the_official_effects(
    sdk_name: str, case: str, official_server: ListeningProcess, sdk_servers: SdkServers
) -> None:
    same_effects(official(official_server), served(sdk_servers[sdk_name]), CASES[case])


@pytest.mark.parametrize("sdk_name", OTHERS)
@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(rounds=COUNTER_ROUNDS)
def test_random_batches_have_the_official_effects(
    sdk_name: str, official_server: ListeningProcess, sdk_servers: SdkServers, rounds: Any
) -> None:
    """As a runtime would send them: each round's mutations become the next round's state."""
    case = Case("interop/counter", "h", dict.fromkeys(COUNTER_STATES), tuple(rounds))
    same_effects(official(official_server), served(sdk_servers[sdk_name]), case)


@pytest.mark.parametrize("sdk_name", OTHERS)
@pytest.mark.parametrize("name", list(INVALID))
def test_invalid_batches(
    sdk_name: str, name: str, official_server: ListeningProcess, sdk_servers: SdkServers
) -> None:
    body = INVALID[name].SerializeToString()
    official_status, _ = post(official_server.url + "/", body)
    status, answer = post(sdk_servers[sdk_name].url + "/statefun", body)
    assert official_status >= 400
    if (sdk_name, name) in ACCEPTED_INVALID:
        assert status == 200, answer
    else:
        assert status >= 400, answer


@pytest.mark.parametrize("sdk_name", OTHERS)
def test_the_python_sdks_send_some_delays_a_millisecond_short(
    sdk_name: str, official_server: ListeningProcess, sdk_servers: SdkServers
) -> None:
    """Found by the random batches: a delay of ``timedelta(milliseconds=32751)`` leaves the
    official Python SDK (and ours, byte-equal to it) as 32750 ms, and the Go and Java SDKs as
    32751 ms."""
    request = batch(
        "interop/counter", "d", dict.fromkeys(COUNTER_STATES), [(value(sdk.IntType, 32751), None)]
    )
    official_delays = effects(official(official_server)(request))["delayed"]
    delays = effects(served(sdk_servers[sdk_name])(request))["delayed"]
    assert [d[1] for d in official_delays] == [32750, 32_751_000]
    assert [d[1] for d in delays] == [32751, 32_751_000]
    assert python_millis(32751) == 32750


VISIT = sdk.make_json_type("greeter/Visit")
STRING = "io.statefun.types/string"
GREETER_CASES = {
    "handshake": Case("greeter/user", "u1", {}, ([(value(sdk.StringType, "Zoë"), None)],)),
    "visits": Case(
        "greeter/user",
        "u1",
        {"visits": None},
        (
            [(value(sdk.StringType, "Zoë"), None), (value(sdk.StringType, "Zoë"), None)],
            [(value(sdk.StringType, "Zoë"), "greeter/other/x")],
        ),
    ),
    "greetings": Case(
        "greeter/greeter",
        "u1",
        {},
        (
            [
                (value(VISIT, {"name": "Zoë", "visits": 3}), "greeter/user/u1"),
                (value(sdk.StringType, "Welcome back Zoë"), "greeter/user/u1"),
            ],
        ),
    ),
}


@pytest.mark.parametrize("sdk_name", [s for s in SDKS if s != "official-python"])
@pytest.mark.parametrize("case", list(GREETER_CASES))
def test_the_greeter_has_the_same_effects_on_every_sdk(
    sdk_name: str, case: str, sdk_servers: SdkServers
) -> None:
    expected = served(sdk_servers["official-python"])
    same_effects(expected, served(sdk_servers[sdk_name]), GREETER_CASES[case])


def test_the_greeters_effects_are_the_specified_ones(sdk_servers: SdkServers) -> None:
    """The reference itself does what ``tests/sdks/README.md`` says."""
    ask = served(sdk_servers["official-python"])
    [handshake] = same_effects(ask, ask, GREETER_CASES["handshake"])
    after_invoke = FromFunction.ExpirationSpec.AFTER_INVOKE
    assert handshake == {"missing": [("visits", "io.statefun.types/int", after_invoke, DAY_MS)]}
    first, third = same_effects(ask, ask, GREETER_CASES["visits"])
    modify = FromFunction.PersistedValueMutation.MODIFY
    assert first["state"] == [("visits", modify, ("io.statefun.types/int", 2))]
    visit = [("greeter/Visit", {"name": "Zoë", "visits": ("number", float(n))}) for n in (1, 2)]
    assert first["messages"] == [("greeter/greeter/u1", v) for v in visit]
    assert first["delayed"] == [
        ("greeter/greeter/u1", 3_600_000, "forget-u1", (STRING, "Forgotten Zoë")),
        ("cancel", "forget-u1"),
        ("greeter/greeter/u1", 100, "", (STRING, "Welcome back Zoë")),
    ]
    assert (third["state"], third["delayed"]) == (
        [("visits", modify, ("io.statefun.types/int", 3))],
        [],
    )
    [greetings] = same_effects(ask, ask, GREETER_CASES["greetings"])
    record = "io.statefun.playground/EgressRecord"
    assert greetings["egress"] == [
        ("io.statefun.playground/egress", (record, {"topic": "greetings", "payload": text}))
        for text in ("Hello Zoë, visit 3", "Welcome back Zoë")
    ]
