"""Serve ``interop_functions`` over real HTTP on 127.0.0.1 with either SDK.

    python serve_functions.py official   # official SDK venv: stdlib server + handle_sync
    python serve_functions.py ours       # under .venv: pystatefun.sdk.aiohttp

Prints ``PORT <n>`` on stdout once it listens, then serves until killed.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import interop_functions


def serve_official():
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    import statefun

    handler = statefun.RequestReplyHandler(interop_functions.build(statefun))

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            try:
                reply, status, content_type = (
                    handler.handle_sync(body),
                    200,
                    "application/octet-stream",
                )
            except Exception as exc:  # noqa: BLE001 - a failing function answers 500
                reply, status, content_type = (
                    f"{type(exc).__name__}: {exc}".encode(),
                    500,
                    "text/plain",
                )
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, *args):
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128  # the stdlib default of 5 resets concurrent connections

    server = Server(("127.0.0.1", 0), Handler)
    print(f"PORT {server.server_address[1]}", flush=True)
    server.serve_forever()


def serve_ours():
    import asyncio

    from aiohttp import web

    import pystatefun.sdk as sf
    from pystatefun.sdk.aiohttp import make_app

    async def main():
        runner = web.AppRunner(make_app(interop_functions.build(sf), path="/statefun"))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        print(f"PORT {port}", flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


if __name__ == "__main__":
    {"official": serve_official, "ours": serve_ours}[sys.argv[1]]()
