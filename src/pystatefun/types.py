"""Core domain types shared by every layer: addresses and type names.

These are dependency-free on purpose: the SDK, the wire layer and the runtime all speak in
``Address`` and type names, and none of them should have to import another to do so.
"""

from __future__ import annotations

from typing import NamedTuple, final

from pystatefun.errors import ConfigurationError

__all__ = ["Address", "parse_typename", "split_typename"]


def split_typename(typename: str) -> tuple[str, str] | None:
    """``(namespace, name)`` of ``"<namespace>/<name>"``, split at the **last** ``/``; None
    when either part would be empty. Every split of a type name goes through here."""
    namespace, slash, name = typename.rpartition("/")
    return (namespace, name) if slash and namespace and name else None


def parse_typename(typename: str) -> tuple[str, str]:
    """Split ``"<namespace>/<name>"`` at the **last** ``/``, as the official SDKs do; raise
    ``ConfigurationError`` (a ``ValueError``) for anything else.

    Namespaces may themselves contain ``/`` (``com.example/v1/greeter`` has namespace
    ``com.example/v1``), so the split is at the last slash, and both halves must be non-empty.
    """
    if not isinstance(typename, str):
        raise ConfigurationError(
            f"a type name must be a str like 'com.example/greeter', got {typename!r}"
        )
    parts = split_typename(typename)
    if parts is None:
        raise ConfigurationError(
            f"invalid type name {typename!r}: expected '<namespace>/<name>' with both parts "
            "non-empty, for example 'com.example/greeter'"
        )
    return parts


@final
class Address(NamedTuple):
    """A function instance: its function type (``namespace/type``) and its ``id``.

    Every address owns its own state and is invoked one batch at a time. A named tuple rather
    than a dataclass: the runtime makes and hashes addresses on every message, and a tuple does
    both several times faster than a frozen dataclass.
    """

    namespace: str
    type: str
    id: str

    @classmethod
    def of(cls, typename: str, address_id: str) -> Address:
        """Build an address from a ``namespace/type`` type name and an id."""
        namespace, name = parse_typename(typename)
        return cls(namespace, name, address_id)

    @property
    def typename(self) -> str:
        """The function type as ``namespace/type``."""
        return f"{self.namespace}/{self.type}"

    def __str__(self) -> str:
        return f"{self.typename}/{self.id}"
