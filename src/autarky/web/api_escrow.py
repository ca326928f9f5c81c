"""Escrow routes: every open lock, by payer or beneficiary, and one lock by id (module ``escrow``).

    GET /api/v1/escrow/locks?account=&role=payer|beneficiary   open locks of an account, in id order
    GET /api/v1/escrow/locks/{id}                             one open lock (404 once it has ended)

A lock is ``{id, payer, asset, amount, locked, holder, purpose, expires_ms, beneficiaries,
arbiter, height}``; ``amount`` is what remains. Prove a lock with ``/api/v1/proofs?key=escrow/lock/<id>``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query

from autarky.modules.escrow import keeper as escrow_keeper
from autarky.web import views
from autarky.web.api import NodeDep, account_name, lock_id_from_hex
from autarky.web.errors import ERROR_RESPONSES, NOT_FOUND, ApiError

router = APIRouter(prefix="/api/v1/escrow", tags=["escrow"], responses=ERROR_RESPONSES)


@router.get("/locks", summary="Open escrow locks of an account")
async def locks(
    node: NodeDep,
    account: Annotated[str, Query(description="a did:key (or module account)")],
    role: Annotated[
        Literal["payer", "beneficiary"], Query(description="the locks it pays, or that name it")
    ] = "payer",
) -> dict[str, Any]:
    """`locks`: the open locks `account` pays (`role=payer`) or is a beneficiary of, with `total`
    per asset of what remains."""
    did = account_name(account)
    found = views.escrow_locks(node.state, did, role)
    totals: dict[str, int] = {}
    for lock in found:
        totals[lock["asset"]] = totals.get(lock["asset"], 0) + lock["amount"]
    return {"account": did, "role": role, "locks": found, "total": dict(sorted(totals.items()))}


@router.get("/locks/{lock_id}", summary="One open escrow lock")
async def lock(
    node: NodeDep, lock_id: Annotated[str, Path(description="the lock id (64 hex characters)")]
) -> dict[str, Any]:
    raw = lock_id_from_hex(lock_id, "lock id")
    found = escrow_keeper.get(node.state, raw)
    if found is None:
        raise ApiError(404, NOT_FOUND, f"no open lock {raw.hex()} (it never existed, or it has ended)")
    return found.to_json()
