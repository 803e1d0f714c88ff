"""What a function's failure says about the batch: which message failed, and whether retrying
the same messages can work.

The SDKs report a function that raised as HTTP 500 (remote functions) or the exception itself
(embedded ones). pystatefun's SDK adds, in both, the note ``while invoking <type>/<id> with
message K of N`` and, for its own errors, their code (``[PSF-SDK0004]``). Every one of its SDK
errors is one that retrying cannot cure (docs/errors: "retry helps? no"): a message of the wrong
type, a state of another type, a definition error. The official SDKs say neither; their
failures are found by splitting the batch instead (``pystatefun.runtime.dispatcher``).
"""

from __future__ import annotations

import re

from pystatefun.errors import FunctionError

__all__ = ["NO_RETRY_CODES", "function_error"]

#: The SDK's error codes that no retry can cure: the message or the code is wrong.
NO_RETRY_CODES = frozenset(
    {"PSF-SDK0001", "PSF-SDK0002", "PSF-SDK0003", "PSF-SDK0004", "PSF-SDK0005"}
)
_CODE = re.compile(r"\[(PSF-SDK\d{4})\]")
_POSITION = re.compile(r"with message (\d+) of (\d+)")


def function_error(text: str, *, where: str, retry_helps: bool = True) -> FunctionError:
    """The ``FunctionError`` of a function that failed with ``text`` (a 500's body, or an
    exception with its notes), reported at ``where``; ``retry_helps`` False when the caller
    knows already that the same messages will fail the same way."""
    codes = set(_CODE.findall(text))
    position = _POSITION.search(text)
    failed = None if position is None else int(position[1])
    retry_helps = retry_helps and not (codes & NO_RETRY_CODES)
    return FunctionError(f"{where}: {text}", retry_helps=retry_helps, failed_message=failed)
