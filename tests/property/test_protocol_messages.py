"""Protocol envelopes survive serialization, and the handler's state replies match a dict model."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st
from support.strategies import from_functions, to_functions
from support.wire import to_function, typed

from pystatefun.protocol import FromFunction, ToFunction, parse_from_function, parse_to_function
from pystatefun.sdk import (
    Context,
    LongType,
    Message,
    RequestReplyHandler,
    StatefulFunctions,
    ValueSpec,
    make_json_type,
)


@given(to_functions())
def test_to_function_round_trips(message: ToFunction) -> None:
    assert parse_to_function(message.SerializeToString()) == message


@given(from_functions())
def test_from_function_round_trips(message: FromFunction) -> None:
    assert parse_from_function(message.SerializeToString()) == message


OPS = st.lists(
    st.tuples(
        st.sampled_from(["set", "del", "read"]),
        st.sampled_from(["a", "b", "c"]),
        st.integers(-(2**63), 2**63 - 1),
    ),
    max_size=12,
)
OPS_TYPE = make_json_type("x/Ops")


def _apply_ops(context: Context, message: Message) -> None:
    for op, name, number in message.as_type(OPS_TYPE):
        if op == "set":
            setattr(context.storage, name, number)
        elif op == "del":
            delattr(context.storage, name)
        else:
            getattr(context.storage, name)


@given(
    initial=st.dictionaries(st.sampled_from(["a", "b", "c"]), st.integers(-(2**63), 2**63 - 1)),
    batches=st.lists(OPS, min_size=1, max_size=4),
)
def test_state_replies_match_a_dict_model(initial: dict[str, int], batches: list[list]) -> None:
    functions = StatefulFunctions()
    functions.register("x/ops", _apply_ops, [ValueSpec(n, LongType) for n in "abc"])
    handler = RequestReplyHandler(functions)
    model: dict[str, int | None] = {n: initial.get(n) for n in "abc"}
    invocations = [(typed(OPS_TYPE, ops), None) for ops in batches]
    state = {n: (typed(LongType, v) if v is not None else None) for n, v in model.items()}
    reply = FromFunction.FromString(
        handler.handle(to_function("x/ops", "1", state, invocations).SerializeToString())
    )
    touched: list[str] = []
    for ops in batches:
        for op, name, number in ops:
            if op == "set":
                model[name] = number
            elif op == "del":
                model[name] = None
            if op != "read" and name not in touched:
                touched.append(name)
    mutations = reply.invocation_result.state_mutations
    assert [m.state_name for m in mutations] == sorted(touched)  # declaration order: a, b, c
    for mutation in mutations:
        expected = model[mutation.state_name]
        if expected is None:
            assert mutation.mutation_type == FromFunction.PersistedValueMutation.DELETE
        else:
            assert LongType.serializer().deserialize(mutation.state_value.value) == expected
