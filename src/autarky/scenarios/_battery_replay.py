"""The rule-based battery replayed against a microgrid run's books, cleared and settled by the
market's own functions: the baseline ``battery_earnings`` compares the LP with.

Every order in a microgrid book except the batteries' is independent of what the batteries do:
households bid their load forecast at the tariff, PV inverters ask their forecast at the feed-in
price, EV chargers follow the tariff, the gateways ask at the tariff and bid at the feed-in price;
the oracle's price caps and the PV meters' readings come from the world. So the run's books without
the batteries' orders are the books any other battery policy would have met on the same seed. The
replay puts ``battery-rule/1``'s orders into them as the battery machines would have placed them:
at one second past each hour the orders for the next hour, from the charge the fills so far left,
with the feeder's price forecast of that hour (``Microgrid.forecast_log``) and the same
:class:`~autarky.scenarios.microgrid.Storage` code that places the LP's orders on chain. Each book
is cleared with :func:`autarky.modules.market.auction.clear` under the cap it was cleared with, and
settled with :func:`autarky.modules.market.settlement.settle`: PV asks deliver what their meters
read, gateways and batteries deliver what they sold. Its own orders move the prices the rule gets.

What it leaves out: a tie at the same limit price between a rule order and another order is broken
by a made-up order id and the height of the gateway's order in that book (on chain: the
transaction's hash and its block). ``tests/simulation/test_scenario_microgrid.py`` compares the
replay with a run whose batteries follow the rule on chain.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from autarky.crypto.hashing import sha256
from autarky.ledger.state import StateReader
from autarky.modules.market import keeper
from autarky.modules.market.auction import Order, ask_rank, bid_rank, clear
from autarky.modules.market.settlement import settle
from autarky.modules.metering import keeper as metering
from autarky.scenarios.base import HOUR_MS
from autarky.scenarios.microgrid import PER_HOUR, L, Microgrid, Storage, local_hour, rule_plans, tariff


@dataclass
class Replay:
    """What the rule would have done: per battery (the scenario's order) the money settled to it
    (aut: paid for what it sold, minus what it paid for what it bought, penalties included) and its
    charge at the end; per feeder the clearing price of each interval of the day (the tariff where
    nothing traded)."""

    money: list[int]
    stores: list[Storage]
    prices: dict[str, np.ndarray]


def replay_rule(grid: Microgrid, state: StateReader) -> Replay:
    """Replay ``battery-rule/1`` for every battery of ``grid`` against the books in ``state``."""
    stores = [Storage(grid.battery_params, battery.index, battery.zone) for battery in grid.batteries]
    first = grid.start_ms // L
    hours = grid.config.hours
    zones = sorted({store.zone for store in stores})
    book = _Books(grid, state, stores)
    for h in range(-1, hours - 1):
        if h >= 0:
            book.clear(first + h * PER_HOUR)
        for store in stores:
            store.clear_open(grid.start_ms + h * HOUR_MS + 1_000)
        plan_start = grid.start_ms + (h + 1) * HOUR_MS
        for index, (store, plan) in enumerate(
            zip(stores, rule_plans(stores, plan_start, grid.forecast_log[h]), strict=True)
        ):
            store.follow(plan, store.projected_soc(plan_start))
            for side, interval, quantity, limit in store.orders(first + (h + 1) * PER_HOUR):
                order = sha256(f"battery-rule/{index}/{side}/{interval}".encode())
                store.placed(order, side, quantity, interval)
                book.place(index, order, side, interval, quantity, limit)
        if h >= 0:
            for j in range(1, PER_HOUR):
                book.clear(first + h * PER_HOUR + j)
    for k in range((hours - 1) * PER_HOUR, hours * PER_HOUR):
        book.clear(first + k)
    prices = {
        zone: np.asarray([book.prices[(zone, first + k)] for k in range(hours * PER_HOUR)]) for zone in zones
    }
    return Replay(book.money, stores, prices)


class _Books:
    """The run's books of the batteries' feeders, with the batteries' orders taken out and the
    replayed rule's put in; cleared and settled one interval at a time."""

    def __init__(self, grid: Microgrid, state: StateReader, stores: list[Storage]) -> None:
        self.state = state
        self.stores = stores
        self.zones = sorted({store.zone for store in stores})
        self.batteries = {battery.did for battery in grid.batteries}
        self.gateways = {gateway.did for gateway in grid.gateways}
        self.penalty = {zone: _penalty(state, zone) for zone in self.zones}
        self.money = [0] * len(stores)
        self.prices: dict[tuple[str, int], float] = {}
        self.placed: defaultdict[tuple[str, int], list[tuple[int, bytes, str, int, int]]] = defaultdict(list)

    def place(self, index: int, order: bytes, side: str, interval: int, quantity: int, limit: int) -> None:
        self.placed[(self.stores[index].zone, interval)].append((index, order, side, quantity, limit))

    def clear(self, interval: int) -> None:
        for zone in self.zones:
            self._clear(zone, interval)

    def _clear(self, zone: str, interval: int) -> None:
        self.prices[(zone, interval)] = float(tariff(local_hour(interval * L)))
        clearing = keeper.clearing(self.state, zone, interval)
        rule = self.placed.pop((zone, interval), [])
        others = [r for r in keeper.book(self.state, zone, interval) if r.owner not in self.batteries]
        if clearing is None or not others:
            assert not rule, f"the rule ordered in {zone}/{interval}, a book nobody else ordered in"
            return
        height = next((r.height for r in others if r.owner in self.gateways), max(r.height for r in others))
        owner = {r.id: r.owner for r in others}
        penalty = {r.id: r.penalty_per_unit for r in others}
        mine = {order: index for index, order, _, _, _ in rule}
        bids = [Order(r.id, r.limit_price, r.quantity, r.height) for r in others if r.side == "bid"]
        asks = [Order(r.id, r.limit_price, r.quantity, r.height) for r in others if r.side == "ask"]
        for _, order, side, quantity, limit in rule:
            (bids if side == "bid" else asks).append(Order(order, limit, quantity, height))
            penalty[order] = self.penalty[zone] if side == "ask" else 0
        result = clear(bids, asks, clearing.cap)
        if result.price is None:
            return
        self.prices[(zone, interval)] = float(result.price)
        for _, order, side, _, _ in rule:
            if result.fills.get(order, 0) > 0:
                self.stores[mine[order]].filled(side, result.fills[order])
        filled_bids = sorted((b for b in bids if b.id in result.fills), key=bid_rank)
        filled_asks = sorted((a for a in asks if a.id in result.fills), key=ask_rank)
        outcome = settle(
            result.price,
            [(b.id, result.fills[b.id]) for b in filled_bids],
            [
                (
                    a.id,
                    result.fills[a.id],
                    self._delivered(owner.get(a.id), interval, result.fills[a.id]),
                    penalty[a.id],
                )
                for a in filled_asks
            ],
        )
        for bid in outcome.bids:
            if bid.id in mine:
                self.money[mine[bid.id]] += bid.penalty_received - bid.paid
        for ask in outcome.asks:
            if ask.id in mine:
                self.money[mine[ask.id]] += ask.received - ask.penalty

    def _delivered(self, owner: str | None, interval: int, fill: int) -> int:
        """A PV inverter delivers what its meter read (one ask per interval); a gateway, and a
        battery (``owner`` None: the rule's), what it sold: their meters report their fills."""
        if owner is None or owner in self.gateways:
            return fill
        return min(fill, metering.usage(self.state, owner, "export", interval))


def _penalty(state: StateReader, zone: str) -> int:
    record = keeper.zone(state, zone)
    assert record is not None, zone
    return record.penalty_per_unit
