"""``io.statefun.transports.v1/okhttp``: StateFun's original HTTP transport (OkHttp).

Every ``io.statefun.endpoints.v1/http`` endpoint uses it; a v2 endpoint chooses it by type::

    kind: io.statefun.endpoints.v2/http
    spec:
      functions: com.example/greeter
      urlPathTemplate: http://functions:8000/statefun
      transport:
        type: io.statefun.transports.v1/okhttp
        timeouts:
          call: 1 min     # the whole call, retries included; default 1 min
          connect: 10 sec # one attempt's connect; default 10 s; at most `call`
          read: 10 sec    # one attempt's read; default 10 s; at most `call`
          write: 10 sec   # one attempt's write; default 10 s; at most `call`

The ``timeouts`` object is also what v1 endpoints write at spec level, and what the async
transport accepts instead of ``call``/``connect``; its model lives here for all three.
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from pydantic import BaseModel

from pystatefun.module._components import Transport
from pystatefun.module._durations import format_duration
from pystatefun.module._fields import TimeoutMs
from pystatefun.module._source import FieldPath, SourceDocument
from pystatefun.module._validation import SPEC_CONFIG, Problems, validate

__all__ = ["KIND", "Spec", "Timeouts", "build", "from_timeouts", "timeouts_within_call"]

KIND = Transport.OKHTTP
# OkHttp's shared client in StateFun pools 1024 connections and keeps idle ones for 1 min.
# Upstream has no payload cap for OkHttp; we keep the async transport's 32 MiB (a bound on
# everything: nothing here grows without a bound someone chose).
_POOL_SIZE = 1024
_POOL_TTL_S = 60.0
_PAYLOAD_MAX_BYTES = 33_554_432


class Timeouts(BaseModel):
    """``timeouts: {call, connect, read, write}``; all optional, in Flink duration format."""

    model_config = SPEC_CONFIG

    call: TimeoutMs = 60_000
    connect: TimeoutMs = 10_000
    read: TimeoutMs = 10_000
    write: TimeoutMs = 10_000


class Spec(BaseModel):
    """``transport:`` of type okhttp."""

    model_config = SPEC_CONFIG

    type: str
    timeouts: Timeouts = Timeouts()


def timeouts_within_call(
    document: SourceDocument,
    path: FieldPath,
    call: int,
    phases: dict[str, int],
    written: AbstractSet[str],
) -> dict[str, int]:
    """``call`` and the ``phases`` (connect, read, write) in ms, each phase checked against
    ``call``; ``path`` locates the mapping that holds them, ``written`` names those set in it.

    A phase written longer than ``call`` is an error (StateFun rejects it too), each reported. A
    phase left at its default is lowered to ``call`` instead, so ``call: 5s`` alone is valid.
    """
    millis = {"call": call}
    problems = Problems()
    for phase, value in phases.items():
        if value > call and phase in written:
            problems.add(
                document.problem(
                    (*path, phase),
                    f"{format_duration(value)} is longer than the call timeout "
                    f"({format_duration(call)}): `{phase}` bounds one attempt inside the call, "
                    f"so make it at most {format_duration(call)} or raise `call`",
                )
            )
        millis[phase] = min(value, call)
    problems.raise_any()
    return millis


def build(document: SourceDocument, raw: object, path: FieldPath) -> Transport:
    """The transport that ``raw`` (the ``transport`` mapping at ``path``) describes."""
    spec = validate(document, Spec, raw, path)
    return from_timeouts(document, spec.timeouts, (*path, "timeouts"))


def from_timeouts(document: SourceDocument, timeouts: Timeouts, path: FieldPath) -> Transport:
    """An OkHttp transport with these timeouts (``path`` locates the ``timeouts`` mapping)."""
    phases = {"connect": timeouts.connect, "read": timeouts.read, "write": timeouts.write}
    millis = timeouts_within_call(document, path, timeouts.call, phases, timeouts.model_fields_set)
    return Transport(
        kind=KIND,
        call_timeout_s=millis["call"] / 1000,
        connect_timeout_s=millis["connect"] / 1000,
        read_timeout_s=millis["read"] / 1000,
        write_timeout_s=millis["write"] / 1000,
        pool_ttl_s=_POOL_TTL_S,
        pool_size=_POOL_SIZE,
        payload_max_bytes=_PAYLOAD_MAX_BYTES,
    )
