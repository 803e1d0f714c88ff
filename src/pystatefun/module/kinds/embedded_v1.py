"""``io.pystatefun.endpoints.v1/embedded``: Python functions run inside the runtime process.

Like stored procedures: no function server, no HTTP, no protobuf encoding on the way. The
functions are ``pystatefun.sdk`` functions, written exactly as for a remote endpoint.
Annotated example::

    kind: io.pystatefun.endpoints.v1/embedded
    spec:
      functions: shop/*             # required: '<namespace>/*' or '<namespace>/<name>'
      import: functions.py:functions
                                    # required: the StatefulFunctions object, as FILE.py:NAME
                                    # (relative to this module file) or package.module:NAME
      maxNumBatchRequests: 1000     # messages per invocation of one address; default 1000
      execution: loop               # plain functions on the event loop (the default), or
                                    # `threads`: on a thread pool, so one that blocks holds
                                    # up only its own address
      threads: 8                    # the pool's size when execution is threads; default 8

The object is imported when the runtime starts, not when the module is checked, because
importing runs the file's code.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, Field

from pystatefun.module._components import EmbeddedEndpoint
from pystatefun.module._fields import FunctionsPattern, Integer, PositiveInt
from pystatefun.module._source import SourceDocument
from pystatefun.module._validation import SPEC_CONFIG, validate

__all__ = ["KIND", "Spec", "parse"]

KIND = "io.pystatefun.endpoints.v1/embedded"


def _import_path(value: str) -> str:
    location, colon, name = value.rpartition(":")
    if not colon or not location or not name.isidentifier():
        raise ValueError(
            f"{value!r} is not FILE.py:NAME or package.module:NAME, e.g. "
            "'functions.py:functions' (a file beside the module) or 'shop.functions:functions'"
        )
    return value


ImportPath = Annotated[str, Field(strict=True), AfterValidator(_import_path)]


class Spec(BaseModel):
    """``spec:`` of an ``io.pystatefun.endpoints.v1/embedded`` document."""

    model_config = SPEC_CONFIG

    functions: FunctionsPattern
    import_path: ImportPath = Field(alias="import")
    max_num_batch_requests: Integer = Field(1000, alias="maxNumBatchRequests")
    execution: Literal["loop", "threads"] = "loop"
    threads: PositiveInt = 8


def parse(document: SourceDocument) -> EmbeddedEndpoint:
    """The endpoint that ``document`` (a whole ``kind``/``spec`` document) declares."""
    spec = validate(document, Spec, document.value.get("spec"), ("spec",))
    return EmbeddedEndpoint(
        functions=spec.functions,
        import_path=spec.import_path,
        max_num_batch_requests=spec.max_num_batch_requests,
        execution=spec.execution,
        threads=spec.threads,
        location=document.location(),
        import_location=document.location(("spec", "import")),
    )
