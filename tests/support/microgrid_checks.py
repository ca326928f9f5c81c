"""Checks of a microgrid day's settlement against what its meters said (shared by the simulation
test on the in-memory chain and the integration test through a real node)."""

from __future__ import annotations

from typing import Any

from autarky.ledger.state import StateReader
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.market import keeper as market_keeper
from autarky.modules.metering import MeteringModule
from autarky.sim.microgrid_day import ASSET, FUNDING, PENALTY_PER_UNIT, ZONE, MicrogridDay


def check_day(day: MicrogridDay, state: StateReader, metering: MeteringModule) -> dict[str, Any]:
    """Energy and money of every interval against the meters; returns totals for the caller."""
    received: dict[str, int] = {}
    trades = delivered_total = traded_volume = paid_total = penalty_total = 0
    for n in range(day.intervals):
        k = day.interval(n)
        metered = day.expected_energy(n)
        for did, wh in metered.items():  # the ledger's records are the meters' readings
            assert metering.energy(state, did, "export", k) == wh, (n, did)
        clearing = market_keeper.clearing(state, ZONE, k)
        assert clearing is not None, f"interval {n} was never cleared"
        orders = market_keeper.book(state, ZONE, k)
        if clearing.price is None:
            assert all(o.fill == 0 and o.status != "settled" for o in orders)
            continue
        assert clearing.status == "settled", (n, clearing.status)
        price = clearing.price
        assert clearing.cap is not None and price <= clearing.cap and not clearing.cap_stale
        asks = [o for o in orders if o.side == "ask"]
        bids = [o for o in orders if o.side == "bid"]
        for ask in asks:
            assert ask.fill <= ask.quantity and (ask.fill == 0 or ask.limit_price <= price)
            assert ask.delivered == min(ask.fill, metered[ask.owner]), (n, ask)
            assert ask.paid == price * ask.delivered
            assert ask.penalty == PENALTY_PER_UNIT * (ask.fill - ask.delivered)
            received[ask.owner] = received.get(ask.owner, 0) + ask.paid - ask.penalty
        for bid in bids:
            assert bid.fill <= bid.quantity and (bid.fill == 0 or bid.limit_price >= price)
            assert bid.delivered <= bid.fill and bid.paid == price * bid.delivered
            received[bid.owner] = received.get(bid.owner, 0) - bid.paid + bid.penalty
        # Energy balance: what buyers were allotted is exactly what sellers delivered; money follows.
        assert sum(b.fill for b in bids) == sum(a.fill for a in asks) == clearing.volume
        assert sum(b.delivered for b in bids) == sum(a.delivered for a in asks) == clearing.delivered
        assert sum(b.paid for b in bids) == sum(a.paid for a in asks)
        assert sum(b.penalty for b in bids) == sum(a.penalty for a in asks) == clearing.penalty
        trades += sum(1 for o in orders if o.fill)
        traded_volume += clearing.volume
        delivered_total += clearing.delivered
        paid_total += sum(a.paid for a in asks)
        penalty_total += clearing.penalty
    # Every wallet moved by exactly its settled orders; nothing is left in escrow.
    for machine in day.machines:
        balance = bank_keeper.balance(state, machine.key.did, ASSET)
        assert balance == FUNDING + received.get(machine.key.did, 0), machine.name
    assert escrow_keeper.all_locks(state) == []
    assert bank_keeper.balance(state, escrow_keeper.ESCROW_ACCOUNT, ASSET) == 0
    total = sum(amount for _, asset, amount in bank_keeper.all_balances(state) if asset == ASSET)
    assert total == bank_keeper.supply(state, ASSET)
    return {
        "trades": trades,
        "volume_wh": traded_volume,
        "delivered_wh": delivered_total,
        "paid": paid_total,
        "penalties": penalty_total,
    }
