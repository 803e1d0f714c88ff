"""A lean HTTP/1.1 server and client pool for the runtime's hot paths.

Why: an aiohttp client and server cost about 400 µs of CPU per request pair, even on uvloop; a
Protocol per connection with ``httptools`` (the llhttp parser uvicorn uses) on uvloop costs a
fraction of that (``bench/http_stack.py``). Only what the runtime needs is here: whole bodies with
limits, keep-alive, timeouts, TLS and Unix sockets. Users serving functions keep the ASGI and
aiohttp adapters of ``pystatefun.sdk``.

- ``HttpServer``: serves an ``async def handler(HttpRequest) -> HttpResponse``, within
  ``HttpLimits`` (head size and header count, head and body timeouts, open connections);
- ``HttpClientPool``: keep-alive connections to one origin, at most ``pool_size``;
- ``run_event_loop(main)``: ``asyncio.run`` on uvloop when it is installed.

The server, the client pool and the loop are imported on first use (``__getattr__``): they bring
httptools and asyncio, which a command that only reads ``HttpLimits`` (``pystatefun run
--help``) does not need.
"""

import importlib
from typing import TYPE_CHECKING

from pystatefun.http._errors import HttpBodyTooLargeError as HttpBodyTooLargeError
from pystatefun.http._errors import HttpClientError as HttpClientError
from pystatefun.http._errors import HttpConnectError as HttpConnectError
from pystatefun.http._errors import HttpConnectionClosedError as HttpConnectionClosedError
from pystatefun.http._errors import HttpProtocolError as HttpProtocolError
from pystatefun.http._errors import HttpTimeoutError as HttpTimeoutError
from pystatefun.http._limits import HttpLimits as HttpLimits
from pystatefun.http._messages import HttpRequest as HttpRequest
from pystatefun.http._messages import HttpResponse as HttpResponse

if TYPE_CHECKING:  # imported by __getattr__ on first use
    from pystatefun.http._loop import event_loop_factory as event_loop_factory
    from pystatefun.http._loop import run_event_loop as run_event_loop
    from pystatefun.http.client import HttpClientPool as HttpClientPool
    from pystatefun.http.front_door import FrontDoor as FrontDoor
    from pystatefun.http.front_door import server_tls as server_tls
    from pystatefun.http.server import HttpServer as HttpServer

_LAZY = {
    "FrontDoor": "pystatefun.http.front_door",
    "HttpClientPool": "pystatefun.http.client",
    "HttpServer": "pystatefun.http.server",
    "event_loop_factory": "pystatefun.http._loop",
    "run_event_loop": "pystatefun.http._loop",
    "server_tls": "pystatefun.http.front_door",
}

__all__ = [
    "FrontDoor",
    "HttpBodyTooLargeError",
    "HttpClientError",
    "HttpClientPool",
    "HttpConnectError",
    "HttpConnectionClosedError",
    "HttpLimits",
    "HttpProtocolError",
    "HttpRequest",
    "HttpResponse",
    "HttpServer",
    "HttpTimeoutError",
    "event_loop_factory",
    "run_event_loop",
    "server_tls",
]

for _name in __all__:
    if _name in _LAZY:
        continue
    _obj = globals()[_name]
    if _obj.__module__.startswith("pystatefun.http._"):
        _obj.__module__ = __name__
del _name, _obj


def __getattr__(name: str) -> object:
    """The server, the client pool and the loop, imported when first asked for (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value: object = getattr(importlib.import_module(_LAZY[name]), name)
    if getattr(value, "__module__", "").startswith("pystatefun.http._"):
        value.__module__ = __name__  # documented as living in the package
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """Every public name, imported or not, so that ``dir()`` and completion show them."""
    return sorted({*globals(), *_LAZY})
