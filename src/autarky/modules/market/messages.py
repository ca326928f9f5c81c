"""The market messages as typed, frozen values: parsing, value checks and builders.

Parsing checks the message alone, never the state, in two stages whose order is part of the
module's precedence (README.md):

1. shape: exactly the fields listed plus ``type``, each of its type (``core.invalid_message``;
   a bool is not an int, an order id is 32 bytes);
2. values, code by code: ``market.invalid_interval``, ``market.invalid_quantity``,
   ``market.invalid_price``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from autarky.ledger.errors import INVALID_MESSAGE
from autarky.ledger.router import check_field_names, require_field, require_text
from autarky.ledger.tx import MAX_U64
from autarky.modules.market.errors import INVALID_INTERVAL, INVALID_PRICE, INVALID_QUANTITY

BID = "market/bid"
ASK = "market/ask"
CANCEL = "market/cancel"
MESSAGE_TYPES = (BID, ASK, CANCEL)

ORDER_ID_BYTES = 32
MAX_INTERVAL = 10**16 - 1
"""Interval indexes are written with 16 digits in state keys."""

Side = Literal["bid", "ask"]


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    """``market/bid`` or ``market/ask``."""

    side: Side
    zone: str
    interval: int
    quantity: int
    limit_price: int


@dataclass(frozen=True, slots=True)
class Cancel:
    order: bytes


_ORDER_FIELDS = ("zone", "interval", "quantity", "limit_price")


def parse_order(message: Mapping[str, Any]) -> PlaceOrder:
    side: Side = "bid" if message["type"] == BID else "ask"
    check_field_names(message, _ORDER_FIELDS, ())
    zone = require_text(message, "zone")
    interval = require_field(message, "interval", int)
    quantity = require_field(message, "quantity", int)
    limit_price = require_field(message, "limit_price", int)
    if not 0 <= interval <= MAX_INTERVAL:
        raise INVALID_INTERVAL(f"interval {interval} is not from 0 to 10**16-1")
    if not 1 <= quantity <= MAX_U64:
        raise INVALID_QUANTITY(f"quantity {quantity} is not from 1 to 2**64-1")
    lowest = 1 if side == "bid" else 0
    if not lowest <= limit_price <= MAX_U64:
        raise INVALID_PRICE(f"a {side}'s limit price must be from {lowest} to 2**64-1, not {limit_price}")
    return PlaceOrder(side, zone, interval, quantity, limit_price)


def parse_cancel(message: Mapping[str, Any]) -> Cancel:
    check_field_names(message, ("order",), ())
    order = message.get("order")
    if type(order) is not bytes or len(order) != ORDER_ID_BYTES:
        raise INVALID_MESSAGE(f"field 'order' must be a {ORDER_ID_BYTES}-byte order id")
    return Cancel(order)


# ---------------------------------------------------------------------------------------------------
# Builders: the message maps clients put in a transaction body


def bid(zone: str, interval: int, quantity: int, limit_price: int) -> dict[str, Any]:
    """Buy up to ``quantity`` units in ``zone`` for ``interval``, paying at most ``limit_price`` each."""
    return {"type": BID, "zone": zone, "interval": interval, "quantity": quantity, "limit_price": limit_price}


def ask(zone: str, interval: int, quantity: int, limit_price: int) -> dict[str, Any]:
    """Sell up to ``quantity`` units in ``zone`` for ``interval``, for at least ``limit_price`` each."""
    return {"type": ASK, "zone": zone, "interval": interval, "quantity": quantity, "limit_price": limit_price}


def cancel(order: bytes) -> dict[str, Any]:
    return {"type": CANCEL, "order": order}
