"""What a run measures, read from the chain: trades, prices, wallets, refusals, conservation.

:class:`Recorder` listens to every committed block of the run's in-process ledger
(``InProcessLedger(on_block=recorder.on_block)``): market events give trades and clearing prices,
receipts give committed transactions and ledger refusals by code; at the first block of each
simulated hour it samples the wallets of every actor kind. Machines count their decision records
by policy and their pre-check refusals by code into it. Scenarios add their own series with
:meth:`Recorder.add`. :func:`ledger_checks` is the end-of-run audit: the modules' invariants,
supply conserved (bank supply per asset unchanged since genesis and equal to the sum of
balances), and escrow left empty.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from typing import Any

from autarky.ledger.block import Event, Receipt
from autarky.modules.bank import keeper as bank
from autarky.modules.escrow import keeper as escrow
from autarky.modules.harness import Chain

HOUR_MS = 3_600_000


class Recorder:
    """Time series of a run. Every series is a list of ``[hour, value]`` (hours since the start)."""

    def __init__(self, chain: Chain, start_ms: int, actors: Sequence[Any] = (), asset: str = "aut") -> None:
        self.chain = chain
        self.start_ms = start_ms
        self.actors = list(actors)
        """What :meth:`sample_wallets` sums by kind (anything with ``did`` and ``kind``)."""
        self.asset = asset
        self.series: dict[str, list[list[float]]] = defaultdict(list)
        self.counters: Counter[str] = Counter()
        self.refusals_by_hour: dict[str, Counter[int]] = defaultdict(Counter)
        self.refused: Counter[str] = Counter()
        """Transactions refused by the ledger, by code."""
        self.prechecks_refused: Counter[str] = Counter()
        """Actions refused by a machine's pre-check (never submitted), by code."""
        self.decisions_by_policy: Counter[str] = Counter()
        self.prices: list[list[float]] = []
        """[hour, price, volume] per cleared interval that traded."""
        self.trades = 0
        self.traded_units = 0
        self.traded_value = 0
        self.committed = 0
        self.blocks = 0
        self.block_listeners: list[Callable[[int, Sequence[Receipt], Sequence[Event]], None]] = []
        self.explain_sample: list[bytes] = []
        self._sampled: Counter[str] = Counter()
        self._next_sample_ms = start_ms
        # What each payer has in open escrow locks of ``asset``, kept from the escrow events (a
        # scan of every lock at each hourly sample cost 3 % of a 1,000-machine run).
        self._locked: Counter[str] = Counter()
        self._lock_payer: dict[bytes, str] = {}
        for lock in escrow.all_locks(chain.state):
            if lock.asset == asset:
                self._locked[lock.payer] += lock.amount
                self._lock_payer[lock.id] = lock.payer

    def decision(self, policy: str, model: bytes | None, tx: bytes | None, sample: int = 2) -> None:
        """A machine recorded a decision; the first ``sample`` transactions per model-backed policy
        are kept for the end-of-run ``explain`` checks."""
        count = self.decisions_by_policy[policy]
        self.decisions_by_policy[policy] = count + 1
        if model is not None and tx is not None and self._sampled[policy] < sample:
            self._sampled[policy] += 1
            self.explain_sample.append(tx)

    def hour(self, time_ms: int) -> float:
        return (time_ms - self.start_ms) / HOUR_MS

    def add(self, name: str, time_ms: int, value: float) -> None:
        self.series[name].append([round(self.hour(time_ms), 4), value])

    def on_block(self, ledger: Any, receipts: Sequence[Receipt], end_events: Sequence[Event]) -> None:
        """``InProcessLedger``'s ``on_block`` callback."""
        time_ms = self.chain.tip_time_ms
        self.blocks += 1
        hour = int(self.hour(time_ms))
        events: list[Event] = []
        for receipt in receipts:
            if receipt.ok:
                self.committed += 1
                events.extend(receipt.events)
            else:
                self.refused[receipt.code] += 1
                self.refusals_by_hour[receipt.code][hour] += 1
        events.extend(end_events)
        counters = self.counters
        for event in events:
            kind = event.type
            if kind == "market.filled":
                a = dict(event.attributes)
                if a["side"] == "bid" and a["fill"]:
                    self.trades += 1
                    fill, price = _int(a["fill"]), _int(a["price"])
                    self.traded_units += fill
                    self.traded_value += fill * price
            elif kind == "market.cleared":
                a = dict(event.attributes)
                if a["price"] is not None:
                    self.prices.append([round(self.hour(time_ms), 4), a["price"], a["volume"]])  # type: ignore[list-item]
            elif kind in _ESCROW_MOVES:
                self._escrow_moved(kind, dict(event.attributes))
            counters[kind] += 1
        for listener in self.block_listeners:
            listener(time_ms, receipts, events)
        while time_ms >= self._next_sample_ms:
            self.sample_wallets(self._next_sample_ms)
            self._next_sample_ms += HOUR_MS

    def _escrow_moved(self, kind: str, a: dict[str, Any]) -> None:
        if a["asset"] != self.asset:
            return
        lock = bytes(a["lock"])
        if kind == "escrow.locked":
            payer = str(a["payer"])
            self._lock_payer[lock] = payer
            self._locked[payer] += int(a["amount"])
            return
        payer = self._lock_payer[lock]
        self._locked[payer] -= int(a["amount"])
        if a["remaining"] == 0:
            del self._lock_payer[lock]

    def locked_by_payer(self) -> dict[str, int]:
        """What each payer has in open locks of ``asset`` now (payers with nothing left out)."""
        return {payer: amount for payer, amount in sorted(self._locked.items()) if amount}

    def sample_wallets(self, time_ms: int) -> None:
        """What each actor kind holds: balances plus what it has locked in escrow (an open bid's
        payment or an ask's collateral is still the payer's until the market settles it)."""
        totals: Counter[str] = Counter()
        state, asset = self.chain.state, self.asset
        locked = self._locked
        for actor in self.actors:
            totals[actor.kind] += bank.balance(state, actor.did, asset) + locked[actor.did]
        for kind, total in sorted(totals.items()):
            self.add(f"wallet/{kind}", time_ms, total)


_ESCROW_MOVES = frozenset({"escrow.locked", "escrow.released", "escrow.refunded"})


def _int(value: Any) -> int:
    return int(value)


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
