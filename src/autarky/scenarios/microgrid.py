"""A neighbourhood microgrid for a day: PV, batteries, households, EV chargers, oracles, maintenance.

Machines (shares of ``--machines`` after 3 oracle reporters, one grid gateway per feeder and one
maintenance provider per 500 machines): 30 % PV inverters, 15 % home batteries, 15 % EV chargers,
the rest household energy managers. Sites (a household and the machines beside it) have one owner
who registers the meters and sets the guardrails. Feeders of up to 500 machines are market zones.

Every hour ``H`` each machine sends **one transaction**: its meter's batch of four 15-minute
readings of the past hour, and its orders for the four intervals of hour ``H+1`` (an hour-ahead
auction): PV inverters ask their forecast, households and EV chargers bid their plan at the grid
tariff, batteries bid (charge) and ask (discharge) by their schedule; the grid gateway of each
feeder asks without limit at the tariff and bids at the feed-in price, so every book clears. The
oracle reporters report the grid tariff (the auction's price cap) and the weather each hour. A PV
inverter that sees its output collapse posts a repair job with a bounty; the maintenance
provider accepts it, repairs (two hours) and completes; the inverter attests when it produces
again; the bounty is paid after the dispute window. Every order, job and anchor that follows a
model's decision carries a decision record (one per transaction); records are anchored in batches.

Battery earnings: batteries follow ``BatteryScheduler`` (LP) when :mod:`autarky.models` provides it,
else the rule. The report compares them with ``RuleBattery`` as a **counterfactual over the same
realised prices** (price-taker: the rule's charge and discharge valued at each interval's clearing
price, with the same battery parameters and starting state of charge).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from typing import Any

import numpy as np

from autarky import world
from autarky.crypto.hashing import sha256
from autarky.ledger.block import Event, Receipt
from autarky.modules.harness import Chain
from autarky.modules.jobs import messages as jobs
from autarky.modules.market import messages as market
from autarky.modules.metering import messages as metering
from autarky.modules.oracle import messages as oracle
from autarky.scenarios.base import HOUR_MS, Scenario, SimConfig, scenario
from autarky.scenarios.genesis import ASSET, GenesisBuilder, batched
from autarky.scenarios.metrics import Recorder
from autarky.scenarios.report import Section, table
from autarky.scenarios.runtime import Actor, Decision, Sim, attrs
from autarky.scenarios.svg import line_chart

L = 900_000
PER_HOUR = HOUR_MS // L
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
START_MS = 1_781_478_000_000
"""2026-06-15 00:00 at the site (UTC+1): a summer day."""


def tariff(hour: int) -> int:
    return TARIFF[hour % 24]


def local_hour(time_ms: int) -> int:
    """The site's local hour (UTC+1) of a time."""
    return (time_ms // HOUR_MS + 1) % 24


@scenario
class Microgrid(Scenario):
    name = "microgrid"
    summary = "PV, batteries, households and EV chargers trading energy hour-ahead, with oracles and repairs"
    tail_ms = 5 * HOUR_MS

    def __init__(self, config: SimConfig) -> None:
        if config.start_ms != START_MS:
            config = SimConfig(config.machines, config.hours, config.seed, config.out, START_MS)
        super().__init__(config)
        self.rng = np.random.default_rng(config.seed)
        n = config.machines
        feeders = max(1, -(-n // FEEDER_SIZE))
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
        self.times = world.interval_times_ms(self.start_ms, config.hours + 2, L)
        self.by_did: dict[str, Any] = {}
        self.fills: dict[bytes, int] = {}
        self.energy = defaultdict(lambda: np.zeros(self.intervals))

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
            Maintainer(g.actor(f"maintainer-{i}", "maintenance-provider", balance=100_000), self)
            for i in range(self.providers_n)
        ]
        n_house = self.counts["household"]
        sites = [g.actor(f"owner-{i}", "site-owner", balance=1_000_000) for i in range(n_house)]
        self.owners = sites
        sky = world.weather(seed, 0, self.times)
        self.cloud = sky.cloud_cover[0]
        self.temp = sky.temperature_c[0]
        self.hours_local = world.local_hour(self.times)
        self.machines: list[Any] = []
        self.owned: dict[str, list[Any]] = defaultdict(list)

        def add(kind: str, cls: Callable[..., Any], i: int, zone_of: int, balance: int) -> Any:
            owner = sites[i % n_house]
            actor = g.actor(f"{kind}-{i}", cls.KIND, owner=owner, balance=balance)
            machine = cls(actor, self, i, f"feeder-{(zone_of % n_house) * self.feeders // n_house}")
            self.machines.append(machine)
            self.owned[owner.did].append(machine)
            return machine

        # The physical world of every machine, in a few vectorised calls.
        idx = np.arange(self.counts["pv"])
        self.pv_w = world.pv_power(seed, idx, self.times, sky.cloud_cover[0], sky.temperature_c[0])
        self.pv_clear_w = world.pv_power(
            seed, idx, self.times, np.zeros(self.intervals), sky.temperature_c[0]
        )
        self.load_w = world.household_load(seed, np.arange(n_house), self.times)
        self.battery_params = world.battery_params(seed, np.arange(self.counts["battery"]))
        self.households = [add("household", Household, i, i, 200_000) for i in range(n_house)]
        self.pvs = [add("pv", Pv, i, i, 200_000) for i in range(self.counts["pv"])]
        self.batteries = [add("battery", Battery, i, i, 400_000) for i in range(self.counts["battery"])]
        self.evs = [add("ev", EvCharger, i, i, 400_000) for i in range(self.counts["ev"])]
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
        for actor in [*self.reporters, self.operator]:
            self.by_did[actor.did] = actor
        for thing in [*self.gateways, *self.providers, *self.machines]:
            self.by_did[thing.actor.did] = thing
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

    # -- behaviour ----------------------------------------------------------------------------------

    def start(self, sim: Sim, recorder: Recorder) -> None:
        self.sim = sim
        self.recorder = recorder
        setup = self.start_ms - HOUR_MS + 1_000
        sim.at(setup, self._setup)
        sim.at(self.start_ms - HOUR_MS // 2, self._first_orders)
        for h in range(self.config.hours + 1):
            sim.at(self.start_ms + h * HOUR_MS, lambda h=h: self._hour(h))
        for k in range(1, (self.config.hours + 5) * PER_HOUR + 1):
            sim.block_at(self.start_ms + k * L)
        sim.on_event("market.filled", self._on_filled)
        sim.on_event("jobs.posted", self._on_job_posted)
        sim.on_event("jobs.completed", self._on_job_completed)

    def _setup(self) -> None:
        sim = self.sim
        op = self.operator
        feeds = [
            oracle.create_feed(
                PRICE_FEED, [r.did for r in self.reporters], 2, 2 * HOUR_MS, description="tariff"
            ),
            oracle.create_feed(TEMP_FEED, [r.did for r in self.reporters], 2, 2 * HOUR_MS, decimals=3),
            oracle.create_feed(CLOUD_FEED, [r.did for r in self.reporters], 2, 2 * HOUR_MS, decimals=4),
        ]
        sim.submit(op, *feeds)
        regs = [metering.register(gw.actor.did, gw.actor.did, "export", "wh") for gw in self.gateways]
        for chunk in batched(regs):
            sim.submit(op, *chunk)
        for owner in self.owners:
            messages = []
            for machine in self.owned[owner.did]:
                messages.append(metering.register(machine.did, machine.did, machine.DIRECTION, "wh"))
                messages.append(
                    {
                        "type": "bank/set_guardrails",
                        "machine": machine.did,
                        "guardrails": machine.guardrails(),
                    }
                )
            for chunk in batched(messages):
                sim.submit(owner, *chunk)

    def _first_orders(self) -> None:
        t = self.sim.now_ms
        self._report(-1)
        for thing in [*self.gateways, *self.machines]:
            thing.meter.baseline(t)
            thing.act(0, t)

    def _hour(self, h: int) -> None:
        t = self.sim.now_ms
        for thing in [*self.gateways, *self.machines]:
            if thing.DIRECTION == "export":
                thing.report(t)
        self.sim.at(t + 1_000, lambda: self._orders(h))

    def _orders(self, h: int) -> None:
        t = self.sim.now_ms
        if h < self.config.hours:
            self._report(h)
        for thing in [*self.gateways, *self.machines]:
            thing.act(h + 1 if h + 1 < self.config.hours else None, t)

    def _report(self, h: int) -> None:
        hour = max(h, 0)
        price = tariff(int(self.hours_local[hour * PER_HOUR]))
        k = hour * PER_HOUR
        temp_mc = round(float(self.temp[k]) * 1000)
        cloud_bp = round(float(self.cloud[k]) * 10_000)
        for i, reporter in enumerate(self.reporters):
            round_number = h + 2
            self.sim.submit(
                reporter,
                oracle.report(PRICE_FEED, round_number, price + (1 if i == 2 else 0)),
                oracle.report(TEMP_FEED, round_number, temp_mc + i * 10),
                oracle.report(CLOUD_FEED, round_number, cloud_bp),
            )

    def interval_index(self, k_abs: int) -> int:
        return k_abs - self.start_ms // L

    def _on_filled(self, event: Event, time_ms: int) -> None:
        a = attrs(event)
        owner = self.by_did.get(str(a["owner"]))
        fill = int(a["fill"])  # type: ignore[call-overload]
        if fill and owner is not None and hasattr(owner, "on_fill"):
            owner.on_fill(bytes(a["order"]), a["side"], fill, int(a["price"]), time_ms)  # type: ignore[arg-type, call-overload]

    def _on_job_posted(self, event: Event, time_ms: int) -> None:
        a = attrs(event)
        provider = self.providers[int.from_bytes(bytes(a["job"])[:4], "big") % len(self.providers)]  # type: ignore[arg-type]
        self.sim.at(time_ms + 60_000, lambda: provider.accept(bytes(a["job"]), str(a["poster"])))  # type: ignore[arg-type]

    def _on_job_completed(self, event: Event, time_ms: int) -> None:
        a = attrs(event)
        job = bytes(a["job"])  # type: ignore[arg-type]
        for pv in self.pvs:
            if pv.job == job:
                self.sim.at(time_ms + 60_000, lambda pv=pv: pv.attest(bytes(a["evidence"])))  # type: ignore[arg-type]

    # -- results ------------------------------------------------------------------------------------

    def finish(self, sim: Sim, recorder: Recorder, chain: Chain) -> dict[str, Any]:
        hours = np.arange(self.intervals) / PER_HOUR
        n = self.config.hours * PER_HOUR
        for name, values in sorted(self.energy.items()):
            recorder.series[f"energy/{name}"] = [
                [float(x), float(v)] for x, v in zip(hours[:n], values[:n], strict=True)
            ]
        prices = {round(p[0] * PER_HOUR): int(p[1]) for p in recorder.prices}
        realised = np.array([prices.get(k, tariff(int(self.hours_local[k]))) for k in range(n)], dtype=float)
        lp_value = sum(b.value_at(realised) for b in self.batteries)
        rule_value = sum(b.rule_counterfactual(realised, n) for b in self.batteries)
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
            "battery_policy": self.battery_policy_name(),
            "battery_earnings": {
                "policy": self.battery_policy_name(),
                "policy_value": int(lp_value),
                "rule_counterfactual_value": int(rule_value),
                "method": "counterfactual: RuleBattery over the same realised clearing prices (price-taker); "
                "both include the change of stored energy valued at the mean price",
            },
            "energy_wh": {name: int(v[:n].sum()) for name, v in sorted(self.energy.items())},
            "faults": sum(1 for pv in self.pvs if pv.fault_from is not None and pv.fault_from < self.end_ms),
            "repair_jobs_posted": jobs_posted,
            "repairs_paid": int(recorder.counters.get("jobs.closed", 0)),
        }

    def battery_policy_name(self) -> str:
        return Battery.policy_name()

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
                        ("its trading value (aut)", earn["policy_value"]),
                        ("RuleBattery counterfactual (aut)", earn["rule_counterfactual_value"]),
                        ("method", earn["method"]),
                    ]
                ),
            ),
            Section("Machines", table(sorted(metrics["machines_by_kind"].items()))),
        ]


# -- machines ----------------------------------------------------------------------------------------


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


class Machine:
    KIND = "machine"
    DIRECTION = "import"
    POLICY = "rule/1"

    def __init__(self, actor: Actor, grid: Microgrid, index: int, zone: str) -> None:
        self.actor = actor
        self.grid = grid
        self.index = index
        self.zone = zone
        self.meter = Meter()
        self.orders: dict[bytes, int] = {}
        self.ordered: set[int] = set()

    @property
    def did(self) -> str:
        return self.actor.did

    def guardrails(self) -> dict[str, Any]:
        return {
            "window_blocks": 1000,
            "limits": {ASSET: {"per_tx": 60_000, "per_window": None, "cosign_above": None}},
            "allowlist": None,
        }

    def measure(self, h: int) -> list[int]:
        """Wh per interval of hour ``h`` (the meter's view of the world)."""
        return [0] * PER_HOUR

    def plan(self, h: int, t: int) -> tuple[list[dict[str, Any]], Decision | None]:
        return [], None

    def read(self, t: int) -> None:
        """Queue last hour's 15-minute readings (the meter reports once an hour)."""
        h = (t - self.grid.start_ms) // HOUR_MS - 1
        if 0 <= h < self.grid.config.hours and self.meter.active:
            for j, wh in enumerate(self.measure(h)):
                k = h * PER_HOUR + j
                if self.read_every_interval or wh or k in self.ordered:
                    self.meter.add(wh, self.grid.start_ms + (k + 1) * L)

    def report(self, t: int) -> None:
        """A seller's meter sends its readings in a transaction of their own, in the block at the hour
        (the block that settles the past hour's books, kept small)."""
        self.read(t)
        reading = self.meter.message()
        if reading is not None:
            self.grid.sim.submit(self.actor, reading)

    def act(self, next_hour: int | None, t: int) -> None:
        """The hourly transaction: (a buyer's) last hour's readings, then the orders for ``next_hour``."""
        messages: list[dict[str, Any]] = []
        if self.DIRECTION == "import":
            self.read(t)
        reading = self.meter.message()
        if reading is not None:
            messages.append(reading)
        decision = None
        if next_hour is not None:
            orders, decision = self.plan(next_hour, t)
            messages.extend(orders)
        messages.extend(self.extra(t))
        if messages:
            self.grid.sim.submit(self.actor, *messages, decision=decision, on_receipt=self.on_receipt)

    read_every_interval = True

    def extra(self, t: int) -> list[dict[str, Any]]:
        return []

    def on_receipt(self, receipt: Receipt) -> None:
        if not receipt.ok:
            return
        for event in receipt.events:
            if event.type == "market.order":
                a = attrs(event)
                interval = int(a["interval"])  # type: ignore[call-overload]
                self.orders[bytes(a["order"])] = interval  # type: ignore[arg-type]
                if a["side"] == "ask":
                    self.ordered.add(self.grid.interval_index(interval))

    def on_fill(self, order: bytes, side: str, fill: int, price: int, t: int) -> None:
        pass


def _order_decision(
    policy: str, machine: Machine, h: int, inputs: dict[str, Any], orders: list[Any]
) -> Decision:
    return Decision(
        policy,
        {"machine": machine.did, "hour": h, **inputs},
        [[o["type"], o["interval"], o["quantity"], o["limit_price"]] for o in orders],
    )


class Household(Machine):
    KIND = "home-energy-manager"
    POLICY = "load-forecast/persistence-1"

    def measure(self, h: int) -> list[int]:
        w = self.grid.load_w[self.index, h * PER_HOUR : (h + 1) * PER_HOUR]
        wh = [int(x / 4) for x in w]
        for j, v in enumerate(wh):
            self.grid.energy["household load"][h * PER_HOUR + j] += v
        return wh

    def plan(self, h: int, t: int) -> tuple[list[dict[str, Any]], Decision | None]:
        g = self.grid
        # Persistence forecast: the same interval yesterday is not known on day 1; use the last hour.
        last = max(0, h - 1) * PER_HOUR
        basis = g.load_w[self.index, last : last + PER_HOUR]
        base_k = g.start_ms // L + h * PER_HOUR
        price = tariff(int(g.hours_local[h * PER_HOUR]))
        orders = [
            market.bid(self.zone, base_k + j, max(1, int(basis[j] / 4)), price) for j in range(PER_HOUR)
        ]
        return orders, _order_decision(
            self.POLICY, self, h, {"last_hour_wh": [int(x / 4) for x in basis]}, orders
        )


class Pv(Machine):
    KIND = "pv-inverter"
    DIRECTION = "export"
    POLICY = "pv-forecast/clearness-persistence-1"
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
        out = []
        for j in range(PER_HOUR):
            k = h * PER_HOUR + j
            w = g.pv_w[self.index, k]
            if self.faulty(g.start_ms + k * L):
                w *= 0.05
            out.append(int(w / 4))
            g.energy["pv production"][k] += int(w / 4)
        self.last_hour = out
        return out

    def plan(self, h: int, t: int) -> tuple[list[dict[str, Any]], Decision | None]:
        g = self.grid
        prev = h - 2  # the last hour the inverter has measured
        clear_prev = (
            g.pv_clear_w[self.index, max(prev, 0) * PER_HOUR : (max(prev, 0) + 1) * PER_HOUR].sum() / 4
        )
        measured = sum(self.last_hour) if prev >= 0 and self.last_hour else clear_prev * 0.7
        clearness = min(1.0, measured / clear_prev) if clear_prev > 1 else 0.7
        clear = g.pv_clear_w[self.index, h * PER_HOUR : (h + 1) * PER_HOUR] / 4
        base_k = g.start_ms // L + h * PER_HOUR
        orders = [
            market.ask(self.zone, base_k + j, int(clear[j] * clearness), FEED_IN)
            for j in range(PER_HOUR)
            if int(clear[j] * clearness) >= 10
        ]
        if not orders:
            return [], None
        inputs = {"clearness_bp": int(clearness * 10_000), "clear_sky_wh": [int(x) for x in clear]}
        return orders, _order_decision(self.POLICY, self, h, inputs, orders)

    def extra(self, t: int) -> list[dict[str, Any]]:
        """Fault detection: output under 20 % of the clear-sky and cloud-adjusted expectation."""
        g = self.grid
        h = (t - g.start_ms) // HOUR_MS - 1
        if self.job_posted or h < 0 or t > g.end_ms - 3 * HOUR_MS or not self.last_hour:
            return []
        k = h * PER_HOUR
        expected = float(g.pv_clear_w[self.index, k : k + PER_HOUR].sum() / 4) * float(
            1 - 0.75 * g.cloud[k] ** 3.4
        )
        measured = sum(self.last_hour)
        if expected < 300 or measured > 0.2 * expected:
            return []
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
        self.grid.sim.submit(
            self.actor,
            post,
            decision=Decision("pv-fault-detector/1", inputs, ["post-job", BOUNTY]),
            on_receipt=self._posted,
        )
        return []

    def _posted(self, receipt: Receipt) -> None:
        for event in receipt.events:
            if event.type == "jobs.posted":
                self.job = bytes(attrs(event)["job"])  # type: ignore[arg-type]

    def attest(self, evidence: bytes) -> None:
        if self.job is None or self.attested:
            return
        self.attested = True
        self.grid.sim.submit(
            self.actor,
            jobs.attest(self.job, evidence),
            decision=Decision(
                "pv-fault-detector/1",
                {"machine": self.did, "job": self.job.hex()},
                ["attest", "output restored"],
            ),
        )

    def on_fill(self, order: bytes, side: str, fill: int, price: int, t: int) -> None:
        self.grid.energy["pv sold"][self.grid.interval_index(self.orders.get(order, 0))] += fill


class Battery(Machine):
    KIND = "home-battery"
    DIRECTION = "export"
    CHARGE_LIMIT = 2
    DISCHARGE_LIMIT = 6

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        p = self.grid.battery_params
        i = self.index
        self.capacity = float(p.capacity_wh[i])
        self.soc = float(p.soc_min_wh[i]) + 0.3 * (float(p.soc_max_wh[i]) - float(p.soc_min_wh[i]))
        self.soc0 = self.soc
        self.eta_c = float(p.charge_efficiency[i])
        self.eta_d = float(p.discharge_efficiency[i])
        self.soc_min = float(p.soc_min_wh[i])
        self.soc_max = float(p.soc_max_wh[i])
        self.max_wh = float(p.max_charge_w[i]) / 4
        self.flows = np.zeros(self.grid.intervals)  # + charged from the grid, - delivered (Wh)
        self.exported: dict[int, int] = {}
        self.sides: dict[bytes, str] = {}

    @staticmethod
    def policy_name() -> str:
        return "rule-battery/1"

    def rule(self, hour_local: int, soc: float) -> float:
        """RuleBattery: charge in the sunny midday hours, discharge at the evening peak."""
        if 10 <= hour_local < 15 and soc < self.soc_max:
            return min(self.max_wh, (self.soc_max - soc) / self.eta_c)
        if tariff(hour_local) >= 7 and soc > self.soc_min:
            return -min(self.max_wh, (soc - self.soc_min) * self.eta_d)
        return 0.0

    def plan(self, h: int, t: int) -> tuple[list[dict[str, Any]], Decision | None]:
        g = self.grid
        base_k = g.start_ms // L + h * PER_HOUR
        orders = []
        soc = self.soc
        for j in range(PER_HOUR):
            q = self.rule(int(g.hours_local[h * PER_HOUR + j]), soc)
            if q >= 10:
                orders.append(market.bid(self.zone, base_k + j, int(q), self.CHARGE_LIMIT))
                soc += q * self.eta_c
            elif q <= -10:
                orders.append(market.ask(self.zone, base_k + j, int(-q), self.DISCHARGE_LIMIT))
                soc += q / self.eta_d
        if not orders:
            return [], None
        inputs = {"soc_wh": int(self.soc), "capacity_wh": int(self.capacity)}
        return orders, _order_decision(self.policy_name(), self, h, inputs, orders)

    def on_receipt(self, receipt: Receipt) -> None:
        super().on_receipt(receipt)
        for event in receipt.events:
            if event.type == "market.order":
                a = attrs(event)
                self.sides[bytes(a["order"])] = str(a["side"])  # type: ignore[arg-type]

    def on_fill(self, order: bytes, side: str, fill: int, price: int, t: int) -> None:
        k = self.grid.interval_index(self.orders.get(order, 0))
        if side == "bid":
            self.soc = min(self.soc_max, self.soc + fill * self.eta_c)
            self.flows[k] += fill
            self.grid.energy["battery charge"][k] += fill
        else:
            self.soc = max(self.soc_min, self.soc - fill / self.eta_d)
            self.flows[k] -= fill
            self.exported[k] = self.exported.get(k, 0) + fill
            self.grid.energy["battery discharge"][k] += fill

    def measure(self, h: int) -> list[int]:
        return [self.exported.get(h * PER_HOUR + j, 0) for j in range(PER_HOUR)]

    def value_at(self, prices: np.ndarray) -> float:
        """Trading value at the realised prices plus the change of stored energy at their mean."""
        n = len(prices)
        stored = (self.soc - self.soc0) * self.eta_d * float(prices.mean())
        return float(-(self.flows[:n] * prices).sum()) + stored

    def rule_counterfactual(self, prices: np.ndarray, n: int) -> float:
        soc, value = self.soc0, 0.0
        for k in range(n):
            q = self.rule(int(self.grid.hours_local[k]), soc)
            if q > 0:
                soc += q * self.eta_c
            elif q < 0:
                soc += q / self.eta_d
            value -= q * prices[k]
        return value + (soc - self.soc0) * self.eta_d * float(prices.mean())


class EvCharger(Machine):
    KIND = "ev-charger"
    POLICY = "ev-smart-charge/1"
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

    def plan(self, h: int, t: int) -> tuple[list[dict[str, Any]], Decision | None]:
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
        inputs = {"sessions": len(self.sessions), "bought_wh": [int(v) for v in self.bought.values()]}
        return orders, _order_decision(self.POLICY, self, h, inputs, orders)

    def on_fill(self, order: bytes, side: str, fill: int, price: int, t: int) -> None:
        k = self.grid.interval_index(self.orders.get(order, 0))
        self.charged[k] = self.charged.get(k, 0) + fill
        self.grid.energy["ev charging"][k] += fill

    def measure(self, h: int) -> list[int]:
        return [self.charged.get(h * PER_HOUR + j, 0) for j in range(PER_HOUR)]


class Gateway(Machine):
    """The feeder's connection to the grid: sells at the tariff, buys surplus at the feed-in price."""

    KIND = "grid-gateway"
    DIRECTION = "export"
    read_every_interval = False

    def __init__(self, actor: Actor, grid: Microgrid, zone: int) -> None:
        super().__init__(actor, grid, zone, f"feeder-{zone}")
        self.exported: dict[int, int] = {}

    def plan(self, h: int, t: int) -> tuple[list[dict[str, Any]], Decision | None]:
        g = self.grid
        base_k = g.start_ms // L + h * PER_HOUR
        orders = []
        for j in range(PER_HOUR):
            price = tariff(int(g.hours_local[h * PER_HOUR + j]))
            orders.append(market.ask(self.zone, base_k + j, GATEWAY_QTY, price))
            orders.append(market.bid(self.zone, base_k + j, GATEWAY_QTY, FEED_IN))
        return orders, None

    def on_fill(self, order: bytes, side: str, fill: int, price: int, t: int) -> None:
        k = self.grid.interval_index(self.orders.get(order, 0))
        if side == "ask":
            self.exported[k] = self.exported.get(k, 0) + fill
            self.grid.energy["grid import"][k] += fill
        else:
            self.grid.energy["grid export"][k] += fill

    def measure(self, h: int) -> list[int]:
        return [self.exported.get(h * PER_HOUR + j, 0) for j in range(PER_HOUR)]


class Maintainer:
    """The maintenance provider: accepts repair jobs, repairs, completes with evidence."""

    def __init__(self, actor: Actor, grid: Microgrid) -> None:
        self.actor = actor
        self.grid = grid

    def accept(self, job: bytes, poster: str) -> None:
        sim = self.grid.sim
        sim.submit(self.actor, jobs.accept(job))
        pv = self.grid.by_did.get(poster)

        def complete() -> None:
            if isinstance(pv, Pv):
                pv.repaired_at = sim.now_ms
            evidence = sha256(b"repair report " + job)
            sim.submit(self.actor, jobs.complete(job, evidence))

        sim.at(sim.now_ms + REPAIR_MS, complete)
