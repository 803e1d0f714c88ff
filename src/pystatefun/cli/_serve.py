"""``pystatefun serve``: serve SDK functions over HTTP without writing a server."""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import logging
import signal
import sys
from pathlib import Path

import click

from pystatefun.sdk import RequestReplyHandler, StatefulFunctions

__all__ = ["load_functions", "serve"]


def load_functions(target: str) -> StatefulFunctions | RequestReplyHandler:
    """Load ``FILE.py:NAME`` or ``package.module:NAME`` and check what it is."""
    location, colon, name = target.rpartition(":")
    if not colon or not location or not name:
        raise click.BadParameter(
            f"{target!r} is not FILE.py:NAME or MODULE:NAME (e.g. functions.py:functions)"
        )
    if location.endswith(".py"):
        path = Path(location).resolve()
        if not path.is_file():
            raise click.BadParameter(f"no such file: {path}")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        if spec is None or spec.loader is None:
            raise click.BadParameter(f"cannot load {path} as a Python module")
        module = importlib.util.module_from_spec(spec)
        sys.path.insert(0, str(path.parent))  # so the file can import its siblings
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(location)
    found = getattr(module, name, None)
    if not isinstance(found, StatefulFunctions | RequestReplyHandler):
        raise click.BadParameter(
            f"{location}:{name} is {type(found).__name__}, not a StatefulFunctions or "
            "RequestReplyHandler"
        )
    return found


async def _serve(
    functions: StatefulFunctions | RequestReplyHandler, host: str, port: int, path: str
) -> None:
    from aiohttp import web  # noqa: PLC0415 - keeps `pystatefun --help` fast

    from pystatefun.sdk.aiohttp import make_app  # noqa: PLC0415

    runner = web.AppRunner(make_app(functions, path=path), handle_signals=False, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    click.echo(f"http://{bound[0]}:{bound[1]}{path}")  # data: the URL, for scripts
    logging.getLogger("pystatefun.cli").info("serving; SIGTERM or Ctrl-C stops")
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


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
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]),
    default="INFO",
    show_default=True,
)
def serve(target: str, host: str, port: int, path: str, log_level: str) -> None:
    """Serve the StatefulFunctions object TARGET (FILE.py:NAME or MODULE:NAME) over HTTP.

    Prints the endpoint URL on stdout once listening, then answers StateFun requests until
    SIGTERM or Ctrl-C. Point a module's `urlPathTemplate` at that URL.
    """
    logging.basicConfig(level=log_level, stream=sys.stderr, format="%(levelname)s %(message)s")
    functions = load_functions(target)
    asyncio.run(_serve(functions, host, port, path))
