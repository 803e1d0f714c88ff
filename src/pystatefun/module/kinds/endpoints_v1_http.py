"""``io.statefun.endpoints.v1/http``: remote functions over HTTP, StateFun 3.1's first kind.

It always uses the OkHttp transport, whose ``timeouts`` sit at spec level. ``pystatefun module
upgrade`` writes this kind when it converts 3.0 and 2.x modules. Annotated example::

    kind: io.statefun.endpoints.v1/http
    spec:
      functions: com.example/greeter   # required: '<namespace>/*' or '<namespace>/<name>'
      urlPathTemplate: http://functions:8000/statefun   # required: http(s)[+unix] URL;
                                       # {function.name} becomes the function's name
      maxNumBatchRequests: 1000        # messages per invocation of one address; default 1000;
                                       # 0 or less: no back-pressure, at most 10,000 per invocation
      timeouts:                        # optional
        call: 1 min                    # the whole call, retries included; default 1 min
        connect: 10 s                  # each at most `call`; default 10 s
        read: 10 s                     # default 10 s
        write: 10 s                    # default 10 s
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from pystatefun.module._components import HttpEndpoint
from pystatefun.module._fields import FunctionsPattern, Integer, UrlPathTemplate
from pystatefun.module._source import SourceDocument
from pystatefun.module._validation import SPEC_CONFIG, validate
from pystatefun.module.kinds.transports_v1_okhttp import Timeouts, from_timeouts

__all__ = ["KIND", "Spec", "parse"]

KIND = "io.statefun.endpoints.v1/http"


class Spec(BaseModel):
    """``spec:`` of an ``io.statefun.endpoints.v1/http`` document."""

    model_config = SPEC_CONFIG

    functions: FunctionsPattern
    url_path_template: UrlPathTemplate = Field(alias="urlPathTemplate")
    max_num_batch_requests: Integer = Field(1000, alias="maxNumBatchRequests")
    timeouts: Timeouts = Timeouts()


def parse(document: SourceDocument) -> HttpEndpoint:
    """The endpoint that ``document`` (a whole ``kind``/``spec`` document) declares."""
    spec = validate(document, Spec, document.value.get("spec"), ("spec",))
    return HttpEndpoint(
        functions=spec.functions,
        url_path_template=spec.url_path_template,
        max_num_batch_requests=spec.max_num_batch_requests,
        transport=from_timeouts(document, spec.timeouts, ("spec", "timeouts")),
        location=document.location(),
    )
