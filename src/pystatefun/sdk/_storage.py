"""Address-scoped storage: ``context.storage.<name>`` reads, writes and deletes state.

The runtime ships every registered state value with each batch; the storage decodes on read and
records writes, and the handler turns the dirty cells into ``PersistedValueMutation``s after the
batch. If a declared state did not arrive, the function is not run at all: the handler answers
with the missing specs instead (the handshake, see ``_handler``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, final

from pystatefun.errors import ConfigurationError, StateTypeMismatchError
from pystatefun.protocol import ToFunction, TypedValue
from pystatefun.sdk._message import to_typed_value
from pystatefun.sdk._spec import ValueSpec

__all__ = ["AddressScopedStorage"]


@final
class _Cell:
    """One state value during a batch: the bytes as received or last written, and whether the
    function changed it (only changed cells are sent back)."""

    __slots__ = ("dirty", "spec", "typed_value")

    def __init__(self, spec: ValueSpec, typed_value: TypedValue | None) -> None:
        self.spec = spec
        self.typed_value = typed_value if typed_value and typed_value.has_value else None
        self.dirty = False


@final
class AddressScopedStorage:
    """The declared state of the address being invoked, as attributes.

    Reading gives the value or ``None`` when there is none (or it expired); assigning stores a
    new value; ``del`` removes it. Changes are sent back to the runtime after the batch.
    """

    # Name-mangled (``_AddressScopedStorage__cells``): a state name is lowercase, so no state
    # can ever shadow these, whatever the user calls it.
    __slots__ = ("__address", "__cells")

    def __init__(self, address: str, cells: dict[str, _Cell]) -> None:
        object.__setattr__(self, "_AddressScopedStorage__address", address)
        object.__setattr__(self, "_AddressScopedStorage__cells", cells)

    def __cell(self, name: str) -> _Cell:
        cells: dict[str, _Cell] = self.__cells
        cell = cells.get(name)
        if cell is None:
            declared = ", ".join(cells) or "(none)"
            raise AttributeError(
                f"{name!r} is not a declared state of {self.__address}; declared: {declared}. "
                f"Declare it with ValueSpec({name!r}, <type>) in bind(..., specs=[...])."
            )
        return cell

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        cell = self.__cell(name)
        if cell.typed_value is None:
            return None
        declared = cell.spec.type.typename
        if cell.typed_value.typename != declared:
            raise StateTypeMismatchError(self.__address, name, cell.typed_value.typename, declared)
        return cell.spec.type.serializer().deserialize(cell.typed_value.value)

    def __setattr__(self, name: str, value: Any) -> None:
        cell = self.__cell(name)
        if value is None:
            raise ConfigurationError(
                f"cannot store None in state {name!r} of {self.__address}; "
                f"use `del context.storage.{name}` to remove the value"
            )
        try:
            typed_value = to_typed_value(cell.spec.type, value)
        except (TypeError, ValueError) as exc:
            reason = (
                f"cannot store {type(value).__name__} in state {name!r} of {self.__address} "
                f"(type {cell.spec.type.typename}): {exc}"
            )
            raise (TypeError(reason) if isinstance(exc, TypeError) else ValueError(reason)) from exc
        cell.typed_value = typed_value
        cell.dirty = True

    def __delattr__(self, name: str) -> None:
        cell = self.__cell(name)
        cell.typed_value = None
        cell.dirty = True

    def __dir__(self) -> list[str]:
        return list(self.__cells)

    def __repr__(self) -> str:
        return f"AddressScopedStorage({self.__address}, states={list(self.__cells)})"


def resolve(
    specs: list[ValueSpec], address: str, received: Iterable[ToFunction.PersistedValue]
) -> AddressScopedStorage | list[ValueSpec]:
    """Match the declared specs against the values the runtime sent.

    Returns the storage, or the specs that did not arrive, in declaration order. States the
    runtime sent but the function no longer declares are ignored, as upstream does.
    """
    values = {value.state_name: value for value in received}
    missing = [spec for spec in specs if spec.name not in values]
    if missing:
        return missing
    cells = {
        spec.name: _Cell(
            spec,
            values[spec.name].state_value if values[spec.name].HasField("state_value") else None,
        )
        for spec in specs
    }
    return AddressScopedStorage(address, cells)


def storage_of(
    specs: list[ValueSpec], address: str, values: Mapping[str, TypedValue | None]
) -> AddressScopedStorage:
    """The storage for values the caller already holds (an in-process invocation): a declared
    state missing from ``values`` has no value."""
    get = values.get
    return AddressScopedStorage(address, {spec.name: _Cell(spec, get(spec.name)) for spec in specs})


def dirty_cells(storage: AddressScopedStorage) -> list[tuple[str, TypedValue | None]]:
    """The changed states in declaration order: ``(name, new value or None if deleted)``."""
    cells: dict[str, _Cell] = storage._AddressScopedStorage__cells  # noqa: SLF001 - same module
    return [(name, cell.typed_value) for name, cell in cells.items() if cell.dirty]
