"""The market's pure functions: ``auction.clear`` and its price rule, and ``settlement.settle``.

Small books worked by hand: each test names the rule of the README it pins (ranking, volume, the
midpoint price rule on integers, the cap, largest-remainder shares, the north-west-corner transfers).
Random books against the LP reference and the invariants of these functions are property tests
(``tests/property/test_market_properties.py``).
"""

from __future__ import annotations

import pytest

from autarky.modules.market.auction import Order, clear, uniform_price
from autarky.modules.market.settlement import Transfer, largest_remainder, settle, transport


def order(name: str, price: int, quantity: int, height: int = 1) -> Order:
    return Order(name.encode().ljust(32, b"\0"), price, quantity, height)


def fills_by_name(fills: dict[bytes, int]) -> dict[str, int]:
    return {key.rstrip(b"\0").decode(): units for key, units in fills.items()}


def check_rule(
    bids: list[Order], asks: list[Order], cap: int | None = None
) -> tuple[int | None, dict[str, int]]:
    """Clear, check the price against the stated rule, and return (price, fills by name)."""
    result = clear(bids, asks, cap)
    assert result.price == uniform_price(bids, asks, result.fills, cap)
    assert result.volume == sum(result.fills.get(bid.id, 0) for bid in bids)
    return result.price, fills_by_name(result.fills)


# -- clearing -----------------------------------------------------------------------------------------


def test_an_empty_or_one_sided_book_does_not_trade() -> None:
    assert clear([], []).price is None
    assert clear([order("b", 10, 5)], []) == clear([], [order("a", 1, 5)]) == clear([], [])
    assert clear([order("b", 10, 5)], []).fills == {}


def test_books_that_do_not_cross_do_not_trade() -> None:
    result = clear([order("b", 9, 5)], [order("a", 10, 5)])
    assert (result.price, result.volume, result.fills) == (None, 0, {})


def test_exact_match_clears_at_the_midpoint_rounded_down() -> None:
    assert check_rule([order("b", 30, 80)], [order("a", 10, 80)]) == (20, {"b": 80, "a": 80})
    assert check_rule([order("b", 30, 80)], [order("a", 11, 80)]) == (20, {"b": 80, "a": 80})  # 41 // 2


def test_leftover_demand_lifts_the_price_to_the_marginal_bid() -> None:
    # 20 units of demand at 30 are left: any price below 30 would not clear, so lo = hi = 30.
    assert check_rule([order("b", 30, 100)], [order("a", 10, 80)]) == (30, {"b": 80, "a": 80})


def test_leftover_supply_lowers_the_price_to_the_marginal_ask() -> None:
    assert check_rule([order("b", 30, 60)], [order("a", 10, 80)]) == (10, {"b": 60, "a": 60})


def test_the_interval_is_bounded_by_the_next_orders_left_over() -> None:
    bids = [order("b1", 100, 10), order("b2", 40, 10)]
    asks = [order("a1", 20, 10), order("a2", 70, 10)]
    # b1 x a1 trade; b2 (40) and a2 (70) do not cross: price in [max(20, 40), min(100, 70)] = [40, 70].
    assert check_rule(bids, asks) == (55, {"b1": 10, "a1": 10})


def test_equal_limits_trade_so_the_volume_is_largest() -> None:
    assert check_rule([order("b", 25, 5)], [order("a", 25, 5)]) == (25, {"b": 5, "a": 5})
    bids = [order("b1", 30, 5), order("b2", 20, 5)]
    asks = [order("a1", 10, 5), order("a2", 20, 5)]
    assert check_rule(bids, asks) == (20, {"b1": 5, "b2": 5, "a1": 5, "a2": 5})


def test_price_priority_then_height_then_id_decide_the_marginal_fills() -> None:
    asks = [order("a", 10, 12)]
    bids = [
        order("late-high", 40, 5, height=9),
        order("early", 30, 5, height=2),
        order("late", 30, 5, height=3),
        order("same-height-z", 30, 5, height=2),
    ]
    # 12 units: the highest price first (5); at 30 the earlier height first, and at the same height
    # 2 the lower id ("early" < "same-height-z"): "early" 5, then the last 2 to "same-height-z",
    # which is ahead of "late" (height 3).
    price, fills = check_rule(bids, asks)
    assert fills == {"late-high": 5, "early": 5, "same-height-z": 2, "a": 12}
    assert price == 30  # demand left at 30


def test_ask_ties_rank_by_height_then_id() -> None:
    bids = [order("b", 50, 7)]
    asks = [
        order("a-late", 20, 5, height=4),
        order("a-zed", 20, 5, height=1),
        order("a-abc", 20, 5, height=1),
    ]
    assert check_rule(bids, asks)[1] == {"b": 7, "a-abc": 5, "a-zed": 2}


def test_the_outcome_does_not_depend_on_the_order_of_the_input() -> None:
    bids = [order(f"b{i}", 20 + i % 4, 3 + i, height=i % 3) for i in range(12)]
    asks = [order(f"a{i}", 18 + i % 5, 4 + i, height=i % 2) for i in range(12)]
    reference = clear(bids, asks)
    assert clear(list(reversed(bids)), list(reversed(asks))) == reference
    assert clear(bids[::2] + bids[1::2], asks[1::2] + asks[::2]) == reference


def test_a_cap_excludes_asks_above_it_and_bounds_the_price() -> None:
    bids = [order("b", 100, 10)]
    asks = [order("cheap", 40, 4), order("dear", 90, 10)]
    assert check_rule(bids, asks) == (90, {"b": 10, "cheap": 4, "dear": 6})
    # With a cap of 60 only "cheap" takes part; the price (lo = hi = 100 from the leftover demand)
    # is cut to the cap.
    assert check_rule(bids, asks, cap=60) == (60, {"b": 4, "cheap": 4})
    assert check_rule(bids, asks, cap=39) == (None, {})
    assert check_rule(bids, asks, cap=-5) == (None, {})


def test_a_cap_above_the_midpoint_changes_nothing() -> None:
    bids, asks = [order("b", 30, 8)], [order("a", 10, 8)]
    assert clear(bids, asks, cap=25) == clear(bids, asks)


def test_asks_at_price_zero_can_trade() -> None:
    assert check_rule([order("b", 1, 3)], [order("a", 0, 3)]) == (0, {"b": 3, "a": 3})


def test_uniform_price_of_an_empty_allocation_is_none() -> None:
    assert uniform_price([order("b", 5, 1)], [order("a", 1, 1)], {}) is None


# -- settlement ---------------------------------------------------------------------------------------


def test_largest_remainder_sums_exactly_and_breaks_ties_to_the_earlier_part() -> None:
    assert largest_remainder(10, [1, 1, 1]) == [4, 3, 3]
    assert largest_remainder(2, [1, 1, 1]) == [1, 1, 0]
    assert largest_remainder(7, [5, 3, 2]) == [4, 2, 1]  # 3.5, 2.1, 1.4 -> floors 3,2,1, +1 to the .5
    assert largest_remainder(0, [0, 0]) == [0, 0]
    assert largest_remainder(5, [0, 2]) == [0, 5]
    with pytest.raises(AssertionError):
        largest_remainder(1, [0, 0])


def test_transport_walks_both_lists() -> None:
    sources = [(b"s1", 5), (b"s2", 0), (b"s3", 7)]
    targets = [(b"t1", 3), (b"t2", 0), (b"t3", 9)]
    assert transport(sources, targets) == (
        Transfer(b"s1", b"t1", 3),
        Transfer(b"s1", b"t3", 2),
        Transfer(b"s3", b"t3", 7),
    )
    assert transport([(b"s", 0)], [(b"t", 0)]) == ()


def test_settle_full_delivery_pays_every_seller_and_returns_all_collateral() -> None:
    outcome = settle(20, [(b"b1", 50), (b"b2", 30)], [(b"a1", 60, 60, 3), (b"a2", 20, 20, 0)])
    assert [(bid.delivered, bid.paid, bid.refund, bid.penalty_received) for bid in outcome.bids] == [
        (50, 1000, 0, 0),
        (30, 600, 0, 0),
    ]
    assert [(ask.received, ask.penalty, ask.collateral_refund) for ask in outcome.asks] == [
        (1200, 0, 180),
        (400, 0, 0),
    ]
    assert outcome.payments == (
        Transfer(b"b1", b"a1", 1000),
        Transfer(b"b2", b"a1", 200),
        Transfer(b"b2", b"a2", 400),
    )
    assert outcome.penalties == () and outcome.delivered == 80 and outcome.penalty == 0


def test_settle_short_delivery_shares_pro_rata_and_pays_penalties_to_the_buyers_short() -> None:
    # Volume 9 (bids 4, 3, 2), sellers delivered 5 of 9: shares 5*4/9=2.2, 5*3/9=1.7, 5*2/9=1.1 ->
    # floors 2,1,1 (4), the leftover unit to the largest remainder (.7: b2) -> 2,2,1.
    outcome = settle(10, [(b"b1", 4), (b"b2", 3), (b"b3", 2)], [(b"a1", 6, 5, 2), (b"a2", 3, 0, 1)])
    assert [bid.delivered for bid in outcome.bids] == [2, 2, 1]
    assert [bid.paid for bid in outcome.bids] == [20, 20, 10]
    assert [bid.refund for bid in outcome.bids] == [20, 10, 10]
    # Penalties: a1 1 unit short * 2 + a2 3 short * 1 = 5, shared by units short 2, 1, 1:
    # 5*2/4=2.5, 1.25, 1.25 -> 2,1,1 (4), the leftover to the largest remainder (.5: b1) -> 3,1,1.
    assert [bid.penalty_received for bid in outcome.bids] == [3, 1, 1]
    assert [(ask.delivered, ask.received, ask.penalty, ask.collateral_refund) for ask in outcome.asks] == [
        (5, 50, 2, 10),
        (0, 0, 3, 0),
    ]
    assert sum(t.amount for t in outcome.payments) == 50
    assert sum(t.amount for t in outcome.penalties) == 5


def test_settle_nothing_delivered_refunds_the_buyers_and_forfeits_all_collateral() -> None:
    outcome = settle(7, [(b"b", 10)], [(b"a", 10, 0, 4)])
    assert (outcome.bids[0].paid, outcome.bids[0].refund, outcome.bids[0].penalty_received) == (0, 70, 40)
    assert outcome.payments == () and outcome.penalties == (Transfer(b"a", b"b", 40),)
