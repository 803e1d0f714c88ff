"""A real browser for the web console's tests: Debian's ``chromium``, headless, driven by
Playwright (the ``playwright`` package of the ``dev`` extra, which talks to the system
browser: ``playwright install`` cannot download its own here, and is never run).

``chromium_path()`` installs the browser when it is missing and the tests run as root with
``apt-get`` (once: a file lock keeps parallel runs from racing each other, and apt's own lock
is waited for); anywhere else it fails, saying how to install it. It never skips: a console
test that did not run would look like one that passed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from playwright.sync_api import Browser

__all__ = ["CHROMIUM", "LAUNCH_ARGS", "chromium", "chromium_path", "is_png"]

CHROMIUM = Path("/usr/bin/chromium")
#: Headless, without a sandbox (root in a container has none), and nothing that reaches out.
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
_HOW = "install it with `sudo apt-get install -y --no-install-recommends chromium`"
_LOCK = Path(tempfile.gettempdir()) / "pystatefun-chromium-install.lock"


def _apt_install(apt: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [apt, "-o", "DPkg::Lock::Timeout=600", "install", "-y", "--no-install-recommends",
         "chromium"],
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
        capture_output=True, text=True, timeout=1800, check=False,
    )  # fmt: skip


def chromium_path() -> Path:
    """The system Chromium, installed first if need be (see the module docstring)."""
    if CHROMIUM.exists():
        return CHROMIUM
    apt = shutil.which("apt-get")
    if apt is None or os.geteuid() != 0:
        pytest.fail(f"the web console tests need Debian's chromium at {CHROMIUM}; {_HOW}")
    with _LOCK.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another run may be installing it right now
        if not CHROMIUM.exists():
            done = _apt_install(apt)
            if done.returncode != 0:  # a machine that never read the package lists
                subprocess.run([apt, "-o", "DPkg::Lock::Timeout=600", "update"],
                               capture_output=True, timeout=900, check=False)  # fmt: skip
                done = _apt_install(apt)
            if done.returncode != 0 or not CHROMIUM.exists():
                pytest.fail(f"apt-get could not install chromium ({done.stderr[-2000:]}); {_HOW}")
    return CHROMIUM


@contextmanager
def chromium() -> Iterator[Browser]:
    """Headless Chromium under Playwright, closed at the end."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("the web console tests need Playwright: pip install -e '.[dev]'")
    path = chromium_path()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(path), args=LAUNCH_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def is_png(path: Path, *, min_bytes: int = 10_000) -> bool:
    """Whether ``path`` is a PNG image of some substance (a blank page is a few KiB)."""
    data = path.read_bytes() if path.is_file() else b""
    return data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= min_bytes
