"""``FrontDoor``: who may come in through a port that pystatefun listens on.

A port can ask for a bearer token (``Authorization: Bearer <token>``) and can speak TLS. The
token is compared in constant time (``hmac.compare_digest``), a request without it or with
another gets 401 before its handler runs (so it changes nothing), and the token appears in no
answer and no log line. The same door serves the playground ingress and egress (the ingress
token) and the admin port (the admin token; its probes, ``/health`` and ``/ready``, stay open).
"""

from __future__ import annotations

import hmac
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import final

from pystatefun.errors import DataDirError
from pystatefun.http._messages import HttpRequest, HttpResponse

__all__ = ["FrontDoor", "server_tls"]

_UNAUTHORIZED = HttpResponse(
    401,
    b"this port needs a bearer token: send `Authorization: Bearer <token>`\n",
    {"Content-Type": "text/plain; charset=utf-8", "WWW-Authenticate": 'Bearer realm="pystatefun"'},
)


@final
@dataclass(frozen=True, slots=True)
class FrontDoor:
    """A port's bearer token (None: none needed) and TLS (None: plain HTTP)."""

    token: str | None = None
    tls: ssl.SSLContext | None = None

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        """The 401 for a request without the token (or with another), else None."""
        if self.token is None:
            return None
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(
            given.strip().encode(), self.token.encode()
        ):
            return None
        return _UNAUTHORIZED

    @property
    def scheme(self) -> str:
        return "http" if self.tls is None else "https"


def server_tls(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """A server's TLS context from its certificate chain and key (PEM), or a coded error that
    names the files and the cause."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(cert_file, key_file)
    except (OSError, ssl.SSLError) as exc:
        raise DataDirError(
            f"cannot use the TLS certificate {cert_file} with the key {key_file}: "
            f"{getattr(exc, 'strerror', None) or exc}; give a PEM certificate chain "
            "(--tls-cert) and its unencrypted PEM key (--tls-key)"
        ) from exc
    return context
