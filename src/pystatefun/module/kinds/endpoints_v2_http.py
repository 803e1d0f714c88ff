"""``io.statefun.endpoints.v2/http``: remote functions served over HTTP (StateFun 3.1+).

The current endpoint kind. Annotated example::

    kind: io.statefun.endpoints.v2/http
    spec:
      functions: com.example/*      # required: '<namespace>/*' or '<namespace>/<name>'
      urlPathTemplate: https://functions.example.com/{function.name}
                                    # required: http, https, http+unix or https+unix URL;
                                    # {function.name} becomes the function's name
      maxNumBatchRequests: 1000     # messages per invocation of one address; default 1000;
                                    # 0 or less: no back-pressure, at most 10,000 per invocation
      transport:                    # optional; default: the async transport with its defaults
        type: io.statefun.transports.v1/async   # or io.statefun.transports.v1/okhttp
        call: 2 min                 # see the transport kinds for every field
        connect: 20 s

When one endpoint names a type exactly and another its whole namespace, the exact one serves
that type. Each ``functions`` value may be declared once per module.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from pydantic import BaseModel, Field

from pystatefun.module._components import HttpEndpoint, Transport
from pystatefun.module._fields import FunctionsPattern, Integer, UrlPathTemplate
from pystatefun.module._source import FieldPath, SourceDocument
from pystatefun.module._validation import SPEC_CONFIG, Problems, validate
from pystatefun.module.kinds import transports_v1_async, transports_v1_okhttp

__all__ = ["KIND", "Spec", "build_transport", "parse", "written_transport"]

KIND = "io.statefun.endpoints.v2/http"
_SPEC: FieldPath = ("spec",)
_TRANSPORT: FieldPath = ("spec", "transport")
_TRANSPORTS = {
    None: transports_v1_async.build,
    transports_v1_async.KIND: transports_v1_async.build,
    transports_v1_okhttp.KIND: transports_v1_okhttp.build,
}


class Spec(BaseModel):
    """``spec:`` of an ``io.statefun.endpoints.v2/http`` document."""

    model_config = SPEC_CONFIG

    functions: FunctionsPattern
    url_path_template: UrlPathTemplate = Field(alias="urlPathTemplate")
    max_num_batch_requests: Integer = Field(1000, alias="maxNumBatchRequests")
    # Validated by the model of the transport type it names, once that type is known.
    transport: dict[str, Any] | None = None


def parse(document: SourceDocument) -> HttpEndpoint:
    """The endpoint that ``document`` (a whole ``kind``/``spec`` document) declares."""
    problems = Problems()
    spec = problems.attempt(partial(validate, document, Spec, document.value.get("spec"), _SPEC))
    transport = problems.attempt(
        partial(build_transport, document, written_transport(document), _TRANSPORT)
    )
    if spec is None or transport is None:
        raise problems.error()
    return HttpEndpoint(
        functions=spec.functions,
        url_path_template=spec.url_path_template,
        max_num_batch_requests=spec.max_num_batch_requests,
        transport=transport,
        location=document.location(),
    )


def written_transport(document: SourceDocument) -> dict[str, Any] | None:
    """``spec.transport`` as written, if it is a mapping: the transport is checked even when
    another field of the spec is invalid, so that both are reported at once (``Spec`` reports
    a ``transport`` that is not a mapping)."""
    spec = document.value.get("spec")
    raw = spec.get("transport") if isinstance(spec, dict) else None
    return raw if isinstance(raw, dict) else None


def build_transport(
    document: SourceDocument, raw: dict[str, Any] | None, path: FieldPath
) -> Transport:
    """The transport that ``raw`` (the ``transport`` mapping at ``path``, or ``None``) names:
    the async type unless its ``type`` says otherwise. Shared with the co-located kind."""
    kind = None if raw is None else raw.get("type")
    build = _TRANSPORTS.get(kind) if isinstance(kind, str | None) else None
    if build is None:
        known = ", ".join(k for k in _TRANSPORTS if k)
        raise document.error(
            (*path, "type"),
            f"unknown transport type {kind!r}; pystatefun has {known} (custom StateFun "
            "transports are JVM extensions, which pystatefun cannot load)",
        )
    return build(document, raw, path)
