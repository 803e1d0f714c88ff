"""The shopping-cart application: carts, inventory, and reservations that expire.

``shop/inventory`` (id: the item's sku) keeps the stock and how much of it carts have reserved.
``shop/cart`` (id: the cart) asks the inventory to reserve what is added; a reservation lasts
``RESERVATION_WINDOW``, after which the cart's own delayed ``ExpireReservation`` releases it.
Checkout commits every reservation, cancels the expiries, and sends a receipt to the playground
egress (topic ``receipts``), and to the caller when the cart was reached by request-reply.

Serve it: ``pystatefun serve examples/shopping-cart/functions.py:functions --port 8000``
"""

import json
from datetime import timedelta

from pystatefun.sdk import (
    Context,
    IntType,
    Message,
    StatefulFunctions,
    Type,
    ValueSpec,
    egress_message_builder,
    make_json_type,
    message_builder,
)

RESERVATION_WINDOW = timedelta(minutes=15)
INVENTORY, CART = "shop/inventory", "shop/cart"

# Messages: JSON values whose type name travels with them (Content-Type: application/vnd.<name>).
RESTOCK = make_json_type("shop/Restock")  # {"quantity": 10}
RESERVE = make_json_type("shop/Reserve")  # {"cart_id": "c1", "quantity": 2}
RELEASE = make_json_type("shop/Release")  # {"cart_id": "c1", "quantity": 2}
COMMIT = make_json_type("shop/Commit")  # {"cart_id": "c1", "quantity": 2}
RESERVATION = make_json_type("shop/Reservation")  # {"sku": "apple", "quantity": 2, "ok": true}
ADD_ITEM = make_json_type("shop/AddItem")  # {"sku": "apple", "quantity": 2}
REMOVE_ITEM = make_json_type("shop/RemoveItem")  # {"sku": "apple"}
EXPIRE_RESERVATION = make_json_type("shop/ExpireReservation")  # {"sku": "apple"}
CHECKOUT = make_json_type("shop/Checkout")  # {}
ITEMS = make_json_type("shop/CartItems")  # state: {"apple": 2, ...}
EGRESS_RECORD = make_json_type("io.statefun.playground/EgressRecord")
PLAYGROUND_EGRESS = "io.statefun.playground/egress"

functions = StatefulFunctions()


@functions.bind(INVENTORY, specs=[ValueSpec("stock", IntType), ValueSpec("reserved", IntType)])
def inventory(context: Context, message: Message) -> None:
    """The stock of the item ``context.address.id``, and how much of it carts hold."""
    stock, reserved = context.storage.stock or 0, context.storage.reserved or 0
    if message.is_type(RESTOCK):
        context.storage.stock = stock + message.as_type(RESTOCK)["quantity"]
    elif message.is_type(RESERVE):
        request = message.as_type(RESERVE)
        ok = request["quantity"] <= stock - reserved
        if ok:
            context.storage.reserved = reserved + request["quantity"]
        answer = {"sku": context.address.id, "quantity": request["quantity"], "ok": ok}
        context.send(
            message_builder(CART, request["cart_id"], value=answer, value_type=RESERVATION)
        )
    elif message.is_type(RELEASE):
        context.storage.reserved = reserved - message.as_type(RELEASE)["quantity"]
    elif message.is_type(COMMIT):
        quantity = message.as_type(COMMIT)["quantity"]
        context.storage.stock = stock - quantity
        context.storage.reserved = reserved - quantity


# An abandoned cart disappears a day after its last message (its expiries invoke it too).
@functions.bind(CART, specs=[ValueSpec("items", ITEMS, expire_after_call=timedelta(days=1))])
def cart(context: Context, message: Message) -> None:
    """The cart ``context.address.id``: sku -> quantity reserved for it."""
    items = context.storage.items or {}
    if message.is_type(ADD_ITEM):
        item = message.as_type(ADD_ITEM)
        _to_inventory(context, item["sku"], RESERVE, item["quantity"])
        return  # recorded when the inventory answers
    if message.is_type(RESERVATION):
        reservation = message.as_type(RESERVATION)
        if not reservation["ok"]:
            return  # not enough stock: nothing was reserved
        sku = reservation["sku"]
        items[sku] = items.get(sku, 0) + reservation["quantity"]
        _schedule_expiry(context, sku)
    elif message.is_type(EXPIRE_RESERVATION):  # the window closed: give the stock back
        _release(context, items, message.as_type(EXPIRE_RESERVATION)["sku"])
    elif message.is_type(REMOVE_ITEM):
        _release(context, items, message.as_type(REMOVE_ITEM)["sku"])
    elif message.is_type(CHECKOUT):
        for sku, quantity in items.items():
            _to_inventory(context, sku, COMMIT, quantity)
            context.cancel_delayed_message(f"expire-{sku}")
        receipt = json.dumps({"cart": context.address.id, "items": items}, sort_keys=True)
        record = {"topic": "receipts", "payload": receipt}
        context.send_egress(egress_message_builder(PLAYGROUND_EGRESS, record, EGRESS_RECORD))
        if context.caller is not None:  # a request-reply ingress request waits for the receipt
            caller = context.caller
            context.send(message_builder(caller.typename, caller.id, str_value=receipt))
        items = {}
    context.storage.items = items  # assign back: reads return a fresh copy


def _release(context: Context, items: dict[str, int], sku: str) -> None:
    if sku in items:
        _to_inventory(context, sku, RELEASE, items.pop(sku))
        context.cancel_delayed_message(f"expire-{sku}")  # a no-op once it has fired


def _to_inventory(context: Context, sku: str, kind: Type, quantity: int) -> None:
    body = {"cart_id": context.address.id, "quantity": quantity}
    context.send(message_builder(INVENTORY, sku, value=body, value_type=kind))


def _schedule_expiry(context: Context, sku: str) -> None:
    """(Re)start the sku's reservation window: one pending expiry per sku, by its token."""
    token = f"expire-{sku}"
    context.cancel_delayed_message(token)  # the runtime refuses a token that is still pending
    expire = message_builder(
        CART, context.address.id, value={"sku": sku}, value_type=EXPIRE_RESERVATION
    )
    context.send_after(RESERVATION_WINDOW, expire, cancellation_token=token)
