"""``SdkAddress``: the address of a function instance as the SDK shows it to user code."""

from __future__ import annotations

from dataclasses import dataclass
from typing import final

__all__ = ["SdkAddress"]


@final
@dataclass(frozen=True, slots=True)
class SdkAddress:
    """``namespace``/``name`` is the function type, ``id`` the instance; ``typename`` is
    ``namespace/name`` precomputed, as in the official SDK."""

    namespace: str
    name: str
    id: str
    typename: str
