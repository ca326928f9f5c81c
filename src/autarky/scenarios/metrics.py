"""What a run measures, read from the chain: trades, prices, wallets, refusals, conservation.

:class:`Recorder` listens to every committed block of a :class:`~autarky.scenarios.runtime.Sim`
(market events give trades and clearing prices; receipts give refusals by code) and samples the
wallets of every actor kind each simulated hour. Scenarios add their own series with
:meth:`Recorder.add`. :func:`ledger_checks` is the end-of-run audit: the modules' invariants,
supply conserved (bank supply per asset unchanged since genesis and equal to the sum of
balances), and escrow left empty.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Any

from autarky.ledger.block import Event, Receipt
from autarky.modules.bank import keeper as bank
from autarky.modules.escrow import keeper as escrow
from autarky.modules.harness import Chain
from autarky.scenarios.runtime import Sim

HOUR_MS = 3_600_000


class Recorder:
    """Time series of a run. Every series is a list of ``[hour, value]`` (hours since the start)."""

    def __init__(self, sim: Sim, start_ms: int, asset: str = "aut") -> None:
        self.sim = sim
        self.start_ms = start_ms
        self.asset = asset
        self.series: dict[str, list[list[float]]] = defaultdict(list)
        self.counters: Counter[str] = Counter()
        self.refusals_by_hour: dict[str, Counter[int]] = defaultdict(Counter)
        self.prices: list[list[float]] = []
        """[hour, price, volume] per cleared interval that traded."""
        self.trades = 0
        self.traded_units = 0
        self.traded_value = 0
        sim.block_listeners.append(self._on_block)

    def hour(self, time_ms: int) -> float:
        return (time_ms - self.start_ms) / HOUR_MS

    def add(self, name: str, time_ms: int, value: float) -> None:
        self.series[name].append([round(self.hour(time_ms), 4), value])

    def _on_block(self, time_ms: int, receipts: Sequence[Receipt], events: Sequence[Event]) -> None:
        hour = int(self.hour(time_ms))
        for receipt in receipts:
            if not receipt.ok:
                self.refusals_by_hour[receipt.code][hour] += 1
        for event in events:
            kind = event.type
            if kind == "market.filled":
                a = dict(event.attributes)
                if a["side"] == "bid" and a["fill"]:
                    self.trades += 1
                    self.traded_units += int(a["fill"])  # type: ignore[call-overload]
                    self.traded_value += int(a["fill"]) * int(a["price"])  # type: ignore[call-overload]
            elif kind == "market.cleared":
                a = dict(event.attributes)
                if a["price"] is not None:
                    self.prices.append([round(self.hour(time_ms), 4), a["price"], a["volume"]])  # type: ignore[list-item]
            self.counters[kind] += 1

    def sample_wallets(self, chain: Chain, time_ms: int) -> None:
        """Total balance of each actor kind (what the machines of that kind hold, escrow excluded)."""
        totals: Counter[str] = Counter()
        state, asset = chain.state, self.asset
        for actor in self.sim.actors:
            totals[actor.kind] += bank.balance(state, actor.did, asset)
        for kind, total in sorted(totals.items()):
            self.add(f"wallet/{kind}", time_ms, total)


def ledger_checks(chain: Chain, genesis_supply: dict[str, int]) -> dict[str, Any]:
    """The end-of-run audit of the ledger (see the module docstring)."""
    state = chain.state
    supplies = bank.supplies(state)
    sums: Counter[str] = Counter()
    for _, asset, amount in bank.all_balances(state):
        sums[asset] += amount
    conserved = supplies == genesis_supply and all(sums[a] == s for a, s in supplies.items())
    locks = escrow.all_locks(state)
    by_holder: Counter[str] = Counter(lock.holder for lock in locks)
    invariants = chain.invariants()
    return {
        "conserved": conserved,
        "supply": supplies,
        "escrow_open_locks": len(locks),
        "escrow_open_amount": sum(lock.amount for lock in locks),
        "escrow_open_by_holder": dict(sorted(by_holder.items())),
        "invariant_violations": invariants[:20],
        "invariants_ok": not invariants,
    }
