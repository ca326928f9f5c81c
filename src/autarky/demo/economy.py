"""The demo site's economy: what the chain needs so the fleet can trade energy through the auction,
settle on its meters and buy weather data (``autarky up``).

On a demo chain a delivery interval lasts :data:`DEMO_INTERVAL_MS` (20 s) and a "day" of 96 intervals
32 minutes, so a visitor sees books clear and settle within a minute (:mod:`autarky.demo.site` maps
each interval to 15 minutes of a generated world):

* the **operator** reports the grid price to the oracle feed ``grid-price/site``, which caps the
  auction of zone ``site``; the **weather-sensor** reports the temperature to ``weather/site``;
* before each interval's gate the **solar-inverter** asks its forecast, the households bid their
  forecast load, the **home-battery** bids or asks by its plan, the **ev-charger** bids its
  demand; orders are escrowed, and the machines' guardrails apply to the escrow like any payment;
* at each interval's end every trading machine reads its own meter (registered by the operator,
  who owns them); the solar output differs from its forecast, so settlement pays for what was
  delivered and the seller's collateral pays a penalty for the rest;
* the weather-sensor offers its readings on the data market; the **farm-controller** buys a period
  of them (a grant on the ledger), receives the data key in a sealed, signed message, acknowledges
  it (which releases the payment).

:class:`SiteEconomy` sets this up (feeds, meters, the offer) and holds what the agents share about
the site (meter registers, the offer); the agents themselves are in :mod:`autarky.demo.agents`.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from autarky.crypto.keys import SigningKey
from autarky.messaging.keydelivery import key_hash, new_data_key, seal_key
from autarky.modules.data import messages as data
from autarky.modules.metering import messages as metering
from autarky.modules.oracle import messages as oracle
from autarky.web.client import AutarkyClient, ClientError

DEMO_INTERVAL_MS = 20_000
ZONE = "site"
PRICE_FEED = "grid-price/site"
WEATHER_FEED = "weather/site"
PENALTY_PER_UNIT = 1
SELLER = "solar-inverter"
BATTERY = "home-battery"
BUYERS = ("household-a", "household-b", "ev-charger")
TRADERS = (SELLER, *BUYERS, BATTERY)
EXPORTERS = (SELLER, BATTERY)


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
            direction = "export" if name in EXPORTERS else "import"
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
