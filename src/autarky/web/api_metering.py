"""Metering routes: meters, usage per interval, bills and debt, tariffs, deposits (module ``metering``).

    GET /api/v1/metering/params                                    interval length, default tariff
    GET /api/v1/metering/meters?subject=                           the meters registered to an account
    GET /api/v1/metering/meters/{meter}                            one meter: registration, last reading
    GET /api/v1/metering/usage?account=&direction=&from=&to=       energy per interval, complete or not
    GET /api/v1/metering/bills?account=&infra=&limit=              statements (debt), bills, deposits
    GET /api/v1/metering/tariffs/{infra}                           the tariff billing at an infrastructure

Intervals are indices: interval ``k`` is the time ``[k * interval_ms, (k + 1) * interval_ms)``; each
answer also gives ``start_ms`` and ``end_ms``. Writes (register, read, set_tariff, deposit,
withdraw, deregister) are signed transactions through ``POST /api/v1/tx``. Prove a record with
``/api/v1/proofs?key=metering/usage/<account>/<direction>/<interval, 20 digits>``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from autarky.crypto.did import is_did_key
from autarky.ledger.state import StateReader
from autarky.modules.metering import MeteringModule, keeper
from autarky.modules.metering.messages import DIRECTIONS
from autarky.node.node import Node
from autarky.web.api import NodeDep
from autarky.web.errors import ERROR_RESPONSES, INVALID_DID, INVALID_REQUEST, NOT_FOUND, ApiError

router = APIRouter(prefix="/api/v1/metering", tags=["metering"], responses=ERROR_RESPONSES)

MAX_INTERVALS = 1000
DEFAULT_INTERVALS = 96
MAX_BILLS = 1000
MAX_INTERVAL = 10**20 - 1

DidQuery = Annotated[str, Query(description="an Ed25519 did:key")]


@router.get("/params", summary="Metering parameters")
async def params(node: NodeDep) -> dict[str, Any]:
    """`interval_ms` (interval `k` is `[k * interval_ms, (k + 1) * interval_ms)`), `default_tariff`
    (bills at every infrastructure without its own; null: none) and `current_interval`, the interval
    of the last block's time."""
    stored = keeper.read_params(node.state)
    return {
        "interval_ms": stored.interval_ms,
        "default_tariff": None if stored.default_tariff is None else stored.default_tariff.to_cbor(),
        "current_interval": node.header.time_ms // stored.interval_ms,
        "time_ms": node.header.time_ms,
    }


@router.get("/meters", summary="The meters registered to an account")
async def meters(node: NodeDep, subject: DidQuery) -> dict[str, Any]:
    """Each meter: its direction, unit, infrastructure (or null), registration height and time,
    baseline, energy counted since registration, number of readings, and `last_reading`."""
    subject = _did(subject, "subject")
    state = node.state
    module = _metering(node)
    return {
        "subject": subject,
        "meters": [meter_json(state, record) for record in module.meters_of(state, subject)],
    }


@router.get("/meters/{meter}", summary="One meter")
async def meter(
    node: NodeDep, meter: Annotated[str, Path(description="the meter's did:key")]
) -> dict[str, Any]:
    """`registered` is false for a meter that was deregistered (its `last_reading` stays, because a
    meter's readings are monotone over its whole life); 404 for a meter never seen."""
    meter = _did(meter, "meter")
    state = node.state
    record = keeper.read_meter(state, meter)
    if record is not None:
        return meter_json(state, record)
    last = keeper.read_last(state, meter)
    if last is None:
        raise ApiError(404, NOT_FOUND, f"no meter {meter} is registered or has ever reported")
    return {"meter": meter, "registered": False, "last_reading": _last_json(last)}


@router.get("/usage", summary="Metered energy of an account per interval")
async def usage(
    node: NodeDep,
    account: DidQuery,
    direction: Annotated[str, Query(description="export (delivered to the grid) or import (taken)")],
    first: Annotated[
        int | None, Query(alias="from", ge=0, le=MAX_INTERVAL, description="first interval")
    ] = None,
    last: Annotated[int | None, Query(alias="to", ge=0, le=MAX_INTERVAL, description="last interval")] = None,
) -> dict[str, Any]:
    """Every interval `from`..`to` (default: the 96 intervals up to the current one), oldest first,
    with `energy` (what `MeteringModule.energy` gives the market) and `complete` (`readings_complete`:
    no later reading can change it). At most 1000 intervals per request; `total` sums them."""
    account = _did(account, "account")
    if direction not in DIRECTIONS:
        raise ApiError(400, INVALID_REQUEST, "direction is 'export' or 'import'")
    state = node.state
    module = _metering(node)
    interval_ms = module.interval_ms(state)
    last = node.header.time_ms // interval_ms if last is None else last
    first = max(0, last - DEFAULT_INTERVALS + 1) if first is None else first
    if first > last:
        raise ApiError(400, INVALID_REQUEST, f"from ({first}) is after to ({last})")
    if last - first >= MAX_INTERVALS:
        raise ApiError(400, INVALID_REQUEST, f"ask at most {MAX_INTERVALS} intervals at once")
    recorded = dict(keeper.usage_range(state, account, direction, first, last))
    units = sorted({unit for _, _, unit in keeper.meters_of(state, account, direction)})
    intervals = [
        {
            "interval": interval,
            "start_ms": interval * interval_ms,
            "end_ms": (interval + 1) * interval_ms,
            "energy": recorded.get(interval, 0),
            "complete": module.readings_complete(state, account, direction, interval),
        }
        for interval in range(first, last + 1)
    ]
    return {
        "account": account,
        "direction": direction,
        "unit": units[0] if units else None,
        "interval_ms": interval_ms,
        "from": first,
        "to": last,
        "total": sum(recorded.values()),
        "intervals": intervals,
    }


@router.get("/bills", summary="What an account is billed at infrastructure, its debt and its deposits")
async def bills(
    node: NodeDep,
    account: DidQuery,
    infra: Annotated[str | None, Query(description="only this infrastructure")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_BILLS, description="most bills listed, newest first")] = 100,
) -> dict[str, Any]:
    """`statements`: per infrastructure and asset, the totals `quantity`, `billed`, `paid` and the
    outstanding `debt`; `debt`: the outstanding debt per asset; `bills`: per interval, `quantity` and
    `amount`, newest first; `deposits`: the open deposits (escrow locks) that pay the bills."""
    account = _did(account, "account")
    if infra is not None:
        infra = _did(infra, "infra")
    state = node.state
    statements = [
        {"infra": where, "asset": asset, **statement.to_cbor()}
        for where, asset, statement in keeper.statements_of(state, account)
        if infra in (None, where)
    ]
    debt: dict[str, int] = {}
    for entry in statements:
        if entry["debt"]:
            debt[entry["asset"]] = debt.get(entry["asset"], 0) + entry["debt"]
    interval_ms = keeper.read_params(state).interval_ms
    rows = [row for row in keeper.bills_of(state, account) if infra in (None, row[0])]
    rows.sort(key=lambda row: (-row[2], row[0], row[1]))  # newest interval first
    listed = [
        {
            "infra": where,
            "asset": asset,
            "interval": interval,
            "start_ms": interval * interval_ms,
            "quantity": quantity,
            "amount": amount,
        }
        for where, asset, interval, quantity, amount in rows[:limit]
    ]
    deposits = [
        deposit_json(record) for record in keeper.deposits_of(state, account) if infra in (None, record.infra)
    ]
    return {
        "account": account,
        "statements": statements,
        "debt": debt,
        "bills": listed,
        "more": len(rows) > limit,
        "deposits": deposits,
    }


@router.get("/tariffs/{infra}", summary="The tariff billing at an infrastructure")
async def tariff(
    node: NodeDep, infra: Annotated[str, Path(description="the infrastructure's did:key")]
) -> dict[str, Any]:
    """`tariff` with `source`: `own` (set by the infrastructure's controller) or `default` (the
    governance parameter); null when neither exists (the infrastructure does not bill)."""
    infra = _did(infra, "infra")
    state = node.state
    own = keeper.own_tariff(state, infra)
    chosen = own if own is not None else keeper.read_params(state).default_tariff
    if chosen is None:
        return {"infra": infra, "tariff": None}
    return {"infra": infra, "tariff": {**chosen.to_cbor(), "source": "own" if own is not None else "default"}}


# -- JSON ----------------------------------------------------------------------------------------


def meter_json(state: StateReader, record: keeper.MeterRecord) -> dict[str, Any]:
    last = keeper.read_last(state, record.meter)
    return {
        "meter": record.meter,
        "registered": True,
        "subject": record.subject,
        "direction": record.direction,
        "unit": record.unit,
        "infra": record.infra,
        "registered_height": record.registered,
        "registered_ms": record.registered_ms,
        "baseline": record.baseline,
        "counted": record.counted,
        "readings": record.readings,
        "last_reading": None if last is None else _last_json(last),
    }


def deposit_json(record: keeper.DepositRecord) -> dict[str, Any]:
    return {
        "lock": record.lock.hex(),
        "payer": record.payer,
        "infra": record.infra,
        "asset": record.asset,
        "amount": record.amount,
        "expires_ms": record.expires_ms,
        "height": record.height,
    }


def _last_json(last: keeper.LastReading) -> dict[str, int]:
    return {"time_ms": last.time_ms, "value": last.value}


# -- helpers -------------------------------------------------------------------------------------


def _metering(node: Node) -> MeteringModule:
    module = node.app.module("metering")
    assert isinstance(module, MeteringModule)
    return module


def _did(value: str, what: str) -> str:
    if not is_did_key(value):
        raise ApiError(400, INVALID_DID, f"{what} is not an Ed25519 did:key: {value[:80]!r}")
    return value
