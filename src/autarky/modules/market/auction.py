"""The uniform-price double auction of one zone and one delivery interval: pure functions on integers.

:func:`clear` is what the ledger runs in ``end_block``; :func:`uniform_price` states the price rule
over any allocation and is the readable reference :func:`clear`'s own computation is tested against
(and what the LP reference of ``autarky bench auction`` uses). Nothing here reads state.

Allocation (README.md, "Clearing")
----------------------------------
Bids are ranked by **price priority** (higher limit first), then **earlier submission height**,
then **order id** (bytes, ascending); asks by lower limit first, then height, then id. Asks above
the cap (when there is one) take no part. Units are matched greedily down both rankings while the
current bid's limit is at least the current ask's limit: this is the allocation that maximises
welfare (the sum over filled units of bid limit minus ask limit), trades the largest volume among
the welfare-maximal ones (a bid and an ask at the same limit do trade), and, among allocations that
are still tied, fills the higher-ranked orders first. So at most one bid and one ask are filled
partially: the marginal ones.

Price
-----
With ``b_m`` the lowest limit among bids that bought, ``a_m`` the highest limit among asks that
sold, ``b_r`` the highest limit among bids left with demand (unfilled or partly filled) and ``a_r``
the lowest limit among taking-part asks left with supply, every price in

    [lo, hi] = [max(a_m, b_r), min(b_m, a_r)]      (a term that does not exist is left out)

clears the book: every filled order accepts it and no order left over would trade at it. The
price is the midpoint rounded down, ``(lo + hi) // 2``, and with a cap ``c`` it is
``min((lo + hi) // 2, c)``. With no trade there is no price (None).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Order:
    """One bid or ask as the auction sees it: a limit price per unit and a quantity, both integers."""

    id: bytes
    price: int
    quantity: int
    height: int


@dataclass(frozen=True, slots=True)
class Clearing:
    """The outcome: the uniform price (None without trade), the volume and the fills.

    ``fills`` maps each filled order's id to its units (> 0): the bids in their ranking, then the
    asks in theirs. An order that is not in it filled nothing.
    """

    price: int | None
    volume: int
    fills: dict[bytes, int]


def bid_rank(order: Order) -> tuple[int, int, bytes]:
    """Sort key of bids: price priority (higher first), then earlier height, then lower id."""
    return (-order.price, order.height, order.id)


def ask_rank(order: Order) -> tuple[int, int, bytes]:
    """Sort key of asks: price priority (lower first), then earlier height, then lower id."""
    return (order.price, order.height, order.id)


def eligible_asks(asks: Sequence[Order], cap: int | None) -> list[Order]:
    """The asks that take part: all of them, or those with a limit at most ``cap``."""
    return list(asks) if cap is None else [ask for ask in asks if ask.price <= cap]


def clear(bids: Sequence[Order], asks: Sequence[Order], cap: int | None = None) -> Clearing:
    """Clear one book (module docstring: allocation and price). Order ids must be distinct."""
    ranked_bids = sorted(bids, key=bid_rank)
    ranked_asks = sorted(eligible_asks(asks, cap), key=ask_rank)
    bid_fills = [0] * len(ranked_bids)
    ask_fills = [0] * len(ranked_asks)
    i = j = 0
    volume = 0
    # Walk both rankings; i and j are the first bid and ask with quantity left.
    while i < len(ranked_bids) and j < len(ranked_asks):
        bid, ask = ranked_bids[i], ranked_asks[j]
        if bid.price < ask.price:
            break
        units = min(bid.quantity - bid_fills[i], ask.quantity - ask_fills[j])
        bid_fills[i] += units
        ask_fills[j] += units
        volume += units
        if bid_fills[i] == bid.quantity:
            i += 1
        if ask_fills[j] == ask.quantity:
            j += 1
    if volume == 0:
        return Clearing(None, 0, {})

    last_bid = i if i < len(ranked_bids) and bid_fills[i] > 0 else i - 1
    last_ask = j if j < len(ranked_asks) and ask_fills[j] > 0 else j - 1
    lo = ranked_asks[last_ask].price
    hi = ranked_bids[last_bid].price
    if i < len(ranked_bids):
        lo = max(lo, ranked_bids[i].price)
    if j < len(ranked_asks):
        hi = min(hi, ranked_asks[j].price)
    price = _rule(lo, hi, cap)

    fills: dict[bytes, int] = {}
    for order, fill in zip(ranked_bids[: last_bid + 1], bid_fills, strict=False):
        fills[order.id] = fill
    for order, fill in zip(ranked_asks[: last_ask + 1], ask_fills, strict=False):
        fills[order.id] = fill
    return Clearing(price, volume, fills)


def uniform_price(
    bids: Sequence[Order], asks: Sequence[Order], fills: Mapping[bytes, int], cap: int | None = None
) -> int | None:
    """The documented price rule applied to any allocation ``fills`` (id -> units) of the book.

    The reference for :func:`clear`'s price, written straight from the definition of ``lo`` and
    ``hi`` in the module docstring. None when nothing is filled.
    """
    bought = [bid.price for bid in bids if fills.get(bid.id, 0) > 0]
    taking_part = eligible_asks(asks, cap)
    sold = [ask.price for ask in taking_part if fills.get(ask.id, 0) > 0]
    if not bought or not sold:
        return None
    bids_left = [bid.price for bid in bids if fills.get(bid.id, 0) < bid.quantity]
    asks_left = [ask.price for ask in taking_part if fills.get(ask.id, 0) < ask.quantity]
    lo = max([max(sold), *([max(bids_left)] if bids_left else [])])
    hi = min([min(bought), *([min(asks_left)] if asks_left else [])])
    return _rule(lo, hi, cap)


def _rule(lo: int, hi: int, cap: int | None) -> int:
    assert lo <= hi, (lo, hi)
    midpoint = (lo + hi) // 2
    return midpoint if cap is None else min(midpoint, cap)
