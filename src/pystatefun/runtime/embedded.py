"""Embedded functions: ``pystatefun.sdk`` functions run inside the runtime, like stored procedures.

An ``io.pystatefun.endpoints.v1/embedded`` endpoint names a ``StatefulFunctions`` object; it is
imported once, when the runtime starts. A batch then goes from the mailbox to the function and
its effects into the step with no HTTP and no protobuf encoding: state and messages are handed
over as ``TypedValue`` objects (``pystatefun.sdk.inprocess``). Everything else is the same as for
a remote function: one invocation per address at a time, the step commits the state changes
and messages atomically, and a function that raises is retried with backoff and then
dead-lettered, never taking the runtime down.

Where plain functions run is the endpoint's ``execution``: on the event loop (fastest; a
function that blocks stalls every address, and a batch that holds the loop for over
``STALL_WARNING_S`` is logged), or on a thread pool (a blocked function holds up only its own
address). ``async def`` functions run on the event loop and may await I/O freely.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import final

from pystatefun.errors import ConfigurationError, ModuleError, TerminalError
from pystatefun.module import EmbeddedEndpoint
from pystatefun.runtime.batches import (
    Delay,
    live_payload,
    payload_of,
    settle_untouched,
    state_value,
    stored_seqs,
    timer_op,
    typed_value_of,
)
from pystatefun.runtime.egress import EgressRouting
from pystatefun.runtime.failures import function_error
from pystatefun.runtime.registry import RegisteredState
from pystatefun.sdk import RequestReplyHandler, SdkAddress, StatefulFunctions
from pystatefun.sdk.inprocess import Effects, InProcessFunction, load_functions
from pystatefun.store import ExpireMode, InboxMessage, NewMessage, StateValue, Step
from pystatefun.types import Address, parse_typename

__all__ = ["STALL_WARNING_S", "EmbeddedFunctions", "step_from_effects"]

_log = logging.getLogger("pystatefun.runtime.embedded")
#: A batch of plain functions that holds the event loop longer than this is logged.
STALL_WARNING_S = 1.0


def _registered(function: InProcessFunction) -> dict[str, RegisteredState]:
    """The declared states as the runtime records them: known up front, no handshake."""
    states = {}
    for spec in function.specs:
        mode = ExpireMode.NONE
        if spec.after_call:
            mode = ExpireMode.AFTER_INVOKE
        elif spec.after_write:
            mode = ExpireMode.AFTER_WRITE
        states[spec.name] = RegisteredState(spec.name, spec.type.typename, mode, spec.duration)
    return states


@final
class EmbeddedFunctions:
    """The functions of one embedded endpoint: imported at start, run once per batch."""

    def __init__(self, endpoint: EmbeddedEndpoint, module_file: Path) -> None:
        self.endpoint = endpoint
        self.where = f"embedded {endpoint.import_path}"
        try:
            loaded = load_functions(endpoint.import_path, module_file.parent)
        except ConfigurationError as exc:
            raise ModuleError(
                f"{exc}. The import is resolved when the runtime starts, relative to the module "
                "file's directory for FILE.py:NAME, or on sys.path for package.module:NAME.",
                file=module_file,
                line=(endpoint.import_location or endpoint.location).line,
                field="spec.import",
            ) from exc
        self._functions = loaded.functions if isinstance(loaded, RequestReplyHandler) else loaded
        _check_pattern(endpoint, self._functions, module_file)
        self._types: dict[str, tuple[InProcessFunction, dict[str, RegisteredState]]] = {}
        self._executor: ThreadPoolExecutor | None = None
        if endpoint.execution == EmbeddedEndpoint.THREADS:
            self._executor = ThreadPoolExecutor(
                endpoint.threads, thread_name_prefix=f"pystatefun-{endpoint.functions}"
            )
        self.batches = 0

    def _function(self, address: Address) -> tuple[InProcessFunction, dict[str, RegisteredState]]:
        typename = address.typename
        found = self._types.get(typename)
        if found is None:
            try:
                function = InProcessFunction.of(self._functions, typename)
            except KeyError as exc:  # UnknownFunctionError
                raise TerminalError(f"{address} ({self.where}): {exc.args[0]}") from exc
            found = self._types[typename] = (function, _registered(function))
        return found

    async def invoke(
        self,
        address: Address,
        batch: list[InboxMessage],
        stored: dict[str, StateValue],
        *,
        egress: EgressRouting,
        now_ms: int,
    ) -> Step:
        """Run ``batch`` through the function of ``address``; its effects as one step."""
        function, registered = self._function(address)
        states = {}
        for name, spec in registered.items():
            payload = live_payload(address, spec, stored, now_ms)
            if payload is not None:
                states[name] = typed_value_of(payload)
        invocations = [(_sdk_address(m.caller), typed_value_of(m.payload)) for m in batch]
        self.batches += 1
        try:
            if function.is_async:
                effects = await function.run_async(address.id, states, invocations)
            elif self._executor is not None:
                loop = asyncio.get_running_loop()
                effects = await loop.run_in_executor(
                    self._executor, function.run, address.id, states, invocations
                )
            else:
                started = time.monotonic()
                effects = function.run(address.id, states, invocations)
                _warn_if_stalled(address, self.where, time.monotonic() - started)
        except Exception as exc:
            _log.warning("%s (%s) raised; traceback follows", address, self.where, exc_info=exc)
            notes = "; ".join(getattr(exc, "__notes__", ()))
            text = f"raised {type(exc).__name__}: {exc} ({notes})"
            raise function_error(text, where=f"{address} ({self.where})") from exc
        return step_from_effects(
            address,
            batch,
            effects,
            registered=registered,
            stored=stored,
            egress=egress,
            now_ms=now_ms,
        )

    def close(self) -> None:
        """Stop the thread pool; a function still blocked in it is left to finish alone."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)


def _check_pattern(endpoint: EmbeddedEndpoint, functions: StatefulFunctions, file: Path) -> None:
    """An endpoint for one exact type must find it bound: otherwise every message to it
    would be dead-lettered, which is better said at start."""
    bound = functions.typenames
    if not any(endpoint.matches(typename) for typename in bound):
        raise ModuleError(
            f"{endpoint.import_path} binds {', '.join(bound)}, and none of them is "
            f"{endpoint.functions!r}; bind the type there, or fix the pattern",
            file=file,
            line=endpoint.location.line,
            field="spec.functions",
        )


def _warn_if_stalled(address: Address, where: str, took_s: float) -> None:
    if took_s > STALL_WARNING_S:
        _log.warning(
            "%s (%s) held the event loop for %.1f s, and every other address waited. Make the "
            "function `async def` and await its I/O, or set `execution: threads` on its endpoint.",
            address,
            where,
            took_s,
        )


def _sdk_address(address: Address | None) -> SdkAddress | None:
    if address is None:
        return None
    return SdkAddress(address.namespace, address.type, address.id, address.typename)


_TARGETS: dict[str, tuple[str, str]] = {}


def _target(typename: str, target_id: str) -> Address:
    parts = _TARGETS.get(typename)
    if parts is None:
        parts = parse_typename(typename)  # the SDK made it: always valid
        if len(_TARGETS) < 10_000:
            _TARGETS[typename] = parts
    return Address(parts[0], parts[1], target_id)


def step_from_effects(
    target: Address,
    batch: list[InboxMessage],
    effects: Effects,
    *,
    registered: dict[str, RegisteredState],
    stored: dict[str, StateValue],
    egress: EgressRouting,
    now_ms: int,
) -> Step:
    """The step of an embedded batch: ``step_from_reply`` without the wire in between."""
    step = Step(consumed=stored_seqs(batch), state_address=target)
    touched = set()
    for name, value in effects.states:
        touched.add(name)
        if value is None:
            step.state_deletes.append(name)
        else:
            step.state_puts.append(state_value(registered[name], payload_of(value), now_ms))
    if stored:
        settle_untouched(step, touched, registered=registered, stored=stored, now_ms=now_ms)
    messages = step.messages
    for message in effects.messages:
        destination = _target(message.target_typename, message.target_id)
        messages.append(NewMessage(destination, target, payload_of(message.typed_value)))
    for delayed in effects.delayed:
        sent = delayed.message
        delay = None
        if sent is not None:
            destination = _target(sent.target_typename, sent.target_id)
            delay = Delay(delayed.delay_ms, destination, payload_of(sent.typed_value))
        step.timer_ops.append(timer_op(target, delayed.cancellation_token, delay, now_ms))
    where = str(target)
    for record in effects.egress:
        step.egress.append(egress.route(record.typename, record.typed_value, where))
    return step
