"""Partitioning: every address belongs to one of a fixed number of key groups.

The partitioning key is the address **id** alone, as in StateFun (``KeyBy.java``): all function
types that share an id land in the same key group, so a user's functions (``user/alice``,
``cart/alice``, ...) live together, and moving a key group moves all of them at once. The hash
is CRC-32 of the id's UTF-8 bytes: stable across processes and Python versions (``hash()`` is
salted per process), and cheap. The number of key groups is fixed when a data dir is created,
because it decides where every stored row belongs; the data dir records it.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import final

__all__ = ["DEFAULT_KEY_GROUPS", "KeyGroups", "key_group_of"]

DEFAULT_KEY_GROUPS = 128


def key_group_of(address_id: str, key_groups: int = DEFAULT_KEY_GROUPS) -> int:
    """The key group of an address id: ``crc32(utf8(id)) % key_groups``."""
    return zlib.crc32(address_id.encode("utf-8", "surrogatepass")) % key_groups


@final
@dataclass(frozen=True, slots=True)
class KeyGroups:
    """How many key groups a data dir has, and which one an address id falls in."""

    count: int = DEFAULT_KEY_GROUPS

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"key groups must be at least 1, got {self.count}")

    def of(self, address_id: str) -> int:
        """The key group of ``address_id`` (see ``key_group_of``)."""
        return zlib.crc32(address_id.encode("utf-8", "surrogatepass")) % self.count
