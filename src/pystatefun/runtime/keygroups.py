"""Partitioning: every address belongs to one of a fixed number of key groups.

The partitioning key is the address **id** alone, as in StateFun (``KeyBy.java``): all function
types that share an id land in the same key group, so a user's functions (``user/alice``,
``cart/alice``, ...) live together, and moving a key group moves all of them at once. The hash
is CRC-32 of the id's UTF-8 bytes: stable across processes and Python versions (``hash()`` is
salted per process), and cheap. The number of key groups is fixed when a data dir is created,
because it decides where every stored row belongs.
"""

from __future__ import annotations

import zlib

__all__ = ["DEFAULT_KEY_GROUPS", "key_group_of"]

DEFAULT_KEY_GROUPS = 128


def key_group_of(address_id: str, key_groups: int = DEFAULT_KEY_GROUPS) -> int:
    """The key group of an address id: ``crc32(utf8(id)) % key_groups``."""
    return zlib.crc32(address_id.encode("utf-8", "surrogatepass")) % key_groups
