"""The dashboard's economy page (``/economy``) in a real headless browser (issue 5, item 8).

A real node on a virtual clock runs the seeded microgrid (``autarky.sim.microgrid_day``) from
16:00 to 20:00: solar inverters ask, households bid, three reporters feed the grid-price cap, meters
read, and every interval clears and settles through the node over HTTP. The last interval has cleared
but is still settling. Then the economy around it: bids and asks for the next interval (one bid
cancelled), two data offers (one whose calibration attestation exists, one whose does not), a
charger lease offered and reserved, maintenance jobs (one accepted), and a plain escrow lock.

The page is opened in Debian's Chromium (never a downloaded browser) and must show the book, the
clearing-price chart (an SVG with a point per traded interval and the cap), the clearings with their
status, the oracle feed, escrow, leases, data offers and jobs, and keep itself live: when the clock
moves past the next gate, the book that was shown clears and appears in the chart and the table
without a reload. Nothing is loaded from another host and the console stays clean.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

from autarky.engines.embedded import VirtualClock
from autarky.ledger.tx import SignedTx
from autarky.modules.data import keeper as data_keeper
from autarky.modules.data import messages as data
from autarky.modules.escrow import messages as escrow
from autarky.modules.identity import messages as identity
from autarky.modules.identity.claims import make_claim, sign_claim
from autarky.modules.jobs import keeper as jobs_keeper
from autarky.modules.jobs import messages as jobs
from autarky.modules.lease import keeper as lease_keeper
from autarky.modules.lease import messages as lease
from autarky.modules.market import keeper as market_keeper
from autarky.modules.market import messages as market
from autarky.sim.microgrid_day import FEED, INTERVAL_MS, ZONE, MicrogridDay
from autarky.web.client import AutarkyClient, Submission
from autarky.web.testing import LiveNode

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
TIMEOUT_MS = 15_000
DAY_MS = 86_400_000
HOUR_MS = 3_600_000
INTERVALS = 16
DAY_START_MS = 1_767_225_600_000  # 2026-01-01 00:00 UTC

pytestmark = pytest.mark.browser


class AfternoonGrid(MicrogridDay):
    """The seeded microgrid from 16:00: the sun sets and the evening demand comes, so the price
    climbs from the inverters' asks to the households' bids and the cap (the day's clock and the
    block clock agree)."""

    FIRST_QUARTER = 64

    def __init__(self, seed: int, intervals: int) -> None:
        super().__init__(
            seed=seed, intervals=intervals, day_start_ms=DAY_START_MS + self.FIRST_QUARTER * INTERVAL_MS
        )

    def _hour(self, n: int) -> float:
        return ((n + self.FIRST_QUARTER) % 96) / 4


@dataclass
class Economy:
    """What the scenario built, for the assertions."""

    day: AfternoonGrid
    clock: VirtualClock
    now_ms: int
    next_interval: int
    last_cleared: int
    bids: list[tuple[int, int]]
    """(limit price, quantity) of the open bids in the next interval's book."""
    asks: list[tuple[int, int]]
    data_checked: str
    data_unchecked: str
    readings_left: tuple[int, list[SignedTx]]
    """The last interval's meter readings, at the next gate: sent when the test moves the clock."""


async def _submit(url: str, txs: Sequence[SignedTx]) -> list[Submission]:
    async with AutarkyClient(url) as client:
        admitted = await client.submit_many(txs)
        assert all(isinstance(answer, Submission) for answer in admitted), admitted
        return list(await asyncio.gather(*(client.submit(tx, wait=True) for tx in txs)))


def run_phase(live: LiveNode, clock: VirtualClock, time_ms: int, txs: Sequence[SignedTx]) -> list[Submission]:
    """Set the block clock to ``time_ms`` and commit ``txs`` (or wait for a heartbeat block there)."""
    clock.set(time_ms)
    if not txs:
        live.wait_for_height(live.height() + 2)
        return []
    answers = live.run(_submit(live.url, txs))  # on the node's loop: Playwright owns this thread's
    for tx, answer in zip(txs, answers, strict=True):
        assert answer.ok, (tx.body.messages[0]["type"], answer.code, answer.detail)
    return answers


def build_economy(data_dir: Path, **settings: object) -> tuple[LiveNode, Economy]:
    """Start a node and run the scenario of the module docstring; the caller stops the node."""
    day = AfternoonGrid(seed=5, intervals=INTERVALS)
    phases = day.phases()
    # Keep the last interval's readings (and the closing block) back: it stays settling.
    readings_left = phases[-2]
    phases = phases[:-2]
    clock = VirtualClock(day.genesis()["genesis_time_ms"])
    live = LiveNode(data_dir, day.genesis(), clock=clock, **settings).start()
    try:
        for time_ms, txs in phases:
            run_phase(live, clock, time_ms, txs)
        now = phases[-1][0]
        last_cleared = day.interval(INTERVALS - 1)
        assert now == last_cleared * INTERVAL_MS  # the gate of the day's last interval: it has cleared
        next_interval = last_cleared + 1
        solar = [m for m in day.machines if m.role == "solar"]
        houses = [m for m in day.machines if m.role == "household"]
        lab = day.operator

        # The next interval's book: two asks, three bids, one of them cancelled again.
        asks = [(2, 700), (4, 450)]
        bids = [(6, 300), (5, 520)]
        orders = [
            day.sign(solar[i].key, market.ask(ZONE, next_interval, q, p)) for i, (p, q) in enumerate(asks)
        ]
        orders += [
            day.sign(houses[i].key, market.bid(ZONE, next_interval, q, p)) for i, (p, q) in enumerate(bids)
        ]
        regret = day.sign(houses[2].key, market.bid(ZONE, next_interval, 90, 3))
        run_phase(live, clock, now, [*orders, regret])
        run_phase(
            live,
            clock,
            now,
            [day.sign(houses[2].key, market.cancel(market_keeper.new_order_id(regret.hash, 0)))],
        )

        # Data offers: the lab attests solar-0's calibration but not solar-1's.
        claim = make_claim(
            lab.did,
            solar[0].key.did,
            "calibration/v1",
            {"standard": "ISO-17025"},
            now - DAY_MS,
            now + 30 * DAY_MS,
        )
        terms = {"price": 5, "asset": "aut", "per": "period", "period_ms": HOUR_MS, "licence": "CC-BY-4.0"}
        calibrated = day.sign(
            solar[0].key,
            data.offer(
                kind="stream", name="irradiance", required_attestations=[("calibration/v1", lab.did)], **terms
            ),
        )
        uncalibrated = day.sign(
            solar[1].key,
            data.offer(
                kind="dataset",
                name="load-profile",
                required_attestations=[("calibration/v1", lab.did)],
                **terms,
            ),
        )
        run_phase(
            live,
            clock,
            now,
            [day.sign(lab, identity.attest(sign_claim(lab, claim))), calibrated, uncalibrated],
        )

        # A charger offered for hire and reserved; two maintenance jobs, one accepted; a plain escrow lock.
        charger = day.sign(
            solar[2].key,
            lease.offer("charger", "ev-charger-1", 40, "aut", HOUR_MS, 1, 8, {"uptime_bps": 9_900}),
        )
        inspection = day.sign(
            houses[3].key, jobs.post("maintenance", "inspect the heat pump", 500, "aut", now + DAY_MS)
        )
        cleaning = day.sign(
            houses[4].key, jobs.post("cleaning", "clean the panels", 120, "aut", now + DAY_MS)
        )
        deposit = day.sign(day.operator, escrow.lock("aut", 1_000, [houses[5].key.did], now + DAY_MS))
        run_phase(live, clock, now, [charger, inspection, cleaning, deposit])
        offer_id = lease_keeper.new_offer_id(charger.hash, 0)
        run_phase(
            live,
            clock,
            now,
            [
                day.sign(houses[2].key, lease.reserve(offer_id, now + HOUR_MS, 3)),
                day.sign(solar[3].key, jobs.accept(jobs_keeper.new_job_id(inspection.hash, 0))),
            ],
        )
    except BaseException:
        live.stop()
        raise
    return live, Economy(
        day=day,
        clock=clock,
        now_ms=now,
        next_interval=next_interval,
        last_cleared=last_cleared,
        bids=bids,
        asks=asks,
        data_checked=data_keeper.new_offer_id(calibrated.hash, 0).hex(),
        data_unchecked=data_keeper.new_offer_id(uncalibrated.hash, 0).hex(),
        readings_left=readings_left,
    )


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
            context = browser.new_context(viewport={"width": 1280, "height": 800}, timezone_id="UTC")
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            yield page
            context.close()
        finally:
            browser.close()


@pytest.fixture
def economy(tmp_path: Path) -> Iterator[tuple[LiveNode, Economy]]:
    live, built = build_economy(tmp_path / "node", heartbeat_ms=300)
    try:
        yield live, built
    finally:
        live.stop()


def test_the_economy_page_shows_the_market_and_the_machine_economy_live(
    browser_page: object, economy: tuple[LiveNode, Economy], tmp_path: Path
) -> None:
    from playwright.sync_api import Page, expect

    page = browser_page
    assert isinstance(page, Page)
    live, built = economy
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)

    # The main page links to the economy page, and back.
    page.goto(live.url + "/")
    page.get_by_test_id("nav-economy").click()
    page.wait_for_url(live.url + "/economy")
    expect(page.get_by_test_id("live-indicator")).to_have_attribute("data-state", "live")
    expect(page.get_by_test_id("zone-select")).to_have_value(ZONE)
    expect(page.get_by_test_id("zone-info")).to_contain_text(f"cap {FEED}")

    # The next interval's book: bids best first, asks cheapest first, the cancelled bid struck out.
    expect(page.get_by_test_id("book-title")).to_contain_text(f"interval {built.next_interval}")
    bid_rows = page.locator('[data-testid="book-row"][data-side="bid"]')
    ask_rows = page.locator('[data-testid="book-row"][data-side="ask"]')
    expect(bid_rows).to_have_count(len(built.bids) + 1)
    expect(ask_rows).to_have_count(len(built.asks))
    assert [int(p) for p in bid_rows.evaluate_all("rows => rows.map(r => r.dataset.price)")] == [6, 5, 3]
    assert [int(p) for p in ask_rows.evaluate_all("rows => rows.map(r => r.dataset.price)")] == [2, 4]
    expect(bid_rows.nth(2)).to_have_class("cancelled")
    expect(bid_rows.nth(0)).to_contain_text("300")
    expect(bid_rows.locator("svg.depth rect")).to_have_count(2)  # cumulative depth, not the cancelled bid
    expect(page.get_by_test_id("book-summary")).to_contain_text("gate closes in 15 min")

    # The chart: one point per traded interval, volume bars, the oracle cap; the clearings table.
    prices = live.http.get("/api/v1/market/prices", params={"zone": ZONE}).json()["prices"]
    assert len(prices) == INTERVALS
    traded = [r for r in prices if r["price"] is not None]
    assert len(traded) >= INTERVALS - 2 and all(r["cap"] is not None for r in traded)
    chart = page.get_by_test_id("price-svg")
    expect(chart.get_by_test_id("price-point")).to_have_count(len(traded))
    expect(chart.get_by_test_id("volume-bar")).to_have_count(len([r for r in prices if r["volume"]]))
    assert chart.get_by_test_id("cap-line").get_attribute("d", timeout=TIMEOUT_MS).count("M") >= 1
    last_point = chart.locator(f'[data-testid="price-point"][data-interval="{built.last_cleared}"]')
    expect(last_point).to_have_attribute("data-price", str(prices[-1]["price"]))
    clearing_rows = page.get_by_test_id("clearing-row")
    expect(clearing_rows).to_have_count(12)
    newest = clearing_rows.first
    expect(newest).to_have_attribute("data-interval", str(built.last_cleared))
    expect(newest).to_have_attribute("data-status", "settling")
    settled = prices[-2]
    assert settled["status"] == "settled"
    second = clearing_rows.nth(1)
    expect(second).to_have_attribute("data-status", "settled")
    expect(second).to_contain_text(f"{settled['delivered']} wh")

    # The cards: oracle feed, escrow, leases, data offers, jobs.
    feed = page.locator(f'[data-testid="oracle-row"][data-feed="{FEED}"]')
    expect(feed).to_have_attribute("data-fresh", "true")
    latest = live.http.get(f"/api/v1/oracle/feeds/{FEED}").json()["latest"]
    expect(feed).to_contain_text(latest["display"])
    expect(feed).to_contain_text("fresh")
    summary = live.http.get("/economy/escrow").json()
    assert summary["count"] > 0 and set(summary["holders"]) >= {"escrow", "jobs", "lease", "market"}
    expect(page.get_by_test_id("escrow-count")).to_have_text(str(summary["count"]))
    expect(page.get_by_test_id("escrow-total")).to_have_text(f"{summary['total']['aut']} aut")
    expect(page.locator('[data-testid="escrow-row"][data-holder="lease"]')).to_contain_text("120 aut")
    lease_offers = page.get_by_test_id("lease-offer-row")
    expect(lease_offers).to_have_count(1)
    expect(lease_offers.first).to_contain_text("ev-charger-1 (charger)")
    expect(lease_offers.first).to_contain_text("40 aut / 1 h")
    expect(lease_offers.first).to_contain_text("uptime ≥ 99%")
    reserved = page.locator('[data-testid="lease-row"][data-status="reserved"]')
    expect(reserved).to_have_count(1)
    expect(reserved).to_contain_text("ev-charger-1")
    data_rows = page.get_by_test_id("data-row")
    expect(data_rows).to_have_count(2)
    expect(page.locator('[data-testid="data-row"][data-approved="true"]')).to_contain_text("irradiance")
    expect(page.locator('[data-testid="data-row"][data-approved="true"]')).to_contain_text("checked")
    unchecked = page.locator('[data-testid="data-row"][data-approved="false"]')
    expect(unchecked).to_contain_text("load-profile")
    expect(unchecked).to_contain_text("attestation missing")
    expect(unchecked.locator("[data-code]")).to_have_attribute("data-code", "data.attestation_missing")
    expect(data_rows.first).to_contain_text("CC-BY-4.0")
    expect(page.get_by_test_id("job-row")).to_have_count(2)
    expect(page.get_by_test_id("jobs-counts")).to_have_text("1 open · 1 accepted · 0 attested · 0 paid")
    accepted = page.locator('[data-testid="job-row"][data-status="accepted"]')
    expect(accepted).to_contain_text("maintenance")
    expect(accepted).to_contain_text("500 aut")

    screenshot = tmp_path / "economy.png"
    page.screenshot(path=str(screenshot), full_page=True)
    assert screenshot.stat().st_size > 20_000

    # Live: the clock passes the next gate; the book that was shown clears, without a reload.
    gate_ms, readings = built.readings_left
    assert gate_ms == built.next_interval * INTERVAL_MS
    run_phase(live, built.clock, gate_ms, readings)
    cleared = live.http.get(
        "/api/v1/market/book", params={"zone": ZONE, "interval": built.next_interval}
    ).json()["clearing"]
    assert cleared is not None and cleared["price"] is not None
    expect(clearing_rows.first).to_have_attribute(
        "data-interval", str(built.next_interval), timeout=TIMEOUT_MS
    )
    expect(clearing_rows.first).to_contain_text(str(cleared["price"]))
    expect(chart.get_by_test_id("price-point")).to_have_count(len(traded) + 1)
    expect(page.get_by_test_id("book-title")).to_contain_text(f"interval {built.next_interval + 1}")
    expect(page.get_by_test_id("book-bids")).to_contain_text("no bids")
    # The earlier book can still be looked at: its fills against its quantities.
    page.locator("#book-prev").click()
    expect(page.get_by_test_id("book-title")).to_contain_text(f"interval {built.next_interval}")
    expect(page.get_by_test_id("book-summary")).to_contain_text(f"at {cleared['price']}")
    page.get_by_test_id("book-next").click()
    expect(page.get_by_test_id("book-title")).to_contain_text(f"interval {built.next_interval + 1}")

    page.get_by_test_id("nav-chain").click()
    page.wait_for_url(live.url + "/")
    expect(page.get_by_test_id("blocks")).to_be_visible()

    foreign = [url for url in requests if not url.startswith(live.url) and not url.startswith("data:")]
    assert foreign == []
    assert problems == []


def test_the_economy_page_of_a_chain_without_trades_says_so(
    browser_page: object, live_node: LiveNode
) -> None:
    """The standard test chain configures no market: the default zone, empty book, empty chart."""
    from playwright.sync_api import Page, expect

    page = browser_page
    assert isinstance(page, Page)
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.goto(live_node.url + "/economy")
    expect(page.get_by_test_id("zone-select")).to_have_value("main")
    expect(page.get_by_test_id("book-bids")).to_contain_text("no bids")
    expect(page.get_by_test_id("book-asks")).to_contain_text("no asks")
    expect(page.get_by_test_id("price-svg")).to_contain_text("No cleared intervals yet")
    expect(page.get_by_test_id("clearings")).to_contain_text("No clearings yet")
    expect(page.get_by_test_id("oracles-body")).to_contain_text("No feeds.")
    expect(page.get_by_test_id("escrow-count")).to_have_text("0")
    expect(page.get_by_test_id("data-body")).to_contain_text("No data offers.")
    assert problems == []
