"""Functions for the poison-message tests, served by either Python SDK (``serve_python.py
--functions``): ``poison/counter`` appends each order's number to its state ``seen``.

An order is ``poison/Order`` JSON; a body that is not JSON is a message the function cannot
decode, so it raises (HTTP 500). The string message ``hold:DIR`` makes the invocation create
``DIR/held`` and wait (at most 60 s) until ``DIR/release`` exists, so that a test can queue
messages behind it into one batch. This file runs under both SDKs' virtualenvs: Python 3.8 and
the standard library only, plus the SDK (passed in as ``sf``).
"""

import os
import time


def build(sf):
    functions = sf.StatefulFunctions()
    order_type = sf.make_json_type("poison/Order")

    @functions.bind("poison/counter", specs=[sf.ValueSpec("seen", sf.StringType)])
    def counter(context, message):
        if message.is_type(sf.StringType):
            text = message.as_string()
            if text.startswith("hold:"):
                directory = text[len("hold:") :]
                open(os.path.join(directory, "held"), "w").close()
                deadline = time.monotonic() + 60
                while not os.path.exists(os.path.join(directory, "release")):
                    if time.monotonic() > deadline:
                        raise TimeoutError("nobody released the hold")
                    time.sleep(0.01)
                return
        order = message.as_type(order_type)  # raises for a body that is not JSON
        context.storage.seen = (context.storage.seen or "") + str(order["n"]) + ","

    @functions.bind("poison/typed", specs=[sf.ValueSpec("total", sf.IntType)])
    def typed(context, message):
        # as_int() on a message of another type: the SDK's message type error
        context.storage.total = (context.storage.total or 0) + message.as_int()

    return functions
