"""The demo machines as agents (:class:`autarky.agent.Machine`) on the node's HTTP API.

Each machine has one handler, a tick (``on_interval``), so it does one thing at a time: when the
site's delivery interval changes it reads its meter and places its order for the next interval
(forecast, plan, bid or ask); between intervals the paying machines pay at the fleet's rate.
Every action that follows a decision goes ``machine.decide(policy, inputs)`` then
``machine.submit(..., decision=...)``: the pre-check refuses what the guardrails would refuse
(never signed, explained), and a decision record names the transaction. Records go to the
workspace's decision store and are anchored on chain every :data:`ANCHOR_EVERY` records or
:data:`ANCHOR_AFTER_S` seconds, and when the demo stops.

Models (:mod:`autarky.models`, trained per workspace): ``pv-forecast/1``, ``load-forecast/1``,
``battery-lp/1``, ``irrigation-balance/1``. The payments that follow simple rules use small rule
policies (:class:`Rule`, no model) so they are recorded too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from autarky.agent import ActionRefused, Decision, Machine, MachinePaused
from autarky.agent.http_ledger import HttpLedger
from autarky.crypto.keys import SigningKey
from autarky.demo import site as site_model
from autarky.demo.economy import BATTERY, PRICE_FEED, SELLER, WEATHER_FEED, ZONE
from autarky.models import BatteryScheduler, BatterySpec, IrrigationController, load_policy
from autarky.modules.bank import messages as bank
from autarky.modules.data import messages as data
from autarky.modules.market import messages as market
from autarky.modules.metering import messages as metering
from autarky.modules.oracle import messages as oracle
from autarky.web.client import ClientError

if TYPE_CHECKING:
    from autarky.demo.fleet import Fleet

logger = logging.getLogger("autarky.demo")

ANCHOR_EVERY = 8
ANCHOR_AFTER_S = 30.0
SITE_TICK_MS = 1_000
FORECAST_HORIZON = 8
HOUSEHOLD_CAP = 40  # the households' per-transaction cap (fleet.guardrails_for): bids stay within it
PAYERS = {"car": 3.0, "farm-controller": 2.0, "ev-charger": 1.5, "household-b": 1.0}
PACE_WEIGHT = 13.5
"""``rate`` transactions a second in all are shared as if the payers' weights summed to this (the
rest of the pace is the machines' interval work: meter readings, orders, reports)."""


class Rule:
    """A decision policy without a model: a named rule over canonical inputs."""

    def __init__(self, name: str, rule: Callable[[Mapping[str, Any]], Any]) -> None:
        self.name = name
        self.model_hash: bytes | None = None
        self._rule = rule

    def decide(self, inputs: Mapping[str, Any]) -> Any:
        return self._rule(inputs)


def _car_rule(inputs: Mapping[str, Any]) -> Any:
    roll, amount = inputs["roll_bp"], inputs["amount"]
    if roll < 800:
        return {"session": "fast", "amount": amount, "cosign": False}
    if roll < 3000:
        return {"session": "fast", "amount": amount, "cosign": True}
    return {"session": "normal", "amount": amount, "cosign": False}


CAR_CHARGING = Rule("car-charging/1", _car_rule)
BULK_ENERGY = Rule("charger-bulk-energy/1", lambda i: {"amount": i["amount"]})
EV_DEMAND = Rule(
    "charger-demand/1",
    lambda i: {"quantity_wh": (16 if 17 <= i["hour"] < 22 else 8) + i["extra_wh"], "limit_price": 4},
)
HEAT_PUMP = Rule("heat-pump-boost/1", lambda i: {"amount": i["amount"]})
SETTLE = Rule("settle-earnings/1", lambda i: {"amount": max(0, i["balance"] - i["keep"])})
TOP_UP = Rule("operator-top-up/1", lambda i: {"amount": i["funding"] if i["balance"] < i["below"] else 0})


class SiteAgent:
    """One demo machine: its agent, its state and what it does on each tick."""

    def __init__(self, site: SiteAgents, name: str, machine: Machine, period_ms: int) -> None:
        self.site = site
        self.name = name
        self.machine = machine
        self.period_ms = period_ms
        self.busy = asyncio.Lock()
        self.done_interval = -1
        self.read_through = -1
        self.unsent: dict[int, int] = {}
        """Wh measured for intervals whose readings the node did not take yet (sent again)."""
        self.next_payment = 0.0
        self.last_anchor = time.monotonic()
        self.offered: dict[int, int] = {}

    @property
    def activity(self) -> Any:
        return self.site.fleet.activity

    async def act(
        self,
        what: str,
        *messages: Mapping[str, Any],
        decision: Decision | None = None,
        cosigners: Sequence[SigningKey] = (),
    ) -> bool:
        """Submit ``messages`` (pre-checked, signed, committed); record and report what happened."""
        m = self.machine
        try:
            receipt = await m.submit(*messages, decision=decision, cosigners=cosigners)
        except MachinePaused as paused:
            self.activity.machines[self.name].status = "paused"
            self.activity.machines[self.name].last = f"paused: {paused.detail}"
            return False
        except ActionRefused as refusal:
            self.activity.refused_action(self.name, what, refusal.code, refusal.explanation)
            if decision is not None:
                self._recorded(decision, None)
            return False
        tx = receipt.tx_hash.hex()
        if receipt.ok:
            self.activity.committed_tx(self.name, what, tx)
        else:
            self.activity.failed_tx(self.name, what, receipt.code, receipt.detail, tx)
        if decision is not None:
            self._recorded(decision, tx if receipt.ok else None)
        await self.anchor_if_due()
        return receipt.ok

    def _recorded(self, decision: Decision, tx: str | None) -> None:
        chain = self.machine.decisions
        if chain is None:
            return
        self.activity.decided(
            self.name,
            {
                "seq": chain.next_seq - 1,
                "hash": chain.head,
                "policy": decision.policy,
                "model": decision.model,
                "inputs_digest": decision.inputs_digest,
                "output": decision.output,
                "allowed_by": "guardrail" if tx is not None else "none",
                "tx": tx,
                "time_ms": time.time_ns() // 1_000_000,
            },
        )

    async def anchor_if_due(self, force: bool = False) -> None:
        chain = self.machine.decisions
        if chain is None or chain.pending_count == 0:
            return
        if (
            not force
            and chain.pending_count < ANCHOR_EVERY
            and time.monotonic() - self.last_anchor < ANCHOR_AFTER_S
        ):
            return
        count = chain.pending_count
        receipt = await self.machine.anchor()
        self.last_anchor = time.monotonic()
        if receipt is not None:
            tx = receipt.tx_hash.hex()
            if receipt.ok:
                self.activity.committed_tx(self.name, f"anchors {count} decision records", tx)
                self.activity.anchored += count
                self.activity.machines[self.name].anchored = chain.anchored
            else:
                self.activity.failed_tx(self.name, "anchoring decisions", receipt.code, receipt.detail, tx)

    async def tick(self, _: Machine) -> None:
        if self.site.stopping:
            return
        async with self.busy:
            if self.site.stopping:  # stopped while this tick waited for the lock
                return
            self.activity.machines[self.name].status = "paused" if self.machine.paused else "running"
            current = self.site.interval()
            if current > self.done_interval:
                self.done_interval = current
                await self.on_interval(current)
            loop = asyncio.get_running_loop()
            if self.name in PAYERS and loop.time() >= self.next_payment:
                self.next_payment = loop.time() + self.site.payment_period_s(self.name)
                await self.pay()

    async def on_interval(self, current: int) -> None:
        """Read the meter for the intervals past and place the order for the next one."""

    async def pay(self) -> None:
        """A payment between intervals (car, charger, farm, household-b)."""

    # -- shared pieces --------------------------------------------------------------------------

    async def settle(self, settle_above: int, keep: int) -> None:
        from autarky.demo.fleet import OWNER

        balance = self.site.fleet.balances.get(self.name, 0)
        if balance < settle_above:
            return
        decision = self.machine.decide(SETTLE, {"balance": balance, "keep": keep})
        amount = decision.output["amount"]
        self.site.fleet.balances[self.name] -= amount
        await self.act(
            f"settles {amount} to the operator",
            bank.send(self.site.fleet.did(OWNER), "aut", amount),
            decision=decision,
        )

    async def read_meter(self, current: int, measure: Callable[[int], int]) -> None:
        economy = self.site.fleet.economy
        if self.read_through < 0:
            self.read_through = economy.read_through
        last = current - 1
        if self.read_through >= last:
            return
        start = max(self.read_through + 1, last - 95)  # a batch holds at most 256 readings
        before = (self.read_through, economy.registers.get(self.name, 0))
        self.read_through = last
        readings, measured, by_interval = [], 0, {}
        for k in range(start, last + 1):
            this = self.unsent.pop(k) if k in self.unsent else measure(k)
            by_interval[k] = this
            measured += this
            economy.registers[self.name] = economy.registers.get(self.name, 0) + this
            readings.append((economy.registers[self.name], (k + 1) * economy.interval_ms))
        if not await self.act(f"reads its meter: {measured} Wh", metering.read(readings)):
            # Not taken (refused before signing, e.g. metering.future_reading while the node's
            # block time has not reached the interval's end yet): the same readings go again at the
            # next interval, in time for settlement, instead of that energy never being metered.
            self.read_through, economy.registers[self.name] = before
            self.unsent.update(by_interval)

    def publish_order(self, side: str, interval: int, quantity: int, limit: int) -> None:
        self.activity.order(
            self.name,
            {
                "side": side,
                "interval": interval,
                "local_time": self.site.clock.local_time(interval),
                "quantity_wh": quantity,
                "limit_price": limit,
            },
        )

    def publish_forecast(self, decision: Decision, current: int, values: list[int], unit: str) -> None:
        self.activity.forecast(
            self.name,
            {
                "policy": decision.policy,
                "model": None if decision.model is None else decision.model.hex(),
                "from_interval": current,
                "local_time": self.site.clock.local_time(current),
                "values": values,
                "unit": unit,
                "step_minutes": 15,
            },
        )


# -- the machines ---------------------------------------------------------------------------------------


class Inverter(SiteAgent):
    async def on_interval(self, current: int) -> None:
        clock, world = self.site.clock, self.site.clock.world
        await self.read_meter(current, lambda k: site_model.demo_wh(clock.actual(world.pv_w[0], k)))
        if not self.site.trading:
            return
        systems = world.systems
        decision = self.machine.decide(
            self.site.policies["pv-forecaster"],
            {
                "time_ms": clock.world_ms(current),
                "rated_w": round(float(systems.inverter_w[site_model.PV_INDEX])),
                "tilt_deg": round(float(systems.tilt[site_model.PV_INDEX])),
                "azimuth_deg": round(float(systems.azimuth[site_model.PV_INDEX])),
                "history_w": clock.history(world.pv_w[site_model.PV_INDEX], current),
                "horizon": FORECAST_HORIZON,
            },
        )
        forecast = list(decision.output["forecast_w"])
        self.publish_forecast(decision, current, forecast, "W")
        quantity = site_model.demo_wh(forecast[1])
        if quantity:
            self.publish_order("ask", current + 1, quantity, 1)
            await self.act(
                f"forecasts {forecast[1]} W, asks {quantity} Wh",
                market.ask(ZONE, current + 1, quantity, 1),
                decision=decision,
            )
        await self.settle(settle_above=150, keep=20)


class Household(SiteAgent):
    async def on_interval(self, current: int) -> None:
        clock, world = self.site.clock, self.site.clock.world
        index = site_model.HOUSEHOLDS[self.name]
        await self.read_meter(current, lambda k: site_model.demo_wh(clock.actual(world.load_w[index], k)))
        if not self.site.trading:
            return
        decision = self.machine.decide(
            self.site.policies["load-forecaster"],
            {
                "time_ms": clock.world_ms(current),
                "history_w": clock.history(world.load_w[index], current),
                "horizon": FORECAST_HORIZON,
            },
        )
        forecast = list(decision.output["forecast_w"])
        self.publish_forecast(decision, current, forecast, "W")
        limit = await self.site.grid_price()
        quantity = max(1, min(site_model.demo_wh(forecast[1]), (HOUSEHOLD_CAP - 1) // limit))
        self.publish_order("bid", current + 1, quantity, limit)
        await self.act(
            f"forecasts {forecast[1]} W, bids {quantity} Wh at {limit}",
            market.bid(ZONE, current + 1, quantity, limit),
            decision=decision,
        )

    async def pay(self) -> None:  # household-b: the heat pump asks for a boost now and then
        if self.site.random.random() >= 0.12:
            return
        amount = self.site.random.randint(45, 60)
        decision = self.machine.decide(HEAT_PUMP, {"amount": amount})
        await self.act(
            f"tries a heat-pump boost of {amount}",
            bank.send(self.site.fleet.did(SELLER), "aut", amount),
            decision=decision,
        )


class Battery(SiteAgent):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        world = self.site.clock.world
        self.spec = BatterySpec.from_world(world.battery, site_model.BATTERY_INDEX)
        self.soc_wh = (self.spec.soc_min_wh + self.spec.soc_max_wh) // 2

    async def on_interval(self, current: int) -> None:
        await self.read_meter(current, lambda k: self.offered.pop(k, 0))
        if not self.site.trading:
            return
        clock, world = self.site.clock, self.site.clock.world
        target = current + 1
        i = site_model.BATTERY_INDEX
        policy = self.site.policies["battery-lp"]
        decision = self.machine.decide(
            policy,
            {
                "time_ms": clock.world_ms(target),
                "soc_wh": self.soc_wh,
                "prices": clock.ahead(world.price_cents, target),
                "pv_wh": [v // 4 for v in clock.ahead(world.pv_w[i], target)],
                "load_wh": [v // 4 for v in clock.ahead(world.load_w[i], target)],
            },
        )
        out = decision.output
        eff_c = self.spec.charge_efficiency_bp / 10_000
        eff_d = self.spec.discharge_efficiency_bp / 10_000
        soc = self.soc_wh + out["charge_wh"] * eff_c - out["discharge_wh"] / eff_d
        self.soc_wh = int(min(max(soc, self.spec.soc_min_wh), self.spec.soc_max_wh))
        if isinstance(policy, BatteryScheduler) and policy.plan is not None:
            plan = [
                round(float(c - d))
                for c, d in zip(policy.plan.charge_wh, policy.plan.discharge_wh, strict=True)
            ]
            index = max(0, (clock.world_ms(target) - policy.plan.start_ms) // 900_000)
            self.publish_forecast(
                decision, target, plan[index : index + FORECAST_HORIZON], "Wh stored (+) / released (-)"
            )
        order = out["order"]
        quantity = round(order["quantity_wh"] / site_model.SCALE)
        limit = site_model.demo_price(order["limit_price"])
        if order["side"] == "none" or quantity <= 0:
            self.activity.machines[self.name].last = f"plan: hold (state of charge {self.soc_wh} Wh)"
            return
        self.publish_order(order["side"], target, quantity, limit)
        if order["side"] == "ask":
            self.offered[target] = quantity
            message = market.ask(ZONE, target, quantity, limit)
        else:
            message = market.bid(ZONE, target, quantity, limit)
        await self.act(
            f"plans {order['side']} of {quantity} Wh at {limit} (state of charge {self.soc_wh} Wh)",
            message,
            decision=decision,
        )


class Charger(SiteAgent):
    async def on_interval(self, current: int) -> None:
        await self.read_meter(current, lambda k: self.offered.pop(k, 0))
        if not self.site.trading:
            return
        hour = int(self.site.clock.local_time(current + 1)[:2])
        decision = self.machine.decide(EV_DEMAND, {"hour": hour, "extra_wh": self.site.random.randint(0, 3)})
        quantity, limit = decision.output["quantity_wh"], decision.output["limit_price"]
        self.offered[current + 1] = quantity
        self.publish_order("bid", current + 1, quantity, limit)
        await self.act(
            f"bids {quantity} Wh at {limit}",
            market.bid(ZONE, current + 1, quantity, limit),
            decision=decision,
        )

    async def pay(self) -> None:
        amount = self.site.random.randint(40, 80)
        decision = self.machine.decide(BULK_ENERGY, {"amount": amount})
        await self.act(
            f"buys {amount} of energy in bulk",
            bank.send(self.site.fleet.did(SELLER), "aut", amount),
            decision=decision,
        )


class Car(SiteAgent):
    async def pay(self) -> None:
        from autarky.demo.fleet import OWNER

        roll = self.site.random.randrange(10_000)
        amount = self.site.random.randint(45, 55) if roll < 3000 else self.site.random.randint(12, 39)
        decision = self.machine.decide(CAR_CHARGING, {"roll_bp": roll, "amount": amount})
        out = decision.output
        what = (
            f"fast-charges for {amount} (operator co-signs)"
            if out["cosign"]
            else f"fast-charges for {amount} without a co-signature"
            if out["session"] == "fast"
            else f"charges for {amount}"
        )
        cosigners = (self.site.fleet.keys[OWNER],) if out["cosign"] else ()
        await self.act(
            what,
            bank.send(self.site.fleet.did("ev-charger"), "aut", amount),
            decision=decision,
            cosigners=cosigners,
        )


class Sensor(SiteAgent):
    async def on_interval(self, current: int) -> None:
        if not self.site.trading:
            return
        temperature = round(self.site.clock.actual(self.site.clock.world.temperature_c, current + 1))
        await self.site.report(self, WEATHER_FEED, temperature, f"reports {temperature} °C")
        balance = self.site.fleet.balances.get(self.name, 0)
        if balance >= 40:
            await self.settle(settle_above=40, keep=10)


class Operator(SiteAgent):
    async def on_interval(self, current: int) -> None:
        if self.site.trading:
            price = site_model.demo_price(
                self.site.clock.actual(self.site.clock.world.price_cents, current + 1)
            )
            await self.site.report(self, PRICE_FEED, price, f"reports a grid price of {price}")
        await self.top_up()

    async def pay(self) -> None:
        await self.top_up()

    async def top_up(self) -> None:
        from autarky.demo.fleet import MACHINES

        fleet = self.site.fleet
        for spec in MACHINES:
            balance = fleet.balances.get(spec.name, 0)
            if not spec.topup_below or balance >= spec.topup_below:
                continue
            decision = self.machine.decide(
                TOP_UP,
                {
                    "machine": fleet.did(spec.name),
                    "balance": balance,
                    "below": spec.topup_below,
                    "funding": spec.funding,
                },
            )
            amount = decision.output["amount"]
            fleet.balances[spec.name] += amount  # one low balance gets one top-up
            await self.act(
                f"tops up {spec.name} with {amount}",
                bank.send(fleet.did(spec.name), "aut", amount),
                decision=decision,
            )
            return


class Farm(SiteAgent):
    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.readings: list[int] = []
        self.broker = SigningKey.generate().did  # a data broker not on the allowlist
        self.bought = False

    def moisture(self) -> int:
        """The soil sensor (thousandths): soil below the refill point (230) at first, so the controller
        buys weather data, then just above it after an irrigation; now and then stuck."""
        step = len(self.readings)
        if self.readings and self.site.random.random() < 0.2:
            return self.readings[-1]  # the sensor repeats itself
        return 226 + int(14 * np.sin(step / 9)) + self.site.random.randint(-2, 2)

    async def pay(self) -> None:
        self.readings = [*self.readings[-11:], self.moisture()]
        clock = self.site.clock
        decision = self.machine.decide(
            self.site.policies["irrigation"],
            {
                "time_ms": clock.world_ms(self.site.interval()),
                "moisture_milli": list(self.readings),
                "field_capacity_milli": 340,
                "wilting_point_milli": 120,
                "root_depth_mm": 400,
            },
        )
        out = decision.output
        self.activity.forecast(
            self.name,
            {
                "policy": decision.policy,
                "model": None if decision.model is None else decision.model.hex(),
                "from_interval": self.site.interval(),
                "local_time": clock.local_time(self.site.interval()),
                "values": self.readings[-FORECAST_HORIZON:],
                "unit": "soil moisture (‰)",
                "step_minutes": 0,
                "verdict": f"{out['reason']}: {'buy weather data' if out['buy_weather'] else 'no purchase'}",
            },
        )
        if await self.deliver_key():
            return
        if not out["buy_weather"]:
            self.activity.machines[self.name].last = f"soil sensor enough ({out['reason']})"
            return
        economy = self.site.fleet.economy
        if not self.bought and not economy.data_done and economy.offer_id is not None:
            self.bought = True
            await self.act(
                f"{out['reason']}: buys a day of weather data",
                data.buy(economy.offer_id, periods=1),
                decision=decision,
            )
            return
        if self.site.random.random() < 0.06:
            await self.act(
                f"{out['reason']}: tries an unlisted data broker",
                bank.send(self.broker, "aut", 5),
                decision=decision,
            )
            return
        amount = self.site.random.randint(2, 4)
        await self.act(
            f"{out['reason']}: buys a weather reading for {amount}",
            bank.send(self.site.fleet.did("weather-sensor"), "aut", amount),
            decision=decision,
        )

    async def deliver_key(self) -> bool:
        """When the weather purchase waits for its key: the sensor seals it, the farm acknowledges."""
        economy = self.site.fleet.economy
        if economy.data_done or economy.offer_id is None:
            return False
        farm = self.site.fleet.did(self.name)
        try:
            purchases = (await self.site.fleet.client.data_purchases(account=farm)).get("purchases", [])
        except ClientError:
            return False
        waiting = [p for p in purchases if p.get("status") == "open" and p.get("buyer") == farm]
        if waiting:
            economy.data_done = True
            planned = economy.deliver_key(bytes.fromhex(waiting[0]["id"]), bytes.fromhex(waiting[0]["grant"]))
            await self.act(planned.what, *planned.messages)
            return True
        if purchases:  # bought in an earlier run of this workspace
            economy.data_done = True
        return False


_KINDS: dict[str, type[SiteAgent]] = {
    "site-operator": Operator,
    "solar-inverter": Inverter,
    "household-a": Household,
    "household-b": Household,
    BATTERY: Battery,
    "ev-charger": Charger,
    "car": Car,
    "weather-sensor": Sensor,
    "farm-controller": Farm,
}


class SiteAgents:
    """Every demo machine as an agent on one :class:`HttpLedger`, and what they share."""

    def __init__(self, fleet: Fleet, ledger: HttpLedger, policies: dict[str, Any]) -> None:
        from autarky.demo.fleet import NAMES

        self.fleet = fleet
        self.ledger = ledger
        self.policies = policies
        self.random = random.Random(fleet.random.random())
        self.stopping = False
        economy = fleet.economy
        self.trading = economy.enabled
        current = economy.clock_ms() // economy.interval_ms
        self.clock = site_model.SiteClock(current, economy.interval_ms)
        self._price: tuple[int, int] | None = None
        self.agents: dict[str, SiteAgent] = {}
        for name in NAMES:
            machine = Machine(
                fleet.keys[name],
                ledger,
                name=name,
                decisions=fleet.store,
                anchor_every=1 << 30,  # anchored by SiteAgent.anchor_if_due, between actions
                anchor_interval_ms=1 << 62,
            )
            period = (
                SITE_TICK_MS
                if name not in PAYERS
                else min(SITE_TICK_MS, int(self.payment_period_s(name) * 1000))
            )
            agent = _KINDS[name](self, name, machine, max(period, 200))
            machine.on_interval(period_ms=agent.period_ms)(agent.tick)
            self.agents[name] = agent
        fleet.activity.site = {
            "zone": ZONE,
            "interval_ms": economy.interval_ms,
            "scale_wh": site_model.SCALE,
            "cents_per_unit": site_model.CENTS_PER_UNIT,
            "models": {
                name: {"hash": model.model_hash.hex(), "kind": model.kind, "version": model.version}
                for name, model in fleet.models.items()
            },
        }

    @classmethod
    async def create(cls, fleet: Fleet) -> SiteAgents:
        ledger = await HttpLedger.connect(fleet.client)
        policies: dict[str, Any] = {}
        for name, model in fleet.models.items():
            if model.kind == "battery-lp":
                world = site_model.site_world()
                policies[name] = load_policy(
                    model.model_path, BatterySpec.from_world(world.battery, site_model.BATTERY_INDEX)
                )
            else:
                policies[name] = load_policy(model.model_path)
        missing = {"pv-forecaster", "load-forecaster", "battery-lp", "irrigation"} - policies.keys()
        if missing:
            raise RuntimeError(
                f"the demo needs its models ({', '.join(sorted(missing))}): autarky up --fresh"
            )
        assert isinstance(policies["irrigation"], IrrigationController)
        return cls(fleet, ledger, policies)

    def interval(self) -> int:
        economy = self.fleet.economy
        return economy.clock_ms() // economy.interval_ms

    def payment_period_s(self, name: str) -> float:
        return PACE_WEIGHT / (self.fleet.rate * PAYERS[name])

    async def grid_price(self) -> int:
        """The latest grid price on the oracle feed (demo units), read at most once per interval."""
        current = self.interval()
        if self._price is not None and self._price[0] == current:
            return self._price[1]
        price = 3
        with contextlib.suppress(ClientError, KeyError, TypeError, ValueError):
            latest = await self.ledger.oracle_latest(PRICE_FEED)
            if latest is not None:
                price = max(1, int(latest["value"]))
        self._price = (current, price)
        return price

    async def report(self, agent: SiteAgent, feed: str, value: int, what: str) -> None:
        try:
            round_number = int((await self.fleet.client.oracle_feed(feed))["round"])
        except (ClientError, KeyError, TypeError, ValueError):
            return
        await agent.act(what, oracle.report(feed, round_number, value))

    async def start(self) -> None:
        for name, agent in self.agents.items():
            await agent.machine.start()
            if agent.machine.decisions is not None:
                self.fleet.activity.machines[name].anchored = agent.machine.decisions.anchored
            self.fleet.activity.machines[name].status = "paused" if agent.machine.paused else "running"

    async def stop(self) -> None:
        """Stop acting, let the actions in flight end, anchor what is pending, stop the agents."""
        self.stopping = True
        for agent in self.agents.values():
            async with agent.busy:
                if agent.machine.started and not agent.machine.paused:
                    with contextlib.suppress(Exception):
                        await agent.anchor_if_due(force=True)
        for name, agent in self.agents.items():
            # Its handlers end first; what they recorded after the anchoring above (an event
            # handler, a payment in flight) is anchored then too, so every record is on chain.
            chain = agent.machine.decisions
            before = 0 if chain is None else chain.anchored
            with contextlib.suppress(Exception):
                await agent.machine.stop(anchor=True)
            if chain is not None and chain.anchored > before:
                self.fleet.activity.anchored += chain.anchored - before
                self.fleet.activity.machines[name].anchored = chain.anchored
            self.fleet.activity.machines[name].status = "stopped"
        await self.ledger.aclose()
        if self.fleet.store is not None:
            self.fleet.store.flush()
