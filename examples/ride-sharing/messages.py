"""What the ride-sharing functions say to each other: function types, message types, events.

Both function files import this one: ``embedded.py`` (run inside ``pystatefun run``) and
``remote.py`` (served by ``pystatefun serve``). Each message is a JSON value whose type name
travels with it, so a function, the ingress (``Content-Type: application/vnd.<name>``) and any
other SDK can tell what it holds.
"""

import json
from datetime import timedelta

from pystatefun.sdk import (
    Context,
    Message,
    Type,
    egress_message_builder,
    make_json_type,
    message_builder,
)

# The function types. Embedded: the geo-cells and the rides. Remote: passengers and drivers.
PASSENGER, DRIVER = "rides/passenger", "rides/driver"
CELL, RIDE = "rides/geo-cell", "rides/ride"

# How long a ride request waits for a driver, unless the passenger asks for another wait.
DEFAULT_WAIT = timedelta(seconds=60)
MAX_WAIT = timedelta(minutes=10)

# Commands, through the playground ingress.
REQUEST_RIDE = make_json_type("rides/RequestRide")  # to a passenger: {"cell", "max_wait_s"?}
JOIN_CELL = make_json_type("rides/JoinCell")  # to a driver: {"cell": "12-34"}
GO_OFF_DUTY = make_json_type("rides/GoOffDuty")  # to a driver: {}
PICK_UP = make_json_type("rides/PickUp")  # to a driver: {"ride": "alice-1"}
DROP_OFF = make_json_type("rides/DropOff")  # to a driver: {"ride": "alice-1", "cell": "12-35"}

# Between the functions.
RIDE_REQUESTED = make_json_type("rides/RideRequested")  # passenger -> ride
FIND_DRIVER = make_json_type("rides/FindDriver")  # ride -> cell: {"ride", "max_wait_s"}
DRIVER_AVAILABLE = make_json_type("rides/DriverAvailable")  # driver -> cell: {"driver"}
DRIVER_LEAVES = make_json_type("rides/DriverLeaves")  # driver -> cell: {"driver"}
RIDE_OFFERED = make_json_type("rides/RideOffered")  # cell -> driver: {"ride", "cell", ...}
RIDE_DECLINED = make_json_type("rides/RideDeclined")  # driver -> cell: the offer, returned
WAIT_EXPIRED = make_json_type("rides/WaitExpired")  # cell -> itself, delayed: {"ride"}
NO_DRIVER_FOUND = make_json_type("rides/NoDriverFound")  # cell -> ride: {}
DRIVER_ASSIGNED = make_json_type("rides/DriverAssigned")  # driver -> ride: {"driver"}
PICKED_UP = make_json_type("rides/PickedUp")  # driver -> ride: {"driver"}
DROPPED_OFF = make_json_type("rides/DroppedOff")  # driver -> ride: {"driver", "cell"}
RIDE_UPDATE = make_json_type("rides/RideUpdate")  # ride -> passenger: the ride's event

# State.
RIDE_STATE = make_json_type("rides/RideState")  # {"passenger", "cell", "status", "driver"?}
CELL_DRIVERS = make_json_type("rides/CellDrivers")  # ["d1", "d2"]: free, longest waiting first
CELL_WAITING = make_json_type("rides/CellWaiting")  # [{"ride", "max_wait_s"}]: oldest first
DRIVER_STATUS = make_json_type("rides/DriverStatus")  # {"state", "cell"?, "ride"?}
PASSENGER_RIDE = make_json_type("rides/PassengerRide")  # {"ride", "status", "driver"?}

# Ride statuses, in order; a ride ends finished or timed-out.
REQUESTED, ASSIGNED, IN_PROGRESS = "requested", "driver-assigned", "in-progress"
FINISHED, TIMED_OUT = "finished", "timed-out"

EGRESS_RECORD = make_json_type("io.statefun.playground/EgressRecord")
PLAYGROUND_EGRESS = "io.statefun.playground/egress"
EVENTS_TOPIC = "rides"


def send(context: Context, typename: str, target: str, kind: Type, body: object) -> None:
    """Send the JSON ``body`` as a ``kind`` message to ``typename/target``."""
    context.send(message_builder(typename, target, value=body, value_type=kind))


def body(message: Message, kind: Type) -> dict | None:
    """The message's JSON body when it is a ``kind``, else None."""
    return message.as_type(kind) if message.is_type(kind) else None


def emit_event(context: Context, event: dict) -> None:
    """One ride event, as a JSON text, to the playground egress topic ``rides``."""
    record = {"topic": EVENTS_TOPIC, "payload": json.dumps(event, sort_keys=True)}
    context.send_egress(egress_message_builder(PLAYGROUND_EGRESS, record, EGRESS_RECORD))
