"""run_event_loop: uvloop when it is installed, the standard loop otherwise."""

from __future__ import annotations

import asyncio
import sys

import pytest

from pystatefun.http import event_loop_factory, run_event_loop


async def _loop_type() -> str:
    return type(asyncio.get_running_loop()).__module__


def test_uvloop_runs_the_loop_when_it_is_installed() -> None:
    uvloop = pytest.importorskip("uvloop")
    assert event_loop_factory() is uvloop.new_event_loop
    assert run_event_loop(_loop_type()).startswith("uvloop")


def test_without_uvloop_the_standard_loop_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "uvloop", None)  # makes `import uvloop` fail
    assert event_loop_factory() is asyncio.new_event_loop
    assert run_event_loop(_loop_type()).startswith("asyncio")
