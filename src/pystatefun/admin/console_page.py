"""The web console's page: one static HTML file, its script and its style sheet, package data
in ``pystatefun/admin/console/`` (no build step, nothing fetched from elsewhere).

The page holds no data, so it is served to anyone, also when the admin port has a token: a
browser cannot send a bearer token when it first opens a URL. The page asks for the token,
keeps it in the tab's ``sessionStorage`` and sends it with every ``/api/...`` request, which is
where every figure comes from (and which refuses without it).
"""

from __future__ import annotations

from functools import cache
from importlib import resources

from pystatefun.http import HttpResponse

__all__ = ["PAGE_PATHS", "page"]

_FILES = {  # path -> (file, content type)
    "/": ("index.html", "text/html; charset=utf-8"),
    "/console": ("index.html", "text/html; charset=utf-8"),
    "/console/console.js": ("console.js", "text/javascript; charset=utf-8"),
    "/console/console.css": ("console.css", "text/css; charset=utf-8"),
}
#: The paths the page is made of.
PAGE_PATHS = frozenset(_FILES)
# Only this port's own files and API; no frames, no forms posting elsewhere.
_POLICY = ("default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
           "img-src 'self' data:; base-uri 'none'; form-action 'none'; "
           "frame-ancestors 'none'")  # fmt: skip


@cache
def _read(name: str) -> bytes:
    return (resources.files("pystatefun.admin") / "console" / name).read_bytes()


def page(path: str) -> HttpResponse:
    """The file at ``path`` (one of ``PAGE_PATHS``)."""
    name, kind = _FILES[path]
    headers = {"Content-Type": kind, "Cache-Control": "no-cache",
               "Content-Security-Policy": _POLICY, "X-Content-Type-Options": "nosniff",
               "Referrer-Policy": "no-referrer"}  # fmt: skip
    return HttpResponse(200, _read(name), headers)
