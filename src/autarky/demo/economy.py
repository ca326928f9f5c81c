"""The demo site's economy: the fleet trades energy through the auction, settles on its meters and
buys weather data, as real transactions (``autarky up``).

On a demo chain a delivery interval lasts :data:`DEMO_INTERVAL_MS` (20 s) and a "day" of 96 intervals
32 minutes, so a visitor sees books clear and settle within a minute:

* the **operator** reports the grid price to the oracle feed ``grid-price/site``, which caps the
  auction of zone ``site``; the **weather-sensor** reports the temperature to ``weather/site``;
* before each interval's gate the **solar-inverter** asks its forecast (a clear-sky curve over the
  demo day), **household-a**, **household-b** and the **ev-charger** bid their demand; bids are
  escrowed, and the machines' guardrails apply to the escrow like any payment;
* at each interval's end every trading machine reads its own meter (registered by the operator,
  who owns them); the solar output differs from its forecast (clouds), so settlement pays for what
  was delivered and the seller's collateral pays a penalty for the rest;
* the weather-sensor offers its readings on the data market; the **farm-controller** buys a period
  of them (a grant on the ledger), receives the data key in a sealed, signed message, acknowledges
  it (which releases the payment) and reads the temperature from the oracle.

Everything here only plans :class:`~autarky.demo.fleet.Action` s; the fleet submits them, one in
flight per machine, and counts the refusals with their codes.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from autarky.crypto.keys import SigningKey
from autarky.messaging.keydelivery import key_hash, new_data_key, seal_key
from autarky.modules.data import messages as data
from autarky.modules.market import messages as market
from autarky.modules.metering import messages as metering
from autarky.modules.oracle import messages as oracle
from autarky.web.client import AutarkyClient, ClientError

DEMO_INTERVAL_MS = 20_000
ZONE = "site"
PRICE_FEED = "grid-price/site"
WEATHER_FEED = "weather/site"
PENALTY_PER_UNIT = 1
SELLER = "solar-inverter"
BUYERS = ("household-a", "household-b", "ev-charger")
TRADERS = (SELLER, *BUYERS)


def economy_genesis() -> dict[str, Any]:
    """The module sections a demo chain's genesis adds: 20-second intervals, one capped zone."""
    return {
        "metering": {"params": {"interval_ms": DEMO_INTERVAL_MS}},
        "market": {
            "zones": [
                {
                    "name": ZONE,
                    "asset": "aut",
                    "unit": "wh",
                    "price_cap_feed": PRICE_FEED,
                    "penalty_per_unit": PENALTY_PER_UNIT,
                }
            ],
            "settlement_delay_ms": 3 * DEMO_INTERVAL_MS,
        },
    }


@dataclass(frozen=True, slots=True)
class Planned:
    machine: str
    messages: tuple[dict[str, Any], ...]
    what: str


class SiteEconomy:
    """Plans the site's market, metering, oracle and data actions from the ledger and the clock."""

    def __init__(
        self,
        client: AutarkyClient,
        keys: Mapping[str, SigningKey],
        operator: str,
        rng: random.Random,
        log: Callable[[str], None] = lambda _: None,
        clock_ms: Callable[[], int] = lambda: time.time_ns() // 1_000_000,
    ) -> None:
        self.client = client
        self.keys = dict(keys)
        self.operator = operator
        self.random = rng
        self.log = log
        self.clock_ms = clock_ms
        self.enabled = False
        self.interval_ms = DEMO_INTERVAL_MS
        self.registers: dict[str, int] = {}
        self.offered: dict[tuple[str, int], int] = {}
        self.ordered_for = -1
        self.read_through = -1
        self.day_origin = 0
        self.reported_for = -1
        self.offer_id: bytes | None = None
        self.bought = False
        self.data_done = False
        """The weather purchase is acknowledged (or was made in an earlier run): stop asking."""
        self.needs_baseline: list[str] = []
        self.trades = 0

    def did(self, name: str) -> str:
        return self.keys[name].did

    # -- set-up -------------------------------------------------------------------------------------

    async def bootstrap(self) -> list[Planned]:
        """What the chain still needs for the economy (feeds, meters, the data offer); [] if done.

        Leaves the economy off on a chain without the demo's market zone (a workspace made by an
        older version: ``autarky up --fresh`` starts a new one)."""
        try:
            zones = await self.client.market_zones()
            params = await self.client.metering_params()
        except ClientError:
            return []
        if ZONE not in [zone["name"] for zone in zones.get("zones", [])]:
            self.log(f"no market zone {ZONE!r} on this chain: energy trading is off (autarky up --fresh)")
            return []
        self.interval_ms = int(params["interval_ms"])
        self.enabled = True
        # The demo day starts at 06:00 now; readings start with the interval after the meters'
        # registration (a reading may not predate it).
        current = self.clock_ms() // self.interval_ms
        self.day_origin = current - 24
        self.read_through = current
        planned: list[Planned] = []
        feeds = {feed["feed"] for feed in (await self.client.oracle_feeds()).get("feeds", [])}
        if PRICE_FEED not in feeds:
            message = oracle.create_feed(
                PRICE_FEED,
                [self.did(self.operator)],
                1,
                4 * self.interval_ms,
                description="grid price per Wh",
            )
            planned.append(Planned(self.operator, (message,), "creates the grid-price feed"))
        if WEATHER_FEED not in feeds:
            message = oracle.create_feed(
                WEATHER_FEED, [self.did("weather-sensor")], 1, 4 * self.interval_ms, description="air °C"
            )
            planned.append(Planned(self.operator, (message,), "creates the weather feed"))
        registrations = []
        for name in TRADERS:
            meters = await self.client.metering_meters(self.did(name))
            if meters:
                last = meters[0].get("last_reading") or {}
                self.registers[name] = int(last.get("value", 0))
                continue
            direction = "export" if name == SELLER else "import"
            registrations.append(metering.register(self.did(name), self.did(name), direction, "wh"))
            self.registers[name] = 0
        if registrations:
            planned.append(Planned(self.operator, tuple(registrations), "registers the site's meters"))
            self.needs_baseline = [name for name in TRADERS if self.registers[name] == 0]
        offers = (await self.client.data_offers(seller=self.did("weather-sensor"))).get("offers", [])
        live = [offer for offer in offers if offer.get("withdrawn") is None]
        if live:
            self.offer_id = bytes.fromhex(live[0]["id"])
        else:
            message = data.offer(
                kind="stream",
                name="site weather",
                description="temperature and rain every interval",
                price=3,
                asset="aut",
                per="period",
                period_ms=96 * self.interval_ms,
                licence="CC-BY-4.0",
            )
            planned.append(Planned("weather-sensor", (message,), "offers its weather stream"))
        return planned

    def baselines(self) -> list[Planned]:
        """Each new meter's first reading, its baseline (after the registration has committed)."""
        now = self.clock_ms()
        planned = [
            Planned(name, (metering.read([(0, now)]),), "reads its new meter (baseline)")
            for name in self.needs_baseline
        ]
        self.needs_baseline = []
        return planned

    def offer_placed(self, tx_hash: str) -> None:
        from autarky.modules.data import keeper as data_keeper

        self.offer_id = data_keeper.new_offer_id(bytes.fromhex(tx_hash), 0)

    # -- the demo day ------------------------------------------------------------------------------------

    def _hour(self, interval: int) -> float:
        return ((interval - self.day_origin) % 96) / 4

    def forecast(self, interval: int) -> int:
        hour = self._hour(interval)
        return 0 if not 5 < hour < 21 else int(60 * math.sin(math.pi * (hour - 5) / 16))

    def demand(self, name: str, interval: int) -> int:
        # Within the machines' per-transaction caps (household 40, charger 80) at a limit of 4.
        base = 8 if name == "ev-charger" else 3
        evening = 2 if 17 <= self._hour(interval) < 22 else 1
        return base * evening + self.random.randint(0, 3)

    def grid_price(self, interval: int) -> int:
        hour = self._hour(interval)
        return 4 if 17 <= hour < 21 else 3 if 7 <= hour < 17 else 2

    async def due(self, busy: set[str]) -> list[Planned]:
        """The actions due now: reports and orders for the next interval, meter readings of the
        last, and the farm's data purchase and key delivery."""
        if not self.enabled:
            return []
        now = self.clock_ms()
        current = now // self.interval_ms
        planned: list[Planned] = []
        target = current + 1
        if self.reported_for < target and self.operator not in busy and "weather-sensor" not in busy:
            planned.extend(await self._reports(target))
        # One action per machine at a time: the last interval's readings first, then the orders.
        if self.read_through < current - 1 and not any(name in busy for name in TRADERS):
            planned.extend(self._readings(current - 1))
        elif self.ordered_for < target <= self.reported_for:
            planned.extend(self._orders(target, busy))
        planned.extend(await self._data_purchase(busy))
        return planned

    async def _reports(self, target: int) -> list[Planned]:
        price = self.grid_price(target)
        temperature = 12 + int(8 * math.sin(math.pi * (self._hour(target) - 8) / 12))
        planned = []
        for feed, machine, value, what in (
            (PRICE_FEED, self.operator, price, f"reports a grid price of {price}"),
            (WEATHER_FEED, "weather-sensor", temperature, f"reports {temperature} °C"),
        ):
            try:
                round_number = int((await self.client.oracle_feed(feed))["round"])
            except (ClientError, KeyError, TypeError, ValueError):
                continue
            planned.append(Planned(machine, (oracle.report(feed, round_number, value),), what))
        self.reported_for = target
        return planned

    def _orders(self, target: int, busy: set[str]) -> list[Planned]:
        if any(name in busy for name in TRADERS):
            return []
        self.ordered_for = target
        planned = []
        quantity = self.forecast(target)
        if quantity:
            self.offered[SELLER, target] = quantity
            planned.append(Planned(SELLER, (market.ask(ZONE, target, quantity, 1),), f"asks {quantity} Wh"))
        for name in BUYERS:
            quantity = self.demand(name, target)
            limit = self.random.randint(3, 4)
            self.offered[name, target] = quantity
            planned.append(
                Planned(name, (market.bid(ZONE, target, quantity, limit),), f"bids {quantity} Wh at {limit}")
            )
        return planned

    def _readings(self, interval: int) -> list[Planned]:
        start = max(self.read_through + 1, interval - 95)  # a batch holds at most 256 readings
        self.read_through = interval
        planned = []
        for name in TRADERS:
            readings = []
            measured = 0
            for k in range(start, interval + 1):
                offered = self.offered.pop((name, k), 0)
                factor = self.random.uniform(0.7, 1.0) if name == SELLER else self.random.uniform(0.9, 1.1)
                this = int(offered * factor)
                measured += this
                self.registers[name] = self.registers.get(name, 0) + this
                readings.append((self.registers[name], (k + 1) * self.interval_ms))
            planned.append(Planned(name, (metering.read(readings),), f"reads its meter: {measured} Wh"))
        return planned

    async def _data_purchase(self, busy: set[str]) -> list[Planned]:
        """Buy a period of the weather stream once; when the purchase waits for its key, the sensor
        seals the key to the farm and the farm acknowledges it (releasing the payment)."""
        if self.offer_id is None or self.data_done or "farm-controller" in busy or "weather-sensor" in busy:
            return []
        farm = self.did("farm-controller")
        try:
            purchases = (await self.client.data_purchases(account=farm)).get("purchases", [])
        except ClientError:
            return []
        waiting = [p for p in purchases if p.get("status") == "open" and p.get("buyer") == farm]
        if waiting:
            purchase = waiting[0]
            self.data_done = True
            return [self.deliver_key(bytes.fromhex(purchase["id"]), bytes.fromhex(purchase["grant"]))]
        if purchases:  # bought in an earlier run of this workspace
            self.data_done = True
        elif not self.bought:
            self.bought = True
            return [
                Planned(
                    "farm-controller", (data.buy(self.offer_id, periods=1),), "buys a day of weather data"
                )
            ]
        return []

    def deliver_key(self, purchase: bytes, grant: bytes) -> Planned:
        """The weather-sensor seals a data key to the farm-controller, which opens and acknowledges it."""
        assert self.offer_id is not None
        data_key = new_data_key()
        seal_key(
            self.keys["weather-sensor"],
            seller=self.did("weather-sensor"),
            buyer=self.did("farm-controller"),
            offer=self.offer_id,
            purchase=purchase,
            grant=grant,
            data_key=data_key,
            now_ms=self.clock_ms(),
        )
        return Planned(
            "farm-controller",
            (data.ack_delivery(purchase, key_hash(data_key)),),
            "received the weather key, acknowledges it",
        )
