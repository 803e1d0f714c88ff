"""Function logic served by both the official ``statefun`` SDK and ``pystatefun.sdk``.

``build(sf)`` takes either module: the code below uses only the API the two share, which is the
porting claim itself (an import change and nothing else). Each branch exercises one part of the
protocol: state of every kind and TTL, messages with and without a caller, delayed messages,
cancellations, every egress builder, async functions and batches. The same logic is written with
the Go and Java SDKs (``tests/sdks/go/interop.go``, ``tests/sdks/java/.../Interop.java``) for
``test_sdk_equivalence.py``.
"""

import asyncio
from datetime import timedelta

COMMAND_TYPENAME = "interop/Command"


def build(sf):
    functions = sf.StatefulFunctions()
    command_type = sf.make_json_type(COMMAND_TYPENAME)
    history_type = sf.make_json_type("interop/History")

    @functions.bind(
        "interop/counter",
        specs=[
            sf.ValueSpec("count", sf.IntType),
            sf.ValueSpec("history", history_type, expire_after_call=timedelta(hours=1)),
            sf.ValueSpec("last_name", sf.StringType, expire_after_write=timedelta(seconds=5)),
        ],
    )
    def counter(context, message):
        if message.is_string():
            name = message.as_string()
            count = (context.storage.count or 0) + 1
            context.storage.count = count
            context.storage.last_name = name
            history = context.storage.history or []
            history.append(name)
            context.storage.history = history
            context.send(
                sf.message_builder(
                    "interop/echo", context.address.id, str_value=f"hello {name} #{count}"
                )
            )
            if context.caller is not None:
                context.send(
                    sf.message_builder(context.caller.typename, context.caller.id, long_value=count)
                )
        elif message.is_int():
            value = message.as_int()
            if value == 0:
                del context.storage.count
                del context.storage.history
            elif value > 0:
                context.send_after(
                    timedelta(milliseconds=value),
                    sf.message_builder(context.address.typename, context.address.id, int_value=0),
                    f"token-{value}",
                )
                context.send_after(
                    timedelta(seconds=value),
                    sf.message_builder("interop/echo", "later", bool_value=True),
                )
            else:
                context.cancel_delayed_message(f"token-{-value}")
        elif message.is_type(command_type):
            command = message.as_type(command_type)
            send_egress(sf, context, command)

    @functions.bind("interop/all-types", specs=all_type_specs(sf))
    def all_types(context, message):
        command = message.as_type(command_type)
        for name, value in command.get("set", {}).items():
            setattr(context.storage, name, value)
        for name in command.get("delete", []):
            delattr(context.storage, name)
        # One record per state read, in its own type: any SDK can answer this alike (a text of
        # Python reprs could only come from Python).
        types = {spec.name: spec.type for spec in all_type_specs(sf)}
        for name in command.get("read", []):
            stored = getattr(context.storage, name)
            if stored is None:
                seen = sf.egress_message_builder("interop/seen", f"{name} is empty", sf.StringType)
            else:
                seen = sf.egress_message_builder("interop/seen", stored, types[name])
            context.send_egress(seen)

    @functions.bind("interop/async", specs=[sf.ValueSpec("total", sf.LongType)])
    async def async_fn(context, message):
        await asyncio.sleep(0)
        total = (context.storage.total or 0) + message.as_long()
        context.storage.total = total
        context.send(sf.message_builder("interop/echo", "async", long_value=total))

    return functions


def all_type_specs(sf):
    return [
        sf.ValueSpec("a_bool", sf.BoolType),
        sf.ValueSpec("an_int", sf.IntType),
        sf.ValueSpec("a_long", sf.LongType),
        sf.ValueSpec("a_float", sf.FloatType),
        sf.ValueSpec("a_double", sf.DoubleType),
        sf.ValueSpec("a_string", sf.StringType),
        sf.ValueSpec("a_json", sf.make_json_type("interop/Json")),
    ]


def send_egress(sf, context, command):
    kind = command["egress"]
    if kind == "kafka":
        value = command["value"]
        if command.get("as_bytes"):
            value = value.encode("utf-8")
        context.send_egress(
            sf.kafka_egress_message(
                typename="interop/kafka",
                topic=command["topic"],
                value=value,
                key=command.get("key"),
            )
        )
    elif kind == "kinesis":
        context.send_egress(
            sf.kinesis_egress_message(
                typename="interop/kinesis",
                stream=command["stream"],
                value=command["value"],
                partition_key=command["partition_key"],
                explicit_hash_key=command.get("explicit_hash_key"),
            )
        )
    else:
        context.send_egress(
            sf.egress_message_builder(
                "interop/generic", command["value"], sf.make_json_type("interop/Json")
            )
        )
