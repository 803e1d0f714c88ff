"""Run the process's event loop on uvloop when it is installed.

uvloop's loop (libuv) costs a fraction of the standard loop's CPU per socket event, and the
runtime's HTTP traffic is mostly socket events. It is optional: without it (Windows, or a build
without it) the standard loop runs the same code.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["event_loop_factory", "run_event_loop"]

T = TypeVar("T")


def event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    """uvloop's ``new_event_loop`` when importable, else asyncio's."""
    try:
        import uvloop  # noqa: PLC0415 - optional, and only the commands that serve need it
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


def run_event_loop(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)``, on uvloop when it is installed.

    A loop factory rather than a global event-loop policy: policies are deprecated from Python
    3.14, and nothing else in the process is affected.
    """
    with asyncio.Runner(loop_factory=event_loop_factory()) as runner:
        return runner.run(main)
