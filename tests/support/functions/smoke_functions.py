"""The smoke test's functions, served by the official ``statefun`` SDK and by ``pystatefun.sdk``.

``build(sf)`` takes either module and uses only the API the two share. ``smoke_server.js`` is
the same two functions written against the official JavaScript SDK.

``smoke/command-interpreter`` (state ``state``, an ``io.statefun.types/long``) runs a list of
commands, in the spirit of upstream's smoke E2E (``statefun-smoke-e2e-*``). Its input is a JSON
``smoke/Commands`` message ``{"commands": [<command>, ...]}``; each command is an object with one
key::

    {"increment": {}}                                   state = (state or 0) + 1
    {"send": {"target": ID, "commands": [...]}}         send smoke/Commands to interpreter ID
    {"send_after": {"target": ID, "delay_ms": N,        the same, delayed, with the token if
                    "commands": [...], "token": T}}     one is given ("token" is optional)
    {"cancel_send_after": {"token": T}}                 cancel the delayed message with token T
    {"send_egress": {"payload": P}}                     egress {"topic": "discard", "payload": P}
    {"verify": {"tag": T}}                              egress {"topic": "verification", "payload":
                                                          '{"id":ID,"tag":T,"actual":state or 0}'}
    {"reply": {"text": S}}                              io.statefun.types/string S to the caller,
                                                          if there is one
    {"fail": {"message": S}}                            raise SmokeError(S)

Egress records go to the playground egress ``io.statefun.playground/egress`` as JSON
``io.statefun.playground/EgressRecord``s. A verification payload is a string holding compact JSON
(``separators=(",", ":")``, non-ASCII unescaped): exactly what ``JSON.stringify`` writes, so all
three SDKs emit the same payload string.

``smoke/echo`` (no state) answers any message with an egress record
``{"topic": "echo", "payload": <the string, if the message is a string, else its typename>}``.

This module imports only the standard library: the official SDK's virtualenv loads it too.
"""

import json
from datetime import timedelta

INTERPRETER = "smoke/command-interpreter"
ECHO = "smoke/echo"
COMMANDS = "smoke/Commands"
EGRESS = "io.statefun.playground/egress"
EGRESS_RECORD = "io.statefun.playground/EgressRecord"
STATE = "state"


class SmokeError(Exception):
    """Raised by a ``fail`` command."""


def verification_payload(address_id, tag, actual):
    """The ``payload`` string of a ``verify`` command's egress record."""
    return json.dumps(
        {"id": address_id, "tag": tag, "actual": actual}, separators=(",", ":"), ensure_ascii=False
    )


def build(sf, typename=INTERPRETER, typename_of=None):
    """The smoke functions, with the interpreter bound to ``typename``. ``typename_of(id)``
    names the interpreter type of a target id (default: ``typename``): the mixed-kinds test
    spreads the interpreters over one type per deployment kind."""
    functions = sf.StatefulFunctions()
    commands_type = sf.make_json_type(COMMANDS)
    record_type = sf.make_json_type(EGRESS_RECORD)

    def to_interpreter(target, commands):
        target_type = typename if typename_of is None else typename_of(target)
        return sf.message_builder(
            target_type, target, value={"commands": commands}, value_type=commands_type
        )

    def egress(topic, payload):
        return sf.egress_message_builder(EGRESS, {"topic": topic, "payload": payload}, record_type)

    def run(context, kind, body):
        if kind == "increment":
            context.storage.state = (context.storage.state or 0) + 1
        elif kind == "send":
            context.send(to_interpreter(body["target"], body["commands"]))
        elif kind == "send_after":
            delay = timedelta(milliseconds=body["delay_ms"])
            message = to_interpreter(body["target"], body["commands"])
            if "token" in body:
                context.send_after(delay, message, body["token"])
            else:
                context.send_after(delay, message)
        elif kind == "cancel_send_after":
            context.cancel_delayed_message(body["token"])
        elif kind == "send_egress":
            context.send_egress(egress("discard", body["payload"]))
        elif kind == "verify":
            actual = context.storage.state or 0
            payload = verification_payload(context.address.id, body["tag"], actual)
            context.send_egress(egress("verification", payload))
        elif kind == "reply":
            caller = context.caller
            if caller is not None:
                context.send(sf.message_builder(caller.typename, caller.id, str_value=body["text"]))
        elif kind == "fail":
            raise SmokeError(body["message"])
        else:
            raise ValueError(f"unknown command {kind!r}")

    @functions.bind(typename, specs=[sf.ValueSpec(STATE, sf.LongType)])
    def interpreter(context, message):
        if not message.is_type(commands_type):
            raise TypeError(f"expected a {COMMANDS} message, got a {message.value_typename()}")
        for command in message.as_type(commands_type)["commands"]:
            ((kind, body),) = command.items()
            run(context, kind, body)

    @functions.bind(ECHO)
    def echo(context, message):
        payload = message.as_string() if message.is_string() else message.value_typename()
        context.send_egress(egress("echo", payload))

    return functions
