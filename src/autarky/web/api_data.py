"""Data market routes: offers, one offer with the node's check of its attestations, purchases
(module ``data``).

    GET /api/v1/data/offers?seller=&kind=&withdrawn=&offset=&limit=   offers in id order
    GET /api/v1/data/offers/{id}?at_ms=               one offer, its requirements checked, its sales
    GET /api/v1/data/purchases?account=&offer=&status=&offset=&limit=   purchases in id order
    GET /api/v1/data/purchases/{id}                   one purchase

An offer is the stored record as JSON (ids and hashes in hex) plus ``resource`` (``data/<id>``, what
a purchase's grant covers). ``/offers/{id}`` adds ``attestations``: for each required attestation,
the one that satisfies it (or null) and the verdict of the newest candidate, judged at ``at_ms`` (by
default the last block's time) by the buyer's agent over the node's state; and ``agent``: whether the
agent approves the offer, or its refusal code. A buyer that trusts no node checks the attestations
itself from proofs (``autarky data buy`` does). Writes (offer, withdraw, buy, ack_delivery) are signed
transactions through ``POST /api/v1/tx``. Prove a record with ``/api/v1/proofs?key=data/offer/<id>``
(or ``data/purchase/<id>``).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from autarky.ledger.tx import MAX_U64
from autarky.modules.data import (
    BuyerAgent,
    DataModule,
    OfferRecord,
    OfferRefused,
    PurchaseRecord,
    check_offer,
)
from autarky.modules.data import keeper as data_keeper
from autarky.modules.identity import IdentityModule
from autarky.node.node import Node
from autarky.web.api import NodeDep, account_name, lock_id_from_hex
from autarky.web.errors import ERROR_RESPONSES, INVALID_REQUEST, NOT_FOUND, ApiError

router = APIRouter(prefix="/api/v1/data", tags=["data"], responses=ERROR_RESPONSES)

MAX_PER_PAGE = 500

Offset = Annotated[int, Query(ge=0)]
Limit = Annotated[int, Query(ge=1, le=MAX_PER_PAGE)]


def _module(node: Node) -> DataModule:
    module = node.app.module("data")
    assert isinstance(module, DataModule)
    return module


def _page(items: list[dict[str, Any]], offset: int, limit: int) -> dict[str, Any]:
    return {"total": len(items), "offset": offset, "limit": limit, "items": items[offset : offset + limit]}


@router.get("/offers", summary="Data offers, in id order")
async def offers(
    node: NodeDep,
    seller: Annotated[str | None, Query(description="only this seller's offers (a did:key)")] = None,
    kind: Annotated[
        Literal["stream", "dataset"] | None, Query(description="only streams or datasets")
    ] = None,
    withdrawn: Annotated[
        bool | None, Query(description="only withdrawn (true) or only open (false) offers; default both")
    ] = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    """`offers`: each offer as stored (see `/offers/{id}`), with `total` before paging."""
    found = _module(node).offers(node.state, None if seller is None else account_name(seller))
    selected = [
        offer.to_json()
        for offer in found
        if (kind is None or offer.kind == kind)
        and (withdrawn is None or (offer.withdrawn is not None) == withdrawn)
    ]
    page = _page(selected, offset, limit)
    return {"offers": page.pop("items"), **page}


@router.get("/offers/{offer_id}", summary="One data offer, its required attestations checked")
async def offer(
    node: NodeDep,
    offer_id: Annotated[str, Path(description="the offer id (64 hex characters)")],
    at_ms: Annotated[
        int | None,
        Query(ge=0, le=MAX_U64, description="judge attestations at this time (default: the last block's)"),
    ] = None,
) -> dict[str, Any]:
    """The offer, `attestations` (per requirement: `satisfied_by` and the newest candidate's `verdict`),
    `agent` (`approved`, or the refusal `code` and `detail`), `checked_at_ms` and `purchases` (how
    many, by status)."""
    raw = lock_id_from_hex(offer_id, "offer id")
    module = _module(node)
    record = module.offer(node.state, raw)
    if record is None:
        raise ApiError(404, NOT_FOUND, f"no offer {raw.hex()}")
    now_ms = node.header.time_ms if at_ms is None else at_ms
    counts: dict[str, int] = {"open": 0, "delivered": 0, "refunded": 0}
    for purchase in module.purchases_of_offer(node.state, raw):
        counts[purchase.status] += 1
    return {
        **record.to_json(),
        **_attestations(node, record, now_ms),
        "checked_at_ms": now_ms,
        "purchases": counts,
    }


@router.get("/purchases", summary="Data purchases of an account or an offer, in id order")
async def purchases(
    node: NodeDep,
    account: Annotated[
        str | None, Query(description="purchases this DID made as buyer or sold as seller")
    ] = None,
    offer: Annotated[str | None, Query(description="purchases of this offer (64 hex characters)")] = None,
    status: Annotated[Literal["open", "delivered", "refunded"] | None, Query()] = None,
    offset: Offset = 0,
    limit: Limit = 100,
) -> dict[str, Any]:
    """`purchases`: each purchase as stored, with `role` (`buyer` or `seller`) when `account` is given;
    name `account`, `offer` or both."""
    if account is None and offer is None:
        raise ApiError(400, INVALID_REQUEST, "name an account, an offer or both")
    module = _module(node)
    if account is not None:
        did = account_name(account)
        found = module.purchases_of(node.state, did)
        if offer is not None:
            offer_raw = lock_id_from_hex(offer, "offer id")
            found = [purchase for purchase in found if purchase.offer == offer_raw]
    else:
        assert offer is not None
        did = None
        found = module.purchases_of_offer(node.state, lock_id_from_hex(offer, "offer id"))
    selected = [
        _purchase_json(purchase, did) for purchase in found if status is None or purchase.status == status
    ]
    page = _page(selected, offset, limit)
    return {"purchases": page.pop("items"), **page}


@router.get("/purchases/{purchase_id}", summary="One data purchase")
async def purchase(
    node: NodeDep, purchase_id: Annotated[str, Path(description="the purchase id (64 hex characters)")]
) -> dict[str, Any]:
    """The purchase as stored: its escrow `lock`, its `grant`, `deliver_by_ms`, `status`, `key_hash`."""
    raw = lock_id_from_hex(purchase_id, "purchase id")
    record = _module(node).purchase(node.state, raw)
    if record is None:
        raise ApiError(404, NOT_FOUND, f"no purchase {raw.hex()}")
    return _purchase_json(record, None)


# -- helpers -----------------------------------------------------------------------------------------


def _purchase_json(record: PurchaseRecord, account: str | None) -> dict[str, Any]:
    document = record.to_json()
    if account is not None:
        document["role"] = "buyer" if record.buyer == account else "seller"
    return document


def _attestations(node: Node, record: OfferRecord, now_ms: int) -> dict[str, Any]:
    identity = node.app.module("identity")
    assert isinstance(identity, IdentityModule)
    agent = BuyerAgent(identity)
    evidence = agent.evidence(node.state, record, now_ms)
    requirements: list[dict[str, Any]] = []
    for requirement in record.required_attestations:
        candidates = [item for item in evidence if item.matches(requirement, record.seller)]
        valid = [item for item in candidates if item.verdict.valid]
        newest = max(candidates, key=lambda item: (item.anchored, item.attestation_id), default=None)
        shown = valid[0] if valid else newest
        requirements.append(
            {
                "claim": requirement.claim,
                "issuer": requirement.issuer,
                "satisfied_by": valid[0].attestation_id.hex() if valid else None,
                "candidates": len(candidates),
                "verdict": None if shown is None else shown.verdict.to_json(),
            }
        )
    try:
        check_offer(record, evidence)
        verdict: dict[str, Any] = {"approved": True, "code": None, "detail": None}
    except OfferRefused as refused:
        verdict = {"approved": False, "code": refused.code, "detail": refused.detail}
    return {"attestations": requirements, "agent": verdict, "proof_key": data_keeper.offer_key(record.id)}
