"""One day of a small microgrid, as the transactions its machines sign (seeded, replayable).

The site: solar inverters that sell their surplus, households that buy, each with its own
registered meter, and three reporters of a grid-price feed that caps the auction's price. Every
15-minute delivery interval ``k`` has two phases:

* **orders** (block time ``k·L - 1 min``, before the gate, so during interval ``k-1``): the
  reporters report the grid price for the feed's current round; each inverter asks its forecast
  at a limit price, each household bids its expected demand at its limit price (escrowed);
* **readings** (block time ``(k+1)·L``, the interval's end): every meter reports its cumulative
  register. What an inverter really delivered differs from its forecast (clouds, and now and then
  a fault), so settlement pays for metered delivery and charges the penalty for the rest.

The block at ``(k+1)·L`` also clears the book of ``k+1`` and settles ``k``. :class:`MicrogridDay`
only builds signed transactions (it tracks every sender's sequence itself; fees are zero), so the
same day runs on the in-memory chain (:func:`run_on_chain`) and through a real node over HTTP
(``tests/integration/test_microgrid_day.py``). :meth:`MicrogridDay.expected_energy` is what the
meters say, for checking the ledger's settlement against them.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.modules.market import messages as market
from autarky.modules.metering import messages as metering
from autarky.modules.oracle import messages as oracle

INTERVAL_MS = 900_000
INTERVALS_PER_DAY = 96
ORDER_LEAD_MS = 60_000
ZONE = "grid"
FEED = "grid-price/grid"
ASSET = "aut"
PENALTY_PER_UNIT = 1
FUNDING = 10_000_000


@dataclass
class GridMachine:
    name: str
    role: str
    """"solar" (sells) or "household" (buys)."""
    key: SigningKey
    meter: SigningKey
    peak_wh: int
    """Solar: output per interval at noon. Household: its base demand per interval."""
    limit_price: int
    register: int = 0
    """The meter's cumulative register (Wh)."""
    delivered: dict[int, int] = field(default_factory=dict)
    """Interval -> what the meter measured in it."""
    offered: dict[int, int] = field(default_factory=dict)
    """Interval -> the quantity of its order."""


class MicrogridDay:
    def __init__(
        self,
        seed: int = 1,
        solar: int = 4,
        households: int = 6,
        intervals: int = INTERVALS_PER_DAY,
        day_start_ms: int = 1_767_225_600_000,
        chain_id: str = "microgrid",
    ) -> None:
        assert day_start_ms % INTERVAL_MS == 0, "the day starts on an interval boundary"
        self.seed = seed
        self.rng = random.Random(seed)
        self.intervals = intervals
        self.day_start_ms = day_start_ms
        self.first_interval = day_start_ms // INTERVAL_MS + 1
        self.chain_id = chain_id
        self.operator = self._key("operator")
        self.reporters = [self._key(f"reporter-{i}") for i in range(3)]
        self.machines: list[GridMachine] = []
        for i in range(solar):
            self.machines.append(
                GridMachine(
                    f"solar-{i}",
                    "solar",
                    self._key(f"solar-{i}"),
                    self._key(f"solar-{i}-meter"),
                    peak_wh=self.rng.randrange(900, 1600),
                    limit_price=self.rng.randrange(1, 3),
                )
            )
        for i in range(households):
            self.machines.append(
                GridMachine(
                    f"house-{i}",
                    "household",
                    self._key(f"house-{i}"),
                    self._key(f"house-{i}-meter"),
                    peak_wh=self.rng.randrange(80, 220),
                    limit_price=self.rng.randrange(3, 7),
                )
            )
        self._sequences: dict[str, int] = {}
        self.price_reports: dict[int, list[int]] = {}
        self._round = 0

    def _key(self, name: str) -> SigningKey:
        return SigningKey.from_seed(sha256(f"autarky/microgrid/{self.seed}/{name}".encode()))

    # -- the chain ---------------------------------------------------------------------------------

    def genesis(self) -> dict[str, Any]:
        accounts: list[dict[str, Any]] = [{"did": self.operator.did, "kind": "site-operator"}]
        for machine in self.machines:
            kind = "solar-inverter" if machine.role == "solar" else "home-energy-manager"
            accounts.append({"did": machine.key.did, "owner": self.operator.did, "kind": kind})
            accounts.append({"did": machine.meter.did, "owner": self.operator.did, "kind": "energy-meter"})
        balances = [{"account": self.operator.did, "asset": ASSET, "amount": FUNDING}]
        balances += [{"account": m.key.did, "asset": ASSET, "amount": FUNDING} for m in self.machines]
        return {
            "chain_id": self.chain_id,
            "genesis_time_ms": self.day_start_ms - 2 * INTERVAL_MS,
            "app_state": {
                "identity": {"accounts": accounts},
                "bank": {"params": {"fee_asset": ASSET, "min_fee": 0}, "balances": balances},
                "metering": {"params": {"interval_ms": INTERVAL_MS}},
                "market": {
                    "zones": [
                        {
                            "name": ZONE,
                            "asset": ASSET,
                            "unit": "wh",
                            "price_cap_feed": FEED,
                            "penalty_per_unit": PENALTY_PER_UNIT,
                        }
                    ],
                },
            },
        }

    def sign(self, key: SigningKey, *messages: dict[str, Any]) -> SignedTx:
        sequence = self._sequences.get(key.did, 0)
        self._sequences[key.did] = sequence + 1
        return sign_tx(TxBody(self.chain_id, key.did, sequence, 0, 0, tuple(messages)), key)

    def setup(self) -> tuple[int, list[SignedTx]]:
        """At ``day_start - L``: register every meter, create the price feed, read every register at 0."""
        time_ms = self.day_start_ms - INTERVAL_MS
        registrations = [
            metering.register(m.meter.did, m.key.did, "export" if m.role == "solar" else "import", "wh")
            for m in self.machines
        ]
        txs = [
            self.sign(self.operator, *registrations),
            self.sign(
                self.operator,
                oracle.create_feed(
                    FEED, [r.did for r in self.reporters], 2, 2 * INTERVAL_MS, description="grid price per Wh"
                ),
            ),
        ]
        return time_ms, txs

    def baseline(self) -> tuple[int, list[SignedTx]]:
        """Just after setup: each meter's first reading (value 0) is its baseline."""
        time_ms = self.day_start_ms - INTERVAL_MS + 1000
        return time_ms, [self.sign(m.meter, metering.read([(0, time_ms)])) for m in self.machines]

    # -- the day -----------------------------------------------------------------------------------

    def interval(self, n: int) -> int:
        """The ledger's interval index of the day's ``n``-th interval (0-based)."""
        return self.first_interval + n

    def _hour(self, n: int) -> float:
        return (n % INTERVALS_PER_DAY) / 4

    def solar_forecast(self, machine: GridMachine, n: int) -> int:
        hour = self._hour(n)
        if not 6 < hour < 20:
            return 0
        return int(machine.peak_wh * math.sin(math.pi * (hour - 6) / 14))

    def demand(self, machine: GridMachine, n: int) -> int:
        hour = self._hour(n)
        peak = 2.2 if 17 <= hour < 21 else 1.6 if 6 <= hour < 9 else 1.0
        return int(machine.peak_wh * peak * self.rng.uniform(0.8, 1.2))

    def grid_price(self, n: int) -> int:
        hour = self._hour(n)
        return 6 if 17 <= hour < 21 else 5 if 7 <= hour < 17 else 3

    def orders(self, n: int) -> tuple[int, list[SignedTx]]:
        """Reports and orders for the day's interval ``n``, at one minute before its gate."""
        k = self.interval(n)
        time_ms = k * INTERVAL_MS - ORDER_LEAD_MS
        self._round += 1
        price = self.grid_price(n)
        reports = [price + self.rng.choice((-1, 0, 0, 1)) for _ in self.reporters]
        self.price_reports[n] = reports
        txs = [
            self.sign(r, oracle.report(FEED, self._round, max(1, v)))
            for r, v in zip(self.reporters, reports, strict=True)
        ]
        for machine in self.machines:
            if machine.role == "solar":
                quantity = self.solar_forecast(machine, n)
                if quantity:
                    txs.append(self.sign(machine.key, market.ask(ZONE, k, quantity, machine.limit_price)))
            else:
                quantity = self.demand(machine, n)
                txs.append(self.sign(machine.key, market.bid(ZONE, k, quantity, machine.limit_price)))
            machine.offered[n] = quantity
        return time_ms, txs

    def readings(self, n: int) -> tuple[int, list[SignedTx]]:
        """Every meter's register at the end of the day's interval ``n``."""
        k = self.interval(n)
        time_ms = (k + 1) * INTERVAL_MS
        txs = []
        for machine in self.machines:
            offered = machine.offered.get(n, 0)
            if machine.role == "solar":
                # Clouds after the forecast; one interval in twenty a fault halves the output.
                factor = self.rng.uniform(0.85, 1.05) * (0.5 if self.rng.random() < 0.05 else 1.0)
                measured = int(offered * factor)
            else:
                measured = int(offered * self.rng.uniform(0.9, 1.1))
            machine.delivered[n] = measured
            machine.register += measured
            txs.append(self.sign(machine.meter, metering.read([(machine.register, time_ms)])))
        return time_ms, txs

    def phases(self) -> list[tuple[int, list[SignedTx]]]:
        """Every phase of the day in time order: setup, baselines, then orders and readings."""
        phases = [self.setup(), self.baseline(), self.orders(0)]
        for n in range(self.intervals):
            if n + 1 < self.intervals:
                phases.append(self.orders(n + 1))  # a minute before interval n ends
            phases.append(self.readings(n))
        # One more block after the last settlement is due (readings complete at the last end).
        phases.append(((self.interval(self.intervals) + 1) * INTERVAL_MS, []))
        return phases

    # -- what the meters say ------------------------------------------------------------------------

    def expected_energy(self, n: int) -> dict[str, int]:
        """Sellers' metered export in the day's interval ``n``, by DID."""
        return {m.key.did: m.delivered.get(n, 0) for m in self.machines if m.role == "solar"}

    def accounts(self) -> list[str]:
        return [self.operator.did, *(m.key.did for m in self.machines), *(r.did for r in self.reporters)]


def run_on_chain(day: MicrogridDay, check: Callable[[Any], None] | None = None) -> Any:
    """Run the whole day on the in-memory chain (real executor and modules); return the chain."""
    from autarky.modules.harness import Chain

    chain = Chain.from_genesis(day.genesis())
    for time_ms, txs in day.phases():
        receipts = chain.execute([tx.raw for tx in txs], time_ms)
        _require_ok(receipts, txs)
        if check is not None:
            check(chain)
    return chain


def _require_ok(receipts: Sequence[Any], txs: Sequence[SignedTx]) -> None:
    for receipt, tx in zip(receipts, txs, strict=True):
        assert receipt.code == "ok", (
            f"{tx.hash.hex()[:12]} {tx.body.messages[0]['type']}: {receipt.code} {receipt.detail}"
        )
