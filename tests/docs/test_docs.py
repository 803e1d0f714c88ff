"""The docs are part of the product: every error code has its page, every relative link points
somewhere, and the Python in docs/sdk.md runs."""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

import pytest

from pystatefun import errors

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *DOCS.rglob("*.md")]
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")


def _error_codes() -> list[str]:
    return sorted(
        cls.code
        for _, cls in inspect.getmembers(errors, inspect.isclass)
        if issubclass(cls, errors.PystatefunError) and cls is not errors.PystatefunError
    )


def _codes_in_source() -> dict[str, list[str]]:
    """Every error code the code can print (declared or written anywhere in src/), and where."""
    found: dict[str, list[str]] = {}
    for path in sorted((ROOT / "src" / "pystatefun").rglob("*.py")):
        for code in re.findall(r"PSF-[A-Z]+\d{4}", path.read_text()):
            found.setdefault(code, []).append(str(path.relative_to(ROOT)))
    return found


def test_every_error_code_has_a_page_and_an_index_entry() -> None:
    codes = _error_codes()
    assert len(codes) == len(set(codes)), "error codes must be unique"
    in_source = _codes_in_source()
    assert set(codes) <= set(in_source)
    codes = sorted(in_source.keys() - {"PSF-0000"})  # the base class's placeholder
    index = (DOCS / "errors" / "README.md").read_text()
    for code in codes:
        page = DOCS / "errors" / f"{code}.md"
        assert page.exists(), f"docs/errors/{code}.md is missing ({in_source[code][0]})"
        assert page.read_text().startswith(f"# {code}:")
        assert f"({code}.md)" in index


@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_resolve(page: Path) -> None:
    broken = [
        target
        for target, _ in LINK.findall(page.read_text())
        if "://" not in target and not (page.parent / target).exists()
    ]
    assert not broken, f"{page.relative_to(ROOT)} links to missing {broken}"


def _python_blocks(page: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", page.read_text(), re.S)


def _runs_forever_or_needs_upstream(block: str) -> bool:
    return any(marker in block for marker in ("run_app(", "serve_forever(", "from statefun "))


def test_sdk_guide_code_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The first block is the guide's cart.py; every later block runs with it importable, and
    the ``test_*`` functions a block defines are called, as pytest would."""
    first, *rest = _python_blocks(DOCS / "sdk.md")
    (tmp_path / "cart.py").write_text(first)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    ran = 0
    for number, block in enumerate(rest, 2):
        if _runs_forever_or_needs_upstream(block):
            continue
        namespace: dict[str, object] = {"__name__": "doc"}
        try:
            exec(compile(block, f"docs/sdk.md python block {number}", "exec"), namespace)
            # A block that is a pytest file (the pystatefun.testing example): run its tests.
            for name, test in list(namespace.items()):
                if name.startswith("test_") and callable(test):
                    test()
        except Exception as error:
            raise AssertionError(f"docs/sdk.md python block {number} fails:\n{block}") from error
        ran += 1
    sys.modules.pop("cart", None)
    assert ran >= 8
