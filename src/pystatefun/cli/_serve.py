"""``pystatefun serve``: serve SDK functions over HTTP without writing a server."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Awaitable, Callable
from pathlib import Path

import click

from pystatefun.cli._log_options import log_options
from pystatefun.errors import ConfigurationError
from pystatefun.http import HttpLimits, HttpRequest, HttpResponse, HttpServer, run_event_loop
from pystatefun.sdk import RequestReplyHandler, StatefulFunctions, inprocess
from pystatefun.sdk._serving import DEFAULT_MAX_REQUEST_BYTES, reply_to, too_large

__all__ = ["load_functions", "serve"]

_TEXT = {"Content-Type": "text/plain; charset=utf-8"}
# Requests in progress get this long to finish on SIGTERM, as the aiohttp runner allowed.
_SHUTDOWN_TIMEOUT_S = 60.0


def load_functions(target: str) -> StatefulFunctions | RequestReplyHandler:
    """Load ``FILE.py:NAME`` or ``package.module:NAME``; a failure is a usage error."""
    try:
        return inprocess.load_functions(target)
    except ConfigurationError as exc:
        raise click.BadParameter(str(exc)) from exc


def _app(
    functions: StatefulFunctions | RequestReplyHandler, path: str, max_request_bytes: int
) -> tuple[
    Callable[[HttpRequest], Awaitable[HttpResponse]],
    Callable[[HttpRequest, int | None], HttpResponse],
]:
    """The request handler and the too-large answer: the aiohttp adapter's statuses (404 for
    another path, 405 for another method, 413, and ``reply_to``'s 200/400/404/500)."""
    handler = (
        functions if isinstance(functions, RequestReplyHandler) else RequestReplyHandler(functions)
    )

    def refusal(request: HttpRequest) -> HttpResponse | None:
        if request.path != path:
            return HttpResponse(404, b"404: Not Found", _TEXT)
        if request.method != "POST":
            return HttpResponse(405, b"405: Method Not Allowed", {**_TEXT, "Allow": "POST"})
        return None

    async def handle(request: HttpRequest) -> HttpResponse:
        refused = refusal(request)
        if refused is not None:
            return refused
        reply = await reply_to(handler, request.body)
        return HttpResponse(reply.status, reply.body, {"Content-Type": reply.content_type})

    def too_large_answer(request: HttpRequest, size: int | None) -> HttpResponse:
        refused = refusal(request)
        if refused is not None:
            return refused
        of = f"over {max_request_bytes}" if size is None else str(size)
        reply = too_large(
            f"request body of {of} bytes exceeds the limit of {max_request_bytes} bytes "
            "(max_request_bytes)"
        )
        return HttpResponse(reply.status, reply.body, {"Content-Type": reply.content_type})

    return handle, too_large_answer


async def _serve(
    functions: StatefulFunctions | RequestReplyHandler,
    host: str,
    port: int,
    path: str,
    unix_socket: Path | None,
) -> None:
    handle, too_large_answer = _app(functions, path, DEFAULT_MAX_REQUEST_BYTES)
    server = HttpServer(
        handle,
        max_body_bytes=DEFAULT_MAX_REQUEST_BYTES,
        too_large=too_large_answer,
        limits=HttpLimits(),  # the defaults, as `pystatefun run`'s
    )
    if unix_socket is None:
        await server.start(host, port)
        url = f"http://{host}:{server.port}{path}"
    else:
        await server.start(path=str(unix_socket))  # replaces a stale socket file
        url = f"http+unix://{unix_socket.absolute()}{path}"
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    click.echo(url)  # data: the URL, for scripts
    logging.getLogger("pystatefun.cli").info("serving; SIGTERM or Ctrl-C stops")
    try:
        await stop.wait()
    finally:
        await server.stop(_SHUTDOWN_TIMEOUT_S)
        if unix_socket is not None:
            unix_socket.unlink(missing_ok=True)


@click.command()
@click.argument("target")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="TCP port; 0 picks a free one (the URL printed on stdout tells which).",
)
@click.option("--path", default="/statefun", show_default=True, help="URL path to answer on.")
@click.option(
    "--unix-socket",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Listen on this Unix socket instead of TCP (a stale socket file there is replaced).",
)
@log_options("%(levelname)s %(message)s")
@click.pass_context
def serve(  # click passes options by keyword
    context: click.Context,
    target: str,
    *,
    host: str,
    port: int,
    path: str,
    unix_socket: Path | None,
) -> None:
    """Serve the StatefulFunctions object TARGET (FILE.py:NAME or MODULE:NAME) over HTTP.

    Prints the endpoint URL on stdout once listening, then answers StateFun requests until
    SIGTERM or Ctrl-C. Point a module's `urlPathTemplate` at that URL, or let the runtime start
    it: a co-located endpoint's command `[pystatefun, serve, TARGET, --unix-socket, "{socket}"]`.
    """
    if unix_socket is not None:
        given = [f"--{name}" for name in ("host", "port") if _given(context, name)]
        if given:
            raise click.UsageError(f"--unix-socket and {' and '.join(given)} exclude each other")
    functions = load_functions(target)
    try:
        run_event_loop(_serve(functions, host, port, path, unix_socket))
    except OSError as exc:
        raise click.ClickException(_cannot_listen(exc, host, port, unix_socket)) from exc


def _given(context: click.Context, name: str) -> bool:
    return context.get_parameter_source(name) is not click.core.ParameterSource.DEFAULT


def _cannot_listen(exc: OSError, host: str, port: int, unix_socket: Path | None) -> str:
    if unix_socket is not None:
        return (
            f"cannot listen on the unix socket {unix_socket}: {exc.strerror or exc}; does its "
            "directory exist, and is the path at most 107 bytes long?"
        )
    return (
        f"cannot listen on {host}:{port}: {exc.strerror or exc}; is another process using "
        "the port? Pick another with --port (0 picks a free one)."
    )
