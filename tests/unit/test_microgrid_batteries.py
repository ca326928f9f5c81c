"""The microgrid's home batteries apart from the run: the feeder's price forecast, each battery's share
of what the market takes at it, the orders a plan turns into, and the rule's schedule."""

from __future__ import annotations

import numpy as np
import pytest

from autarky import world
from autarky.models import Plan
from autarky.scenarios import SimConfig
from autarky.scenarios.microgrid import (
    FEED_IN,
    LP_HORIZON,
    MARKET_SHARE,
    PER_HOUR,
    START_MS,
    L,
    Microgrid,
    Storage,
    feeder_prices,
    gateway_shut_out,
    local_hour,
    local_midnight_ms,
    market_caps,
    rule_plans,
    tariff,
)

DAY = START_MS // L  # the absolute interval of local midnight, 2026-06-15


def test_local_midnight_is_the_scenarios_day_and_bad_days_are_refused() -> None:
    assert local_midnight_ms("2026-06-15") == START_MS
    assert local_hour(local_midnight_ms("2026-01-15")) == 0
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        local_midnight_ms("15.01.2026")


def test_scenario_parameters_set_the_day_and_policy_and_refuse_the_unknown() -> None:
    winter = Microgrid(SimConfig(machines=20, params=(("day", "2026-01-15"), ("battery_policy", "rule"))))
    assert winter.start_ms == local_midnight_ms("2026-01-15") and winter.battery_policy == "rule"
    assert Microgrid(SimConfig(machines=20)).start_ms == START_MS
    with pytest.raises(ValueError, match="no parameter colour"):
        Microgrid(SimConfig(machines=20, params=(("colour", "red"),)))
    with pytest.raises(ValueError, match="battery_policy"):
        Microgrid(SimConfig(machines=20, params=(("battery_policy", "greedy"),)))
    assert Microgrid(SimConfig(machines=200, params=(("feeder_size", "50"),))).feeders == 4
    with pytest.raises(ValueError, match="feeder_size"):
        Microgrid(SimConfig(machines=20, params=(("feeder_size", "0"),)))


def test_feeder_prices_follow_the_net_position_and_the_cap_at_the_top_of_the_hour() -> None:
    net = np.full(LP_HORIZON, -100.0)
    net[40:60] = 500.0  # a midday surplus
    prices = feeder_prices(DAY, net)
    assert np.all(prices[40:60] == FEED_IN)
    for n in [*range(40), *range(60, LP_HORIZON)]:
        hour = local_hour((DAY + n) * L)
        expected = min(tariff(hour), tariff(hour - 1)) if n % PER_HOUR == 0 else tariff(hour)
        assert prices[n] == expected, n
    # 06:00 and 17:00 clear under the previous hour's tariff, the oracle reports a second later.
    assert (prices[24], prices[25], prices[68], prices[69]) == (3, 5, 5, 7)
    assert list(np.nonzero(gateway_shut_out(DAY, LP_HORIZON))[0]) == [24, 68]


def test_market_caps_share_the_feeders_surplus_and_deficit() -> None:
    net = np.asarray([-1000.0, 800.0, -50.0, 0.0])
    shut = np.asarray([False, False, True, False])
    shares = [0.5, 0.3, 0.2]
    caps = [market_caps(net, share, shut) for share in shares]
    buy = sum(b for b, _ in caps)
    sell = sum(s for _, s in caps)
    # Where the feeder has a surplus the batteries buy at most MARKET_SHARE of it, and sell freely.
    assert buy[1] == pytest.approx(MARKET_SHARE * 800.0) and sell[1] == np.inf
    # Where it has a deficit they sell at most MARKET_SHARE of it and buy freely from the gateway,
    assert sell[0] == pytest.approx(MARKET_SHARE * 1000.0) and buy[0] == np.inf
    # unless the cap shuts the gateway out; no net position, nothing to sell.
    assert buy[2] == 0.0 and sell[2] == pytest.approx(MARKET_SHARE * 50.0)
    assert sell[3] == 0.0


def _storage(index: int = 0) -> Storage:
    return Storage(world.battery_params(1, np.arange(3)), index, "feeder-0")


def _plan(
    storage: Storage, charge: dict[int, float], discharge: dict[int, float], prices: np.ndarray
) -> Plan:
    c, d = np.zeros(LP_HORIZON), np.zeros(LP_HORIZON)
    for n, wh in charge.items():
        c[n] = wh
    for n, wh in discharge.items():
        d[n] = wh
    return Plan(START_MS, c, d, c, d, np.full(LP_HORIZON, storage.soc), prices * 1000.0)


def test_orders_bid_over_the_feed_in_price_within_break_even_and_ask_over_cost() -> None:
    storage = _storage()
    prices = feeder_prices(DAY, np.where(np.arange(LP_HORIZON) < 4, 1.0, -1.0))  # a surplus at first
    storage.follow(_plan(storage, {0: 400.0, 1: 400.0}, {72: 300.0}, prices), storage.soc)
    bids = storage.orders(DAY)
    assert [(side, interval) for side, interval, _, _ in bids] == [("bid", DAY), ("bid", DAY + 1)]
    # A bid at the feed-in price would tie with the gateway's; never above break-even (7 x losses).
    assert all(FEED_IN < limit <= 7 for _, _, _, limit in bids)
    asks = storage.orders(DAY + 72)
    (side, interval, quantity, limit) = asks[0]
    # A unit under the forecast (7), never under what the charging cost after losses.
    assert (side, interval, limit) == ("ask", DAY + 72, 6) and quantity == 300


def test_order_quantities_leave_room_for_the_open_orders() -> None:
    storage = _storage()
    room = (storage.soc_max - storage.soc) / storage.eta_c
    prices = feeder_prices(DAY, np.ones(LP_HORIZON))
    plan = _plan(storage, {n: storage.max_wh for n in range(8)}, {72: 300.0}, prices)
    storage.follow(plan, storage.soc)
    first = storage.orders(DAY)
    for side, interval, quantity, _ in first:
        storage.placed(bytes([interval % 256]) * 32, side, quantity, interval)
    second = storage.orders(DAY + PER_HOUR)
    bought = sum(q for _, _, q, _ in first) + sum(q for _, _, q, _ in second)
    assert bought <= room + 1


def test_rule_plans_charge_in_the_sunny_hours_and_discharge_at_the_evening_peak() -> None:
    stores = [_storage(i) for i in range(3)]
    prices = {"feeder-0": feeder_prices(DAY, -np.ones(LP_HORIZON))}
    plans = rule_plans(stores, START_MS, prices)
    hours = np.asarray([local_hour((DAY + n) * L) for n in range(LP_HORIZON)])
    for storage, plan in zip(stores, plans, strict=True):
        assert np.all(plan.charge_wh[(hours < 10) | (hours >= 15)] == 0)
        assert np.all(plan.discharge_wh[(hours < 17) | (hours >= 21)] == 0)
        assert np.all(plan.charge_wh <= storage.max_wh + 1e-9) and np.all(
            plan.discharge_wh <= storage.max_wh + 1e-9
        )
        assert np.all(plan.soc_wh <= storage.soc_max + 1e-6) and np.all(plan.soc_wh >= storage.soc_min - 1e-6)
        assert plan.soc_wh[hours == 14][-1] == pytest.approx(storage.soc_max)  # full by 15:00
        assert plan.soc_wh[-1] == pytest.approx(storage.soc_min)  # empty after the peak
        assert np.array_equal(plan.prices, prices["feeder-0"] * 1000.0)
