"""The benchmark logic as Restate Virtual Objects, served by hypercorn (restate-sdk 1.2.0).

Runs in its own virtualenv (``bench/.cache/venv-restate``, made by
``bench/harness/restate_peer.py``'s ``ensure_installed``), never in ours:

    bench/.cache/venv-restate/bin/python bench/restate_service/services.py --bind 127.0.0.1:PORT

The logic is the one ``bench/harness/peer.py`` describes; the names are used as they are
(Restate accepts ``-`` in service names, so the objects are ``chain-a``/``chain-b``/``chain-c``).

Time inside handlers: wall clock is not deterministic on replay, so ``ticker`` reads it through
``await ctx.time()``, the SDK's idiom (``time.time()`` journaled as a ``ctx.run`` step): the first
execution records the real time, a replay (after a retry or a crash) gets the recorded value back.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import timedelta

import hypercorn.asyncio
import hypercorn.config
import restate
import uvloop
from restate import ObjectContext, VirtualObject

# --- counter ------------------------------------------------------------------------------------

counter = VirtualObject("counter")


@counter.handler()
async def add(ctx: ObjectContext, amount: int) -> int:
    count = (await ctx.get("count", type_hint=int)) or 0
    count += amount
    ctx.set("count", count)
    return count


# Exclusive on purpose: it queues behind the adds already accepted for this key, so the count it
# answers includes every one of them.
@counter.handler(kind="exclusive")
async def get(ctx: ObjectContext) -> int:
    return (await ctx.get("count", type_hint=int)) or 0


# --- chain-a -> chain-b -> chain-c ----------------------------------------------------------------

chain_c = VirtualObject("chain-c")
chain_b = VirtualObject("chain-b")
chain_a = VirtualObject("chain-a")


async def _bump(ctx: ObjectContext) -> int:
    count = ((await ctx.get("count", type_hint=int)) or 0) + 1
    ctx.set("count", count)
    return count


@chain_c.handler("hop")
async def hop_c(ctx: ObjectContext, n: int) -> int:
    return await _bump(ctx)


@chain_b.handler("hop")
async def hop_b(ctx: ObjectContext, n: int) -> int:
    await _bump(ctx)
    return await ctx.object_call(hop_c, key=ctx.key(), arg=n)


@chain_a.handler("hop")
async def hop_a(ctx: ObjectContext, n: int) -> int:
    await _bump(ctx)
    return await ctx.object_call(hop_b, key=ctx.key(), arg=n)


# --- ticker -------------------------------------------------------------------------------------

ticker = VirtualObject("ticker")


@ticker.handler()
async def schedule(ctx: ObjectContext) -> None:
    now_s = await ctx.time()  # journaled: the same value on replay
    due_ms = int(now_s * 1000) + 1000
    ctx.object_send(tick, key=ctx.key(), arg=due_ms, send_delay=timedelta(seconds=1))


@ticker.handler()
async def tick(ctx: ObjectContext, due: int) -> None:
    now_s = await ctx.time()  # when the delayed message was actually delivered (journaled)
    lateness = (await ctx.get("lateness", type_hint=list[float])) or []
    lateness.append(now_s * 1000.0 - due)
    ctx.set("lateness", lateness)


@ticker.handler("lateness")
async def lateness_of(ctx: ObjectContext) -> list[float]:
    return (await ctx.get("lateness", type_hint=list[float])) or []


app = restate.app(services=[counter, chain_a, chain_b, chain_c, ticker])


def hypercorn_config(bind: str) -> hypercorn.config.Config:
    """Restate's recommended production settings for hypercorn.

    Source: Restate docs, "Serving" for the Python SDK (docs.restate.dev/develop/python/serving),
    section "Hypercorn production server", which recommends::

        h2_max_concurrent_streams = 2147483647
        keep_alive_max_requests = 2147483647
        keep_alive_timeout = 2147483647
        workers = 8

    Restate keeps one long-lived HTTP/2 (h2c) connection to the service and multiplexes every
    invocation over it; hypercorn's defaults (100 concurrent streams, close the connection after
    1000 requests or 5 s idle) cut that connection under load or when idle, which shows up as
    stalled invocations. ``workers`` is not used: we serve in this one process (2-core machine,
    and the harness measures exactly one service PID).
    """
    config = hypercorn.config.Config()
    config.bind = [bind]
    config.h2_max_concurrent_streams = 2147483647
    config.keep_alive_max_requests = 2147483647
    config.keep_alive_timeout = 2147483647
    config.accesslog = None
    config.errorlog = "-"
    return config


async def _serve(bind: str) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await hypercorn.asyncio.serve(app, hypercorn_config(bind), shutdown_trigger=stop.wait)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bind", required=True, help="HOST:PORT, e.g. 127.0.0.1:9080")
    args = parser.parse_args()
    # uvloop, like hypercorn's `--worker-class uvloop` and like every pystatefun process here.
    uvloop.run(_serve(args.bind))


if __name__ == "__main__":
    main()
