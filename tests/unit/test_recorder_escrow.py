"""The run recorder keeps each payer's open escrow from the escrow events: equal to a scan of the locks."""

from __future__ import annotations

from collections import Counter

from autarky.modules.escrow import keeper as escrow
from autarky.modules.harness import Chain
from autarky.scenarios.metrics import Recorder
from autarky.sim.microgrid_day import MicrogridDay


def _scan(chain: Chain) -> dict[str, int]:
    locked: Counter[str] = Counter()
    for lock in escrow.all_locks(chain.state):
        if lock.asset == "aut":
            locked[lock.payer] += lock.amount
    return {payer: amount for payer, amount in sorted(locked.items()) if amount}


def test_open_escrow_by_payer_follows_every_block_of_a_market_day() -> None:
    day = MicrogridDay(seed=2, solar=3, households=4, intervals=6)
    chain = Chain.from_genesis(day.genesis())
    recorder = Recorder(chain, day.day_start_ms)
    seen_open = 0
    for time_ms, txs in day.phases():
        applied = chain.execute_block(txs, time_ms)
        recorder.on_block(None, applied.receipts, applied.end_events)
        assert recorder.locked_by_payer() == _scan(chain)
        seen_open = max(seen_open, len(recorder.locked_by_payer()))
    assert seen_open > 3  # bids and asks were open in escrow on the way
    assert recorder.locked_by_payer() == {}  # every book settled
