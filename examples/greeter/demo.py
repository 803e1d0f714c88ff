"""The main job (``python3 dev.py example``): the greeter application, end to end.

1. serves the greeter functions (``functions.py``) with ``pystatefun serve``;
2. runs ``pystatefun run`` on a module pointing at them, on a fresh data dir;
3. sends visits through the playground ingress, one of them waiting for the function's reply;
4. reads the greetings from the playground egress, including the delayed follow-up;
5. stops both processes with SIGTERM and checks that they exited cleanly.

It needs only the plain package (``pip install pystatefun``): HTTP goes through the standard
library's ``urllib``, in a thread, so that the asyncio loop keeps reading the processes' output.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
VISITS = ["alice", "bob", "alice"]
EXPECTED_GREETINGS = 6  # 4 visits (3 above + 1 request-reply) + a follow-up each for alice, bob
DEADLINE_S = 60.0

MODULE = """\
kind: io.statefun.endpoints.v2/http
spec:
  functions: example/*
  urlPathTemplate: {url}
  transport:
    call: 10s
---
kind: io.statefun.playground.v1/ingress
spec:
  port: 0
---
kind: io.statefun.playground.v1/egress
spec:
  port: 0
  topics: [greetings]
"""


async def start(*args: str | Path) -> tuple[asyncio.subprocess.Process, dict[str, str]]:
    """Start a pystatefun command; collect what it prints on stdout until it is ready."""
    process = await asyncio.create_subprocess_exec(
        PYSTATEFUN, *map(str, args), stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    announced: dict[str, str] = {}
    while line := (await process.stdout.readline()).decode().strip():
        if line == "ready":
            return process, announced
        key, _, value = line.rpartition(" ")
        announced[key or "url"] = value
        if args[0] == "serve":
            return process, announced
    raise SystemExit(f"`pystatefun {args[0]}` exited before it was ready")


async def stop(name: str, process: asyncio.subprocess.Process) -> int:
    process.send_signal(signal.SIGTERM)
    code = await process.wait()
    print(f"{name} stopped with exit code {code}")
    return code


def http(
    url: str, body: str | None = None, headers: dict[str, str] | None = None
) -> tuple[int, str]:
    """POST ``body`` (or GET without one); the status and the text of the answer, 4xx included."""
    data = None if body is None else body.encode()
    request = urllib.request.Request(url, data=data, headers=headers or {})  # noqa: S310 - loopback
    if data is not None:
        request.add_header("Content-Type", "text/plain; charset=utf-8")
    try:
        with urllib.request.urlopen(request, timeout=DEADLINE_S) as response:  # noqa: S310
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def greet(ingress: str, egress: str) -> int:
    for name in VISITS:
        status, _ = http(f"{ingress}/example/user/{name}", name)
        print(f"POST /example/user/{name} -> {status}")
    headers = {"Pystatefun-Request-Reply": "true"}
    status, visits = http(f"{ingress}/example/user/bob", "bob", headers)
    print(f"POST /example/user/bob (request-reply) -> {status}: bob has visited {visits} times")
    received = 0
    deadline = time.monotonic() + DEADLINE_S
    while received < EXPECTED_GREETINGS and time.monotonic() < deadline:
        status, greeting = http(f"{egress}/greetings")
        if status == 200:
            received += 1
            print(f"egress [greetings]: {greeting}")
        else:  # 404: nothing yet; the follow-up is due a second after the last visit
            time.sleep(0.1)
    return received


async def main() -> int:
    with tempfile.TemporaryDirectory(prefix="pystatefun-greeter-") as scratch:
        functions, served = await start(
            "serve", f"{HERE / 'functions.py'}:functions", "--port", "0", "--log-level", "WARNING"
        )
        print(f"greeter functions served at {served['url']}")
        module = Path(scratch) / "module.yaml"
        module.write_text(MODULE.format(url=served["url"]))
        runtime, urls = await start(
            "run", module, "--data-dir", Path(scratch) / "data", "--log-level", "WARNING"
        )
        print(f"pystatefun run: ingress {urls['ingress']}, egress {urls['egress']}")
        try:
            received = await asyncio.to_thread(greet, urls["ingress"], urls["egress"])
        finally:
            codes = [
                await stop("pystatefun run", runtime),
                await stop("function server", functions),
            ]
    print(f"{received} of {EXPECTED_GREETINGS} greetings received")
    return 0 if received == EXPECTED_GREETINGS and codes == [0, 0] else 1


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
