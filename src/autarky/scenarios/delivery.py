"""Delivery robots for a day: tasks, batteries, chargers rented by the slot, routing data bought by the hour.

Machines: ``--machines`` delivery robots, one charging operator per 25 robots (five chargers each),
one routing service per 250 robots, one fleet owner per 100 robots.

The world (``autarky.world``): each robot's delivery requests (08:00-20:00, routes of 0.5-6 km,
payloads of 1-20 kg), the energy a route takes (``robot_energy_wh``: distance, payload, the cold),
travel time at cruising speed, and how much longer a route is without live routing data (road
works, closures: 5-40 %).

**Charging: lease slots, not metering tariffs.** A charger's scarce good is its plug's time: one
robot at a time. The ``lease`` module sells exactly that: a charger is a resource with a calendar,
a reservation of 15-minute periods can never overlap another (``lease.slot_taken``), the whole price
waits in escrow, the operator confirms the start, periods are paid as they end, and a robot that is
full early ends the lease and gets the periods that have not started back. Metering bills energy
per meter registered to one subject at an infrastructure, so a shared plug would need a meter per
robot or a registration per session, and it has no notion of a reserved slot.

Every 15 minutes each robot works through its requests (a route with live routing data is the
shortest one; without, it carries the detour), and when its battery falls below a third it
reserves the earliest free slot of its operator's chargers (``lease/reserve``, decision
``charge-when-low/1``; from the next slot up to an hour ahead, its own charger first, then the
others in turn). The robots of an operator act in the same block and see only committed
reservations, so two may reach for the same slot: the second's pre-check refuses it
(``lease.slot_taken``, nothing signed) and it tries the next free charger or slot, up to four tries
in all. It charges at 1 kW during the slot and ends the lease early when full. Every
hour it decides (``routing-value/1``) whether the requests ahead are worth an hour of the routing
service's live stream, bought through the ``data`` module (escrow, grant, sealed key, checked and
acknowledged).
"""

from __future__ import annotations

import functools
import itertools
from collections import Counter
from collections.abc import Container, Iterator, Sequence
from typing import Any

import numpy as np

from autarky import world
from autarky.agent import ActionRefused, LedgerEvent, Machine
from autarky.encoding import canonical_encode
from autarky.modules.lease import keeper as lease_keeper
from autarky.modules.lease import messages as lease
from autarky.scenarios._datasale import DataBuyer, DataSeller, count_sales
from autarky.scenarios.base import HOUR_MS, Scenario, ScenarioContext, scenario
from autarky.scenarios.genesis import ASSET, GenesisBuilder, batched
from autarky.scenarios.report import Section, table

SLOT_MS = 15 * 60_000
ROBOTS_PER_OPERATOR = 25
CHARGERS_PER_OPERATOR = 5
ROBOTS_PER_ROUTER = 250
ROBOTS_PER_FLEET = 100
TASKS_PER_DAY = 24
CAPACITY_WH = world.ROBOT_CAPACITY_WH
CHARGE_W = 1_000.0
SLOT_PRICE = 15
"""aut per 15-minute charging slot."""
ROUTING_PRICE = 25
"""aut per hour of live routing data."""
MINUTE_VALUE = 1
"""What a robot's minute is worth (aut): the routing policy's yardstick."""
HANDLING_MS = 5 * 60_000
SLOTS_AHEAD = 4
"""A robot books a charger from the next slot (15 minutes ahead) up to this many slots ahead."""
RESERVE_TRIES = 4
"""Reservations a robot tries in one tick: another robot may have taken a slot that looked free in
the same block (the pre-check refuses it: ``lease.slot_taken``), then it tries the next candidate."""
START_MS = 1_781_478_000_000
"""2026-06-15 00:00 at the site (UTC+1)."""


def charge_when_low(inputs: Any) -> Any:
    """``charge-when-low/1``: below a third of the battery, charge back to 90 % (whole slots)."""
    soc, capacity = inputs["soc_wh"], inputs["capacity_wh"]
    if soc * 3 >= capacity:
        return {"charge": False, "slots": 0}
    need = capacity * 9 // 10 - soc
    per_slot = inputs["charge_w"] * SLOT_MS // HOUR_MS
    return {"charge": True, "slots": min(8, max(1, -(-need // per_slot)))}


def routing_value(inputs: Any) -> Any:
    """``routing-value/1``: buy the next hour of routing data when the detour minutes it is expected
    to save (mean detour 22 % of the requests' distance) are worth more than its price."""
    detour_m = inputs["distance_m"] * 22 // 100
    minutes = detour_m * 1000 // (1600 * 60)  # at 1.6 m/s
    value = minutes * inputs["minute_value"]
    return {"buy": value > inputs["price"], "expected_value": value}


def free_slots(
    calendars: Sequence[tuple[bytes, Sequence[tuple[int, int, bytes]]]],
    now_ms: int,
    slots: int,
    taken: Container[bytes] = (),
) -> Iterator[tuple[int, bytes]]:
    """Where a robot may charge: ``(start_ms, offer)`` for the next ``SLOTS_AHEAD`` slot starts, the
    earliest first, and at each start the chargers in ``calendars`` order (``(offer, [(start_ms,
    end_ms, lease)]``, the robot's own charger first) whose calendar is free for ``slots`` slots,
    leaving out the offers in ``taken`` (the pre-check refused them in this block). Lazy: a robot
    looks at ``taken`` as it goes."""
    for ahead in range(1, SLOTS_AHEAD + 1):
        start = now_ms + ahead * SLOT_MS
        end = start + slots * SLOT_MS
        for offer, booked in calendars:
            if offer not in taken and all(e <= start or s >= end for s, e, _ in booked):
                yield start, offer


def _routing_content(router: int, hour_ms: int) -> bytes:
    return canonical_encode({"router": router, "hour_ms": hour_ms})


class Rule:
    """A decision policy that is a plain rule (no model file)."""

    def __init__(self, name: str, function: Any) -> None:
        self.name = name
        self.model_hash: bytes | None = None
        self.function = function

    def decide(self, inputs: Any) -> Any:
        return self.function(inputs)


@scenario
class Delivery(Scenario):
    name = "delivery"
    summary = "delivery robots renting charger slots (lease) and buying routing data (data module)"
    tail_ms = 3 * HOUR_MS

    day_start_ms = START_MS

    def build_genesis(self, g: GenesisBuilder) -> None:
        n = max(1, self.config.machines)
        self.n = n
        fleets = [
            g.actor(f"fleet-{k}", "fleet-owner", balance=100_000) for k in range(-(-n // ROBOTS_PER_FLEET))
        ]
        self.operators = [
            g.actor(f"chargers-{k}", "charging-operator", balance=1_000)
            for k in range(-(-n // ROBOTS_PER_OPERATOR))
        ]
        self.routers = [
            g.actor(f"routing-{k}", "routing-service", balance=1_000)
            for k in range(-(-n // ROBOTS_PER_ROUTER))
        ]
        self.robots = [
            g.actor(f"robot-{i}", "delivery-robot", owner=fleets[i // ROBOTS_PER_FLEET], balance=20_000)
            for i in range(n)
        ]
        seed = self.config.seed
        days = -(-self.config.hours // 24) + 1
        tasks = world.delivery_tasks(seed, np.arange(n), self.start_ms, days, TASKS_PER_DAY)
        keep = (tasks.request_ms >= self.start_ms) & (tasks.request_ms < self.end_ms)
        self.tasks: list[list[tuple[int, float, float, float]]] = [[] for _ in range(n)]
        for r, t, d, p, f in zip(
            tasks.robot[keep],
            tasks.request_ms[keep],
            tasks.distance_m[keep],
            tasks.payload_kg[keep],
            tasks.detour_factor[keep],
            strict=True,
        ):
            self.tasks[int(r)].append((int(t), float(d), float(p), float(f)))
        hours = world.interval_times_ms(self.start_ms, self.config.hours + 4, HOUR_MS)
        self.hours = hours
        self.temperature = world.weather(seed, 0, hours).temperature_c[0]
        rng = np.random.default_rng(seed)
        self.soc = CAPACITY_WH * (0.4 + 0.5 * rng.random(n))

    def temp_at(self, time_ms: int) -> float:
        return float(self.temperature[min(len(self.hours) - 1, max(0, (time_ms - self.start_ms) // HOUR_MS))])

    # -- machines -----------------------------------------------------------------------------------

    def setup(self, ctx: ScenarioContext) -> None:
        self.ctx = ctx
        self.sales = count_sales(ctx)
        self.counts: Counter[str] = Counter()
        self.energy_wh = {"driven": 0.0, "charged": 0.0, "detour": 0.0}
        self.catalogue: list[list[tuple[str, str, bytes]]] = [[] for _ in self.operators]
        self.lease_paid = 0
        self.lease_refunded = 0
        self.charges: dict[bytes, dict[str, Any]] = {}  # lease id -> the robot's charging session
        ctx.ledger.subscribe("lease.confirmed", self._confirmed)
        ctx.ledger.subscribe("lease.paid", lambda e: self._add("lease_paid", e))
        ctx.ledger.subscribe("lease.refunded", lambda e: self._add("lease_refunded", e))
        for k, actor in enumerate(self.operators):
            self._operator(ctx.machine(actor), k)
        self.sellers = [
            DataSeller(
                ctx,
                ctx.machine(actor),
                name=f"routing/city-{k}",
                description="live road works and closures for route planning, by the hour",
                price=ROUTING_PRICE,
                content=functools.partial(_routing_content, k),
            )
            for k, actor in enumerate(self.routers)
        ]
        for i, actor in enumerate(self.robots):
            self._robot(ctx.machine(actor, anchor_interval_ms=12 * HOUR_MS), i)

    def _confirmed(self, event: LedgerEvent) -> None:
        """One subscription for every robot (not one handler per robot per event)."""
        charge = self.charges.pop(event.get("lease"), None)
        if charge is not None:
            charge["confirmed"] = True

    def _add(self, name: str, event: LedgerEvent) -> None:
        setattr(self, name, getattr(self, name) + int(event.get("amount", 0)))

    def _operator(self, m: Machine, k: int) -> None:
        reserved: list[bytes] = []
        self.ctx.ledger.subscribe(
            "lease.reserved", lambda e: reserved.append(e.get("lease")), ("provider", m.did)
        )

        @m.on_start
        async def offer(m: Machine) -> None:
            level = {"power_w": int(CHARGE_W)}
            messages = [
                lease.offer("charger", f"site-{k}/charger-{j}", SLOT_PRICE, ASSET, SLOT_MS, 1, 8, level)
                for j in range(CHARGERS_PER_OPERATOR)
            ]
            receipt = await m.submit(*messages)
            for event in receipt.events:
                if event.type == "lease.offered":
                    a: dict[str, Any] = dict(event.attributes)
                    self.catalogue[k].append((m.did, a["resource"], a["offer"]))

        @m.on_interval(period_ms=SLOT_MS, offset_ms=60_000)
        async def confirm(m: Machine) -> None:
            pending, reserved[:] = list(reserved), []
            for chunk in batched([lease.confirm_start(lease_id) for lease_id in pending]):
                await m.submit(*chunk)

    def _calendars(self, i: int) -> list[tuple[bytes, list[tuple[int, int, bytes]]]]:
        """Robot ``i``'s operator's chargers (offer, booked slots in committed state), its own first:
        robot ``i`` parks at charger ``i`` mod 5 and goes round from there."""
        chargers = self.catalogue[i // ROBOTS_PER_OPERATOR]
        home = i % len(chargers) if chargers else 0
        state = self.ctx.chain.state
        return [(o, lease_keeper.slots(state, p, r)) for p, r, o in chargers[home:] + chargers[:home]]

    def _robot(self, m: Machine, i: int) -> None:
        tasks = self.tasks[i]
        state: dict[str, Any] = {"next": 0, "free_at": self.start_ms, "charge": None, "routing_until": 0}
        charge_rule = Rule("charge-when-low/1", charge_when_low)
        routing_rule = Rule("routing-value/1", routing_value)
        buyer = DataBuyer(self.ctx, m, self._routing_arrived(state))

        def drive(until: int) -> None:
            """Do the requests that can start before ``until``, as the battery allows."""
            charge = state["charge"]
            while state["next"] < len(tasks):
                request, distance, payload, detour = tasks[state["next"]]
                begin = max(request, state["free_at"])
                if charge is not None and charge["start"] <= begin < charge["end"]:
                    begin = charge["end"]
                if begin >= until:
                    return
                factor = 1.0 if begin < state["routing_until"] else detour
                energy = float(world.robot_energy_wh(distance * factor, payload, self.temp_at(begin)))
                if self.soc[i] - energy < 0.05 * CAPACITY_WH:
                    self.counts["waits_for_charge"] += 1
                    return
                self.soc[i] -= energy
                self.energy_wh["driven"] += energy
                self.energy_wh["detour"] += energy - energy / factor
                state["free_at"] = begin + int(world.travel_ms(distance * factor)) + HANDLING_MS
                state["next"] += 1
                self.counts["tasks_done"] += 1

        def charge_until(now: int) -> None:
            charge = state["charge"]
            if charge is None or not charge["confirmed"]:
                return
            begin, end = max(charge["start"], charge["done_to"]), min(charge["end"], now)
            if end > begin:
                added = min(CHARGE_W * (end - begin) / HOUR_MS, CAPACITY_WH - self.soc[i])
                self.soc[i] += added
                self.energy_wh["charged"] += added
                charge["done_to"] = end

        @m.on_interval(period_ms=SLOT_MS, offset_ms=0)
        async def tick(m: Machine) -> None:
            now = m.now_ms()
            if now < self.start_ms:
                return
            charge_until(now)
            drive(now)
            charge = state["charge"]
            if charge is not None:
                if now >= charge["end"]:
                    state["charge"] = None
                elif (
                    charge["confirmed"]
                    and now >= charge["start"]
                    and self.soc[i] >= 0.95 * CAPACITY_WH
                    and charge["end"] - now >= SLOT_MS
                ):  # full: give the slots that have not started back
                    try:
                        await m.submit(lease.end(charge["lease"]))
                        charge["end"] = now + (-(now - charge["start"]) % SLOT_MS)
                        self.counts["early_ends"] += 1
                    except ActionRefused:
                        pass
                return
            if now >= self.end_ms:
                return
            decision = m.decide(
                charge_rule,
                {"soc_wh": int(self.soc[i]), "capacity_wh": int(CAPACITY_WH), "charge_w": int(CHARGE_W)},
            )
            if not decision.output["charge"]:
                return
            slots = int(decision.output["slots"])
            taken: set[bytes] = set()  # chargers another robot reserved in this block
            candidates = free_slots(self._calendars(i), now, slots, taken)
            for start, offer_id in itertools.islice(candidates, RESERVE_TRIES):
                try:
                    receipt = await m.submit(lease.reserve(offer_id, start, slots), decision=decision)
                except ActionRefused as refused:
                    if refused.code != "lease.slot_taken":
                        break
                    self.counts["slot_taken"] += 1
                    taken.add(offer_id)
                    continue  # another robot took it in this block: the next free slot or charger
                if receipt.ok:
                    reserved = [e for e in receipt.events if e.type == "lease.reserved"]
                    rental = dict(reserved[0].attributes)["lease"]
                    assert isinstance(rental, bytes)
                    state["charge"] = self.charges[rental] = {
                        "lease": rental,
                        "start": start,
                        "end": start + slots * SLOT_MS,
                        "confirmed": False,
                        "done_to": start,
                    }
                    self.counts["charging_sessions"] += 1
                    self.counts["charging_later"] += start > now + SLOT_MS
                return
            self.counts["no_free_charger"] += 1

        @m.on_interval(period_ms=HOUR_MS, offset_ms=5 * 60_000)
        async def routing(m: Machine) -> None:
            now = m.now_ms()
            if not self.start_ms <= now < self.end_ms:
                return
            ahead = [t for t in tasks[state["next"] :] if t[0] < now + HOUR_MS]
            inputs = {
                "distance_m": int(sum(t[1] for t in ahead)),
                "requests": len(ahead),
                "price": ROUTING_PRICE,
                "minute_value": MINUTE_VALUE,
            }
            decision = m.decide(routing_rule, inputs)
            offer = self.sellers[i // ROBOTS_PER_ROUTER].offer_id
            if decision.output["buy"] and offer is not None:
                await buyer.buy(m, offer, 1, decision)

    def _routing_arrived(self, state: dict[str, Any]) -> Any:
        async def arrived(m: Machine, content: bytes) -> None:
            state["routing_until"] = m.now_ms() + HOUR_MS
            self.counts["routing_hours"] += 1

        return arrived

    # -- metrics and report -------------------------------------------------------------------------

    def finish(self, ctx: ScenarioContext) -> dict[str, Any]:
        requested = sum(len(t) for t in self.tasks)
        return {
            "robots": self.n,
            "tasks": {
                "requested": requested,
                "done": self.counts["tasks_done"],
                "done_pct": round(100 * self.counts["tasks_done"] / requested, 1) if requested else 100.0,
                "waits_for_charge": self.counts["waits_for_charge"],
            },
            "energy_wh": {k: round(v) for k, v in self.energy_wh.items()},
            "charging": {
                "sessions": self.counts["charging_sessions"],
                "early_ends": self.counts["early_ends"],
                "slot_taken_retries": self.counts["slot_taken"],
                "no_free_charger": self.counts["no_free_charger"],
                "booked_a_later_slot": self.counts["charging_later"],
                "paid_to_operators": self.lease_paid,
                "refunded_to_robots": self.lease_refunded,
            },
            "routing_data": {
                "purchases": self.sales["bought"],
                "delivered_and_acknowledged": self.sales["delivered"],
                "refunded": self.sales["refunded"],
                "paid_to_routing": self.sales["paid_to_sellers"],
                "hours_with_routing": self.counts["routing_hours"],
            },
            "battery_end_mean_pct": round(float(self.soc.mean()) * 100 / CAPACITY_WH, 1),
        }

    def sections(self, metrics: dict[str, Any], series: dict[str, Any]) -> list[Section]:
        t, e, c, r = metrics["tasks"], metrics["energy_wh"], metrics["charging"], metrics["routing_data"]
        return [
            Section(
                "Deliveries and energy",
                table(
                    [
                        ("requests / done", f"{t['requested']} / {t['done']} ({t['done_pct']} %)"),
                        ("energy driven (Wh)", e["driven"]),
                        ("of which detours (Wh)", e["detour"]),
                        ("energy charged (Wh)", e["charged"]),
                        ("charging sessions (early ends)", f"{c['sessions']} ({c['early_ends']})"),
                        ("of which in a later slot than the next", c["booked_a_later_slot"]),
                        ("slots refused as taken by the pre-check, then retried", c["slot_taken_retries"]),
                        ("no free charger within the tries (asks again 15 min later)", c["no_free_charger"]),
                        ("paid to charging operators (aut)", c["paid_to_operators"]),
                        ("refunded for unused slots (aut)", c["refunded_to_robots"]),
                        ("routing hours bought / paid (aut)", f"{r['purchases']} / {r['paid_to_routing']}"),
                    ]
                ),
                "Charging is sold by the 15-minute slot through the lease module (one robot per plug, "
                "escrow, refund of the slots not started when a robot is full).",
            ),
        ]
