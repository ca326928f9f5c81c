"""The demo fleet of ``autarky up``: a small microgrid site whose machines are autonomous agents.

The site operator owns eight machines, registers each on the ledger (the machine co-signs its
registration), installs its guardrails and funds it; it also anchors the training data of the
site's models and registers the models (:mod:`autarky.demo.models`). Then every machine runs as an
:class:`autarky.agent.Machine` over the node's HTTP API (:class:`~autarky.agent.http_ledger.HttpLedger`):
it senses, decides with its policy (``machine.decide``), pre-checks every transaction against its
guardrails before signing, submits, and records the decision (``decisions.sqlite`` in the
workspace, anchored on chain in batches). What each one does (:mod:`autarky.demo.agents`):

=================  ========================  =====================================================
machine            kind                      what it does
=================  ========================  =====================================================
solar-inverter     solar-inverter            forecasts its output (PvForecaster) and asks it in
                                             the auction; meters its export; settles earnings
household-a        home-energy-manager       forecasts its load (LoadForecaster) and bids it
household-b        home-energy-manager       the same; now and then tries a heat-pump boost above
                                             its per-transaction cap (``bank.per_tx_cap``)
home-battery       home-battery              plans charge and discharge with an LP
                                             (BatteryScheduler) and bids or asks by its plan
ev-charger         ev-charger                sells charging sessions; bids its demand and buys
                                             energy in bulk, sometimes beyond its window limit
                                             (``bank.window_limit``)
car                electric-vehicle          pays the charger per session; sessions above 40 need the
                                             operator's co-signature, which it usually gets
                                             (``bank.cosign_required`` when it does not)
weather-sensor     weather-station           reports the weather feed; sells its readings
farm-controller    irrigation-controller     decides irrigation (IrrigationController) and buys
                                             weather data when its soil sensor is not enough; once
                                             in a while tries a data broker that is not on its
                                             allowlist (``bank.counterparty_not_allowed``)
=================  ========================  =====================================================

The refusals are the point: the agent's pre-check (``POST /api/v1/tx/check``) refuses them with
the bank's codes and an explanation in words, and they are never signed; they show up in the live
view, the summary and the dashboard's ``/agents`` page. The operator tops up buyers that run low,
so the demo runs for as long as you like. Choices are drawn from a seeded random generator.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from autarky.crypto.keys import SigningKey
from autarky.demo.activity import Activity
from autarky.demo.economy import SiteEconomy
from autarky.modules.bank import messages as bank
from autarky.web.client import AutarkyClient, ClientError

if TYPE_CHECKING:
    from autarky.demo.models import DemoModel
    from autarky.provenance import DecisionStore

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
        "home-battery",
        "home-battery",
        "Cellar",
        "CB-10",
        "stores energy, trades it by its plan",
        ("energy:buy", "energy:sell", "storage"),
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
        "home-battery": {
            "window_blocks": 100,
            "limits": limits(400, None, None),
            "allowlist": [operator],
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


# -- the fleet ------------------------------------------------------------------------------------------


class Fleet:
    """The demo machines: set up on the ledger by the operator, then run as agents until told to stop."""

    def __init__(
        self,
        client: AutarkyClient,
        keys: Mapping[str, SigningKey],
        *,
        rate: float = 4.0,
        seed: int | None = None,
        log: Callable[[str], None] = lambda _: None,
        clock_ms: Callable[[], int] | None = None,
        models: Mapping[str, DemoModel] | None = None,
        store: DecisionStore | None = None,
        activity: Activity | None = None,
    ) -> None:
        """``clock_ms``: the site's clock for the economy's intervals (default the wall clock; a test
        passes the node's virtual clock). ``models``: the workspace's trained models
        (:func:`autarky.demo.models.ensure_models`); ``store``: where decision records go (default
        in memory)."""
        self.client = client
        self.keys = dict(keys)
        self.rate = rate
        self.random = random.Random(seed)
        self.seed = 0 if seed is None else seed
        self.log = log
        self.models = dict(models or {})
        self.store = store
        self.activity = activity if activity is not None else Activity()
        self.balances: dict[str, int] = {name: 0 for name in NAMES}
        self.economy = SiteEconomy(client, self.keys, OWNER, self.random, log)
        if clock_ms is not None:
            self.economy.clock_ms = clock_ms
        self.agents: Any = None
        for spec in (_OPERATOR_SPEC, *MACHINES):
            self.activity.add_machine(spec.name, self.did(spec.name), spec.kind, spec.role)

    def did(self, name: str) -> str:
        return self.keys[name].did

    @property
    def specs(self) -> dict[str, MachineSpec]:
        return {spec.name: spec for spec in MACHINES}

    # -- set-up -------------------------------------------------------------------------------------
    async def bootstrap(self) -> int:
        """Register, guard and fund every machine the ledger does not know yet; set up the site's
        feeds, meters and data offer; register the models. Return how many machines were registered."""
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
        if self.models:
            from autarky.demo.models import register_models

            await register_models(self.client, operator, dict(self.models), self.log)
        return registered

    async def refresh_balances(self) -> None:
        for name in NAMES:
            with contextlib.suppress(ClientError):
                self.balances[name] = (await self.client.balances(self.did(name))).get(ASSET, 0)

    # -- running --------------------------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Run every machine as an agent until ``stop`` is set; then let the actions in flight end,
        anchor every machine's pending decision records and stop the agents."""
        from autarky.demo.agents import SiteAgents

        agents = self.agents = await SiteAgents.create(self)
        try:
            await agents.start()
            while not stop.is_set():
                await self.refresh_balances()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 1.0)
        finally:
            await agents.stop()
            await self.refresh_balances()


_OPERATOR_SPEC = MachineSpec(OWNER, "operator", "", "", "owns the site's machines", (), 0, 0)
