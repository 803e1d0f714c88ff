"""Every kind has its page in docs/module-yaml/, the page's example is the parser's docstring
example, every field of the kind is in the page's table, and every YAML block in the pages
loads (or, for a legacy module, upgrades to something that loads)."""

from __future__ import annotations

import importlib
import pkgutil
import re
import textwrap
from pathlib import Path
from types import ModuleType

import pytest
from pydantic import BaseModel

from pystatefun.errors import ModuleError
from pystatefun.module import kinds, load_module
from pystatefun.module.upgrade import upgrade_module

ROOT = Path(__file__).resolve().parents[3]
PAGES = ROOT / "docs" / "module-yaml"
KIND_MODULES = [
    importlib.import_module(f"pystatefun.module.kinds.{info.name}")
    for info in pkgutil.iter_modules(kinds.__path__)
]


def _page(module: ModuleType) -> Path:
    return PAGES / f"{module.KIND.replace('/', '-')}.md"


def _docstring_example(module: ModuleType) -> str:
    """The indented block after the first ``::`` of the module docstring."""
    doc = module.__doc__ or ""
    lines = doc[doc.index("::\n") + 3 :].splitlines()
    block = []
    for line in lines:
        if line and not line.startswith(" "):
            break
        block.append(line)
    return textwrap.dedent("\n".join(block)).strip() + "\n"


def _yaml_blocks(page: Path) -> list[str]:
    return re.findall(r"```yaml\n(.*?)```", page.read_text(), re.S)


def test_every_parser_is_a_kind_module() -> None:
    assert {m.KIND for m in KIND_MODULES} >= set(kinds.PARSERS)
    assert len(KIND_MODULES) == 12


@pytest.mark.parametrize("module", KIND_MODULES, ids=lambda m: m.KIND)
def test_each_kind_has_a_page_with_its_docstring_example(module: ModuleType) -> None:
    page = _page(module)
    assert page.exists(), f"{page.relative_to(ROOT)} is missing"
    text = page.read_text()
    assert text.startswith(f"# `{module.KIND}`\n")
    assert _yaml_blocks(page)[0] == _docstring_example(module)
    assert f"({page.name})" in (PAGES / "README.md").read_text()


@pytest.mark.parametrize("module", KIND_MODULES, ids=lambda m: m.KIND)
def test_each_field_is_in_the_table(module: ModuleType) -> None:
    table = [line for line in _page(module).read_text().splitlines() if line.startswith("| `")]
    documented = {re.match(r"\| `([^`]+)`", line).group(1) for line in table}  # type: ignore[union-attr]
    spec: type[BaseModel] = module.Spec
    for name, info in spec.model_fields.items():
        assert (info.alias or name) in documented, f"{module.KIND}: {info.alias or name}"


@pytest.mark.parametrize("module", KIND_MODULES, ids=lambda m: m.KIND)
def test_each_docstring_example_loads_without_warnings(module: ModuleType, tmp_path: Path) -> None:
    path = tmp_path / "module.yaml"
    path.write_text(_docstring_example(module))
    assert load_module(path).warnings == ()


@pytest.mark.parametrize("page", sorted(PAGES.glob("*.md")), ids=lambda p: p.name)
def test_every_yaml_block_loads(page: Path, tmp_path: Path) -> None:
    for number, block in enumerate(_yaml_blocks(page), 1):
        path = tmp_path / f"block-{number}.yaml"
        path.write_text(block)
        try:
            if "\nversion:" in f"\n{block}":
                path.write_text(upgrade_module(path).yaml)
            assert load_module(path).warnings == ()
        except ModuleError as error:
            raise AssertionError(f"{page.name} yaml block {number}: {error}") from error


def test_the_readme_python_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (block,) = re.findall(r"```python\n(.*?)```", (PAGES / "README.md").read_text(), re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(block, "docs/module-yaml/README.md", "exec"), {"__name__": "doc"})


def test_the_error_page_exists_and_is_indexed() -> None:
    page = ROOT / "docs" / "errors" / "PSF-MOD0001.md"
    assert page.read_text().startswith("# PSF-MOD0001:")
    assert "(PSF-MOD0001.md)" in (ROOT / "docs" / "errors" / "README.md").read_text()
