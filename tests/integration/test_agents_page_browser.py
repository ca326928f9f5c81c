"""The dashboard's ``/agents`` page in a real headless browser (Debian's Chromium via Playwright):
the demo fleet runs as agents in the node's process (as ``autarky up`` runs it), and the page shows
each machine's forecast, bids and asks, decision records and pre-check refusals live; a decision
links to its explanation with every check. Nothing is loaded from another host.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from autarky.demo.activity import Activity
from autarky.demo.fleet import NAMES, OWNER, Fleet
from autarky.demo.models import ensure_models
from autarky.demo.workspace import open_workspace
from autarky.encoding import canonical_decode
from autarky.node.node import GENESIS_FILE
from autarky.provenance import DecisionStore
from autarky.web.client import AutarkyClient
from autarky.web.testing import LiveNode

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOT = Path("/tmp/h/agents.png")
LIVE_MS = 60_000


@pytest.fixture
def browser_page() -> Iterator[object]:
    if not CHROMIUM.exists():
        message = f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install chromium)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            page = context.new_page()
            page.set_default_timeout(15_000)
            yield page
            context.close()
        finally:
            browser.close()


@pytest.fixture
def demo_node(tmp_path: Path) -> Iterator[tuple[LiveNode, Fleet]]:
    workspace = open_workspace(tmp_path / "demo", NAMES, OWNER)
    genesis = canonical_decode((workspace.node_dir / GENESIS_FILE).read_bytes())
    models = ensure_models(workspace.root)
    with LiveNode(tmp_path / "node", genesis, block_interval_ms=50) as live:
        store = DecisionStore(workspace.decisions_path)
        started: dict[str, Any] = {}

        async def run_fleet() -> None:
            stop = started["stop"] = asyncio.Event()
            async with AutarkyClient(live.url) as client:
                activity = Activity(store=store, models_dir=workspace.models_dir)
                fleet = Fleet(
                    client, workspace.keys, rate=6.0, seed=11, models=models, store=store, activity=activity
                )
                live.api.app.state.agents = activity
                started["fleet"] = fleet
                await fleet.bootstrap()
                await fleet.run(stop)

        future = asyncio.run_coroutine_threadsafe(run_fleet(), live.loop)
        try:
            live.run(_until(lambda: "fleet" in started), timeout=120)
            yield live, started["fleet"]
        finally:
            if "stop" in started:
                live.loop.call_soon_threadsafe(started["stop"].set)
            future.result(timeout=60)
            store.close()


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.05)


def test_agents_page_shows_machines_deciding_live(
    browser_page: object,
    demo_node: tuple[LiveNode, Fleet],
) -> None:
    from playwright.sync_api import Page, expect

    page = browser_page
    assert isinstance(page, Page)
    live, _fleet = demo_node
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)

    page.goto(live.url + "/")
    page.get_by_test_id("nav-agents").click()
    page.wait_for_url(live.url + "/agents")
    expect(page.get_by_test_id("live-indicator")).to_have_attribute("data-state", "live")

    # Every machine has its card; the inverter forecasts with its model and asks, the households bid.
    for name in ("solar-inverter", "household-a", "household-b", "home-battery", "car", "farm-controller"):
        expect(page.get_by_test_id(f"machine-{name}")).to_be_visible(timeout=LIVE_MS)
    inverter = page.get_by_test_id("machine-solar-inverter")
    expect(inverter.get_by_test_id("forecast")).to_contain_text("pv-forecast/1", timeout=LIVE_MS)
    expect(inverter.get_by_test_id("forecast-text")).to_contain_text(" W", timeout=LIVE_MS)
    expect(inverter.get_by_test_id("orders")).to_contain_text("ask", timeout=LIVE_MS)
    expect(page.get_by_test_id("machine-household-a").get_by_test_id("orders")).to_contain_text(
        "bid", timeout=LIVE_MS
    )
    expect(page.get_by_test_id("machine-home-battery").get_by_test_id("forecast")).to_contain_text(
        "battery-lp/1"
    )
    expect(page.get_by_test_id("machine-farm-controller").get_by_test_id("forecast")).to_contain_text(
        "irrigation-balance/1", timeout=LIVE_MS
    )

    # Refusals by the pre-check show with their code and explanation in words.
    refusal = page.get_by_test_id("refusal").first
    expect(refusal).to_be_visible(timeout=LIVE_MS)
    expect(refusal).to_contain_text("bank.")
    expect(page.get_by_test_id("total-refused")).not_to_have_text("0")
    expect(page.get_by_test_id("total-decisions")).not_to_have_text("0")
    expect(page.get_by_test_id("activity")).to_contain_text("forecasts")
    page.wait_for_timeout(1500)
    page.screenshot(path=str(SCREENSHOT), full_page=True)

    # A decision record links to its explanation: every check, named.
    link = inverter.get_by_test_id("decision-link").first
    expect(link).to_be_visible(timeout=LIVE_MS)
    link.click()
    page.wait_for_url("**/agents/decisions/*")
    expect(page.get_by_test_id("explain-verdict")).to_be_visible()
    assert page.get_by_test_id("explain-verdict").get_attribute("data-verdict") in ("ok", "awaiting-anchor")
    checks = page.get_by_test_id("explain-checks")
    for name in ("record.found", "tx.committed", "record.hash", "record.inputs", "record.chain"):
        expect(checks.locator(f'tr[data-check="{name}"]')).to_have_attribute("data-ok", "true")
    expect(page.get_by_test_id("explain-record")).to_contain_text("pv-forecast/1")

    assert all(url.startswith(live.url) for url in requests), [
        u for u in requests if not u.startswith(live.url)
    ]
    assert problems == []
