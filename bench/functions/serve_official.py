"""Serve ``bench_functions.build(statefun)`` with the official StateFun SDK, as upstream does.

    .venv-statefun-3.3.0/bin/python bench/functions/serve_official.py [--port 0] [--functions F]

``--functions`` names another file of this folder with a ``build(sf)`` (default
``bench_functions.py``; ``bench/kafka_end_to_end.py`` serves ``kafka_counter.py``).

The way upstream's Python examples serve functions in production (flink-statefun-playground,
``python/greeter``): an aiohttp application whose handler passes each request's body to
``RequestReplyHandler.handle_async``. Prints the endpoint URL on stdout once listening, then
serves until SIGTERM. Runs in the official SDK's virtualenv (protobuf 3.20, plus aiohttp, which
``bench/harness/pystatefun_peer.py`` installs there), never in ours.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import signal
import sys
from pathlib import Path

import statefun
from aiohttp import web

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

PATH = "/statefun"


async def serve(port: int, functions: str) -> None:
    module = importlib.import_module(Path(functions).stem)
    handler = statefun.RequestReplyHandler(module.build(statefun))

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        reply = await handler.handle_async(body)
        return web.Response(body=reply, content_type="application/octet-stream")

    app = web.Application()
    app.add_routes([web.post(PATH, handle)])
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    bound = runner.addresses[0][1]
    print(f"http://127.0.0.1:{bound}{PATH}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--functions", default="bench_functions.py", help="a file of this folder")
    args = parser.parse_args()
    asyncio.run(serve(args.port, args.functions))


if __name__ == "__main__":
    main()
