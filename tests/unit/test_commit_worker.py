"""A chain whose state roots are computed by a worker process has the same headers as one that
computes them in line (a microgrid day: orders, readings, clearing and settlement in end_block)."""

from __future__ import annotations

from autarky.modules.harness import Chain
from autarky.node.commit_worker import RootWorker
from autarky.sim.microgrid_day import MicrogridDay


def test_deferred_roots_give_the_same_headers() -> None:
    day = MicrogridDay(seed=5, solar=2, households=3, intervals=6)
    inline = Chain.from_genesis(day.genesis())
    deferred = Chain.from_genesis(day.genesis())
    with RootWorker(sorted(deferred.data.items())) as worker:
        deferred.defer_roots(worker)
        for time_ms, txs in day.phases():
            inline_receipts = inline.execute(txs, time_ms)
            assert deferred.execute(txs, time_ms) == inline_receipts
            assert deferred.height == inline.height
        assert deferred.data == inline.data
        assert deferred.headers == inline.headers  # sealed now: every root from the worker
    assert deferred.root == inline.root and deferred.height > 12
    assert deferred.replay().root == inline.root


def test_a_block_executes_before_the_previous_root_is_known() -> None:
    day = MicrogridDay(seed=6, solar=1, households=2, intervals=2)
    chain = Chain.from_genesis(day.genesis())
    with RootWorker(sorted(chain.data.items())) as worker:
        chain.defer_roots(worker)
        phases = day.phases()
        for time_ms, txs in phases:
            chain.execute(txs, time_ms)
        assert len(chain._unsealed) == len(phases)  # nothing waited for a root
        assert len(chain.headers) == len(phases) + 1 and not chain._unsealed
