#!/usr/bin/env python3
"""Benchmark: the HTTP stack under the runtime, aiohttp vs ``pystatefun.http``.

One process runs a server and a client on 127.0.0.1; ``--concurrency`` callers POST
``--body-bytes`` bytes ``--requests`` times in all, over keep-alive connections (a pool of
``--concurrency``), and the server echoes the body as ``application/octet-stream``. Reported:
requests per second and the process CPU time per request (client and server together), for
each stack on each event loop available (asyncio, and uvloop when installed). Each stack runs
in a child process so one's imports and loop do not tax the other.

    .venv/bin/python bench/http_stack.py [--requests 20000] [--concurrency 64]

Not part of CI's pass/fail: figures depend on the machine.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

Caller = Callable[[], Awaitable[bytes]]


async def _aiohttp_pair(body: bytes, concurrency: int) -> tuple[Caller, Callable[[], Any]]:
    import aiohttp
    from aiohttp import web

    async def echo(request: web.Request) -> web.Response:
        return web.Response(body=await request.read(), content_type="application/octet-stream")

    app = web.Application()
    app.router.add_post("/f", echo)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/f"
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency))
    headers = {"Content-Type": "application/octet-stream"}

    async def call() -> bytes:
        async with session.post(url, data=body, headers=headers) as response:
            return await response.read()

    async def close() -> None:
        await session.close()
        await runner.cleanup()

    return call, close


async def _lean_pair(body: bytes, concurrency: int) -> tuple[Caller, Callable[[], Any]]:
    from pystatefun.http import HttpClientPool, HttpRequest, HttpResponse, HttpServer

    async def echo(request: HttpRequest) -> HttpResponse:
        return HttpResponse(200, request.body, {"Content-Type": "application/octet-stream"})

    server = HttpServer(echo, max_body_bytes=1 << 25)
    await server.start("127.0.0.1", 0)
    pool = HttpClientPool("127.0.0.1", server.port, pool_size=concurrency, keepalive_s=15)
    headers = {"Content-Type": "application/octet-stream"}

    async def call() -> bytes:
        response = await pool.request(
            "POST",
            "/f",
            body,
            headers,
            connect_timeout_s=5,
            read_timeout_s=None,
            total_timeout_s=30,
            max_body_bytes=1 << 25,
        )
        return response.body

    async def close() -> None:
        await pool.close()
        await server.stop(1.0)

    return call, close


async def _measure(stack: str, requests: int, concurrency: int, body_bytes: int) -> dict[str, Any]:
    body = b"x" * body_bytes
    make = _aiohttp_pair if stack == "aiohttp" else _lean_pair
    call, close = await make(body, concurrency)
    for _ in range(min(requests // 10, 500)):  # warm up: connections, caches
        assert await call() == body
    remaining = iter(range(requests))

    async def worker() -> None:
        for _ in remaining:
            assert await call() == body

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await close()
    return {"req_per_s": requests / wall, "cpu_us_per_req": cpu / requests * 1e6}


def _child(stack: str, loop: str, requests: int, concurrency: int, body_bytes: int) -> None:
    from pystatefun.http import event_loop_factory

    factory = event_loop_factory() if loop == "uvloop" else asyncio.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        result = runner.run(_measure(stack, requests, concurrency, body_bytes))
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--body-bytes", type=int, default=100)
    parser.add_argument("--child", nargs=2, metavar=("STACK", "LOOP"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child, args.requests, args.concurrency, args.body_bytes)
        return
    try:
        import uvloop  # noqa: F401
    except ImportError:
        loops = ["asyncio"]
    else:
        loops = ["asyncio", "uvloop"]
    print(
        f"{args.requests} POSTs of {args.body_bytes} bytes, {args.concurrency} concurrent, "
        "keep-alive; CPU is client and server together"
    )
    print(f"{'stack':<18} {'loop':<8} {'req/s':>9} {'CPU µs/req':>11}")
    for stack in ("aiohttp", "pystatefun.http"):
        for loop in loops:
            command = [
                sys.executable,
                __file__,
                *("--child", stack, loop),
                f"--requests={args.requests}",
                f"--concurrency={args.concurrency}",
                f"--body-bytes={args.body_bytes}",
            ]
            out = subprocess.run(
                command,
                capture_output=True,
                text=True,
                check=True,
            )
            result = json.loads(out.stdout)
            print(
                f"{stack:<18} {loop:<8} {result['req_per_s']:>9.0f} "
                f"{result['cpu_us_per_req']:>11.0f}"
            )


if __name__ == "__main__":
    main()
