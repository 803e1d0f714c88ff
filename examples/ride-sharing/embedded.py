"""The ride-sharing functions that run embedded, inside ``pystatefun run``: the hot path.

``rides/geo-cell`` (id: a cell of the map, like ``12-34``) matches the free drivers of its
cell with the ride requests waiting there, first come first served. It offers each match to the
driver, and it alone decides which request times out: a request that finds no driver within
its wait gets ``NoDriverFound``. The timeout is a delayed message to the cell itself, with the
cancellation token ``wait-<ride>``, cancelled when the request is matched.

``rides/ride`` (id: the ride, like ``alice-1``) is the ride's state machine, requested ->
driver-assigned -> in-progress -> finished (or requested -> timed-out). It writes every change
to the playground egress, topic ``rides``, and tells the passenger.

Loaded by the module's ``io.pystatefun.endpoints.v1/embedded`` endpoint
(``import: embedded.py:functions``).
"""

from datetime import timedelta

from messages import (
    ASSIGNED,
    CELL,
    CELL_DRIVERS,
    CELL_WAITING,
    DRIVER,
    DRIVER_ASSIGNED,
    DRIVER_AVAILABLE,
    DRIVER_LEAVES,
    DROPPED_OFF,
    FIND_DRIVER,
    FINISHED,
    IN_PROGRESS,
    NO_DRIVER_FOUND,
    PASSENGER,
    PICKED_UP,
    REQUESTED,
    RIDE,
    RIDE_DECLINED,
    RIDE_OFFERED,
    RIDE_REQUESTED,
    RIDE_STATE,
    RIDE_UPDATE,
    TIMED_OUT,
    WAIT_EXPIRED,
    body,
    emit_event,
    send,
)

from pystatefun.sdk import Context, Message, StatefulFunctions, ValueSpec, message_builder

functions = StatefulFunctions()


@functions.bind(
    CELL, specs=[ValueSpec("drivers", CELL_DRIVERS), ValueSpec("waiting", CELL_WAITING)]
)
def geo_cell(context: Context, message: Message) -> None:
    """The free drivers and the waiting requests of the cell ``context.address.id``."""
    drivers = context.storage.drivers or []
    waiting = context.storage.waiting or []
    new = None  # a request that starts to wait now, unless a free driver takes it at once
    if (request := body(message, FIND_DRIVER)) is not None:
        new = {"ride": request["ride"], "max_wait_s": request["max_wait_s"]}
        waiting.append(new)
    elif (declined := body(message, RIDE_DECLINED)) is not None:
        # The driver had moved on before the offer reached it: the ride goes back to the front.
        new = {"ride": declined["ride"], "max_wait_s": declined["max_wait_s"]}
        waiting.insert(0, new)
    elif (available := body(message, DRIVER_AVAILABLE)) is not None:
        if available["driver"] not in drivers:
            drivers.append(available["driver"])
    elif (leaving := body(message, DRIVER_LEAVES)) is not None:
        drivers = [driver for driver in drivers if driver != leaving["driver"]]
    elif (expired := body(message, WAIT_EXPIRED)) is not None:
        still = [entry for entry in waiting if entry["ride"] != expired["ride"]]
        # Else it was offered already: the offer cancelled this timeout, or, if it had fired
        # already, this message was in the mailbox before any decline could put the ride back.
        if len(still) < len(waiting):
            waiting = still
            send(context, RIDE, expired["ride"], NO_DRIVER_FOUND, {})
    while drivers and waiting:  # first come, first served, on both sides
        entry = waiting.pop(0)
        if entry is not new:
            context.cancel_delayed_message(f"wait-{entry['ride']}")  # it waits no more
        offer = {**entry, "cell": context.address.id}
        send(context, DRIVER, drivers.pop(0), RIDE_OFFERED, offer)
    if new is not None and new in waiting:
        ride_id = {"ride": new["ride"]}
        expire = message_builder(CELL, context.address.id, value=ride_id, value_type=WAIT_EXPIRED)
        wait = timedelta(seconds=new["max_wait_s"])
        context.send_after(wait, expire, cancellation_token=f"wait-{new['ride']}")
    context.storage.drivers = drivers  # assign back: reads return a fresh copy
    context.storage.waiting = waiting


# A ride's record disappears a day after its last message: finished rides do not pile up.
@functions.bind(RIDE, specs=[ValueSpec("ride", RIDE_STATE, expire_after_call=timedelta(days=1))])
def ride(context: Context, message: Message) -> None:
    """The ride ``context.address.id``: each message moves it one step, or is ignored."""
    state = context.storage.ride
    if (requested := body(message, RIDE_REQUESTED)) is not None:
        if state is None:  # a ride is requested once; a repeat is ignored
            state = {"passenger": requested["passenger"], "cell": requested["cell"]}
            _move(context, state, REQUESTED)
            wait = {"ride": context.address.id, "max_wait_s": requested["max_wait_s"]}
            send(context, CELL, requested["cell"], FIND_DRIVER, wait)
        return
    if state is None:  # expired, or never requested: nothing to move
        return
    status = state["status"]
    if status == REQUESTED and (assigned := body(message, DRIVER_ASSIGNED)) is not None:
        state["driver"] = assigned["driver"]
        _move(context, state, ASSIGNED)
    elif status == REQUESTED and message.is_type(NO_DRIVER_FOUND):
        _move(context, state, TIMED_OUT)
    elif status == ASSIGNED and message.is_type(PICKED_UP):
        _move(context, state, IN_PROGRESS)
    elif status == IN_PROGRESS and (dropped := body(message, DROPPED_OFF)) is not None:
        state["dropoff"] = dropped["cell"]
        _move(context, state, FINISHED)


def _move(context: Context, state: dict, status: str) -> None:
    """The ride is now ``status``: store it, write the event, tell the passenger."""
    state["status"] = status
    context.storage.ride = state
    event = {"ride": context.address.id, **state}
    emit_event(context, event)
    send(context, PASSENGER, state["passenger"], RIDE_UPDATE, event)
