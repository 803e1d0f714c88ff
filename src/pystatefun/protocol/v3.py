"""The StateFun 3.1+ request-reply protocol (``io.statefun.sdk.reqreply``).

One HTTP request carries one ``ToFunction``: a batch of invocations for one address plus that
address's registered state. The reply is one ``FromFunction``: the batch's effects, or an
``IncompleteInvocationContext`` naming the states the function declared but did not receive.
"""

from __future__ import annotations

from typing import TypeVar

from google.protobuf.message import DecodeError

from pystatefun.errors import ProtocolError
from pystatefun.protocol._generated.statefun.request_reply_pb2 import Address as Address
from pystatefun.protocol._generated.statefun.request_reply_pb2 import FromFunction as FromFunction
from pystatefun.protocol._generated.statefun.request_reply_pb2 import ToFunction as ToFunction
from pystatefun.protocol._generated.statefun.request_reply_pb2 import TypedValue as TypedValue

__all__ = [
    "Address",
    "FromFunction",
    "ToFunction",
    "TypedValue",
    "parse_from_function",
    "parse_to_function",
]


_M = TypeVar("_M", ToFunction, FromFunction)


def _parse(cls: type[_M], data: bytes | bytearray | memoryview, what: str, hint: str = "") -> _M:
    message = cls()
    try:
        message.ParseFromString(bytes(data))
    except DecodeError as exc:
        raise ProtocolError(
            f"{what} ({len(data)} bytes) is not a StateFun {cls.__name__} message: {exc}.{hint}"
        ) from exc
    return message


def parse_to_function(data: bytes | bytearray | memoryview) -> ToFunction:
    """Decode a request; raise ``ProtocolError`` if it is not a ToFunction with an invocation.

    protobuf decodes many byte strings "successfully" into an empty message, so an absent
    ``invocation`` is treated as what it nearly always is: a body that is not a ToFunction.
    """
    message = _parse(
        ToFunction,
        data,
        "request body",
        " Is the caller a StateFun 3.x runtime posting application/octet-stream?",
    )
    if not message.HasField("invocation"):
        raise ProtocolError(
            f"request body ({len(data)} bytes) decodes to a ToFunction without an invocation "
            "batch; a StateFun 3.x runtime always sends one"
        )
    return message


def parse_from_function(data: bytes | bytearray | memoryview) -> FromFunction:
    """Decode a reply; an empty body is a legal reply meaning "no side effects"."""
    return _parse(FromFunction, data, "response body")
