#!/usr/bin/env python3
"""Benchmark: the SDK request-reply core, ours against the official ``statefun`` 3.3.0.

Both handlers answer the same ``ToFunction`` bytes with the same function logic
(``tests/interop/interop_functions.py``), in-process (no HTTP), each in its own interpreter:
ours under ``.venv``, the official SDK under ``.venv-statefun-3.3.0`` (run ``python3 dev.py
test`` once to build it). Prints batches/s, messages/s, p50/p99 latency per batch and peak RSS.

    .venv/bin/python bench/sdk_handler.py [--seconds 3]

Not part of CI's pass/fail: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "interop"), str(ROOT / "tests")]
OFFICIAL_PYTHON = ROOT / ".venv-statefun-3.3.0" / "bin" / "python"


def scenarios() -> dict[str, bytes]:
    """Name -> serialized ToFunction, built with our protocol classes."""
    from support.wire import to_function, typed

    from pystatefun import sdk

    history = sdk.make_json_type("interop/History")
    state = {
        "count": typed(sdk.IntType, 41),
        "history": typed(history, ["a", "b", "c"]),
        "last_name": typed(sdk.StringType, "c"),
    }
    one = [(typed(sdk.StringType, "alice"), "interop/caller/1")]
    ten = [(typed(sdk.StringType, f"user-{i}"), None) for i in range(10)]
    return {
        "1 message, 3 states": to_function("interop/counter", "a", state, one).SerializeToString(),
        "10 messages, 3 states": to_function(
            "interop/counter", "a", state, ten
        ).SerializeToString(),
        "handshake (no state)": to_function("interop/counter", "a", {}, one).SerializeToString(),
    }


def measure(sdk_name: str, requests: dict[str, bytes], seconds: float) -> dict[str, object]:
    """Run in the child interpreter: time handle_sync on each request."""
    import interop_functions

    if sdk_name == "official":
        import statefun as module
    else:
        import pystatefun.sdk as module
    handler = module.RequestReplyHandler(interop_functions.build(module))
    results = {}
    for name, request in requests.items():
        for _ in range(200):  # warm up
            handler.handle_sync(request)
        latencies: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline and len(latencies) < 1_000_000:
            start = time.perf_counter()
            handler.handle_sync(request)
            latencies.append(time.perf_counter() - start)
        latencies.sort()
        total = sum(latencies)
        results[name] = {
            "batches_per_s": len(latencies) / total,
            "p50_us": latencies[len(latencies) // 2] * 1e6,
            "p99_us": latencies[int(len(latencies) * 0.99)] * 1e6,
        }
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {"results": results, "rss_mb": rss_mb}


def child(sdk_name: str, requests_file: str, seconds: float) -> None:
    raw = json.loads(Path(requests_file).read_text())
    requests = {name: bytes.fromhex(data) for name, data in raw.items()}
    print(json.dumps(measure(sdk_name, requests, seconds)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="per scenario and SDK")
    parser.add_argument("--child", nargs=2, metavar=("SDK", "REQUESTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.seconds)
        return
    if not OFFICIAL_PYTHON.exists():
        raise SystemExit("no official SDK virtualenv: run `python3 dev.py test` once first")
    requests = scenarios()
    messages = {"1 message, 3 states": 1, "10 messages, 3 states": 10, "handshake (no state)": 1}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as file:
        json.dump({name: data.hex() for name, data in requests.items()}, file)
    runs = {}
    for sdk_name, python in (("pystatefun", sys.executable), ("official", OFFICIAL_PYTHON)):
        out = subprocess.run(
            [python, __file__, "--seconds", str(args.seconds), "--child", sdk_name, file.name],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        runs[sdk_name] = json.loads(out)
    Path(file.name).unlink()
    print(
        f"{'scenario':24} {'sdk':11} {'batches/s':>10} {'msgs/s':>10} {'p50 us':>8} {'p99 us':>8}"
    )
    for name in requests:
        for sdk_name, run in runs.items():
            r = run["results"][name]
            print(
                f"{name:24} {sdk_name:11} {r['batches_per_s']:10.0f} "
                f"{r['batches_per_s'] * messages[name]:10.0f} {r['p50_us']:8.1f} {r['p99_us']:8.1f}"
            )
    for sdk_name, run in runs.items():
        print(f"peak RSS {sdk_name}: {run['rss_mb']:.1f} MiB")


if __name__ == "__main__":
    main()
