"""P5 benchmark: the energy auction clears 10,000 orders in < 100 ms, identical to an LP reference.

``run_auction_bench(orders, seed, runs)`` draws a random book (``random.Random(seed)``: sides,
limit prices with many ties, quantities, submission heights, 32-byte ids), times the ledger's pure
:func:`autarky.modules.market.auction.clear` (``clear_ms``: the median of ``runs`` runs) and solves
the same book as a linear program with scipy's HiGHS (:func:`lp_reference`, ``lp_ms``). The report
says whether both give identical fills and price (``matches_reference``).

The reference LP
----------------
Variables ``x_b`` (units bought by bid b) and ``y_a`` (units sold by ask a), ``0 <= x_b <= q_b``,
``0 <= y_a <= q_a``, one constraint ``sum x = sum y``. Maximise welfare ``sum p_b x_b - sum p_a y_a``
plus exact integer perturbations that encode the auction's documented tie-breaking: with ``n``
orders, ``K = 2n + 1`` and ``r`` an order's position in its side's ranking (price priority, then
height, then id; 0 first), the objective is

    maximise  sum_b (K p_b + (n - r_b)) x_b  -  sum_a (K p_a - (n - r_a)) y_a

Scaling by ``K`` keeps every welfare comparison (integer prices differ by at least 1, worth ``K``
per unit, more than the perturbations' ``2n`` at most); the perturbations make every bid's
coefficient distinct, every ask's distinct, and a bid and an ask at the same price worth trading
(``+2`` or more), so the optimum is unique: the welfare-maximal allocation of largest volume that
fills higher-ranked orders first, which is the auction's. The coefficients are integers below
2**53, exact in floating point. The dual simplex returns a vertex, whose values are integers
(the constraint matrix is totally unimodular and the bounds integral); they are rounded to int.
The price then comes from the LP's fills by the documented rule, :func:`uniform_price`.
"""

from __future__ import annotations

import platform
import random
import statistics
import time
from collections.abc import Sequence
from typing import Any

from autarky.modules.market.auction import Order, clear, uniform_price

CLEAR_MS_TARGET = 100.0
PRICE_LOW = 50
PRICE_HIGH = 150
"""Limit prices are drawn from this range: many orders share a price, so tie-breaking matters."""
QUANTITY_MAX = 1_000
HEIGHTS = 50


def random_book(orders: int, seed: int) -> tuple[list[Order], list[Order]]:
    """``orders`` random orders, about half bids and half asks (the same for the same seed)."""
    rng = random.Random(seed)
    bids: list[Order] = []
    asks: list[Order] = []
    for _ in range(orders):
        order = Order(
            id=rng.randbytes(32),
            price=rng.randint(PRICE_LOW, PRICE_HIGH),
            quantity=rng.randint(1, QUANTITY_MAX),
            height=rng.randint(1, HEIGHTS),
        )
        (bids if rng.random() < 0.5 else asks).append(order)
    return bids, asks


def lp_reference(
    bids: Sequence[Order], asks: Sequence[Order], cap: int | None = None
) -> tuple[int | None, dict[bytes, int]]:
    """(price, fills) of the welfare-maximising LP with the tie-breaking perturbations (module doc).

    ``fills`` holds every order with a positive fill. Raises RuntimeError when HiGHS fails.
    """
    import numpy as np
    from scipy.optimize import linprog

    # The ranking restated here from the README, not imported, so the reference is independent of
    # the code it checks: price priority, then earlier height, then lower id.
    ranked_bids = sorted(bids, key=lambda order: (-order.price, order.height, order.id))
    taking_part = [order for order in asks if cap is None or order.price <= cap]
    ranked_asks = sorted(taking_part, key=lambda order: (order.price, order.height, order.id))
    if not ranked_bids or not ranked_asks:
        return None, {}
    n = len(ranked_bids) + len(ranked_asks)
    scale = 2 * n + 1
    bid_gain = [scale * order.price + (n - rank) for rank, order in enumerate(ranked_bids)]
    ask_cost = [scale * order.price - (n - rank) for rank, order in enumerate(ranked_asks)]
    assert max(abs(value) for value in (*bid_gain, *ask_cost)) < 2**53
    objective = np.array([-gain for gain in bid_gain] + ask_cost, dtype=np.float64)
    balance = np.array([[1.0] * len(ranked_bids) + [-1.0] * len(ranked_asks)])
    bounds = [(0, order.quantity) for order in (*ranked_bids, *ranked_asks)]
    result = linprog(objective, A_eq=balance, b_eq=np.zeros(1), bounds=bounds, method="highs-ds")
    if result.status != 0:
        raise RuntimeError(f"HiGHS did not solve the reference LP: {result.message}")
    fills: dict[bytes, int] = {}
    for order, value in zip((*ranked_bids, *ranked_asks), result.x, strict=True):
        units = round(float(value))
        assert abs(float(value) - units) < 1e-6, "a vertex of this LP is integral"
        if units > 0:
            fills[order.id] = units
    return uniform_price(bids, asks, fills, cap), fills


def _time_clear(bids: list[Order], asks: list[Order], runs: int) -> tuple[list[float], Any]:
    timings: list[float] = []
    result = None
    for _ in range(runs):
        started = time.perf_counter()
        result = clear(bids, asks)
        timings.append((time.perf_counter() - started) * 1000)
    return timings, result


def run_auction_bench(orders: int, seed: int = 1, runs: int = 5) -> dict[str, Any]:
    """The P5 report: one JSON-able dict (see the module docstring)."""
    assert orders >= 1 and runs >= 1
    bids, asks = random_book(orders, seed)
    timings, result = _time_clear(bids, asks, runs)

    import scipy  # imported before timing the LP: the import is not the solver's time

    started = time.perf_counter()
    lp_price, lp_fills = lp_reference(bids, asks)
    lp_ms = (time.perf_counter() - started) * 1000

    clear_ms = statistics.median(timings)
    return {
        "orders": orders,
        "bids": len(bids),
        "asks": len(asks),
        "seed": seed,
        "runs": runs,
        "clear_ms": round(clear_ms, 3),
        "clear_ms_runs": [round(value, 3) for value in timings],
        "clear_ms_target": CLEAR_MS_TARGET,
        "meets_target": clear_ms < CLEAR_MS_TARGET,
        "lp_ms": round(lp_ms, 3),
        "matches_reference": result.price == lp_price and result.fills == lp_fills,
        "price": result.price,
        "volume": result.volume,
        "filled_orders": len(result.fills),
        "reference_price": lp_price,
        "reference_volume": sum(lp_fills.get(order.id, 0) for order in bids),
        "solver": f"scipy {scipy.__version__} linprog HiGHS dual simplex",
        "python": platform.python_version(),
    }
