"""The dashboard the node serves at ``/`` and the offline API reference at ``/docs``.

Both are Jinja2 templates (``templates/``) with plain CSS and vanilla JavaScript (``static/``) that
ship in the package: nothing is loaded from another host at run time, and a Content-Security-Policy
says so to the browser. The page is rendered with the current state on the server, then kept live
by ``static/dashboard.js`` from ``/api/v1/events`` (EventSource) and periodic reads of the API.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import jinja2
from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

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


def install_dashboard(app: FastAPI) -> None:
    templates = _templates()
    app.mount("/static", StaticFiles(directory=str(STATIC)), name="static")

    @app.get("/", include_in_schema=False, response_class=HTMLResponse)
    async def dashboard(request: Request) -> HTMLResponse:
        node: Node = request.app.state.node
        context = await dashboard_context(node)
        return templates.TemplateResponse(request, "index.html", context, headers=_PAGE_HEADERS)

    @app.get("/docs", include_in_schema=False, response_class=HTMLResponse)
    async def api_reference(request: Request) -> HTMLResponse:
        return templates.TemplateResponse(request, "docs.html", {}, headers=_PAGE_HEADERS)
