"""The public API is exactly what ``__all__`` says, public classes are final, and the SDK stays
importable without the runtime's dependencies."""

from __future__ import annotations

import ast
import importlib
import inspect
import json
import subprocess
import sys

import pytest

PUBLIC_MODULES = [
    "pystatefun",
    "pystatefun.types",
    "pystatefun.errors",
    "pystatefun.protocol",
    "pystatefun.protocol.v3",
    "pystatefun.protocol.typed_values",
    "pystatefun.protocol.egress",
    "pystatefun.sdk",
    "pystatefun.sdk.asgi",
    "pystatefun.sdk.aiohttp",
    "pystatefun.sdk.inprocess",
    "pystatefun.module",
    "pystatefun.module.upgrade",
    "pystatefun.runtime",
    "pystatefun.store",
    "pystatefun.io.api",
    "pystatefun.testing",
    "pystatefun.query",
    "pystatefun.savepoint",
    "pystatefun.cluster",
]
# Extension points: users subclass these (errors are caught by type; Type/TypeSerializer are ABCs).
MEANT_FOR_SUBCLASSING = {"Type", "TypeSerializer"}
# Module-level type variables and aliases are not API.
TYPING_HELPERS = {"T", "F", "Scope", "Receive", "Send"}


def _reexports(nodes: list[ast.stmt]) -> set[str]:
    """The names of ``from x import Y as Y`` among ``nodes``."""
    return {
        a.asname
        for node in nodes
        if isinstance(node, ast.ImportFrom)
        for a in node.names
        if a.asname and a.asname == a.name
    }


def _declared_public_names(module: object) -> set[str]:
    """Top-level definitions and explicit re-exports (``from x import Y as Y``) of a module,
    also those under ``if TYPE_CHECKING:`` that the module's ``__getattr__`` imports on first
    use (test_every_public_name_resolves checks that it does)."""
    tree = ast.parse(inspect.getsource(module))  # type: ignore[arg-type]
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
        elif isinstance(node, ast.ImportFrom):
            names.update(_reexports([node]))
        elif isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            names.update(_reexports(node.body))
    dunder = {"__version__"}
    return {n for n in names if (not n.startswith("_") or n in dunder) and n not in TYPING_HELPERS}


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return (0, name)
    return (1, name) if name[:1].isupper() else (2, name)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_all_lists_exactly_the_public_names_sorted(name: str) -> None:
    module = importlib.import_module(name)
    declared = list(module.__all__)
    assert declared == sorted(declared, key=_isort_key), f"{name}.__all__ is not sorted"
    assert set(declared) == _declared_public_names(module)


@pytest.mark.parametrize("name", PUBLIC_MODULES)
def test_every_public_name_resolves(name: str) -> None:
    """In a fresh interpreter, so that names a module imports lazily are really imported."""
    code = (
        f"import importlib; module = importlib.import_module({name!r}); "
        "print(len([getattr(module, n) for n in module.__all__]))"  # AttributeError: exit 1
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(importlib.import_module(name).__all__) > 0


@pytest.mark.parametrize(
    "name",
    [
        "pystatefun.sdk",
        "pystatefun.types",
        "pystatefun.sdk.asgi",
        "pystatefun.testing",
        "pystatefun.cluster",
    ],
)
def test_public_concrete_classes_are_final(name: str) -> None:
    module = importlib.import_module(name)
    for exported in module.__all__:
        obj = getattr(module, exported)
        if not inspect.isclass(obj) or exported in MEANT_FOR_SUBCLASSING:
            continue
        if issubclass(obj, BaseException):
            continue
        assert getattr(obj, "__final__", False), f"{name}.{exported} is not @final"


def test_sdk_exports_are_documented_as_living_in_the_package() -> None:
    from pystatefun import sdk

    assert sdk.StatefulFunctions.__module__ == "pystatefun.sdk"
    assert sdk.ValueSpec.__module__ == "pystatefun.sdk"


def _modules_loaded_by(module: str) -> list[str]:
    """The modules a fresh interpreter loads to import ``module``."""
    code = (
        "import importlib, json, sys; before = set(sys.modules); "
        f"importlib.import_module({module!r}); "
        "print(json.dumps(sorted(set(sys.modules) - before)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded: list[str] = json.loads(out.stdout)
    return loaded


def test_sdk_imports_only_protobuf_and_the_standard_library() -> None:
    loaded = _modules_loaded_by("pystatefun.sdk")
    assert "pystatefun.sdk._handler" in loaded  # the probe works: the checks below are not vacuous
    stdlib = sys.stdlib_module_names
    foreign = [
        m
        for m in loaded
        if m.split(".")[0] not in stdlib
        and m.split(".")[0] not in {"google", "pystatefun"}
        and not m.startswith("_")
    ]
    assert not foreign, f"importing pystatefun.sdk loaded {foreign}"
    ours = {m for m in loaded if m.startswith("pystatefun.")}
    allowed = ("pystatefun.sdk", "pystatefun.protocol", "pystatefun.types", "pystatefun.errors")
    assert all(m.startswith(allowed) for m in ours), sorted(ours)
    assert "pystatefun.sdk.aiohttp" not in ours
    assert "pystatefun.sdk.asgi" not in ours


def test_protocol_never_imports_the_sdk_or_the_runtime() -> None:
    loaded = _modules_loaded_by("pystatefun.protocol")
    assert "pystatefun.protocol.v3" in loaded  # the probe works
    assert not [m for m in loaded if m.startswith(("pystatefun.sdk", "pystatefun.runtime"))]


@pytest.mark.parametrize(
    ("module", "probe"),
    [
        ("pystatefun", "pystatefun"),
        ("pystatefun.sdk", "pystatefun.sdk._handler"),
        ("pystatefun.sdk.asgi", "pystatefun.sdk._serving"),
        ("pystatefun.runtime", "pystatefun.runtime.dispatcher"),
        ("pystatefun.testing", "pystatefun.sdk._handler"),
        ("pystatefun.cli._serve", "pystatefun.sdk._serving"),
    ],
)
def test_nothing_but_the_aiohttp_adapter_imports_aiohttp(module: str, probe: str) -> None:
    """aiohttp is an extra (``pystatefun[aiohttp]``): a plain install must import and run."""
    loaded = _modules_loaded_by(module)
    assert probe in loaded  # the probe works: the check below is not vacuous
    assert not [m for m in loaded if m.split(".")[0] == "aiohttp"]


def test_the_aiohttp_adapter_without_aiohttp_says_how_to_install_it() -> None:
    code = (
        "import sys\n"
        "sys.modules['aiohttp'] = None  # as if aiohttp were not installed\n"
        "try:\n"
        "    import pystatefun.sdk.aiohttp\n"
        "except ImportError as error:\n"
        "    print(type(error).__name__, error.name, error, sep='|')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == (
        "ModuleNotFoundError|aiohttp|"
        "pystatefun.sdk.aiohttp needs aiohttp: pip install 'pystatefun[aiohttp]'"
    )
