"""``StatefulFunctions``: the registry of function types a handler serves."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, final

from pystatefun.errors import ConfigurationError, UnknownFunctionError
from pystatefun.sdk._spec import ValueSpec
from pystatefun.types import parse_typename

__all__ = ["StatefulFunctions"]

F = TypeVar("F", bound=Callable[..., Any])


@final
@dataclass(frozen=True, slots=True)
class BoundFunction:
    """A function bound to a type name, with its state specs in declaration order."""

    typename: str
    fun: Callable[..., Any]
    specs: list[ValueSpec]
    is_async: bool


def _takes_context_and_message(typename: str, fun: Callable[..., Any]) -> None:
    try:
        signature = inspect.signature(fun)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"cannot inspect the function bound to {typename!r}: {exc}"
        ) from exc
    try:
        signature.bind(object(), object())
    except TypeError as exc:
        raise ConfigurationError(
            f"the function bound to {typename!r} must take two positional arguments "
            f"(context, message); its signature is {fun.__name__}{signature}"
        ) from exc


@final
class StatefulFunctions:
    """The function types one endpoint serves, each with its declared state.

    >>> functions = StatefulFunctions()
    >>> @functions.bind("com.example/greeter", specs=[ValueSpec("seen", IntType)])
    ... def greeter(context, message): ...
    """

    __slots__ = ("_functions",)

    def __init__(self) -> None:
        self._functions: dict[str, BoundFunction] = {}

    def register(
        self, typename: str, fun: Callable[..., Any], specs: list[ValueSpec] | None = None
    ) -> None:
        """Bind ``fun(context, message)`` (plain or ``async def``) to ``typename``."""
        parse_typename(typename)
        if not callable(fun):
            raise ConfigurationError(f"the function bound to {typename!r} is not callable: {fun!r}")
        if typename in self._functions:
            raise ConfigurationError(
                f"{typename!r} is already bound to "
                f"{getattr(self._functions[typename].fun, '__qualname__', '?')}; "
                "each function type can be bound once"
            )
        _takes_context_and_message(typename, fun)
        specs = list(specs or [])
        seen: set[str] = set()
        for spec in specs:
            if not isinstance(spec, ValueSpec):
                raise ConfigurationError(
                    f"specs of {typename!r} must be ValueSpec objects, got {spec!r}"
                )
            if spec.name in seen:
                raise ConfigurationError(f"{typename!r} declares state {spec.name!r} twice")
            seen.add(spec.name)
        # A callable object with `async def __call__` is async too.
        is_async = inspect.iscoroutinefunction(fun) or inspect.iscoroutinefunction(
            type(fun).__call__
        )
        self._functions[typename] = BoundFunction(typename, fun, specs, is_async)

    def bind(self, typename: str, specs: list[ValueSpec] | None = None) -> Callable[[F], F]:
        """Decorator form of ``register``; returns the function unchanged."""

        def wrapper(fun: F) -> F:
            self.register(typename, fun, specs)
            return fun

        return wrapper

    def for_typename(self, typename: str) -> BoundFunction:
        """The binding for ``typename``; ``UnknownFunctionError`` lists the bound ones."""
        bound = self._functions.get(typename)
        if bound is None:
            raise UnknownFunctionError(typename, list(self._functions))
        return bound

    @property
    def typenames(self) -> list[str]:
        """The bound function types, in binding order."""
        return list(self._functions)

    def __len__(self) -> int:
        return len(self._functions)
