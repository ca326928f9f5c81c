"""A neighbourhood microgrid for a day: PV, batteries, households, EV chargers, oracles, maintenance.

Machines (shares of ``--machines`` after 3 oracle reporters, one grid gateway per feeder and one
maintenance provider per 500 machines): 30 % PV inverters, 15 % home batteries, 15 % EV chargers,
the rest household energy managers. Sites (a household and the machines beside it) have one owner
who registers the meters and sets the guardrails. Feeders of up to 500 machines are market zones.
Every one of them is an :class:`autarky.agent.Machine` with handlers; the behaviour lives in skills.

Every hour ``H`` (one second past it), each machine sends **one transaction**: its meter's batch of
four 15-minute readings of the past hour and its orders for the four intervals of hour ``H+1`` (an
hour-ahead auction). PV inverters ask their :class:`~autarky.models.PvForecaster` forecast at the
feed-in price; households bid their :class:`~autarky.models.LoadForecaster` forecast at the grid
tariff; EV chargers bid full power in the cheapest hours before departure; batteries bid (charge)
and ask (discharge) what their :class:`~autarky.models.BatteryScheduler` plan says (below); the
grid gateway of each feeder asks without limit at the tariff and bids at the feed-in price, so
every book clears. The oracle reporters report the grid tariff (the auction's
price cap) and the weather each hour. A PV inverter that sees its output collapse posts a repair
job with a bounty; the maintenance provider accepts it, repairs (two hours) and completes; the
inverter attests when it produces again; the bounty is paid after the dispute window.

**Models, batched.** The forecasters are trained once per seed (or loaded from the cache, see
:mod:`autarky.scenarios.models`) and registered on chain by the grid operator in the set-up hour.
Each hour the first machine that needs a forecast runs ``forecast_batch`` for every PV inverter
(and every household) in one call; each machine's handler takes its row and records it as its
decision, with exactly the inputs the policy's ``decide`` takes for that machine. The batteries'
linear programmes (96 intervals ahead) are solved in sparse LPs of 64 batteries
(``start_plan_batch``) in a worker process while the other devices act (the batteries act
``BATTERY_DELAY_MS`` after them, and solve what no worker has started themselves): a battery
re-plans every ``REPLAN_MS`` (four hours; one battery's solve costs a few ms), as soon as its state
of charge has drifted more than the model's ``soc_tolerance_wh`` from its plan (partial fills), or
when its feeder's forecast for the hours the plan still runs has moved by more than
``FORECAST_TOLERANCE``, and follows its plan in between.

**Batteries in a small market.** A feeder's book clears at the tariff where the feeder lacks energy
(the gateway sells the rest) and at the feed-in price where it has too much (the gateway buys the
rest), until the batteries' own orders are the margin: then they set the price, against
themselves. So each hour the fleet forecasts each feeder's net position (its PV forecasts minus its
load forecasts, per interval) and its price (:func:`feeder_prices`: the feed-in price where the
feeder has a surplus, else the tariff, and at the top of an hour at most the previous hour's tariff:
the auction's cap until the oracle reports), and each battery's LP plans with that price and within
its share, by capacity, of what the market takes at it (:func:`market_caps`: ``MARKET_SHARE`` of the
surplus to buy, of the deficit to sell), so that a feeder's batteries together buy no more than its
surplus and sell no more than its deficit. Orders: a bid at most a unit over the forecast price,
never above break-even (the planned discharges' mean price times the round-trip efficiency) but
over the feed-in price (where the gateway's own bid would win the tie); an ask at least a unit under
it and never under what the planned charges cost after losses; quantities capped by what the battery
can take or deliver given its open orders (:class:`Storage`).

Parameters (``autarky sim run microgrid --param NAME=VALUE``): ``battery_policy`` ``lp`` (default,
``battery-lp/1``) or ``rule`` (``battery-rule/1``: full power 10:00-15:00 local, full power at the
evening-peak tariff, with the same order rules: :func:`rule_plans`); ``day`` ``YYYY-MM-DD`` (default
2026-06-15, a summer day); ``feeder_size`` (default 500 machines). Sites are numbered and the
batteries, EV chargers and PV inverters belong to the first ones, so the first feeders hold them:
with 10,000 machines seven feeders have a battery, a PV inverter and an EV charger beside each of
their (about 200) households, with 1,000 one feeder has 148 batteries for 200 households; ``feeder_size``
reproduces a feeder like 10,000 machines' at a small scale (500 machines, ``feeder_size=125``: 50 of
each).

**Battery earnings** (metric ``battery_earnings``): the policy the batteries followed is measured
**on chain**: the change of their bank balances from genesis to the end (every book settled, escrow
empty), plus the energy left in them (state of charge minus the starting one, times the discharge
efficiency) at the mean clearing price of their feeder's day. In an LP run the rule is measured the
same way on the same seed by **replaying** it against the run's books (every order but the
batteries' is independent of what the batteries do): its orders, placed hour by hour from the charge
its own fills left, are cleared by the market's auction and settled by its settlement rules, so its
orders move its prices and fill in part as they would on chain
(:mod:`autarky.scenarios._battery_replay`; but for how ties between orders at the same limit price
are broken, the same as a ``battery_policy=rule`` run).
"""

from __future__ import annotations

import asyncio
import datetime
import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, ClassVar

import numpy as np

from autarky import world
from autarky.agent import LedgerEvent, Machine, Skill
from autarky.crypto.hashing import sha256
from autarky.ledger.block import Receipt
from autarky.ledger.state import StateReader
from autarky.models import BatterySpec, LoadForecaster, PvForecaster, Trained
from autarky.models.battery import PendingPlans, Plan, start_plan_batch
from autarky.modules.bank import keeper as bank
from autarky.modules.jobs import messages as jobs
from autarky.modules.market import messages as market
from autarky.modules.metering import messages as metering
from autarky.modules.oracle import messages as oracle
from autarky.scenarios.base import HOUR_MS, Rule, Scenario, ScenarioContext, SimConfig, scenario
from autarky.scenarios.genesis import ASSET, Actor, GenesisBuilder, batched
from autarky.scenarios.models import models_dir, registration_skill, trained_models
from autarky.scenarios.report import Section, table
from autarky.scenarios.svg import line_chart

L = 900_000
PER_HOUR = HOUR_MS // L
HIST = 96
"""Intervals of history a forecast reads (a day)."""
OFFSET = HIST + PER_HOUR
"""World arrays start this many intervals before the start (the first forecast is an hour early)."""
PRICE_FEED = "grid-price/site"
TEMP_FEED = "weather/temp-mc/site"
CLOUD_FEED = "weather/cloud-bp/site"
FEEDER_SIZE = 500
FEED_IN = 1
TARIFF = [3] * 6 + [5] * 11 + [7] * 4 + [4] * 3
"""Grid price (aut per Wh) by local hour: night, day, evening peak, late evening."""
GATEWAY_QTY = 10_000_000
BOUNTY = 5_000
REPAIR_MS = 2 * HOUR_MS
FAULT_RATE_PER_DAY = 0.03
REPLAN_MS = 4 * HOUR_MS
BATTERY_DELAY_MS = 1_000
"""Batteries send their hourly transaction this long after the other devices (their LPs solve
in a worker process meanwhile)."""
LP_HORIZON = 96
START_MS = 1_781_478_000_000
"""2026-06-15 00:00 at the site (UTC+1): a summer day."""
MODELS = ("pv-forecaster", "load-forecaster", "battery-lp")
LP_POLICY = "battery-lp/1"
RULE_POLICY = "battery-rule/1"
BATTERY_POLICIES = {"lp": LP_POLICY, "rule": RULE_POLICY}
EARNINGS_METHOD = (
    "the batteries' bank balance change from genesis to the end (every book settled, escrow empty) "
    "plus the energy left (state of charge change x discharge efficiency) at the mean clearing price "
    "of their feeder's day"
)
RULE_POLICY_TEXT = (
    "charge at full power 10:00-15:00 local, discharge at full power at the evening-peak tariff; "
    "orders placed an hour ahead with the same limit-price rules as the LP's"
)
RULE_REPLAY_METHOD = (
    f"({RULE_POLICY_TEXT}) replayed against this run's books without the batteries' orders: placed "
    "hour by hour from the charge its own fills left, cleared by the market's auction under the same "
    "caps and settled by its settlement rules (its orders move its prices and may fill in part), "
    "valued the same way at its own clearing prices; the rule on chain: --param battery_policy=rule"
)
MARKET_SHARE = 0.9
"""The batteries of a feeder plan to buy at most this part of its forecast surplus, and to sell at
most this part of its forecast deficit (forecasts err; beyond the real surplus or deficit the
batteries' own orders set the price)."""
FORECAST_TOLERANCE = 0.3
"""An LP plan is made again when its feeder's net position forecast for the hours the plan still
has to run (until ``REPLAN_MS``) has moved by more than this part of what it was (sum of absolute
changes over sum of absolute values): a morning's PV forecast can be far off by noon."""


def tariff(hour: int) -> int:
    return TARIFF[hour % 24]


def local_midnight_ms(day: str) -> int:
    """The start of a day (``YYYY-MM-DD``) at the site (UTC+1), in ms since the epoch."""
    try:
        date = datetime.date.fromisoformat(day)
    except ValueError:
        raise ValueError(f"day must be YYYY-MM-DD, not {day!r}") from None
    return (date - datetime.date(1970, 1, 1)).days * world.DAY_MS - HOUR_MS


def local_hour(time_ms: int) -> int:
    """The site's local hour (UTC+1) of a time."""
    return (time_ms // HOUR_MS + 1) % 24


def feeder_prices(first_interval: int, net_wh: np.ndarray) -> np.ndarray:
    """A feeder's price forecast (aut per Wh) for the intervals from the absolute interval
    ``first_interval``, given its forecast net position ``net_wh`` (positive: a surplus). The grid
    gateway buys any surplus at the feed-in price and sells any deficit at the tariff, so the price
    is the feed-in price where the feeder has a surplus, else the tariff; but at most the previous
    hour's tariff in the first interval of an hour, which clears before the oracle reports the new
    one (the auction's cap)."""
    prices = np.empty(net_wh.size)
    for n in range(net_wh.size):
        hour = local_hour((first_interval + n) * L)
        price = tariff(hour)
        if (first_interval + n) % PER_HOUR == 0:
            price = min(price, tariff(hour - 1))
        prices[n] = FEED_IN if net_wh[n] > 0 else price
    return prices


def gateway_shut_out(first_interval: int, count: int) -> np.ndarray:
    """The intervals (from ``first_interval``) where the auction's cap, still the previous hour's
    tariff, is under the gateway's ask: a deficit there has no energy to buy."""
    shut = np.zeros(count, dtype=bool)
    for n in range(count):
        hour = local_hour((first_interval + n) * L)
        shut[n] = (first_interval + n) % PER_HOUR == 0 and tariff(hour - 1) < tariff(hour)
    return shut


def market_caps(net_wh: np.ndarray, share: float, shut_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(buy, sell)``: how much a battery with ``share`` of its feeder's storage may plan to buy
    and to sell per interval at the feeder's forecast price (:func:`feeder_prices`). Where the
    feeder has a surplus it buys at the feed-in price, up to its share of ``MARKET_SHARE`` of the
    surplus, and may sell any amount (the gateway buys all at that price); where it has a deficit
    it sells at the tariff up to its share of ``MARKET_SHARE`` of the deficit, and may buy any
    amount from the gateway, unless the cap shuts the gateway out. The batteries of a feeder
    together then stay within what the market takes at the price they plan with, instead of moving
    it against themselves (without these bounds ``battery-lp/1``, seeing one price for a whole sunny
    afternoon, bought in its last quarter hours, and asked several times the evening's deficit)."""
    part = MARKET_SHARE * share
    surplus = net_wh > 0
    buy = np.where(surplus, part * net_wh, np.where(shut_out, 0.0, np.inf))
    sell = np.where(surplus, np.inf, part * -net_wh)
    return buy, sell


@dataclass
class Batched:
    """A policy's output computed for the whole fleet in one batched call (``forecast_batch``,
    ``plan_batch``); ``decide`` hands back this machine's row. The record's inputs are what the
    policy's own ``decide`` takes for this machine, so the decision can be recomputed alone."""

    name: str
    model_hash: bytes | None
    output: Any

    def decide(self, inputs: Mapping[str, Any]) -> Any:
        return self.output


@scenario
class Microgrid(Scenario):
    name = "microgrid"
    summary = "PV, batteries, households and EV chargers trading energy hour-ahead, with oracles and repairs"
    tail_ms = 5 * HOUR_MS
    block_every_ms = L
    day_start_ms = START_MS
    params: ClassVar[Mapping[str, str]] = {
        "battery_policy": "lp (default): the home batteries follow battery-lp/1; rule: battery-rule/1",
        "day": "YYYY-MM-DD: the simulated day, from local midnight (UTC+1); default 2026-06-15",
        "feeder_size": "machines per feeder (market zone); default 500",
    }

    def __init__(self, config: SimConfig) -> None:
        super().__init__(config)
        self.battery_policy = self.param("battery_policy", "lp")
        if self.battery_policy not in BATTERY_POLICIES:
            raise ValueError(
                f"battery_policy must be one of {', '.join(BATTERY_POLICIES)}, not {self.battery_policy!r}"
            )
        day = self.param("day", "")
        if day:
            self.config = replace(self.config, start_ms=local_midnight_ms(day))
        config = self.config
        self.rng = np.random.default_rng(config.seed)
        n = config.machines
        feeder_size = self.param("feeder_size", str(FEEDER_SIZE))
        if not feeder_size.isdigit() or int(feeder_size) < 1:
            raise ValueError(f"feeder_size must be a whole number of machines >= 1, not {feeder_size!r}")
        feeders = max(1, -(-n // int(feeder_size)))
        fixed = 3 + feeders + max(1, n // 500)
        rest = max(4, n - fixed)
        self.counts = {
            "pv": max(1, rest * 30 // 100),
            "battery": max(1, rest * 15 // 100),
            "ev": max(1, rest * 15 // 100),
        }
        self.counts["household"] = max(1, rest - sum(self.counts.values()))
        self.feeders = feeders
        self.providers_n = max(1, n // 500)
        self.intervals = (config.hours + 2) * PER_HOUR
        self.by_did: dict[str, Any] = {}
        self.energy: defaultdict[str, np.ndarray] = defaultdict(lambda: np.zeros(self.intervals))
        self.cleared: dict[tuple[str, int], int] = {}
        """(zone, absolute interval) -> clearing price: the price history."""
        self._forecast_hour: int | None = None
        self.forecast_log: dict[int, dict[str, np.ndarray]] = {}
        """Hour -> each feeder's price forecast made then (the rule's replay places orders with it)."""
        self.solves = 0
        self.plans = 0
        self._pending_plans: (
            tuple[list[Storage], np.ndarray, np.ndarray, np.ndarray, list[np.ndarray], PendingPlans] | None
        ) = None

    # -- genesis ------------------------------------------------------------------------------------

    def build_genesis(self, g: GenesisBuilder) -> None:
        seed = self.config.seed
        self.operator = g.actor("operator", "grid-operator")
        self.reporters = [g.actor(f"reporter-{i}", "oracle-reporter", owner=self.operator) for i in range(3)]
        self.gateways = [
            Gateway(g.actor(f"gateway-{z}", "grid-gateway", owner=self.operator, balance=10**12), self, z)
            for z in range(self.feeders)
        ]
        self.providers = [
            g.actor(f"maintainer-{i}", "maintenance-provider", balance=100_000)
            for i in range(self.providers_n)
        ]
        n_house = self.counts["household"]
        self.owners = [g.actor(f"owner-{i}", "site-owner", balance=1_000_000) for i in range(n_house)]
        # The physical world, from a day before the start (the meters' history) to the tail.
        self.times = world.interval_times_ms(self.start_ms - OFFSET * L, 25 + self.config.hours + 3, L)
        sky = world.weather(seed, 0, self.times)
        self.cloud = sky.cloud_cover[0]
        self.temp = sky.temperature_c[0]
        self.devices: list[Device] = []
        self.owned: dict[str, list[Device]] = defaultdict(list)

        def add(kind: str, cls: type[Device], i: int, balance: int) -> Any:
            owner = self.owners[i % n_house]
            actor = g.actor(f"{kind}-{i}", cls.KIND, owner=owner, balance=balance)
            device = cls(actor, self, i, f"feeder-{(i % n_house) * self.feeders // n_house}")
            self.devices.append(device)
            self.owned[owner.did].append(device)
            return device

        n_pv = self.counts["pv"]
        self.pv_systems = world.pv_systems(seed, np.arange(n_pv))
        self.pv_w = world.pv_power(seed, np.arange(n_pv), self.times, self.cloud, self.temp)
        self.pv_clear_w = world.pv_power(
            seed, np.arange(n_pv), self.times, np.zeros(self.times.size), self.temp
        )
        self.load_w = world.household_load(seed, np.arange(n_house), self.times)
        self.battery_params = world.battery_params(seed, np.arange(self.counts["battery"]))
        self.households: list[Household] = [add("household", Household, i, 200_000) for i in range(n_house)]
        self.pvs: list[Pv] = [add("pv", Pv, i, 200_000) for i in range(n_pv)]
        self.batteries: list[Battery] = [
            add("battery", Battery, i, 400_000) for i in range(self.counts["battery"])
        ]
        self.zone_capacity_wh: dict[str, float] = defaultdict(float)
        for battery in self.batteries:
            self.zone_capacity_wh[battery.zone] += battery.store.spec.capacity_wh
        self.evs: list[EvCharger] = [add("ev", EvCharger, i, 400_000) for i in range(self.counts["ev"])]
        sessions = world.ev_sessions(seed, np.arange(len(self.evs)), self.start_ms - 24 * HOUR_MS, 3)
        for ev in self.evs:
            ev.sessions = [
                (int(a), int(d), float(e), float(p))
                for m, a, d, e, p in zip(
                    sessions.machine,
                    sessions.arrival_ms,
                    sessions.departure_ms,
                    sessions.energy_wh,
                    sessions.max_power_w,
                    strict=True,
                )
                if m == ev.index
            ]
        for pv in self.pvs:  # faults: a window in daylight, cleared only by a repair
            if self.rng.random() < FAULT_RATE_PER_DAY * max(1, self.config.hours) / 24:
                pv.fault_from = self.start_ms + int(self.rng.integers(8, 15)) * HOUR_MS
        self.pv_measured = self.pv_w.copy()
        self._faults_applied: set[int] = set()
        for device in [*self.gateways, *self.devices]:
            self.by_did[device.did] = device
        g.sections.update(
            {
                "metering": {"params": {"interval_ms": L}},
                "market": {
                    "zones": [
                        {
                            "name": f"feeder-{z}",
                            "asset": ASSET,
                            "unit": "wh",
                            "price_cap_feed": PRICE_FEED,
                            "penalty_per_unit": 1,
                        }
                        for z in range(self.feeders)
                    ],
                    "max_orders_per_interval": 100_000,
                    "settlement_delay_ms": 2 * HOUR_MS,
                },
                "jobs": {"params": {"attest_window_ms": HOUR_MS, "dispute_window_ms": HOUR_MS // 2}},
            }
        )

    # -- machines -----------------------------------------------------------------------------------

    def setup(self, ctx: ScenarioContext) -> None:
        self.ctx = ctx
        self.models: dict[str, Trained] = trained_models(MODELS, self.config.seed)
        ctx.model_dir = models_dir(self.config.seed)
        ctx.anchor_interval_ms = 12 * HOUR_MS
        self.pv_model = PvForecaster(self.models["pv-forecaster"].model)
        self.load_model = LoadForecaster(self.models["load-forecaster"].model)
        lp = self.models["battery-lp"].model
        self.lp_hash = lp.hash
        self.lp_spread = float(lp.meta["spread"])
        self.lp_wear = float(lp.meta["wear"])
        self.lp_tolerance = int(lp.meta["soc_tolerance_wh"])

        operator = ctx.machine(self.operator)
        operator.on_start(self._operator_setup)  # feeds and gateway meters first: others need them
        operator.include(registration_skill(self.models, self.start_ms))
        for owner in self.owners:
            ctx.machine(owner).on_start(self._owner_setup)
        hourly = Skill("microgrid/hourly")
        hourly.on_interval(HOUR_MS, offset_ms=1_000)(self._hourly)
        # Batteries act a moment after the other devices: the first device of the hour starts the
        # batteries' LPs in a worker process (forecasts), and they solve while the others act.
        battery_hourly = Skill("microgrid/battery-hourly")
        battery_hourly.on_interval(HOUR_MS, offset_ms=1_000 + BATTERY_DELAY_MS)(self._hourly)
        for reporter in self.reporters:
            ctx.machine(reporter).on_interval(HOUR_MS, offset_ms=1_000)(self._report)
        for device in [*self.gateways, *self.devices]:
            device.machine = ctx.machine(device.actor)
            device.machine.include(battery_hourly if isinstance(device, Battery) else hourly)
        repairs = Skill("microgrid/repairs")
        repairs.on_event("jobs.completed")(self._on_job_completed)
        for pv in self.pvs:
            pv.machine.include(repairs)
        for actor in self.providers:
            ctx.machine(actor).on_event("jobs.posted")(self._on_job_posted)
        ctx.ledger.subscribe("market.filled", self._on_filled)
        ctx.ledger.subscribe("market.cleared", self._on_cleared)

    async def _operator_setup(self, m: Machine) -> None:
        reporters = [r.did for r in self.reporters]
        feeds = [
            oracle.create_feed(PRICE_FEED, reporters, 2, 2 * HOUR_MS, description="tariff"),
            oracle.create_feed(TEMP_FEED, reporters, 2, 2 * HOUR_MS, decimals=3),
            oracle.create_feed(CLOUD_FEED, reporters, 2, 2 * HOUR_MS, decimals=4),
        ]
        regs = [metering.register(gw.did, gw.did, "export", "wh") for gw in self.gateways]
        for chunk in batched([*feeds, *regs]):
            await m.submit(*chunk)

    async def _owner_setup(self, m: Machine) -> None:
        messages: list[dict[str, Any]] = []
        for device in self.owned[m.did]:
            messages.append(metering.register(device.did, device.did, device.DIRECTION, "wh"))
            messages.append(
                {"type": "bank/set_guardrails", "machine": device.did, "guardrails": device.guardrails()}
            )
        for chunk in batched(messages):
            await m.submit(*chunk)

    async def _hourly(self, m: Machine) -> None:
        await self.by_did[m.did].hourly(m.now_ms())

    async def _report(self, m: Machine) -> None:
        """An oracle reporter: the tariff (the auction's price cap) and the weather, every hour."""
        t = m.now_ms()
        h = (t - self.start_ms) // HOUR_MS  # -1 in the set-up hour
        if h >= self.config.hours:
            return
        k = max(h, 0) * PER_HOUR
        price = tariff(local_hour(self.start_ms + k * L))
        temp_mc = round(float(self.temp[self.col(k)]) * 1000)
        cloud_bp = round(float(self.cloud[self.col(k)]) * 10_000)
        i = int(m.name.rsplit("-", 1)[1])
        await m.submit(
            oracle.report(PRICE_FEED, h + 2, price + (1 if i == 2 else 0)),
            oracle.report(TEMP_FEED, h + 2, temp_mc + i * 10),
            oracle.report(CLOUD_FEED, h + 2, cloud_bp),
        )

    # -- events -------------------------------------------------------------------------------------

    def _on_filled(self, event: LedgerEvent) -> None:
        device = self.by_did.get(str(event.get("owner")))
        fill = int(event.get("fill") or 0)
        if fill and device is not None:
            device.on_fill(bytes(event.get("order")), str(event.get("side")), fill, int(event.get("price")))

    def _on_cleared(self, event: LedgerEvent) -> None:
        price = event.get("price")
        if price is not None:
            self.cleared[(str(event.get("zone")), int(event.get("interval")))] = int(price)

    async def _on_job_posted(self, m: Machine, event: LedgerEvent) -> None:
        """A maintenance provider takes the jobs assigned to it (by job id), repairs, completes."""
        job = bytes(event.get("job"))
        if self.providers[int.from_bytes(job[:4], "big") % len(self.providers)].did != m.did:
            return
        await _sleep(60_000)
        receipt = await m.submit(jobs.accept(job))
        if not receipt.ok:
            return
        await _sleep(REPAIR_MS)
        pv = self.by_did.get(str(event.get("poster")))
        if isinstance(pv, Pv):
            pv.repaired_at = m.now_ms()
        await m.submit(jobs.complete(job, sha256(b"repair report " + job)))

    async def _on_job_completed(self, m: Machine, event: LedgerEvent) -> None:
        pv = self.by_did[m.did]
        assert isinstance(pv, Pv)
        if pv.job is None or pv.job != bytes(event.get("job")) or pv.attested:
            return
        await _sleep(60_000)
        pv.attested = True
        await m.submit(
            jobs.attest(pv.job, bytes(event.get("evidence"))),
            decision=m.decide(FAULT_RULE, {"machine": m.did, "job": pv.job.hex(), "output": "restored"}),
        )

    # -- the world and the fleet's batched models ---------------------------------------------------

    def col(self, k: int) -> int:
        """Column of the world arrays of interval ``k`` (counted from the start)."""
        return OFFSET + k

    def apply_faults(self, h: int) -> None:
        """What the faulty inverters really produced in hour ``h`` (5 % of their output)."""
        if h in self._faults_applied or h < 0:
            return
        self._faults_applied.add(h)
        for pv in self.pvs:
            for j in range(PER_HOUR):
                k = h * PER_HOUR + j
                if pv.faulty(self.start_ms + k * L):
                    self.pv_measured[pv.index, self.col(k)] *= 0.05

    def forecasts(self, h: int) -> None:
        """At hour ``h`` (orders for ``h + 1``): every PV and load forecast in one batched call per
        model, each feeder's price forecast, and the battery plans that are due (one LP)."""
        if self._forecast_hour == h:
            return
        self._forecast_hour = h
        self.apply_faults(h - 1)
        t = self.start_ms + h * HOUR_MS
        c = self.col(h * PER_HOUR)
        systems = self.pv_systems
        self.pv_inputs = {
            "rated_w": np.rint(systems.inverter_w),
            "tilt_deg": np.rint(systems.tilt),
            "azimuth_deg": np.rint(systems.azimuth),
            "history_w": np.rint(self.pv_measured[:, c - HIST : c]),
        }
        i = self.pv_inputs
        self.pv_forecast = self.pv_model.forecast_batch(
            t, i["rated_w"], i["tilt_deg"], i["azimuth_deg"], i["history_w"], LP_HORIZON
        )
        self.load_history = np.rint(self.load_w[:, c - HIST : c])
        self.load_forecast = self.load_model.forecast_batch(t, self.load_history, LP_HORIZON)
        self._market_forecast(h)
        self._plan_batteries(h)

    def _market_forecast(self, h: int) -> None:
        """Per feeder, for the ``LP_HORIZON`` intervals from hour ``h + 1``: its net position from
        its PV and load forecasts (``zone_net_wh``, Wh, positive: a surplus) and the price that
        goes with it (``price_forecast``, :func:`feeder_prices`). The forecasts cover hours
        ``h .. h+23``: the plan's last hour repeats hour ``h``."""
        first = self.start_ms // L + (h + 1) * PER_HOUR
        order = np.r_[PER_HOUR:LP_HORIZON, 0:PER_HOUR]
        net: dict[str, np.ndarray] = defaultdict(lambda: np.zeros(LP_HORIZON))
        for pv in self.pvs:
            net[pv.zone] += self.pv_forecast[pv.index, order] / PER_HOUR
        for house in self.households:
            net[house.zone] -= self.load_forecast[house.index, order] / PER_HOUR
        self.zone_net_wh = {f"feeder-{z}": net[f"feeder-{z}"] for z in range(self.feeders)}
        self.price_forecast = {zone: feeder_prices(first, n) for zone, n in self.zone_net_wh.items()}
        self.forecast_log[h] = self.price_forecast
        self.shut_out = gateway_shut_out(first, LP_HORIZON)

    def market_caps(self, storage: Storage) -> tuple[np.ndarray, np.ndarray]:
        """This battery's :func:`market_caps`: its share of its feeder's storage capacity."""
        share = storage.spec.capacity_wh / self.zone_capacity_wh[storage.zone]
        return market_caps(self.zone_net_wh[storage.zone], share, self.shut_out)

    def _plan_batteries(self, h: int) -> None:
        """Plan the batteries for hour ``h + 1``. The LPs of those whose plan is due start in the
        worker process: the devices before the batteries in each hour (households, PV) go on while
        they solve; a battery's ``plan`` collects them (:meth:`collect_plans`). Every input is fixed
        here, so the plans do not depend on when they are collected."""
        self.collect_plans()
        plan_start = self.start_ms + (h + 1) * HOUR_MS
        now = self.start_ms + h * HOUR_MS + 1_000
        stores = [b.store for b in self.batteries]
        for store in stores:
            store.clear_open(now)
        if self.battery_policy == "rule":
            for store, plan in zip(stores, rule_plans(stores, plan_start, self.price_forecast), strict=True):
                store.follow(plan, store.projected_soc(plan_start))
            self.plans += len(stores)
            return
        due = [
            store
            for store in stores
            if store.needs_plan(plan_start, self.lp_tolerance, self.zone_net_wh[store.zone])
        ]
        if not due:
            return
        socs = np.asarray([store.projected_soc(plan_start) for store in due])
        prices = np.stack([self.price_forecast[store.zone] * 1000.0 for store in due])  # per kWh
        # Whole Wh, and no more than the battery can move in an interval anyway: the decision
        # record's inputs (import_max_wh, export_max_wh) are exactly what the LP saw.
        caps = [self.market_caps(store) for store in due]
        buy = np.stack(
            [np.floor(np.minimum(b, store.max_wh)) for store, (b, _) in zip(due, caps, strict=True)]
        )
        sell = np.stack(
            [np.floor(np.minimum(e, store.max_wh)) for store, (_, e) in zip(due, caps, strict=True)]
        )
        pending = start_plan_batch(
            [store.spec for store in due],
            socs,
            np.zeros((len(due), LP_HORIZON)),
            prices,
            self.lp_spread,
            self.lp_wear,
            plan_start,
            pool=self.ctx.workers,
            import_max_wh=buy,
            export_max_wh=sell,
        )
        self.solves += 1
        self.plans += len(due)
        nets = [self.zone_net_wh[store.zone] for store in due]
        self._pending_plans = (due, socs, buy, sell, nets, pending)

    def collect_plans(self) -> None:
        """The batteries follow the plans :meth:`_plan_batteries` started (waiting if need be)."""
        if self._pending_plans is None:
            return
        due, socs, buy, sell, nets, pending = self._pending_plans
        self._pending_plans = None
        for k, (store, plan) in enumerate(zip(due, pending.result(), strict=True)):
            store.follow(plan, float(socs[k]), nets[k], (buy[k], sell[k]))

    # -- results ------------------------------------------------------------------------------------

    def finish(self, ctx: ScenarioContext) -> dict[str, Any]:
        hours = np.arange(self.intervals) / PER_HOUR
        n = self.config.hours * PER_HOUR
        for name, values in sorted(self.energy.items()):
            ctx.recorder.series[f"energy/{name}"] = [
                [float(x), float(v)] for x, v in zip(hours[:n], values[:n], strict=True)
            ]
        earnings = self._battery_earnings(ctx.chain.state)
        jobs_posted = sum(1 for pv in self.pvs if pv.job is not None)
        return {
            "machines_by_kind": {
                "pv-inverter": len(self.pvs),
                "home-battery": len(self.batteries),
                "household": len(self.households),
                "ev-charger": len(self.evs),
                "grid-gateway": len(self.gateways),
                "oracle-reporter": len(self.reporters),
                "maintenance-provider": len(self.providers),
            },
            "battery_policy": BATTERY_POLICIES[self.battery_policy],
            "battery_earnings": earnings,
            "models": {name: t.model_hash.hex() for name, t in sorted(self.models.items())},
            "model_dir": str(ctx.model_dir),
            "energy_wh": {name: int(v[:n].sum()) for name, v in sorted(self.energy.items())},
            "faults": sum(1 for pv in self.pvs if pv.fault_from is not None and pv.fault_from < self.end_ms),
            "repair_jobs_posted": jobs_posted,
            "repairs_paid": int(ctx.recorder.counters.get("jobs.closed", 0)),
        }

    def _battery_earnings(self, state: StateReader) -> dict[str, Any]:
        """The policy the batteries followed, measured on chain; in an LP run also the rule, replayed
        against the run's books (:mod:`autarky.scenarios._battery_replay`). Both the same way: money
        settled to the batteries plus the energy left, at the mean clearing price their feeder had."""
        from autarky.scenarios._battery_replay import replay_rule

        value = sum(
            bank.balance(state, b.did, ASSET)
            - b.genesis_balance
            + self._left_value(b.store, self._day_prices(b.zone))
            for b in self.batteries
        )
        earnings: dict[str, Any] = {
            "policy": BATTERY_POLICIES[self.battery_policy],
            "policy_value": int(value),
            "rule_counterfactual_value": None,
            "lp_beats_rule": None,
            "lp_solves": self.solves,
            "battery_plans": self.plans,
            "method": f"{BATTERY_POLICIES[self.battery_policy]} on chain: {EARNINGS_METHOD}",
        }
        if self.battery_policy == "lp":
            replay = replay_rule(self, state)
            rule = sum(
                money + self._left_value(store, replay.prices[store.zone])
                for money, store in zip(replay.money, replay.stores, strict=True)
            )
            earnings["rule_counterfactual_value"] = int(rule)
            earnings["lp_beats_rule"] = bool(value > rule)
            earnings["method"] += f"; {RULE_POLICY} {RULE_REPLAY_METHOD}"
        return earnings

    def _day_prices(self, zone: str) -> np.ndarray:
        """The feeder's clearing price of each interval of the day (the tariff where nothing traded)."""
        first = self.start_ms // L
        return np.asarray(
            [
                self.cleared.get((zone, first + k), tariff(local_hour((first + k) * L)))
                for k in range(self.config.hours * PER_HOUR)
            ],
            dtype=float,
        )

    @staticmethod
    def _left_value(store: Storage, prices: np.ndarray) -> float:
        """The energy a battery has left over what it started with (negative: less), as it could
        deliver it (after discharge losses), at the mean of ``prices``."""
        return (store.soc - store.soc0) * store.eta_d * float(prices.mean())

    def sections(self, metrics: dict[str, Any], series: dict[str, Any]) -> list[Section]:
        energy = {k.removeprefix("energy/"): v for k, v in series.items() if k.startswith("energy/")}
        earn = metrics["battery_earnings"]
        return [
            Section(
                "Energy flows",
                line_chart(energy, y_label="Wh per 15 min"),
                "Per interval, all machines of a kind: PV production, household and EV load, battery "
                "charge and discharge, energy sold by the grid gateways and bought back at the feed-in "
                "price.",
            ),
            Section(
                "Battery scheduling",
                table(
                    [
                        ("policy followed", earn["policy"]),
                        ("its value, on chain (aut)", earn["policy_value"]),
                        *(
                            [("battery-rule/1 replayed on this run's books (aut)", replayed)]
                            if (replayed := earn["rule_counterfactual_value"]) is not None
                            else []
                        ),
                        ("LP solves (batteries planned)", f"{earn['lp_solves']} ({earn['battery_plans']})"),
                        ("how it is measured", earn["method"]),
                    ]
                ),
            ),
            Section(
                "Models",
                table([("model_dir", metrics["model_dir"]), *sorted(metrics["models"].items())]),
                "Trained with the run's seed, registered on chain in the set-up hour (training-data "
                "anchor, then the model); sampled transactions are explained back to them.",
            ),
            Section("Machines", table(sorted(metrics["machines_by_kind"].items()))),
        ]


async def _sleep(ms: int) -> None:
    await asyncio.sleep(ms / 1000)


def _detect(inputs: Mapping[str, Any]) -> Any:
    if "job" in inputs:
        return ["attest", "output restored"]
    return ["post-job", BOUNTY]


FAULT_RULE = Rule("pv-fault-detector/1", _detect)
"""Output under 20 % of the clear-sky, cloud-adjusted expectation: post a repair job."""
EV_RULE_NAME = "ev-smart-charge/1"


# -- devices: each machine's own state (its meter, orders, physics) ------------------------------------


class Meter:
    """A machine's own meter (its key signs the readings): a cumulative register in Wh."""

    def __init__(self) -> None:
        self.register = 0
        self.pending: list[tuple[int, int]] = []
        self.active = False

    def baseline(self, t: int) -> None:
        self.pending = [(0, t)]
        self.active = True

    def add(self, wh: int, t: int) -> None:
        self.register += wh
        self.pending.append((self.register, t))

    def message(self) -> dict[str, Any] | None:
        if not self.pending:
            return None
        readings, self.pending = self.pending, []
        return metering.read(readings)


class Device:
    KIND = "machine"
    DIRECTION = "import"
    read_every_interval = True

    def __init__(self, actor: Actor, grid: Microgrid, index: int, zone: str) -> None:
        self.actor = actor
        self.did = actor.did
        self.grid = grid
        self.index = index
        self.zone = zone
        self.meter = Meter()
        self.orders: dict[bytes, int] = {}
        """order id -> absolute interval."""
        self.ordered: set[int] = set()
        self.machine: Machine

    def guardrails(self) -> dict[str, Any]:
        return {
            "window_blocks": 1000,
            "limits": {ASSET: {"per_tx": 60_000, "per_window": None, "cosign_above": None}},
            "allowlist": None,
        }

    def measure(self, h: int) -> list[int]:
        """Wh per interval of hour ``h`` (the meter's view of the world)."""
        return [0] * PER_HOUR

    def plan(self, h: int, t: int) -> tuple[list[dict[str, Any]], Any]:
        """Orders for hour ``h`` and the decision they follow (None: no model)."""
        return [], None

    def read(self, t: int) -> None:
        """Queue last hour's 15-minute readings (the meter reports once an hour)."""
        g = self.grid
        if not self.meter.active:
            self.meter.baseline(t)
            return
        h = (t - g.start_ms) // HOUR_MS - 1
        if 0 <= h < g.config.hours:
            for j, wh in enumerate(self.measure(h)):
                k = h * PER_HOUR + j
                if self.read_every_interval or wh or k in self.ordered:
                    self.meter.add(wh, g.start_ms + (k + 1) * L)

    async def hourly(self, t: int) -> None:
        """The hourly transaction: last hour's readings, then the orders for the next hour."""
        g = self.grid
        h = (t - g.start_ms) // HOUR_MS  # the hour in progress (-1: the set-up hour)
        if h > g.config.hours:
            return
        self.read(t)
        messages: list[dict[str, Any]] = []
        reading = self.meter.message()
        if reading is not None:
            messages.append(reading)
        decision = None
        if h + 1 < g.config.hours:
            g.forecasts(h)
            orders, decision = self.plan(h + 1, t)
            messages.extend(orders)
        if not messages:
            return
        receipt = await self.machine.submit(*messages, decision=decision)
        self.on_receipt(receipt)

    def on_receipt(self, receipt: Receipt) -> None:
        if not receipt.ok:
            return
        for event in receipt.events:
            if event.type == "market.order":
                a = dict(event.attributes)
                interval = _int(a["interval"])
                self.orders[bytes(a["order"])] = interval  # type: ignore[arg-type]
                self.ordered.add(interval - self.grid.start_ms // L)

    def interval_index(self, order: bytes) -> int:
        return self.orders.get(order, self.grid.start_ms // L) - self.grid.start_ms // L

    def on_fill(self, order: bytes, side: str, fill: int, price: int) -> None:
        pass


def _int(value: Any) -> int:
    return int(value)


def _orders_output(orders: list[dict[str, Any]]) -> list[list[Any]]:
    return [[o["type"], o["interval"], o["quantity"], o["limit_price"]] for o in orders]


class Household(Device):
    KIND = "home-energy-manager"

    def measure(self, h: int) -> list[int]:
        g = self.grid
        w = g.load_w[self.index, g.col(h * PER_HOUR) : g.col((h + 1) * PER_HOUR)]
        wh = [int(x / 4) for x in w]
        for j, v in enumerate(wh):
            g.energy["household load"][h * PER_HOUR + j] += v
        return wh

    def plan(self, h: int, t: int) -> tuple[list[dict[str, Any]], Any]:
        g = self.grid
        row = g.load_forecast[self.index, : 2 * PER_HOUR]
        base_k = g.start_ms // L + h * PER_HOUR
        orders = [
            market.bid(
                self.zone,
                base_k + j,
                max(1, int(row[PER_HOUR + j] / 4)),
                tariff(local_hour((base_k + j) * L)),
            )
            for j in range(PER_HOUR)
        ]
        inputs = {
            "time_ms": (base_k - PER_HOUR) * L,
            "history_w": [int(v) for v in g.load_history[self.index]],
            "horizon": 2 * PER_HOUR,
        }
        output = {"forecast_w": [int(v) for v in np.rint(row)], "orders": _orders_output(orders)}
        model = g.load_model
        return orders, self.machine.decide(Batched(model.name, model.model_hash, output), inputs)


class Pv(Device):
    KIND = "pv-inverter"
    DIRECTION = "export"
    read_every_interval = False

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.fault_from: int | None = None
        self.repaired_at: int | None = None
        self.job: bytes | None = None
        self.job_posted = False
        self.attested = False
        self.last_hour: list[int] = []

    def faulty(self, t: int) -> bool:
        return (
            self.fault_from is not None
            and self.fault_from <= t
            and (self.repaired_at is None or t < self.repaired_at)
        )

    def measure(self, h: int) -> list[int]:
        g = self.grid
        g.apply_faults(h)
        out = []
        for j in range(PER_HOUR):
            k = h * PER_HOUR + j
            wh = int(g.pv_measured[self.index, g.col(k)] / 4)
            out.append(wh)
            g.energy["pv production"][k] += wh
        self.last_hour = out
        return out

    def plan(self, h: int, t: int) -> tuple[list[dict[str, Any]], Any]:
        g = self.grid
        row = g.pv_forecast[self.index, : 2 * PER_HOUR]
        base_k = g.start_ms // L + h * PER_HOUR
        orders = [
            market.ask(self.zone, base_k + j, int(row[PER_HOUR + j] / 4), FEED_IN)
            for j in range(PER_HOUR)
            if int(row[PER_HOUR + j] / 4) >= 10
        ]
        if not orders:
            return [], None
        i = g.pv_inputs
        inputs = {
            "time_ms": (base_k - PER_HOUR) * L,
            "rated_w": int(i["rated_w"][self.index]),
            "tilt_deg": int(i["tilt_deg"][self.index]),
            "azimuth_deg": int(i["azimuth_deg"][self.index]),
            "history_w": [int(v) for v in i["history_w"][self.index]],
            "horizon": 2 * PER_HOUR,
        }
        output = {"forecast_w": [int(v) for v in np.rint(row)], "orders": _orders_output(orders)}
        model = g.pv_model
        return orders, self.machine.decide(Batched(model.name, model.model_hash, output), inputs)

    async def hourly(self, t: int) -> None:
        await super().hourly(t)
        await self.detect_fault(t)

    async def detect_fault(self, t: int) -> None:
        """Output under 20 % of the clear-sky and cloud-adjusted expectation: post a repair job."""
        g = self.grid
        h = (t - g.start_ms) // HOUR_MS - 1
        if self.job_posted or h < 0 or t > g.end_ms - 3 * HOUR_MS or not self.last_hour:
            return
        k = h * PER_HOUR
        c = g.col(k)
        expected = float(g.pv_clear_w[self.index, c : c + PER_HOUR].sum() / 4) * float(
            1 - 0.75 * g.cloud[c] ** 3.4
        )
        measured = sum(self.last_hour)
        if expected < 300 or measured > 0.2 * expected:
            return
        self.job_posted = True
        post = jobs.post(
            "inverter-repair",
            f"{self.actor.name}: output {measured} Wh of {int(expected)} expected",
            BOUNTY,
            ASSET,
            t + 6 * HOUR_MS,
            ["poster"],
        )
        inputs = {"machine": self.did, "hour": h, "measured_wh": measured, "expected_wh": int(expected)}
        receipt = await self.machine.submit(post, decision=self.machine.decide(FAULT_RULE, inputs))
        for event in receipt.events:
            if event.type == "jobs.posted":
                self.job = bytes(dict(event.attributes)["job"])  # type: ignore[arg-type]

    def on_fill(self, order: bytes, side: str, fill: int, price: int) -> None:
        self.grid.energy["pv sold"][self.interval_index(order)] += fill


class Storage:
    """What a home battery tracks to trade: its state of charge, the orders it has open, the plan it
    follows and the orders of an hour that follow from that plan. A :class:`Battery` machine keeps
    one; the rule's replay (:mod:`autarky.scenarios._battery_replay`) keeps one per battery too, so
    the policy on chain and the replayed rule place their orders with the same code."""

    def __init__(self, params: world.BatteryParams, index: int, zone: str) -> None:
        i = index
        self.zone = zone
        self.spec = BatterySpec.from_world(params, i)
        self.soc_min = float(params.soc_min_wh[i])
        self.soc_max = float(params.soc_max_wh[i])
        self.soc = self.soc_min + 0.3 * (self.soc_max - self.soc_min)
        self.soc0 = self.soc
        self.eta_c = float(params.charge_efficiency[i])
        self.eta_d = float(params.discharge_efficiency[i])
        self.max_wh = float(params.max_charge_w[i]) / PER_HOUR
        self.open: dict[bytes, tuple[str, int, int]] = {}
        """Orders placed and not yet cleared: id -> (side, quantity, absolute interval)."""
        self.plan: Plan | None = None
        self.plan_inputs: dict[str, Any] = {}
        self.plan_net_wh: np.ndarray | None = None
        """The feeder's net position forecast the plan was made with."""

    def projected_soc(self, at_ms: int) -> float:
        """State of charge at ``at_ms`` if the open orders before it fill as placed."""
        soc = self.soc
        for side, quantity, interval in self.open.values():
            if interval * L < at_ms:
                soc += quantity * self.eta_c if side == "bid" else -quantity / self.eta_d
        return min(max(soc, self.soc_min), self.soc_max)

    def needs_plan(self, plan_start: int, tolerance: int, market_net_wh: np.ndarray | None = None) -> bool:
        """An LP plan is due: none yet, ``REPLAN_MS`` old, the charge drifted from it (partial
        fills), or the feeder's net position forecast for the hours it still covers has moved."""
        plan = self.plan
        if plan is None or plan_start - plan.start_ms >= REPLAN_MS:
            return True
        index = (plan_start - plan.start_ms) // L
        if index >= plan.soc_wh.size:
            return True
        expected = float(plan.soc_wh[index - 1]) if index > 0 else float(self.plan_inputs["soc_wh"])
        if abs(expected - self.projected_soc(plan_start)) > tolerance:
            return True
        if market_net_wh is None or self.plan_net_wh is None:
            return False
        before = self.plan_net_wh[index : (plan.start_ms + REPLAN_MS - plan_start) // L + index]
        moved = float(np.abs(market_net_wh[: before.size] - before).sum())
        return moved > FORECAST_TOLERANCE * max(float(np.abs(before).sum()), 1.0)

    def follow(
        self,
        plan: Plan,
        soc_wh: float,
        market_net_wh: np.ndarray | None = None,
        bounds: tuple[np.ndarray, np.ndarray] | None = None,
    ) -> None:
        """Follow ``plan`` from now on; ``plan_inputs`` are what its policy's ``decide`` would take
        to make it (the LP's grid import and export ``bounds`` included)."""
        self.plan = plan
        self.plan_net_wh = market_net_wh
        self.plan_inputs = {
            "time_ms": plan.start_ms,
            "soc_wh": round(soc_wh),
            "prices": [round(float(p)) for p in plan.prices],
        }
        if bounds is not None:
            self.plan_inputs["import_max_wh"] = [int(v) for v in bounds[0]]
            self.plan_inputs["export_max_wh"] = [int(v) for v in bounds[1]]

    def orders(self, first_interval: int) -> list[tuple[str, int, int, int]]:
        """``(side, interval, quantity, limit_price)`` for the hour of intervals from the absolute
        interval ``first_interval``, as the plan says. Quantities are capped by what the battery can
        take or deliver given its open orders."""
        plan = self.plan
        assert plan is not None
        first = (first_interval * L - plan.start_ms) // L
        round_trip = self.eta_c * self.eta_d
        prices = plan.prices / 1000.0  # per Wh
        charging = plan.charge_wh > 1.0
        discharging = plan.discharge_wh > 1.0
        soc = self.projected_soc(first_interval * L)
        orders = []
        for j in range(PER_HOUR):
            n = first + j
            price = float(prices[n])
            charge, discharge = float(plan.charge_wh[n]), float(plan.discharge_wh[n])
            if charge >= 10:
                quantity = int(min(charge, self.max_wh, (self.soc_max - soc) / self.eta_c))
                if quantity >= 10:
                    # At most a unit over the forecast price, and never more than the planned
                    # discharges earn after losses (break-even); but over the feed-in price: a bid
                    # at it would tie with the gateway's, which takes the whole surplus.
                    worth = round_trip * float(prices[discharging].mean()) if discharging.any() else price
                    limit = max(min(round(price) + 1, math.floor(worth)), FEED_IN + 1)
                    orders.append(("bid", first_interval + j, quantity, limit))
                    soc += quantity * self.eta_c
            elif discharge >= 10:
                quantity = int(min(discharge, self.max_wh, (soc - self.soc_min) * self.eta_d))
                if quantity >= 10:
                    # At least a unit under the forecast price (a fleet of batteries that alone
                    # could cover the evening must not sell the price down to its costs), and never
                    # below what the planned charges cost after losses (break-even).
                    cost = float(prices[charging].mean()) / round_trip if charging.any() else 0.0
                    limit = max(round(price) - 1, math.ceil(cost), 0)
                    orders.append(("ask", first_interval + j, quantity, limit))
                    soc -= quantity / self.eta_d
        return orders

    def placed(self, order: bytes, side: str, quantity: int, interval: int) -> None:
        self.open[order] = (side, quantity, interval)

    def clear_open(self, now_ms: int) -> None:
        for order, (_, _, interval) in list(self.open.items()):
            if interval * L <= now_ms:
                del self.open[order]

    def filled(self, side: str, fill: int) -> None:
        if side == "bid":
            self.soc = min(self.soc_max, self.soc + fill * self.eta_c)
        else:
            self.soc = max(self.soc_min, self.soc - fill / self.eta_d)


def rule_plans(stores: list[Storage], start_ms: int, prices: Mapping[str, np.ndarray]) -> list[Plan]:
    """``battery-rule/1``'s schedule for ``LP_HORIZON`` intervals from ``start_ms``, from each
    battery's projected charge: full power in the sunny hours (10:00-15:00 local) until full, full
    power at the evening-peak tariff until empty, nothing otherwise. ``prices`` (per feeder, per
    Wh) are the feeder's forecast: the plan carries them for its orders' limit prices."""
    m = len(stores)
    soc = np.asarray([s.projected_soc(start_ms) for s in stores])
    soc_min = np.asarray([s.soc_min for s in stores])
    soc_max = np.asarray([s.soc_max for s in stores])
    eta_c = np.asarray([s.eta_c for s in stores])
    eta_d = np.asarray([s.eta_d for s in stores])
    max_wh = np.asarray([s.max_wh for s in stores])
    charge, discharge, level = (np.zeros((m, LP_HORIZON)) for _ in range(3))
    first = start_ms // L
    for n in range(LP_HORIZON):
        hour = local_hour((first + n) * L)
        if 10 <= hour < 15:
            charge[:, n] = np.clip(np.minimum(max_wh, (soc_max - soc) / eta_c), 0.0, None)
            soc = soc + charge[:, n] * eta_c
        elif tariff(hour) >= max(TARIFF):
            discharge[:, n] = np.clip(np.minimum(max_wh, (soc - soc_min) * eta_d), 0.0, None)
            soc = soc - discharge[:, n] / eta_d
        level[:, n] = soc
    return [
        Plan(start_ms, charge[k], discharge[k], charge[k], discharge[k], level[k], prices[s.zone] * 1000.0)
        for k, s in enumerate(stores)
    ]


class Battery(Device):
    KIND = "home-battery"
    DIRECTION = "export"

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.store = Storage(self.grid.battery_params, self.index, self.zone)
        self.genesis_balance = 400_000
        self.exported: dict[int, int] = {}

    def plan(self, h: int, t: int) -> tuple[list[dict[str, Any]], Any]:
        """Orders for hour ``h`` from the battery's plan (made by the fleet when due)."""
        g = self.grid
        g.collect_plans()
        store = self.store
        assert store.plan is not None
        base_k = g.start_ms // L + h * PER_HOUR
        orders = [
            (market.bid if side == "bid" else market.ask)(self.zone, interval, quantity, limit)
            for side, interval, quantity, limit in store.orders(base_k)
        ]
        if not orders:
            return [], None
        first = (base_k * L - store.plan.start_ms) // L
        inputs = dict(store.plan_inputs)
        inputs["plan_interval"] = first
        output = {"orders": _orders_output(orders), "replanned": first == 0}
        if g.battery_policy == "rule":
            return orders, self.machine.decide(Batched(RULE_POLICY, None, output), inputs)
        return orders, self.machine.decide(Batched(LP_POLICY, g.lp_hash, output), inputs)

    def on_receipt(self, receipt: Receipt) -> None:
        super().on_receipt(receipt)
        for event in receipt.events:
            if event.type == "market.order":
                a = dict(event.attributes)
                self.store.placed(bytes(a["order"]), str(a["side"]), _int(a["quantity"]), _int(a["interval"]))  # type: ignore[arg-type]

    def on_fill(self, order: bytes, side: str, fill: int, price: int) -> None:
        k = self.interval_index(order)
        self.store.filled(side, fill)
        if side == "bid":
            self.grid.energy["battery charge"][k] += fill
        else:
            self.exported[k] = self.exported.get(k, 0) + fill
            self.grid.energy["battery discharge"][k] += fill

    def measure(self, h: int) -> list[int]:
        return [self.exported.get(h * PER_HOUR + j, 0) for j in range(PER_HOUR)]


class EvCharger(Device):
    KIND = "ev-charger"
    read_every_interval = False

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.charged: dict[int, int] = {}
        self.bought: dict[int, float] = {}
        self.sessions: list[tuple[int, int, float, float]] = []

    def guardrails(self) -> dict[str, Any]:
        return {
            "window_blocks": 1000,
            "limits": {ASSET: {"per_tx": 40_000, "per_window": None, "cosign_above": None}},
            "allowlist": None,
        }

    def plan(self, h: int, t: int) -> tuple[list[dict[str, Any]], Any]:
        """Smart charging: full power in the cheapest tariff hours left before departure; earlier
        only if those hours cannot deliver what the car still needs."""
        g = self.grid
        base_k = g.start_ms // L + h * PER_HOUR
        orders = []
        for n, (arrival, departure, energy, power) in enumerate(self.sessions):
            for j in range(PER_HOUR):
                start = g.start_ms + (h * PER_HOUR + j) * L
                if not (arrival <= start and start + L <= departure):
                    continue
                need = energy - self.bought.get(n, 0)
                q = int(min(power / 4, need))
                if q < 10:
                    continue
                left = [tariff(local_hour(x)) for x in range(start, departure, L)]
                cheapest = min(left)
                cheap_wh = sum(1 for p in left if p == cheapest) * power / 4
                here = tariff(local_hour(start))
                if here == cheapest or cheap_wh < need:
                    orders.append(market.bid(self.zone, base_k + j, q, here))
                    self.bought[n] = self.bought.get(n, 0) + q
        if not orders:
            return [], None
        inputs = {
            "hour": h,
            "sessions": len(self.sessions),
            "bought_wh": [int(v) for v in self.bought.values()],
        }
        output = _orders_output(orders)
        return orders, self.machine.decide(Rule(EV_RULE_NAME, lambda _: output), inputs)

    def on_fill(self, order: bytes, side: str, fill: int, price: int) -> None:
        k = self.interval_index(order)
        self.charged[k] = self.charged.get(k, 0) + fill
        self.grid.energy["ev charging"][k] += fill

    def measure(self, h: int) -> list[int]:
        return [self.charged.get(h * PER_HOUR + j, 0) for j in range(PER_HOUR)]


class Gateway(Device):
    """The feeder's connection to the grid: sells at the tariff, buys surplus at the feed-in price."""

    KIND = "grid-gateway"
    DIRECTION = "export"
    read_every_interval = False

    def __init__(self, actor: Actor, grid: Microgrid, zone: int) -> None:
        super().__init__(actor, grid, zone, f"feeder-{zone}")
        self.exported: dict[int, int] = {}

    def plan(self, h: int, t: int) -> tuple[list[dict[str, Any]], Any]:
        base_k = self.grid.start_ms // L + h * PER_HOUR
        orders = []
        for j in range(PER_HOUR):
            price = tariff(local_hour((base_k + j) * L))
            orders.append(market.ask(self.zone, base_k + j, GATEWAY_QTY, price))
            orders.append(market.bid(self.zone, base_k + j, GATEWAY_QTY, FEED_IN))
        return orders, None

    def on_fill(self, order: bytes, side: str, fill: int, price: int) -> None:
        k = self.interval_index(order)
        if side == "ask":
            self.exported[k] = self.exported.get(k, 0) + fill
            self.grid.energy["grid import"][k] += fill
        else:
            self.grid.energy["grid export"][k] += fill

    def measure(self, h: int) -> list[int]:
        return [self.exported.get(h * PER_HOUR + j, 0) for j in range(PER_HOUR)]
