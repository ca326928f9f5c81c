"""The market module's rejection codes, in order of precedence.

A message is checked top to bottom and the first failing check decides its code; README.md says
which codes each message can return. The code strings are part of consensus: never rename or
renumber them; add new codes at the place in the order where they are checked.

``core.invalid_message`` (a field missing, unexpected or of the wrong type) comes before all of
these. Codes 1-3 need only the message; the rest read the state and the block time. After them,
``market/bid`` and ``market/ask`` can fail with the escrow lock's codes (``bank.unknown_asset``,
then the bank's guarded debit, ``bank.account_frozen`` ... ``bank.insufficient_funds``).
"""

from __future__ import annotations

from autarky.ledger.errors import ErrorCode

# Checks on the message alone.
INVALID_INTERVAL = ErrorCode("market.invalid_interval", "the interval is not an index from 0 to 10**16-1")
INVALID_QUANTITY = ErrorCode("market.invalid_quantity", "the quantity is not from 1 to 2**64-1")
INVALID_PRICE = ErrorCode(
    "market.invalid_price", "the limit price is not from 1 (bids) or 0 (asks) to 2**64-1"
)

# Checks against the state and the block time.
UNKNOWN_ZONE = ErrorCode("market.unknown_zone", "no market zone has this name")
TOO_LARGE = ErrorCode(
    "market.too_large", "quantity times limit price (bids) or times the zone's penalty (asks) exceeds 2**64-1"
)
GATE_CLOSED = ErrorCode(
    "market.gate_closed", "the interval's gate has closed: orders and cancels only before it starts"
)
TOO_FAR_AHEAD = ErrorCode(
    "market.too_far_ahead", "the interval starts more than max_intervals_ahead intervals from now"
)
BOOK_FULL = ErrorCode(
    "market.book_full", "the zone already holds max_orders_per_interval orders for this interval"
)
UNKNOWN_ORDER = ErrorCode("market.unknown_order", "no order has this id")
NOT_OWNER = ErrorCode("market.not_owner", "only the account that placed an order may cancel it")
NOT_OPEN = ErrorCode("market.not_open", "the order is no longer open (cancelled or cleared)")

MARKET_CODES_IN_PRECEDENCE = (
    INVALID_INTERVAL,
    INVALID_QUANTITY,
    INVALID_PRICE,
    UNKNOWN_ZONE,
    TOO_LARGE,
    UNKNOWN_ORDER,
    NOT_OWNER,
    NOT_OPEN,
    GATE_CLOSED,
    TOO_FAR_AHEAD,
    BOOK_FULL,
)
"""Every market code, in order of precedence. Part of consensus: add codes, never rename one."""

ORDER_PRECEDENCE = (
    INVALID_INTERVAL,
    INVALID_QUANTITY,
    INVALID_PRICE,
    UNKNOWN_ZONE,
    TOO_LARGE,
    GATE_CLOSED,
    TOO_FAR_AHEAD,
    BOOK_FULL,
)
"""The codes of ``market/bid`` and ``market/ask`` (before the escrow lock's), in order."""

CANCEL_PRECEDENCE = (UNKNOWN_ORDER, NOT_OWNER, NOT_OPEN, GATE_CLOSED)
"""The codes of ``market/cancel``, in order."""
