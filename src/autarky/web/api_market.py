"""Energy market routes: zones, order books, the clearing-price history, orders (module ``market``).

    GET /api/v1/market/zones                           zones, parameters, interval length, current interval
    GET /api/v1/market/book?zone=&interval=            one book: its orders ranked, its clearing if any
    GET /api/v1/market/prices?zone=&from=&to=&limit=   clearing records of a zone, oldest first
    GET /api/v1/market/orders/{id}                     one order, with its book's clearing

Intervals are indexes: interval ``k`` is block time ``[k*L, (k+1)*L)`` with ``L = interval_ms``.
``book`` defaults to the next interval that still takes orders (the current one + 1); ``prices``
to the last 96 intervals. Writes (bid, ask, cancel) are signed transactions through
``POST /api/v1/tx``. Prove a price with ``/api/v1/proofs?key=market/clearing/<zone>/<interval:016d>``.
"""

from __future__ import annotations

import dataclasses
from typing import Annotated, Any, cast

from fastapi import APIRouter, Path, Query

from autarky.modules.market import MarketModule
from autarky.modules.market.auction import Order, ask_rank, bid_rank
from autarky.modules.market.keeper import ClearingRecord, OrderRecord, Zone
from autarky.modules.market.messages import MAX_INTERVAL
from autarky.node.node import Node
from autarky.web import views
from autarky.web.api import NodeDep, lock_id_from_hex
from autarky.web.errors import ERROR_RESPONSES, INVALID_REQUEST, NOT_FOUND, ApiError

router = APIRouter(prefix="/api/v1/market", tags=["market"], responses=ERROR_RESPONSES)

MAX_PRICES_PER_PAGE = 1_000
DEFAULT_PRICE_INTERVALS = 96

Interval = Annotated[int, Query(ge=0, le=MAX_INTERVAL)]


def _market(node: Node) -> MarketModule:
    return cast(MarketModule, node.app.module("market"))


def _zone(node: Node, name: str) -> Zone:
    zone = _market(node).zone(node.state, name)
    if zone is None:
        raise ApiError(404, NOT_FOUND, f"no market zone {name[:40]!r}")
    return zone


def zone_json(zone: Zone) -> dict[str, Any]:
    return dataclasses.asdict(zone)


def order_json(record: OrderRecord) -> dict[str, Any]:
    return cast(dict[str, Any], views.jsonable(record.to_cbor()))


def clearing_json(record: ClearingRecord, interval_ms: int) -> dict[str, Any]:
    document = record.to_cbor()
    document["start_ms"] = record.interval * interval_ms
    return document


@router.get("/zones", summary="Market zones and parameters")
async def zones(node: NodeDep) -> dict[str, Any]:
    """`zones` (name, asset, unit, price_cap_feed, penalty_per_unit), `params`, `interval_ms` (L) and
    `current_interval` (the last block's time // L: its gate has closed; orders go to later ones)."""
    market, state = _market(node), node.state
    interval_ms = market.interval_ms(state)
    return {
        "zones": [zone_json(zone) for zone in market.zones(state)],
        "params": dataclasses.asdict(market.params(state)),
        "interval_ms": interval_ms,
        "current_interval": node.header.time_ms // interval_ms,
        "time_ms": node.header.time_ms,
    }


@router.get("/book", summary="One order book: a zone and a delivery interval")
async def book(
    node: NodeDep,
    zone: Annotated[str, Query(max_length=64, description="the zone name")],
    interval: Annotated[
        int | None, Query(ge=0, le=MAX_INTERVAL, description="default: the next interval taking orders")
    ] = None,
) -> dict[str, Any]:
    """`bids` (price priority, then height, then id) and `asks` (likewise, cheapest first), every
    order placed for the book with its status; `open` orders only until the gate; `clearing` once
    cleared (price, volume, status, delivered, penalty), else null. `gate_ms`: when clearing starts."""
    market, state = _market(node), node.state
    _zone(node, zone)
    interval_ms = market.interval_ms(state)
    if interval is None:
        interval = node.header.time_ms // interval_ms + 1
    records = market.book(state, zone, interval)
    bids = sorted((r for r in records if r.side == "bid"), key=lambda r: bid_rank(_ranked(r)))
    asks = sorted((r for r in records if r.side == "ask"), key=lambda r: ask_rank(_ranked(r)))
    clearing = market.clearing(state, zone, interval)
    return {
        "zone": zone,
        "interval": interval,
        "interval_ms": interval_ms,
        "gate_ms": interval * interval_ms,
        "accepting": node.header.time_ms < interval * interval_ms,
        "bids": [order_json(record) for record in bids],
        "asks": [order_json(record) for record in asks],
        "clearing": None if clearing is None else clearing_json(clearing, interval_ms),
    }


def _ranked(record: OrderRecord) -> Order:
    return Order(record.id, record.limit_price, record.quantity, record.height)


@router.get("/prices", summary="Clearing-price history of a zone")
async def prices(
    node: NodeDep,
    zone: Annotated[str, Query(max_length=64, description="the zone name")],
    from_interval: Annotated[
        int | None, Query(alias="from", ge=0, le=MAX_INTERVAL, description="first interval (default: 96 ago)")
    ] = None,
    to_interval: Annotated[
        int | None,
        Query(alias="to", ge=0, le=MAX_INTERVAL, description="last interval (default: the current)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PRICES_PER_PAGE)] = 500,
) -> dict[str, Any]:
    """`prices`: the clearing record of each cleared book in `from .. to`, oldest first (`price`
    null: nothing traded), with `start_ms` of its interval. `more` is true when `limit` cut it."""
    market, state = _market(node), node.state
    _zone(node, zone)
    interval_ms = market.interval_ms(state)
    last = node.header.time_ms // interval_ms if to_interval is None else to_interval
    first = max(0, last - DEFAULT_PRICE_INTERVALS + 1) if from_interval is None else from_interval
    if first > last:
        raise ApiError(400, INVALID_REQUEST, f"from ({first}) is after to ({last})")
    found = market.prices(state, zone, first, last, limit + 1)
    return {
        "zone": zone,
        "from": first,
        "to": last,
        "interval_ms": interval_ms,
        "prices": [clearing_json(record, interval_ms) for record in found[:limit]],
        "more": len(found) > limit,
    }


@router.get("/orders/{order_id}", summary="One order")
async def order(
    node: NodeDep, order_id: Annotated[str, Path(description="the order id (64 hex characters)")]
) -> dict[str, Any]:
    """The order record (status open, cancelled, unfilled, cleared or settled; fill, delivered,
    paid, penalty) and `clearing`, its book's clearing record (null until cleared)."""
    market, state = _market(node), node.state
    raw = lock_id_from_hex(order_id, "order id")
    record = market.order(state, raw)
    if record is None:
        raise ApiError(404, NOT_FOUND, f"no order {raw.hex()}")
    clearing = market.clearing(state, record.zone, record.interval)
    interval_ms = market.interval_ms(state)
    return {
        **order_json(record),
        "gate_ms": record.interval * interval_ms,
        "clearing": None if clearing is None else clearing_json(clearing, interval_ms),
    }
