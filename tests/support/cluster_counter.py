"""A counting module for cluster tests, and how they drive its worker processes.

``cl/counter`` counts its messages and sends each count through ``cl/reporter`` (mostly another
partition) to the playground egress topic ``out`` as ``ID:COUNT``.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from pathlib import Path

from support.runtime_process import RuntimeProcess, start_runtime

__all__ = ["counter_module", "popped", "send_counts", "start_worker"]

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


def start_worker(
    module: Path, data_dir: Path, url: str, name: str, worker: str, *extra: str
) -> RuntimeProcess:
    return start_runtime(module, data_dir, "--cluster", url, "--cluster-name", name,
                         "--worker", worker, *extra)  # fmt: skip
