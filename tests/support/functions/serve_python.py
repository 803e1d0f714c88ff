"""Serve ``build(sf)`` functions over real HTTP on 127.0.0.1 with either Python SDK.

    python serve_python.py official [PORT]   # official SDK venv: stdlib server + handle_sync
    python serve_python.py ours [PORT]       # under .venv: pystatefun.sdk.aiohttp.make_app

PORT defaults to 0 (any free port). ``--functions FILE.py`` serves that file's ``build(sf)``
instead of ``smoke_functions.py``. Prints ``PORT <n>`` on stdout once it listens, then serves
until killed. ``ours`` answers at ``/statefun`` only; ``official`` answers POSTs to any path, as
the official SDK's own examples do.

A failing function answers 500 with ``<ExceptionType>: <message>`` (official) or the pystatefun
SDK's error text (ours). This file runs under both virtualenvs, so it needs Python 3.8 at most and
the standard library only (plus the SDK it serves).
"""

import argparse
import importlib.util
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def load_build(path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module.build


def serve_official(build, port):
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import statefun

    handler = statefun.RequestReplyHandler(build(statefun))

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as a production server would offer

        def do_POST(self):
            length = self.headers.get("Content-Length")
            if length is None:
                self.answer(411, "text/plain", b"Content-Length required")
                return
            body = self.rfile.read(int(length))
            try:
                reply = handler.handle_sync(body)
            except Exception as exc:  # noqa: BLE001 - a failing function answers 500
                self.answer(500, "text/plain", f"{type(exc).__name__}: {exc}".encode())
            else:
                self.answer(200, "application/octet-stream", reply)

        def answer(self, status, content_type, body):
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # the stdlib default of 5 resets concurrent connections

    server = Server(("127.0.0.1", port), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


def serve_ours(build, port):
    import asyncio

    from aiohttp import web

    import pystatefun.sdk as sf
    from pystatefun.sdk.aiohttp import make_app

    async def main():
        runner = web.AppRunner(make_app(build(sf), path="/statefun"), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", port)
        await site.start()
        bound = runner.addresses[0][1]
        print(f"PORT {bound}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sdk", choices=["official", "ours"])
    parser.add_argument("port", nargs="?", type=int, default=0)
    parser.add_argument("--functions", type=Path, default=HERE / "smoke_functions.py")
    args = parser.parse_args()
    build = load_build(args.functions.resolve())
    {"official": serve_official, "ours": serve_ours}[args.sdk](build, args.port)


if __name__ == "__main__":
    main()
