"""Rows and records: an address as three columns (NULL for none), a payload as two.

Every SQL reader and writer of the store converts through these, so an address or a typed value
is spelled one way in every table.
"""

from __future__ import annotations

from pystatefun.store.records import Payload
from pystatefun.types import Address

__all__ = ["Row", "address_at", "columns_of", "payload_at", "required_address_at"]

Row = tuple[object, ...]


def address_at(row: Row, start: int) -> Address | None:
    """The address in columns start..start+2, or None when they are NULL (an ingress caller)."""
    namespace, kind, address_id = row[start], row[start + 1], row[start + 2]
    if namespace is None:
        return None
    return Address(str(namespace), str(kind), str(address_id))


def required_address_at(row: Row, start: int) -> Address:
    address = address_at(row, start)
    assert address is not None, f"NOT NULL address columns at {start} were NULL"
    return address


def payload_at(typename: object, value: object) -> Payload:
    """A typed value from its ``typename`` and ``value`` (BLOB or NULL) columns."""
    assert value is None or isinstance(value, bytes), "a BLOB column"
    return Payload(str(typename), value)


def columns_of(address: Address | None) -> tuple[str | None, str | None, str | None]:
    """The three columns of an address; NULLs for none."""
    if address is None:
        return (None, None, None)
    return (address.namespace, address.type, address.id)
