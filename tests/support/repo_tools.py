"""The repository's ``tools/`` scripts (stdlib-only, run by ``dev.py`` before any dependency
exists), loaded as modules for the tests without making ``tools/`` a package."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def repo_tool(relative: str) -> ModuleType:
    """``tools/<relative>`` as a module, loaded once per session."""
    name = "pystatefun_tool_" + relative.removesuffix(".py").replace("/", "_")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / relative)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
