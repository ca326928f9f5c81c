"""The demo fleet of ``autarky up``: a small microgrid site whose machines trade on the ledger.

The site operator owns seven machines, registers each on the ledger (the machine co-signs its
registration), installs its guardrails and funds it. Then every machine signs and submits its own
transactions through :class:`~autarky.web.client.AutarkyClient`, against the node's HTTP API:

=================  ========================  =====================================================
machine            kind                      what it does
=================  ========================  =====================================================
solar-inverter     solar-inverter            sells energy; sends its earnings to the operator
household-a        home-energy-manager       pays the inverter per metered kWh
household-b        home-energy-manager       the same; now and then tries a heat-pump boost above
                                             its per-transaction cap (``bank.per_tx_cap``)
ev-charger         ev-charger                sells charging sessions; buys energy in bulk from the
                                             inverter and sometimes runs into its window limit
                                             (``bank.window_limit``)
car                electric-vehicle          pays the charger per session; sessions above 40 need the
                                             operator's co-signature, which it usually gets
                                             (``bank.cosign_required`` when it does not)
weather-sensor     weather-station           sells readings; sends its earnings to the operator
farm-controller    irrigation-controller     pays the sensor per reading; once in a while tries a
                                             data broker that is not on its allowlist
                                             (``bank.counterparty_not_allowed``)
=================  ========================  =====================================================

The refusals are the point: they are real transactions, refused by the ledger with their codes,
and they show up on the dashboard and in the summary. The operator tops up buyers that run low, so
the demo runs for as long as you like. Pace: ``rate`` transactions per second in total (one in
flight per machine at most); choices are drawn from a seeded random generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from autarky.crypto.keys import SigningKey
from autarky.demo.economy import SiteEconomy
from autarky.modules.bank import messages as bank
from autarky.web.client import AutarkyClient, ClientError, Submission

ASSET = "aut"
OWNER = "site-operator"


@dataclass(frozen=True, slots=True)
class MachineSpec:
    name: str
    kind: str
    maker: str
    model: str
    role: str
    capabilities: tuple[str, ...]
    funding: int
    """What the operator sends at registration (and tops up to when it runs low)."""
    topup_below: int
    settle_above: int | None = None
    """Sellers send what they hold above ``settle_keep`` to the operator once they hold this much
    (within their own per-transaction cap, see :func:`guardrails_for`)."""
    settle_keep: int = 20


MACHINES: tuple[MachineSpec, ...] = (
    MachineSpec(
        "solar-inverter",
        "solar-inverter",
        "SunWorks",
        "SW-10K",
        "sells solar energy",
        ("energy:sell",),
        funding=50,
        topup_below=0,
        settle_above=150,
    ),
    MachineSpec(
        "household-a",
        "home-energy-manager",
        "Homely",
        "HEM-2",
        "buys energy for home A",
        ("energy:buy", "meter"),
        funding=1_500,
        topup_below=300,
    ),
    MachineSpec(
        "household-b",
        "home-energy-manager",
        "Homely",
        "HEM-2",
        "buys energy for home B",
        ("energy:buy", "meter", "heat-pump"),
        funding=1_500,
        topup_below=300,
    ),
    MachineSpec(
        "ev-charger",
        "ev-charger",
        "VoltPost",
        "VP-22",
        "sells charging, buys energy",
        ("charge:sell", "energy:buy"),
        funding=1_000,
        topup_below=250,
    ),
    MachineSpec(
        "car",
        "electric-vehicle",
        "Ampere",
        "A-3",
        "pays for charging",
        ("charge:buy",),
        funding=1_500,
        topup_below=300,
    ),
    MachineSpec(
        "weather-sensor",
        "weather-station",
        "Aeolus",
        "WX-5",
        "sells weather readings",
        ("data:sell", "weather"),
        funding=20,
        topup_below=0,
        settle_above=40,
        settle_keep=10,
    ),
    MachineSpec(
        "farm-controller",
        "irrigation-controller",
        "AgriFlow",
        "IC-8",
        "buys weather readings",
        ("data:buy", "irrigation"),
        funding=600,
        topup_below=100,
    ),
)

NAMES: tuple[str, ...] = (OWNER, *(spec.name for spec in MACHINES))


def guardrails_for(name: str, did: Callable[[str], str]) -> dict[str, Any]:
    """The guardrails the operator installs on each machine (see ``modules/bank/README.md``)."""

    def limits(per_tx: int | None, per_window: int | None, cosign_above: int | None) -> dict[str, Any]:
        return {ASSET: {"per_tx": per_tx, "per_window": per_window, "cosign_above": cosign_above}}

    operator = did(OWNER)
    table: dict[str, dict[str, Any]] = {
        "solar-inverter": {
            "window_blocks": 100,
            "limits": limits(5_000, None, None),
            "allowlist": [operator],
        },
        "household-a": {
            "window_blocks": 100,
            "limits": limits(40, 400, None),
            "allowlist": [did("solar-inverter")],
        },
        "household-b": {
            "window_blocks": 100,
            "limits": limits(40, 400, None),
            "allowlist": [did("solar-inverter")],
        },
        "ev-charger": {
            "window_blocks": 40,
            "limits": limits(80, 150, None),
            "allowlist": sorted([did("solar-inverter"), operator]),
        },
        "car": {"window_blocks": 100, "limits": limits(60, 900, 40), "allowlist": [did("ev-charger")]},
        "weather-sensor": {
            "window_blocks": 100,
            "limits": limits(1_000, None, None),
            "allowlist": [operator],
        },
        "farm-controller": {
            "window_blocks": 100,
            "limits": limits(10, 150, None),
            "allowlist": [did("weather-sensor")],
        },
    }
    return table[name]


# -- statistics -----------------------------------------------------------------------------------------


@dataclass
class MachineStats:
    committed: int = 0
    failed: int = 0
    last: str = ""


@dataclass
class FleetStats:
    """What the fleet did in this run. ``failed`` counts transactions refused at admission or in a block."""

    committed: int = 0
    failed: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    machines: dict[str, MachineStats] = field(default_factory=dict)
    recent: deque[tuple[float, str, str, bool]] = field(default_factory=lambda: deque(maxlen=8))
    started: float = field(default_factory=time.monotonic)

    def record(self, name: str, what: str, ok: bool, code: str | None = None) -> None:
        machine = self.machines.setdefault(name, MachineStats())
        if ok:
            self.committed += 1
            machine.committed += 1
        else:
            self.failed += 1
            machine.failed += 1
            self.codes[code or "unknown"] += 1
        text = what if ok else f"{what}: refused, {code}"
        machine.last = text
        self.recent.append((time.monotonic() - self.started, name, text, ok))


# -- the fleet ------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Action:
    machine: str
    messages: tuple[dict[str, Any], ...]
    what: str
    cosigners: tuple[SigningKey, ...] = ()


class Fleet:
    """The demo machines, driving real transactions through ``client`` until told to stop."""

    def __init__(
        self,
        client: AutarkyClient,
        keys: Mapping[str, SigningKey],
        *,
        rate: float = 4.0,
        seed: int | None = None,
        log: Callable[[str], None] = lambda _: None,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        """``clock_ms``: the site's clock for the economy's intervals (default the wall clock; a test
        passes the node's virtual clock)."""
        self.client = client
        self.keys = dict(keys)
        self.rate = rate
        self.random = random.Random(seed)
        self.log = log
        self.stats = FleetStats()
        self.balances: dict[str, int] = {name: 0 for name in NAMES}
        self._busy: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._broker = SigningKey.generate().did  # a data broker the farm controller is not allowed to pay
        self.economy = SiteEconomy(client, self.keys, OWNER, self.random, log)
        if clock_ms is not None:
            self.economy.clock_ms = clock_ms

    def did(self, name: str) -> str:
        return self.keys[name].did

    @property
    def specs(self) -> dict[str, MachineSpec]:
        return {spec.name: spec for spec in MACHINES}

    # -- set-up -------------------------------------------------------------------------------------
    async def bootstrap(self) -> int:
        """Register, guard and fund every machine the ledger does not know yet; return how many."""
        operator = self.keys[OWNER]
        registered = 0
        for spec in MACHINES:
            account = await self.client.account(self.did(spec.name))
            if account.identity is not None:
                continue
            messages = [
                {
                    "type": "identity/register",
                    "did": self.did(spec.name),
                    "kind": spec.kind,
                    "maker": spec.maker,
                    "model": spec.model,
                    "capabilities": list(spec.capabilities),
                    "metadata": {"name": spec.name, "role": spec.role, "site": "demo-microgrid"},
                },
                bank.set_guardrails(self.did(spec.name), guardrails_for(spec.name, self.did)),
                bank.send(self.did(spec.name), ASSET, spec.funding),
            ]
            result = await self.client.submit_messages(operator, messages, cosigners=[self.keys[spec.name]])
            if not (result.committed and result.ok):
                raise RuntimeError(f"registering {spec.name} failed: {result.code} {result.detail}")
            registered += 1
            self.log(f"registered {spec.name} ({spec.kind}) with guardrails, funded {spec.funding} {ASSET}")
        for planned in await self.economy.bootstrap():
            result = await self.client.submit_messages(self.keys[planned.machine], planned.messages)
            if not (result.committed and result.ok):
                raise RuntimeError(f"{planned.machine} {planned.what} failed: {result.code} {result.detail}")
            if planned.messages[0]["type"] == "data/offer":
                self.economy.offer_placed(result.tx_hash)
            self.log(f"{planned.machine} {planned.what}")
        for planned in self.economy.baselines():  # after the registrations above have committed
            result = await self.client.submit_messages(self.keys[planned.machine], planned.messages)
            if not (result.committed and result.ok):
                raise RuntimeError(f"{planned.machine} {planned.what} failed: {result.code} {result.detail}")
        return registered

    async def refresh_balances(self) -> None:
        for name in NAMES:
            with contextlib.suppress(ClientError):
                self.balances[name] = (await self.client.balances(self.did(name))).get(ASSET, 0)

    # -- choosing what happens next -----------------------------------------------------------------
    def _maintenance(self) -> Action | None:
        """An operator top-up or a seller's settlement, when one is due."""
        if OWNER not in self._busy:
            for spec in MACHINES:
                if (
                    spec.topup_below
                    and self.balances[spec.name] < spec.topup_below
                    and spec.name not in self._busy
                ):
                    amount = spec.funding
                    self.balances[spec.name] += amount  # optimistic, so one low balance gets one top-up
                    return Action(
                        OWNER,
                        (bank.send(self.did(spec.name), ASSET, amount),),
                        f"tops up {spec.name} with {amount}",
                    )
        for spec in MACHINES:
            if spec.settle_above is None or spec.name in self._busy:
                continue
            if self.balances[spec.name] >= spec.settle_above:
                amount = self.balances[spec.name] - spec.settle_keep
                self.balances[spec.name] -= amount
                return Action(
                    spec.name,
                    (bank.send(self.did(OWNER), ASSET, amount),),
                    f"settles {amount} to the operator",
                )
        return None

    def _trade(self) -> Action | None:
        """A machine's own trade, drawn by weight among the idle machines."""
        behaviours: list[tuple[str, float, Callable[[], Action]]] = [
            ("household-a", 3, self._household_a),
            ("household-b", 3, self._household_b),
            ("car", 3, self._car),
            ("ev-charger", 1.5, self._ev_charger),
            ("farm-controller", 3, self._farm_controller),
        ]
        idle = [(weight, make) for name, weight, make in behaviours if name not in self._busy]
        if not idle:
            return None
        make = self.random.choices([make for _, make in idle], weights=[weight for weight, _ in idle])[0]
        return make()

    def _household_a(self) -> Action:
        return self._energy_purchase("household-a")

    def _household_b(self) -> Action:
        if self.random.random() < 0.12:
            amount = self.random.randint(45, 60)
            return Action(
                "household-b",
                (bank.send(self.did("solar-inverter"), ASSET, amount),),
                f"tries a heat-pump boost of {amount}",
            )
        return self._energy_purchase("household-b")

    def _energy_purchase(self, name: str) -> Action:
        tenths_kwh = self.random.randint(3, 12)
        price = self.random.randint(4, 7)  # per kWh
        amount = max(1, tenths_kwh * price // 10)
        return Action(
            name,
            (bank.send(self.did("solar-inverter"), ASSET, amount),),
            f"buys {tenths_kwh / 10:.1f} kWh for {amount}",
        )

    def _car(self) -> Action:
        charger = self.did("ev-charger")
        roll = self.random.random()
        if roll < 0.08:
            amount = self.random.randint(45, 55)
            return Action(
                "car",
                (bank.send(charger, ASSET, amount),),
                f"fast-charges for {amount} without a co-signature",
            )
        if roll < 0.3:
            amount = self.random.randint(41, 55)
            return Action(
                "car",
                (bank.send(charger, ASSET, amount),),
                f"fast-charges for {amount} (operator co-signs)",
                cosigners=(self.keys[OWNER],),
            )
        amount = self.random.randint(12, 39)  # with the fee of 1, at most the co-signature threshold
        return Action("car", (bank.send(charger, ASSET, amount),), f"charges for {amount}")

    def _ev_charger(self) -> Action:
        amount = self.random.randint(40, 80)
        return Action(
            "ev-charger",
            (bank.send(self.did("solar-inverter"), ASSET, amount),),
            f"buys {amount} of energy in bulk",
        )

    def _farm_controller(self) -> Action:
        if self.random.random() < 0.06:
            return Action(
                "farm-controller", (bank.send(self._broker, ASSET, 5),), "tries an unlisted data broker"
            )
        amount = self.random.randint(2, 4)
        return Action(
            "farm-controller",
            (bank.send(self.did("weather-sensor"), ASSET, amount),),
            f"buys a weather reading for {amount}",
        )

    # -- running --------------------------------------------------------------------------------------
    async def _perform(self, action: Action) -> None:
        name = action.machine
        try:
            result: Submission = await self.client.submit_messages(
                self.keys[name], action.messages, cosigners=action.cosigners, wait=True
            )
        except ClientError as exc:
            self.stats.record(name, action.what, False, exc.code)
        else:
            if result.committed:
                code = (result.receipt or {}).get("code")
                self.stats.record(name, action.what, result.ok, None if result.ok else code)
            else:
                self.stats.record(name, action.what, False, result.code or "node.timeout")
        finally:
            self._busy.discard(name)

    def _start(self, action: Action) -> None:
        self._busy.add(action.machine)
        task = asyncio.create_task(self._perform(action), name=f"demo-{action.machine}")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def run(self, stop: asyncio.Event) -> None:
        """Submit about ``rate`` transactions a second until ``stop`` is set; then let those in flight end."""
        interval = 1.0 / self.rate
        next_balances = 0.0
        loop = asyncio.get_running_loop()
        next_tick = loop.time()
        while not stop.is_set():
            if loop.time() >= next_balances:
                await self.refresh_balances()
                for planned in await self.economy.due(self._busy):
                    self._start(Action(planned.machine, planned.messages, planned.what))
                next_balances = loop.time() + 1.0
            action = self._maintenance() or self._trade()
            if action is not None:
                self._start(action)
            next_tick += interval
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), max(0.0, next_tick - loop.time()))
        await self.drain()

    async def drain(self, timeout_s: float = 10.0) -> None:
        """Let the transactions in flight finish (they are committed within a block or two)."""
        if self._tasks:
            _, pending = await asyncio.wait(set(self._tasks), timeout=timeout_s)
            for task in pending:
                task.cancel()
        await self.refresh_balances()
