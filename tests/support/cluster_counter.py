"""A counting module for cluster tests, and how they drive its worker processes.

``cl/counter`` counts its messages and sends each count through ``cl/reporter`` (mostly another
partition) to the playground egress topic ``out`` as ``ID:COUNT``; ``cl/echo`` counts too, and
answers a request-reply request with ``ID:COUNT``.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from http.client import HTTPMessage
from pathlib import Path

from pystatefun.store.jetstream import cluster_status
from support.runtime_process import RuntimeProcess, start_runtime

__all__ = [
    "answered",
    "asked",
    "counted",
    "counter_module",
    "drained",
    "popped",
    "send_counts",
    "settled",
    "start_worker",
]

COUNTER = """\
from pystatefun.sdk import (
    IntType, StatefulFunctions, ValueSpec, egress_message_builder, make_json_type,
    message_builder,
)

RECORD = make_json_type("io.statefun.playground/EgressRecord")
functions = StatefulFunctions()


@functions.bind("cl/counter", specs=[ValueSpec("count", IntType)])
def counter(context, message):
    context.storage.count = (context.storage.count or 0) + 1
    # Through a second address (another partition, mostly), then out.
    context.send(message_builder("cl/reporter", "r-" + context.address.id,
                                 str_value=f"{context.address.id}:{context.storage.count}"))


@functions.bind("cl/echo", specs=[ValueSpec("count", IntType)])
def echo(context, message):
    # Answers a request-reply request with how often its address was asked.
    context.storage.count = (context.storage.count or 0) + 1
    if context.caller is not None:
        context.send(message_builder(context.caller.typename, context.caller.id,
                                     str_value=f"{context.address.id}:{context.storage.count}"))


@functions.bind("cl/reporter")
def reporter(context, message):
    record = {"topic": "out", "payload": message.as_string()}
    context.send_egress(egress_message_builder("io.statefun.playground/egress", record, RECORD))
"""


def counter_module(tmp_path: Path) -> Path:
    (tmp_path / "cluster_counter.py").write_text(COUNTER)
    module = tmp_path / "module.yaml"
    module.write_text(
        "kind: io.pystatefun.endpoints.v1/embedded\nspec:\n  functions: cl/*\n"
        "  import: cluster_counter.py:functions\n---\n"
        "kind: io.statefun.playground.v1/ingress\nspec:\n  port: 0\n---\n"
        "kind: io.statefun.playground.v1/egress\nspec:\n  port: 0\n  topics: [out]\n"
    )
    return module


def send_counts(worker: RuntimeProcess, ids: list[str]) -> None:
    for address_id in ids:
        request = urllib.request.Request(
            f"{worker.ingress}/cl/counter/{address_id}", data=b"", method="POST"
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            assert response.status == 202


def answered(
    request: urllib.request.Request | str, *, timeout_s: float = 60
) -> tuple[int, str, HTTPMessage]:
    """A request's status, body and headers, an error status (4xx, 5xx) included."""
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            return response.status, response.read().decode(), response.headers
    except urllib.error.HTTPError as error:
        with error:
            return error.code, error.read().decode(), error.headers


def asked(worker: RuntimeProcess, address_id: str, key: str | None = None) -> tuple[int, str]:
    """A request-reply request to ``cl/echo``: the status and the answer (or the refusal)."""
    headers = {"Pystatefun-Request-Reply": "true", **({"Idempotency-Key": key} if key else {})}
    request = urllib.request.Request(
        f"{worker.ingress}/cl/echo/{address_id}", data=b"", method="POST", headers=headers
    )
    status, body, _ = answered(request)
    return status, body


def counted(
    worker: RuntimeProcess, address_id: str, *, key: str, body: bytes = b"",
    timeout_s: float = 60,
) -> tuple[int, str, str | None]:  # fmt: skip
    """A message to ``cl/counter`` with an idempotency key: the status, the answer and its
    ``Retry-After``."""
    request = urllib.request.Request(f"{worker.ingress}/cl/counter/{address_id}", data=body,
                                     method="POST", headers={"Idempotency-Key": key})  # fmt: skip
    status, said, headers = answered(request, timeout_s=timeout_s)
    return status, said, headers.get("Retry-After")


def popped(worker: RuntimeProcess, count: int, deadline_s: float = 60) -> list[str]:
    """``count`` records popped from the worker's egress (polled: the playground egress is
    pull-only), bounded by a deadline."""
    records: list[str] = []
    deadline = time.monotonic() + deadline_s
    while len(records) < count and time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{worker.egress}/out", timeout=30) as response:
                records.append(response.read().decode())
        except urllib.error.HTTPError as error:
            error.close()
            if error.code != 404:
                raise
            time.sleep(0.02)
    return records


def drained(workers: list[RuntimeProcess], count: int, rounds: int) -> list[str]:
    """``count`` egress records popped from any of ``workers``, in at most ``rounds`` rounds
    (bounded: each round waits at most a second per worker)."""
    records: list[str] = []
    for _ in range(rounds):
        for worker in workers:
            records += popped(worker, count - len(records), deadline_s=1)
        if len(records) >= count:
            break
    return records


def settled(url: str, name: str, workers: set[str], deadline_s: float = 30) -> dict[str, object]:
    """The cluster's status once exactly ``workers`` serve, every partition owned by one of
    them and each serving its share (polled, bounded)."""
    deadline = time.monotonic() + deadline_s
    while True:
        status = cluster_status([url], name)
        serving = {str(w["worker"]): w["serving"] for w in status["workers"]}  # type: ignore[attr-defined]
        owners = set(status["owners"].values())  # type: ignore[attr-defined]
        share = 16 // len(workers)
        if (
            set(serving) == workers
            and owners == workers
            and all(len(parts) == share for parts in serving.values())
        ):
            return status
        assert time.monotonic() < deadline, f"partitions never settled over {workers}: {status}"
        time.sleep(0.1)


def start_worker(
    module: Path, data_dir: Path, url: str, name: str, worker: str, *extra: str
) -> RuntimeProcess:
    return start_runtime(module, data_dir, "--cluster", url, "--cluster-name", name,
                         "--worker", worker, *extra)  # fmt: skip
