"""The ``autarky up`` fleet's economy through a real node on a virtual clock: the solar inverter's
asks and the households' bids clear in the capped auction, settle against the machines' own meter
readings, the oracle feeds carry the grid price and the weather, and the farm controller buys a
period of weather data, receives the sealed key and acknowledges it (paying the sensor)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from autarky.demo.economy import DEMO_INTERVAL_MS, PRICE_FEED, WEATHER_FEED, ZONE
from autarky.demo.fleet import NAMES, OWNER, Fleet
from autarky.demo.workspace import open_workspace
from autarky.encoding import canonical_decode
from autarky.engines.embedded import VirtualClock
from autarky.node.node import GENESIS_FILE
from autarky.web.client import AutarkyClient
from autarky.web.testing import LiveNode


def test_the_demo_fleet_trades_settles_and_buys_weather_data(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path / "demo", NAMES, OWNER)
    genesis = canonical_decode((workspace.node_dir / GENESIS_FILE).read_bytes())
    start = (time.time_ns() // 1_000_000 // DEMO_INTERVAL_MS + 1) * DEMO_INTERVAL_MS
    clock = VirtualClock(start)

    async def drive(url: str) -> None:
        async with AutarkyClient(url) as client:
            fleet = Fleet(client, workspace.keys, rate=4.0, seed=5, clock_ms=clock)
            await fleet.bootstrap()
            stop = asyncio.Event()
            runner = asyncio.create_task(fleet.run(stop))
            for _ in range(14):  # 14 demo intervals, each 1.2 s of real time
                await asyncio.sleep(1.2)
                clock.advance(DEMO_INTERVAL_MS)
            stop.set()
            await runner

    with LiveNode(tmp_path / "node", genesis, clock=clock) as live:
        asyncio.run(drive(live.url))
        assert live.call(lambda: live.node.app.invariants(live.node.state)) == []
        prices = live.http.get("/api/v1/market/prices", params={"zone": ZONE}).json()["prices"]
        settled = [p for p in prices if p["status"] == "settled" and p["volume"] > 0]
        assert settled, prices
        assert any(p["delivered"] > 0 for p in settled)
        assert all(p["cap"] is not None and p["price"] <= p["cap"] for p in settled)
        for feed in (PRICE_FEED, WEATHER_FEED):
            assert live.http.get(f"/api/v1/oracle/feeds/{feed}").json()["latest"] is not None
        farm = workspace.did("farm-controller")
        purchases = live.http.get("/api/v1/data/purchases", params={"account": farm}).json()["purchases"]
        assert [p["status"] for p in purchases] == ["delivered"], purchases
