"""The ``autarky up`` fleet's economy through a real node on a virtual clock, run by the machine
agents: the solar inverter's forecast asks and the households' forecast bids clear in the capped
auction, settle against the machines' own meter readings, the oracle feeds carry the grid price and
the weather, the farm controller decides to buy a period of weather data, receives the sealed key
and acknowledges it (paying the sensor); every decision is recorded and anchored on chain."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from autarky.demo.economy import DEMO_INTERVAL_MS, PRICE_FEED, WEATHER_FEED, ZONE
from autarky.demo.fleet import NAMES, OWNER, Fleet
from autarky.demo.models import ensure_models
from autarky.demo.workspace import open_workspace
from autarky.encoding import canonical_decode
from autarky.engines.embedded import VirtualClock
from autarky.node.node import GENESIS_FILE
from autarky.provenance import DecisionStore
from autarky.web.client import AutarkyClient
from autarky.web.testing import LiveNode


def _settled_with_delivery(live: LiveNode) -> bool:
    prices = live.http.get("/api/v1/market/prices", params={"zone": ZONE}).json()["prices"]
    return any(p["status"] == "settled" and p["volume"] > 0 and p["delivered"] > 0 for p in prices)


def test_the_demo_fleet_trades_settles_and_buys_weather_data(tmp_path: Path) -> None:
    workspace = open_workspace(tmp_path / "demo", NAMES, OWNER)
    genesis = canonical_decode((workspace.node_dir / GENESIS_FILE).read_bytes())
    start = (time.time_ns() // 1_000_000 // DEMO_INTERVAL_MS + 1) * DEMO_INTERVAL_MS
    clock = VirtualClock(start)
    models = ensure_models(workspace.root)  # trained when the workspace was created: loaded here
    store = DecisionStore.memory()
    fleets: list[Fleet] = []

    async def drive(url: str) -> None:
        async with AutarkyClient(url) as client:
            fleet = Fleet(
                client, workspace.keys, rate=4.0, seed=5, clock_ms=clock, models=models, store=store
            )
            fleets.append(fleet)
            await fleet.bootstrap()
            stop = asyncio.Event()
            runner = asyncio.create_task(fleet.run(stop))
            # At least 14 demo intervals of 1.2 s real time each, and on (up to 40) until an
            # interval has settled against metered delivery: on a loaded machine the sellers'
            # readings can miss an interval's settlement, and the next one settles instead.
            for interval in range(40):
                await asyncio.sleep(1.2)
                clock.advance(DEMO_INTERVAL_MS)
                if interval >= 13 and _settled_with_delivery(live):
                    break
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

        # The models are registered, every decision is recorded and, after the stop, anchored.
        registered = live.http.get("/api/v1/provenance/models").json()["models"]
        assert {m["hash"] for m in registered} >= {m.model_hash.hex() for m in models.values()}
        activity = fleets[0].activity
        assert activity.decisions > 0 and activity.anchored == activity.decisions
        inverter = activity.machines["solar-inverter"]
        assert inverter.forecast is not None and inverter.forecast["policy"] == "pv-forecast/1"
        assert any(order["side"] == "ask" for order in inverter.orders)
        policies = {record["policy"] for m in activity.machines.values() for record in m.records}
        assert {"pv-forecast/1", "load-forecast/1", "battery-lp/1", "irrigation-balance/1"} <= policies
        for machine in activity.machines.values():
            head = live.http.get(f"/api/v1/provenance/decisions/{machine.did}").json()["head"]
            assert (head or {}).get("count", 0) == store.count(machine.did), machine.name
