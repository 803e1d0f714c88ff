"""Hypothesis strategies for StateFun wire messages, shared by the property and fuzz tests.

``to_functions()`` and ``from_functions()`` draw well-formed messages with any field contents;
``mutated(messages)`` draws the bytes of one of them after truncations, bit flips, insertions,
deletions and overwrites, the damage a broken peer or proxy does. ``FUZZ`` is the fuzz tests'
settings: a few hundred examples each, so the suite stays fast; ``FUZZ_EXAMPLES=20000`` in the
environment fuzzes longer.
"""

from __future__ import annotations

import os
import string
from datetime import timedelta

from hypothesis import settings
from hypothesis import strategies as st

from pystatefun.protocol import Address, FromFunction, ToFunction, TypedValue

__all__ = [
    "ADDRESSES",
    "FUZZ",
    "NAMES",
    "TEXT",
    "TYPED_VALUES",
    "from_functions",
    "mutated",
    "to_functions",
]

#: Each example costs microseconds to milliseconds; the deadline, far above that, turns a decoder
#: that loops or goes quadratic into a failure rather than a hang.
FUZZ = settings(
    max_examples=int(os.environ.get("FUZZ_EXAMPLES", "200")), deadline=timedelta(seconds=5)
)
TEXT = st.text(alphabet=st.characters(codec="utf-8"), max_size=20)
NAMES = st.text(alphabet=string.ascii_lowercase + "_", min_size=1, max_size=8)
TYPED_VALUES = st.builds(TypedValue, typename=TEXT, has_value=st.booleans(), value=st.binary())
ADDRESSES = st.fixed_dictionaries({"namespace": TEXT, "type": TEXT, "id": TEXT})


@st.composite
def to_functions(draw: st.DrawFn) -> ToFunction:
    """A ToFunction with an invocation batch; every field may hold anything of its type."""
    message = ToFunction()
    batch = message.invocation
    batch.target.CopyFrom(Address(**draw(ADDRESSES)))
    for name in draw(st.lists(NAMES, max_size=5)):
        persisted = batch.state.add(state_name=name)
        if draw(st.booleans()):
            persisted.state_value.CopyFrom(draw(TYPED_VALUES))
    for _ in range(draw(st.integers(1, 5))):
        invocation = batch.invocations.add(argument=draw(TYPED_VALUES))
        if draw(st.booleans()):
            invocation.caller.CopyFrom(Address(**draw(ADDRESSES)))
    return message


@st.composite
def from_functions(draw: st.DrawFn) -> FromFunction:
    """A FromFunction: an invocation result or a missing-state answer, any field contents."""
    message = FromFunction()
    if draw(st.booleans()):
        for name in draw(st.lists(NAMES, max_size=4)):
            spec = message.incomplete_invocation_context.missing_values.add(
                state_name=name, type_typename=draw(TEXT)
            )
            spec.expiration_spec.mode = draw(st.sampled_from([0, 1, 2]))
            spec.expiration_spec.expire_after_millis = draw(st.integers(0, 2**63 - 1))
        return message
    result = message.invocation_result
    for name in draw(st.lists(NAMES, max_size=4)):
        mutation = result.state_mutations.add(
            state_name=name, mutation_type=draw(st.sampled_from([0, 1]))
        )
        mutation.state_value.CopyFrom(draw(TYPED_VALUES))
    for _ in range(draw(st.integers(0, 3))):
        delayed = result.delayed_invocations.add(
            delay_in_ms=draw(st.integers(-(2**63), 2**63 - 1)),
            cancellation_token=draw(TEXT),
            is_cancellation_request=draw(st.booleans()),
        )
        delayed.argument.CopyFrom(draw(TYPED_VALUES))
    for _ in range(draw(st.integers(0, 3))):
        result.outgoing_egresses.add(egress_namespace=draw(TEXT), egress_type=draw(TEXT))
    return message


_EDITS = ("truncate", "flip", "insert", "delete", "overwrite")


@st.composite
def mutated(draw: st.DrawFn, messages: st.SearchStrategy[ToFunction | FromFunction]) -> bytes:
    """The encoding of a drawn message after one to four random edits."""
    data = bytearray(draw(messages).SerializeToString())
    for _ in range(draw(st.integers(1, 4))):
        edit = draw(st.sampled_from(_EDITS))
        at = draw(st.integers(0, len(data)))
        if edit == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif not data or at == len(data):
            continue
        elif edit == "truncate":
            del data[at:]
        elif edit == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif edit == "delete":
            del data[at : at + draw(st.integers(1, 8))]
        else:
            data[at] = draw(st.integers(0, 255))
    return bytes(data)
