"""The greeter (``tests/sdks/README.md``) on either Python SDK: ``build(sf)`` takes the official
``statefun`` or ``pystatefun.sdk``, and ``tests/support/functions/serve_python.py --functions``
serves it. Python 3.8 and the standard library only, as that server needs."""

from datetime import timedelta


def build(sf):
    functions = sf.StatefulFunctions()
    visit_type = sf.make_json_type("greeter/Visit")
    record_type = sf.make_json_type("io.statefun.playground/EgressRecord")

    @functions.bind(
        "greeter/user",
        specs=[sf.ValueSpec("visits", sf.IntType, expire_after_call=timedelta(days=1))],
    )
    def user(context, message):
        name = message.as_string()
        target = context.address.id
        visits = (context.storage.visits or 0) + 1
        context.storage.visits = visits
        visit = {"name": name, "visits": visits}
        context.send(
            sf.message_builder("greeter/greeter", target, value=visit, value_type=visit_type)
        )
        token = f"forget-{target}"
        if visits == 1:
            forgotten = sf.message_builder("greeter/greeter", target, str_value=f"Forgotten {name}")
            context.send_after(timedelta(hours=1), forgotten, cancellation_token=token)
        elif visits == 2:
            context.cancel_delayed_message(token)
            back = sf.message_builder("greeter/greeter", target, str_value=f"Welcome back {name}")
            context.send_after(timedelta(milliseconds=100), back)

    @functions.bind("greeter/greeter")
    def greeter(context, message):
        if message.is_string():
            payload = message.as_string()
        else:
            visit = message.as_type(visit_type)
            payload = f"Hello {visit['name']}, visit {visit['visits']}"
        record = {"topic": "greetings", "payload": payload}
        context.send_egress(
            sf.egress_message_builder("io.statefun.playground/egress", record, record_type)
        )

    return functions
