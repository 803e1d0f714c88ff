"""Running SDK functions in the caller's own process, without the wire.

This is what the runtime's embedded endpoints (``io.pystatefun.endpoints.v1/embedded``) use:
state and messages go in as ``TypedValue`` objects and the effects come back as SDK objects,
so a batch costs neither HTTP nor protobuf encoding. The functions are ordinary
``StatefulFunctions`` bindings, the same ones a ``RequestReplyHandler`` serves remotely, and they
behave the same: declared state only, effects collected until the batch ends.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import NamedTuple, final

from pystatefun.errors import ConfigurationError
from pystatefun.protocol import TypedValue
from pystatefun.sdk._address import SdkAddress
from pystatefun.sdk._context import Context
from pystatefun.sdk._context import DelayedSend as DelayedSend
from pystatefun.sdk._functions import BoundFunction, StatefulFunctions
from pystatefun.sdk._handler import RequestReplyHandler
from pystatefun.sdk._invocation import Invocation as Invocation
from pystatefun.sdk._invocation import invoke_each, invoke_each_async
from pystatefun.sdk._message import EgressMessage, Message
from pystatefun.sdk._spec import ValueSpec
from pystatefun.sdk._storage import dirty_cells, storage_of
from pystatefun.types import parse_typename

__all__ = ["DelayedSend", "Effects", "InProcessFunction", "Invocation", "load_functions"]


class Effects(NamedTuple):
    """What one batch did, each list in call order.

    ``states`` holds the changed states in declaration order, each with its new value or
    ``None`` when it was deleted; ``delayed`` holds ``send_after`` calls and cancellations.
    """

    states: list[tuple[str, TypedValue | None]]
    messages: list[Message]
    delayed: list[DelayedSend]
    egress: list[EgressMessage]


def _effects(context: Context) -> Effects:
    return Effects(
        dirty_cells(context.storage),
        context._outgoing,  # noqa: SLF001 - the batch's own context, drained once
        context._delayed,  # noqa: SLF001
        context._egress,  # noqa: SLF001
    )


@final
class InProcessFunction:
    """One bound function type, ready to run batches in this process."""

    __slots__ = ("_bound", "_name", "_namespace", "is_async", "specs", "typename")

    def __init__(self, bound: BoundFunction) -> None:
        self._bound = bound
        self.typename = bound.typename
        self._namespace, self._name = parse_typename(bound.typename)
        #: The declared states, in declaration order.
        self.specs: tuple[ValueSpec, ...] = tuple(bound.specs)
        #: Whether the function is ``async def`` (then only ``run_async`` can run it).
        self.is_async = bound.is_async

    def _context(self, address_id: str, states: Mapping[str, TypedValue | None]) -> Context:
        address = SdkAddress(self._namespace, self._name, address_id, self.typename)
        storage = storage_of(self._bound.specs, f"{self.typename}/{address_id}", states)
        return Context(address, storage)

    def run(
        self,
        address_id: str,
        states: Mapping[str, TypedValue | None],
        invocations: Sequence[Invocation],
    ) -> Effects:
        """Run a plain function once per message of the batch, in order.

        ``states`` maps each declared state to its value (absent or ``None``: no value). An
        exception from the function propagates, with a note naming the message.
        """
        context = self._context(address_id, states)
        invoke_each(self._bound, context, invocations, len(invocations))
        return _effects(context)

    async def run_async(
        self,
        address_id: str,
        states: Mapping[str, TypedValue | None],
        invocations: Sequence[Invocation],
    ) -> Effects:
        """``run`` for any function, awaiting what an ``async def`` one returns."""
        context = self._context(address_id, states)
        await invoke_each_async(self._bound, context, invocations, len(invocations))
        return _effects(context)

    @staticmethod
    def of(functions: StatefulFunctions, typename: str) -> InProcessFunction:
        """The binding for ``typename``; ``UnknownFunctionError`` lists the bound ones."""
        return InProcessFunction(functions.for_typename(typename))


def load_functions(
    import_path: str, base_dir: Path | None = None
) -> StatefulFunctions | RequestReplyHandler:
    """Import ``FILE.py:NAME`` or ``package.module:NAME`` and check what it is.

    A relative ``FILE`` is taken from ``base_dir`` (default: the working directory), and the
    file's directory goes on ``sys.path`` so it can import its siblings. Every failure is a
    ``ConfigurationError`` that says what to fix; an exception raised by the file's own code
    is chained to it.
    """
    location, colon, name = import_path.rpartition(":")
    if not colon or not location or not name:
        raise ConfigurationError(
            f"{import_path!r} is not FILE.py:NAME or MODULE:NAME (e.g. functions.py:functions)"
        )
    try:
        if location.endswith(".py"):
            module = _import_file(Path(location), base_dir)
        else:
            module = importlib.import_module(location)
    except ConfigurationError:
        raise
    except Exception as exc:
        raise ConfigurationError(
            f"importing {location} failed: {type(exc).__name__}: {exc}"
        ) from exc
    found = getattr(module, name, None)
    if not isinstance(found, StatefulFunctions | RequestReplyHandler):
        raise ConfigurationError(
            f"{location}:{name} is {type(found).__name__}, not a StatefulFunctions or "
            "RequestReplyHandler"
        )
    return found


#: Files imported here, by resolved path: a file is one module, however often it is named.
_FILES: dict[Path, object] = {}


def _import_file(location: Path, base_dir: Path | None) -> object:
    path = (location if location.is_absolute() else (base_dir or Path.cwd()) / location).resolve()
    if not path.is_file():
        raise ConfigurationError(f"no such file: {path}")
    if path in _FILES:
        return _FILES[path]
    # The file's own name, unless another module already has it (two examples' functions.py).
    loaded = sys.modules.get(path.stem)
    name = path.stem if loaded is None else f"{path.stem}_{abs(hash(path)):x}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"cannot load {path} as a Python module")
    module = importlib.util.module_from_spec(spec)
    if str(path.parent) not in sys.path:
        sys.path.insert(0, str(path.parent))  # so the file can import its siblings
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    _FILES[path] = module
    return module
