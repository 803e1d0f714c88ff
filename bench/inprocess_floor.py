#!/usr/bin/env python3
"""Benchmark: the floor under embedded messaging, the SDK and the function alone (issue 5).

Runs the chain function of ``bench/functions/embedded_chain.py`` through
``pystatefun.sdk.inprocess`` in a loop: no runtime, no store, no event loop. What one message
costs here (decode it, read and write the state, build and send the next message) is paid by
every embedded hop before the runtime does anything, so it bounds the chain's throughput on one
core. Also prints the cost of an empty Python call, as a yardstick for the machine.

    .venv/bin/python bench/inprocess_floor.py [--messages 20000]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent / "functions"))

import embedded_chain

from pystatefun.protocol import TypedValue
from pystatefun.sdk import SdkAddress
from pystatefun.sdk.inprocess import InProcessFunction


def main(messages: int) -> None:
    function = InProcessFunction.of(embedded_chain.functions, "chain/f1")
    caller = SdkAddress("chain", "f0", "id-1", "chain/f0")
    hop = embedded_chain.HOP.serializer().serialize((5, 0))
    state = {
        "count": TypedValue(
            typename="io.statefun.types/int", has_value=True, value=b"\x0d\x05\x00\x00\x00"
        )
    }
    for batch in (1, 10, 100):
        invocations = [
            (caller, TypedValue(typename=embedded_chain.HOP.typename, has_value=True, value=hop))
            for _ in range(batch)
        ]
        rounds = max(messages // batch, 1)
        started = time.perf_counter()
        for _ in range(rounds):
            function.run("id-1", state, invocations)
        each = (time.perf_counter() - started) / (rounds * batch)
        print(f"batch of {batch:>3}: {each * 1e6:5.1f} µs per message, at most "
              f"{1 / each:,.0f} messages/s on one core")  # fmt: skip

    def empty() -> None:
        return None

    started = time.perf_counter()
    for _ in range(1_000_000):
        empty()
    print(f"an empty Python function call: {(time.perf_counter() - started):.3f} µs")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=20_000)
    main(parser.parse_args().messages)
