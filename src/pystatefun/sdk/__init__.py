"""Write stateful functions in Python, served over StateFun's request-reply protocol.

The names and concepts are those of the official ``statefun`` SDK 3.3, so porting a function
is an import change (``from statefun import ...`` becomes ``from pystatefun.sdk import ...``).
This package imports only ``protobuf`` and the standard library; the HTTP adapters live in
``pystatefun.sdk.asgi`` and ``pystatefun.sdk.aiohttp`` and are imported only when you use them.
"""

from pystatefun.sdk._address import SdkAddress as SdkAddress
from pystatefun.sdk._context import Context as Context
from pystatefun.sdk._egress import kafka_egress_message as kafka_egress_message
from pystatefun.sdk._egress import kinesis_egress_message as kinesis_egress_message
from pystatefun.sdk._functions import StatefulFunctions as StatefulFunctions
from pystatefun.sdk._handler import RequestReplyHandler as RequestReplyHandler
from pystatefun.sdk._message import EgressMessage as EgressMessage
from pystatefun.sdk._message import Message as Message
from pystatefun.sdk._message import egress_message_builder as egress_message_builder
from pystatefun.sdk._message import message_builder as message_builder
from pystatefun.sdk._spec import ValueSpec as ValueSpec
from pystatefun.sdk._storage import AddressScopedStorage as AddressScopedStorage
from pystatefun.sdk._types import BoolType as BoolType
from pystatefun.sdk._types import DoubleType as DoubleType
from pystatefun.sdk._types import FloatType as FloatType
from pystatefun.sdk._types import IntType as IntType
from pystatefun.sdk._types import LongType as LongType
from pystatefun.sdk._types import StringType as StringType
from pystatefun.sdk._types import Type as Type
from pystatefun.sdk._types import TypeSerializer as TypeSerializer
from pystatefun.sdk._types import make_json_type as make_json_type
from pystatefun.sdk._types import make_protobuf_type as make_protobuf_type
from pystatefun.sdk._types import simple_type as simple_type

__all__ = [
    "AddressScopedStorage",
    "BoolType",
    "Context",
    "DoubleType",
    "EgressMessage",
    "FloatType",
    "IntType",
    "LongType",
    "Message",
    "RequestReplyHandler",
    "SdkAddress",
    "StatefulFunctions",
    "StringType",
    "Type",
    "TypeSerializer",
    "ValueSpec",
    "egress_message_builder",
    "kafka_egress_message",
    "kinesis_egress_message",
    "make_json_type",
    "make_protobuf_type",
    "message_builder",
    "simple_type",
]

for _name in __all__:
    _obj = globals()[_name]
    if isinstance(_obj, type) and _obj.__module__.startswith("pystatefun.sdk._"):
        _obj.__module__ = __name__
del _name, _obj
