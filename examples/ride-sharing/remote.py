"""The ride-sharing functions that run remote, served over HTTP: the people at the edges.

``rides/passenger`` (id: the passenger) requests rides, one at a time, and hears how each goes.
Its ride ids are ``<passenger>-<n>``. Asked by request-reply, it answers with the ride's id.

``rides/driver`` (id: the driver) goes on duty in a cell (``JoinCell``), moves to another one
the same way, takes the rides its cell offers while it is free there, reports the pickup and
the drop-off, and is free again in the cell where it dropped the passenger off. An offer that
reaches it when it is no longer free in that cell (it moved, or went off duty, while the offer
was on its way) goes back to the cell, which offers the ride to the next driver.

Serve it: ``pystatefun serve examples/ride-sharing/remote.py:functions --port 8000``
"""

from datetime import timedelta

from messages import (
    CELL,
    DEFAULT_WAIT,
    DRIVER,
    DRIVER_ASSIGNED,
    DRIVER_AVAILABLE,
    DRIVER_LEAVES,
    DRIVER_STATUS,
    DROP_OFF,
    DROPPED_OFF,
    FINISHED,
    GO_OFF_DUTY,
    JOIN_CELL,
    MAX_WAIT,
    PASSENGER,
    PASSENGER_RIDE,
    PICK_UP,
    PICKED_UP,
    REQUEST_RIDE,
    RIDE,
    RIDE_DECLINED,
    RIDE_OFFERED,
    RIDE_REQUESTED,
    RIDE_UPDATE,
    TIMED_OUT,
    body,
    send,
)

from pystatefun.sdk import (
    Context,
    IntType,
    Message,
    StatefulFunctions,
    ValueSpec,
    message_builder,
)

functions = StatefulFunctions()

# The driver's states: off duty, free in a cell, on the way to a pickup, driving a passenger.
OFF, FREE, TO_PICKUP, DRIVING = "off", "free", "to-pickup", "driving"


@functions.bind(
    PASSENGER,
    specs=[
        ValueSpec("rides", IntType),  # how many rides this passenger requested, ever
        # The current ride; a day after it last changed it is let go, whatever happened to it.
        ValueSpec("ride", PASSENGER_RIDE, expire_after_write=timedelta(days=1)),
    ],
)
def passenger(context: Context, message: Message) -> None:
    """The passenger ``context.address.id`` and the ride it is on, if any."""
    current = context.storage.ride
    if (request := body(message, REQUEST_RIDE)) is not None:
        if current is None:  # one ride at a time: during a ride, a request starts nothing
            count = (context.storage.rides or 0) + 1
            context.storage.rides = count
            current = {"ride": f"{context.address.id}-{count}", "status": "requested"}
            context.storage.ride = current
            send(context, RIDE, current["ride"], RIDE_REQUESTED, _ride_request(context, request))
        if context.caller is not None:  # request-reply: the ingress request waits for the id
            caller = context.caller
            context.send(message_builder(caller.typename, caller.id, str_value=current["ride"]))
    elif (update := body(message, RIDE_UPDATE)) is not None:
        if current is None or update["ride"] != current["ride"]:
            return  # about a ride this passenger has let go
        if update["status"] in (FINISHED, TIMED_OUT):
            del context.storage.ride
        else:
            current["status"] = update["status"]
            if "driver" in update:
                current["driver"] = update["driver"]
            context.storage.ride = current  # assign back: reads return a fresh copy


def _ride_request(context: Context, request: dict) -> dict:
    """What the ride is asked: from which cell, and how long to wait for a driver (bounded)."""
    wait_s = request.get("max_wait_s", DEFAULT_WAIT.total_seconds())
    wait_s = min(max(int(wait_s), 1), int(MAX_WAIT.total_seconds()))
    return {"passenger": context.address.id, "cell": request["cell"], "max_wait_s": wait_s}


@functions.bind(DRIVER, specs=[ValueSpec("status", DRIVER_STATUS)])
def driver(context: Context, message: Message) -> None:
    """The driver ``context.address.id``: {"state", "cell" when on duty, "ride" when busy}."""
    me = context.address.id
    status = context.storage.status or {"state": OFF}
    state, cell, ride = status["state"], status.get("cell"), status.get("ride")
    if (join := body(message, JOIN_CELL)) is not None:
        if state in (OFF, FREE):  # a busy driver moves by dropping the passenger off
            if state == FREE and cell != join["cell"]:
                send(context, CELL, cell, DRIVER_LEAVES, {"driver": me})
            status = _free_in(context, join["cell"])
    elif message.is_type(GO_OFF_DUTY):
        if state == FREE:
            send(context, CELL, cell, DRIVER_LEAVES, {"driver": me})
            status = {"state": OFF}
    elif (offer := body(message, RIDE_OFFERED)) is not None:
        if state == FREE and cell == offer["cell"]:
            status = {"state": TO_PICKUP, "cell": cell, "ride": offer["ride"]}
            send(context, RIDE, offer["ride"], DRIVER_ASSIGNED, {"driver": me})
        else:  # it moved on while the offer travelled: the cell gives the ride to another
            send(context, CELL, offer["cell"], RIDE_DECLINED, {**offer, "driver": me})
    # A pickup or a drop-off that is not about the ride being driven is ignored.
    elif (pickup := body(message, PICK_UP)) and state == TO_PICKUP and pickup["ride"] == ride:
        status = {**status, "state": DRIVING}
        send(context, RIDE, ride, PICKED_UP, {"driver": me})
    elif (dropoff := body(message, DROP_OFF)) and state == DRIVING and dropoff["ride"] == ride:
        send(context, RIDE, ride, DROPPED_OFF, {"driver": me, "cell": dropoff["cell"]})
        status = _free_in(context, dropoff["cell"])
    context.storage.status = status


def _free_in(context: Context, cell: str) -> dict:
    """Tell ``cell`` that this driver is free there; the driver's new status."""
    send(context, CELL, cell, DRIVER_AVAILABLE, {"driver": context.address.id})
    return {"state": FREE, "cell": cell}
