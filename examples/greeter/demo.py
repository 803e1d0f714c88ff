"""The main job (``python3 dev.py example``): serve the greeter and drive it over the wire.

Until the embedded runtime lands, this script plays the runtime's part by hand, with real
StateFun protocol requests over HTTP: it starts ``pystatefun serve`` on the greeter functions,
sends visits as ``ToFunction`` batches, performs the missing-state handshake, keeps each
address's state between calls, delivers function-to-function messages and prints everything
the functions did. Then it stops the server with SIGTERM and checks that it exited cleanly.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections import deque
from pathlib import Path

import aiohttp

from pystatefun.protocol import Address, FromFunction, ToFunction, TypedValue
from pystatefun.protocol.typed_values import PRIMITIVES
from pystatefun.sdk import StringType

HERE = Path(__file__).resolve().parent
PYSTATEFUN = Path(sys.executable).parent / "pystatefun"
VISITS = ["alice", "bob", "alice", "alice"]
Key = tuple[str, str, str]


class HandDrivenRuntime:
    """Just enough of a runtime to show the protocol: per-address state, a message queue."""

    def __init__(self, session: aiohttp.ClientSession, url: str) -> None:
        self.session, self.url = session, url
        self.registered: dict[str, list[str]] = {}  # function type -> registered state names
        self.state: dict[Key, dict[str, TypedValue]] = {}
        self.queue: deque[tuple[Address, TypedValue, Address | None]] = deque()

    async def invoke(self, target: Address, argument: TypedValue, caller: Address | None) -> None:
        typename = f"{target.namespace}/{target.type}"
        key = (target.namespace, target.type, target.id)
        while True:
            request = ToFunction()
            request.invocation.target.CopyFrom(target)
            for name in self.registered.get(typename, []):
                persisted = request.invocation.state.add(state_name=name)
                if name in self.state.get(key, {}):
                    persisted.state_value.CopyFrom(self.state[key][name])
            invocation = request.invocation.invocations.add(argument=argument)
            if caller is not None:
                invocation.caller.CopyFrom(caller)
            async with self.session.post(self.url, data=request.SerializeToString()) as response:
                body = await response.read()
                if response.status != 200:
                    raise SystemExit(f"function answered {response.status}: {body.decode()}")
            reply = FromFunction.FromString(body)
            if reply.HasField("incomplete_invocation_context"):
                missing = reply.incomplete_invocation_context.missing_values
                print(
                    f"  {typename} asks for state: "
                    + ", ".join(f"{m.state_name} ({m.type_typename})" for m in missing)
                )
                self.registered.setdefault(typename, []).extend(m.state_name for m in missing)
                continue  # the handshake: register, then resend the same batch
            self.apply(key, target, reply.invocation_result)
            return

    def apply(self, key: Key, target: Address, result: FromFunction.InvocationResponse) -> None:
        where = "/".join(key)
        for mutation in result.state_mutations:
            if mutation.mutation_type == FromFunction.PersistedValueMutation.MODIFY:
                self.state.setdefault(key, {})[mutation.state_name] = mutation.state_value
                print(f"  {where}: state {mutation.state_name} := {show(mutation.state_value)}")
            else:
                self.state.get(key, {}).pop(mutation.state_name, None)
                print(f"  {where}: state {mutation.state_name} deleted")
        for message in result.outgoing_messages:
            to = message.target
            print(f"  {where} -> {to.namespace}/{to.type}/{to.id}: {show(message.argument)}")
            self.queue.append((message.target, message.argument, target))
        for delayed in result.delayed_invocations:
            if delayed.is_cancellation_request:
                print(f"  {where}: cancel delayed message {delayed.cancellation_token!r}")
            else:
                print(
                    f"  {where}: delayed message in {delayed.delay_in_ms} ms "
                    f"(token {delayed.cancellation_token!r}): {show(delayed.argument)}"
                )
        for egress in result.outgoing_egresses:
            record = json.loads(egress.argument.value)
            print(
                f"  EGRESS {egress.egress_namespace}/{egress.egress_type} "
                f"[{record['topic']}]: {record['payload']}"
            )


def show(value: TypedValue) -> str:
    if value.typename in PRIMITIVES:
        return repr(PRIMITIVES[value.typename].decode(value.value))
    return value.value.decode("utf-8", errors="replace")


async def main() -> int:
    server = await asyncio.create_subprocess_exec(
        PYSTATEFUN,
        "serve",
        f"{HERE / 'functions.py'}:functions",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
    )
    assert server.stdout is not None
    url = (await server.stdout.readline()).decode().strip()
    if not url:
        raise SystemExit("the function server exited before listening")
    print(f"greeter functions served at {url} (pid {server.pid})")
    async with aiohttp.ClientSession() as session:
        runtime = HandDrivenRuntime(session, url)
        for name in VISITS:
            print(f"visit from {name!r}:")
            user = Address(namespace="example", type="user", id=name)
            runtime.queue.append(
                (
                    user,
                    TypedValue(
                        typename=StringType.typename,
                        has_value=True,
                        value=StringType.serializer().serialize(name),
                    ),
                    None,
                )
            )
            while runtime.queue:
                await runtime.invoke(*runtime.queue.popleft())
    server.send_signal(signal.SIGTERM)
    code = await server.wait()
    print(f"function server stopped with exit code {code}")
    return code


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
