"""Module YAML tests write real files into ``tmp_path``: ``write(text)`` returns the path of
``module.yaml`` holding the dedented text, its first line being line 1."""

from __future__ import annotations

import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

from pystatefun.errors import ModuleError
from pystatefun.module import load_module


@pytest.fixture
def write(tmp_path: Path) -> Callable[..., Path]:
    def write(text: str, name: str = "module.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
        return path

    return write


@pytest.fixture
def load_error() -> Callable[[Path], ModuleError]:
    """The ``ModuleError`` that loading a file raises (fails the test if it loads)."""

    def load_error(path: Path) -> ModuleError:
        with pytest.raises(ModuleError) as caught:
            load_module(path)
        return caught.value

    return load_error
