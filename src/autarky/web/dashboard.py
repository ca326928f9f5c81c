"""The dashboard the node serves at ``/`` and ``/economy``, and the offline API reference at ``/docs``.

Both are Jinja2 templates (``templates/``) with plain CSS and vanilla JavaScript (``static/``) that
ship in the package: nothing is loaded from another host at run time, and a Content-Security-Policy
says so to the browser. The page is rendered with the current state on the server, then kept live
by ``static/dashboard.js`` from ``/api/v1/events`` (EventSource) and periodic reads of the API.

``/economy`` (``templates/economy.html``, ``static/economy.js``) shows the machine economy: the energy
market's order book and clearing-price chart, oracle feeds, leases, data offers, jobs and open escrow.
It reads the module APIs (``/api/v1/market|oracle|lease|data|jobs/...``) and ``/economy/escrow``,
the one summary no API route gives: every open escrow lock counted and summed, per asset and holder.

``/agents`` (``templates/agents.html``, ``static/agents.js``) shows the machine agents that run in
this process (``autarky up`` hands the app its activity feed as ``app.state.agents``): per machine
its latest forecast, its orders, its decision records and its pre-check refusals, with the market's
clearing prices. ``/agents/feed`` serves the feed as JSON; ``/agents/explain/{tx}`` runs
``autarky.provenance.explain`` for a transaction against this node and the workspace's decision
store and model directory, and ``/agents/decisions/{tx}`` shows that explanation, every check.
Without agents in the process the page says so.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.market import MarketModule
from autarky.node.node import Node
from autarky.web import views

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"
INITIAL_BLOCKS = 12

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def _templates() -> Jinja2Templates:
    environment = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=jinja2.select_autoescape(["html"]),
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["short_did"] = views.short_did
    environment.filters["short_hash"] = lambda value, length=10: f"{value[:length]}…" if value else ""
    return Jinja2Templates(env=environment)


async def dashboard_context(node: Node) -> dict[str, Any]:
    """What the page shows when it is first rendered: stored headers from a worker thread, the rest
    from memory on the event loop thread (see ``views``)."""
    top = node.height
    headers = await asyncio.to_thread(node.storage.headers, max(0, top - INITIAL_BLOCKS + 1), top + 1)
    return {
        "status": node.status(),
        "blocks": [header.to_json() for header in reversed(headers)],
        "machines": views.machines_json(node, 0, 100),
        "supplies": views.supplies_json(node),
    }


def escrow_summary(node: Node) -> dict[str, Any]:
    """Every open escrow lock counted and summed: ``count``, ``total`` per asset, and per ``holder``
    (the module that may release it: market, lease, jobs, data, oracle; ``escrow`` for user locks)."""
    total: dict[str, int] = {}
    holders: dict[str, dict[str, Any]] = {}
    locks = escrow_keeper.all_locks(node.state)
    for lock in locks:
        total[lock.asset] = total.get(lock.asset, 0) + lock.amount
        holder = holders.setdefault(lock.holder, {"count": 0, "total": {}})
        holder["count"] += 1
        holder["total"][lock.asset] = holder["total"].get(lock.asset, 0) + lock.amount
    return {
        "count": len(locks),
        "total": dict(sorted(total.items())),
        "holders": {name: holders[name] for name in sorted(holders)},
        "height": node.height,
    }


def economy_context(node: Node) -> dict[str, Any]:
    """What ``/economy`` shows when first rendered: the chain and the market's zones (the rest the
    page reads from the API at once)."""
    market = node.app.module("market")
    assert isinstance(market, MarketModule)
    zones = [zone.name for zone in market.zones(node.state)]
    return {"status": node.status(), "zones": zones, "escrow": escrow_summary(node)}


NO_AGENTS = {
    "running": False,
    "detail": "no machine agents run in this node's process: start the demo with `autarky up`",
}


def agents_feed(app: FastAPI) -> Any:
    """The activity feed ``autarky up`` gave the app (``snapshot()``, ``store``, ``models_dir``), or None."""
    return getattr(app.state, "agents", None)


async def explain_decision(node: Node, feed: Any, tx_hex: str) -> dict[str, Any] | None:
    """``autarky.provenance.explain`` for one transaction, against this node and the feed's store."""
    from autarky.provenance import explain

    try:
        digest = bytes.fromhex(tx_hex)
    except ValueError:
        return None
    if len(digest) != 32 or feed is None or feed.store is None:
        return None
    record = await asyncio.to_thread(node.tx, digest)
    feed.store.flush()
    result = explain(digest, feed.store, views.NodeLedgerView(node, {digest: record}), feed.models_dir)
    document = result.to_json()
    pending = False
    if result.record is not None:
        pending = result.record.seq >= feed.store.anchored_count(result.record.machine)
    document["awaiting_anchor"] = pending
    return document


def install_dashboard(app: FastAPI) -> None:
    templates = _templates()
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    async def dashboard(request: Request) -> HTMLResponse:
        node: Node = request.app.state.node
        context = await dashboard_context(node)
        return templates.TemplateResponse(request, "index.html", context, headers=_PAGE_HEADERS)

    @app.get("/economy", include_in_schema=False, response_class=HTMLResponse)
    async def economy(request: Request) -> HTMLResponse:
        node: Node = request.app.state.node
        return templates.TemplateResponse(
            request, "economy.html", economy_context(node), headers=_PAGE_HEADERS
        )

    @app.get("/economy/escrow", include_in_schema=False)
    async def economy_escrow(request: Request) -> JSONResponse:
        node: Node = request.app.state.node
        return JSONResponse(escrow_summary(node), headers={"Cache-Control": "no-store"})

    @app.get("/agents", include_in_schema=False, response_class=HTMLResponse)
    async def agents(request: Request) -> HTMLResponse:
        node: Node = request.app.state.node
        feed = agents_feed(request.app)
        context = {"status": node.status(), "running": feed is not None, "detail": NO_AGENTS["detail"]}
        return templates.TemplateResponse(request, "agents.html", context, headers=_PAGE_HEADERS)

    @app.get("/agents/feed", include_in_schema=False)
    async def agents_feed_json(request: Request) -> JSONResponse:
        feed = agents_feed(request.app)
        document = NO_AGENTS if feed is None else feed.snapshot()
        return JSONResponse(document, headers={"Cache-Control": "no-store"})

    @app.get("/agents/explain/{tx_hash}", include_in_schema=False)
    async def agents_explain(request: Request, tx_hash: str) -> Response:
        document = await explain_decision(request.app.state.node, agents_feed(request.app), tx_hash)
        if document is None:
            return JSONResponse({"detail": "no decision store, or not a transaction hash"}, status_code=404)
        return JSONResponse(document, headers={"Cache-Control": "no-store"})

    @app.get("/agents/decisions/{tx_hash}", include_in_schema=False, response_class=HTMLResponse)
    async def agents_decision(request: Request, tx_hash: str) -> HTMLResponse:
        node: Node = request.app.state.node
        document = await explain_decision(node, agents_feed(request.app), tx_hash)
        context = {"status": node.status(), "tx_hash": tx_hash[:64], "explanation": document}
        return templates.TemplateResponse(
            request, "explain.html", context, headers=_PAGE_HEADERS, status_code=200 if document else 404
        )

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def api_reference(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "docs.html", {}, headers=_PAGE_HEADERS)
