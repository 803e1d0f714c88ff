"""What the tests of a log-reading ingress (Kafka, Kinesis) run and check: embedded functions
that report each message to the playground egress as ``<id>:<value>:<count>``, where ``count``
is the address's state, so that a record delivered twice shows as a repeated value with a higher
count and a lost one as a gap; and the model of those reports.

``functions_file(namespace)`` is the functions' file, binding ``<namespace>/counter`` (blocks while
``release`` is clear), ``<namespace>/ints`` (reads ``io.statefun.types/int``) and
``<namespace>/audit``.
"""

from __future__ import annotations

from collections.abc import Sequence

from pystatefun.runtime import Runtime
from support.inprocess import records, wait_for

_FUNCTIONS = """\
import threading

from pystatefun.sdk import IntType, StatefulFunctions, ValueSpec, egress_message_builder
from pystatefun.sdk import make_json_type

RECORD = make_json_type("io.statefun.playground/EgressRecord")
functions = StatefulFunctions()
release = threading.Event()
release.set()


def report(context, name, message):
    context.storage.count = (context.storage.count or 0) + 1
    text = f"{context.address.id}:{message.raw_value().decode()}:{context.storage.count}"
    record = {"topic": name, "payload": text}
    context.send_egress(egress_message_builder("io.statefun.playground/egress", record, RECORD))


@functions.bind("NAMESPACE/counter", specs=[ValueSpec("count", IntType)])
def counter(context, message):
    assert release.wait(30), "never released"
    report(context, "out", message)


@functions.bind("NAMESPACE/ints")
def ints(context, message):
    text = f"{context.address.id}:{message.as_int()}:1"
    record = {"topic": "out", "payload": text}
    context.send_egress(egress_message_builder("io.statefun.playground/egress", record, RECORD))


@functions.bind("NAMESPACE/audit", specs=[ValueSpec("count", IntType)])
def audit(context, message):
    report(context, "audit", message)
"""


def functions_file(namespace: str) -> str:
    """The reporting functions' file, for function types of ``namespace``."""
    return _FUNCTIONS.replace("NAMESPACE/", f"{namespace}/")


def by_id(reported: list[str]) -> dict[str, list[tuple[str, int]]]:
    """The reports per address id: (value, count), in the order reported."""
    seen: dict[str, list[tuple[str, int]]] = {}
    for line in reported:
        address_id, value, count = line.rsplit(":", 2)
        seen.setdefault(address_id, []).append((value, int(count)))
    return seen


def expected(
    rows: Sequence[tuple[str | bytes | None, bytes]], first_count: int = 1
) -> dict[str, list[tuple[str, int]]]:
    """Per key: its values in the order written, counted from ``first_count``."""
    values: dict[str, list[str]] = {}
    for key, value in rows:
        assert key is not None
        name = key.decode() if isinstance(key, bytes) else key
        values.setdefault(name, []).append(value.decode())
    return {
        key: [(value, first_count + n) for n, value in enumerate(mine)]
        for key, mine in values.items()
    }


async def no_more(runtime: Runtime, ingress: str, ends: dict[str, str]) -> None:
    """Nothing else arrives on egress topic ``out`` once ``ingress`` has stored ``ends`` (the
    end of every partition or shard that has records) and the functions have run everything (no
    mailbox holds anything): the records seen were all there is."""

    async def caught_up() -> bool:
        return await runtime.handle.positions(ingress) == ends

    await wait_for(caught_up)
    await wait_for(lambda: runtime.statistics()["pending_messages"] == 0)
    assert await records(runtime, "out", 0) == []
