"""One simulated day of a small microgrid through the real node (issue 5's integration test).

Ten machines (4 solar inverters, 6 households), their 10 registered meters and 3 grid-price
reporters; 96 fifteen-minute intervals of sealed bids and asks, oracle price caps, meter readings,
clearing and metered settlement. The embedded node runs on a virtual clock the test advances
phase by phase, and every transaction goes over HTTP. At the end, energy and money are checked
against the meters (tests/support/microgrid_checks.py): every seller was paid exactly for its
metered delivery, buyers paid for what was delivered and got the rest of their escrow back,
penalties match the shortfall, escrow is empty and supply is conserved.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path

from tests.support.microgrid_checks import check_day

from autarky.engines.embedded import VirtualClock
from autarky.ledger.tx import SignedTx
from autarky.modules.metering import MeteringModule
from autarky.sim.microgrid_day import ZONE, MicrogridDay
from autarky.web.client import AutarkyClient, Submission
from autarky.web.testing import LiveNode


async def _submit_phase(url: str, txs: Sequence[SignedTx]) -> list[Submission]:
    async with AutarkyClient(url) as client:
        admitted = await client.submit_many(txs)
        assert all(isinstance(answer, Submission) for answer in admitted), admitted
        # A resubmission with wait answers once the transaction is committed (R3), with its receipt.
        return list(await asyncio.gather(*(client.submit(tx, wait=True) for tx in txs)))


def test_a_microgrid_day_through_the_node_balances_against_the_meters(tmp_path: Path) -> None:
    day = MicrogridDay(seed=3)
    phases = day.phases()
    clock = VirtualClock(day.genesis()["genesis_time_ms"])
    with LiveNode(tmp_path / "node", day.genesis(), clock=clock) as live:
        for time_ms, txs in phases:
            clock.set(time_ms)
            if not txs:
                height = live.height()
                live.wait_for_height(height + 2)  # a heartbeat block at the new time
                continue
            for tx, answer in zip(txs, asyncio.run(_submit_phase(live.url, txs)), strict=True):
                assert answer.ok, (tx.body.messages[0]["type"], answer.code, answer.detail)
        live.wait_for_height(live.height() + 1)

        def check() -> dict[str, int]:
            metering = live.node.app.module("metering")
            assert isinstance(metering, MeteringModule)
            assert live.node.app.invariants(live.node.state) == []
            return check_day(day, live.node.state, metering)

        totals = live.call(check)
        assert totals["trades"] > 100 and 0 < totals["delivered_wh"] < totals["volume_wh"]
        assert totals["penalties"] > 0

        # The price history over HTTP: one clearing per interval of the day.
        first, last = day.interval(0), day.interval(day.intervals - 1)
        prices = live.http.get("/api/v1/market/prices", params={"zone": ZONE, "from": first, "to": last})
        assert prices.status_code == 200, prices.text
        assert len(prices.json()["prices"]) == day.intervals
