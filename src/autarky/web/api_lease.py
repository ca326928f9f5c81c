"""Lease routes: offers with their booked slots, leases by account, one lease (module ``lease``).

    GET /api/v1/lease/params                                the module's parameters
    GET /api/v1/lease/offers?provider=&kind=&all=&limit=    offers (all=true: withdrawn too), newest first
    GET /api/v1/lease/offers/{id}                           one offer, with its resource's open reservations
    GET /api/v1/lease/leases?account=&status=&limit=        leases an account rents or provides, newest first
    GET /api/v1/lease/leases/{id}                           one lease, with what escrow still holds for it

Every offer carries ``reservations``: the open slots ``[start_ms, end_ms)`` of its resource (shared
by every offer of the same resource), so a renter can pick a free slot. A lease carries the record
of ``modules/lease/README.md`` plus ``end_ms``, ``total``, ``remaining`` (in escrow) and, in lists,
``role`` (``renter`` or ``provider``). Writes are signed transactions through ``POST /api/v1/tx``.
Prove a record with ``/api/v1/proofs?key=lease/lease/<id>`` (or ``lease/offer/<id>``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, cast

from fastapi import APIRouter, Path, Query

from autarky.ledger.state import StateReader
from autarky.modules.lease import LeaseModule, LeaseRecord, OfferRecord
from autarky.node.node import Node
from autarky.web import views
from autarky.web.api import NodeDep, account_name, lock_id_from_hex
from autarky.web.errors import ERROR_RESPONSES, NOT_FOUND, ApiError

router = APIRouter(prefix="/api/v1/lease", tags=["lease"], responses=ERROR_RESPONSES)

MAX_PER_PAGE = 500
Status = Literal["reserved", "active", "closed"]


def _lease_module(node: Node) -> LeaseModule:
    return cast(LeaseModule, node.app.module("lease"))


def offer_json(state: StateReader, module: LeaseModule, offer: OfferRecord) -> dict[str, Any]:
    document = cast(dict[str, Any], views.jsonable(offer.to_cbor()))
    document["id"] = offer.id.hex()
    document["reservations"] = [
        {"start_ms": start, "end_ms": end, "lease": lease_id.hex()}
        for start, end, lease_id in module.slots(state, offer.provider, offer.resource)
    ]
    return document


def lease_json(record: LeaseRecord, role: str | None = None) -> dict[str, Any]:
    document = cast(dict[str, Any], views.jsonable(record.to_cbor()))
    document.update(id=record.id.hex(), end_ms=record.end_ms, total=record.total, remaining=record.remaining)
    if role is not None:
        document["role"] = role
    return document


@router.get("/params", summary="The lease module's parameters")
async def params(node: NodeDep) -> dict[str, int]:
    return _lease_module(node).params(node.state).to_cbor()


@router.get("/offers", summary="Lease offers, newest first")
async def offers(
    node: NodeDep,
    provider: Annotated[str | None, Query(description="only this provider's offers")] = None,
    kind: Annotated[str | None, Query(max_length=32, description="only this resource kind")] = None,
    include_withdrawn: Annotated[bool, Query(alias="all", description="include withdrawn offers")] = False,
    limit: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 100,
) -> dict[str, Any]:
    """`offers` (each with its resource's open `reservations`) and `total` before the limit."""
    module = _lease_module(node)
    state = node.state
    wanted = None if provider is None else account_name(provider)
    found = [
        offer
        for offer in module.offers(state)
        if (include_withdrawn or offer.withdrawn is None)
        and (wanted is None or offer.provider == wanted)
        and (kind is None or offer.resource_kind == kind)
    ]
    found.sort(key=lambda offer: (-offer.created, offer.id))
    return {"offers": [offer_json(state, module, offer) for offer in found[:limit]], "total": len(found)}


@router.get("/offers/{offer_id}", summary="One lease offer")
async def offer(
    node: NodeDep, offer_id: Annotated[str, Path(description="the offer id (64 hex characters)")]
) -> dict[str, Any]:
    module = _lease_module(node)
    found = module.offer(node.state, lock_id_from_hex(offer_id, "offer id"))
    if found is None:
        raise ApiError(404, NOT_FOUND, f"no lease offer {offer_id.lower()}")
    return offer_json(node.state, module, found)


@router.get("/leases", summary="Leases an account rents or provides, newest first")
async def leases(
    node: NodeDep,
    account: Annotated[str, Query(description="a did:key: the renter or the provider")],
    status: Annotated[Status | None, Query(description="only leases in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PER_PAGE)] = 100,
) -> dict[str, Any]:
    """`leases` (each with its `role` for the account) and `total` before the limit."""
    did = account_name(account)
    module = _lease_module(node)
    found = [
        (record, "renter" if record.renter == did else "provider")
        for record in module.leases_of(node.state, did)
        if status is None or record.status == status
    ]
    found.sort(key=lambda pair: (-pair[0].created, pair[0].id))
    return {
        "account": did,
        "leases": [lease_json(record, role) for record, role in found[:limit]],
        "total": len(found),
    }


@router.get("/leases/{lease_id}", summary="One lease")
async def lease(
    node: NodeDep, lease_id: Annotated[str, Path(description="the lease id (64 hex characters)")]
) -> dict[str, Any]:
    record = _lease_module(node).lease(node.state, lock_id_from_hex(lease_id, "lease id"))
    if record is None:
        raise ApiError(404, NOT_FOUND, f"no lease {lease_id.lower()}")
    return lease_json(record)
