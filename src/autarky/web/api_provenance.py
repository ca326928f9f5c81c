"""Provenance routes (module ``provenance``): data anchors, the model registry, decision batches, items.

    GET /api/v1/provenance/anchors/{id}                   one data anchor
    GET /api/v1/provenance/models?model_id=               registered models (all, or one model's versions)
    GET /api/v1/provenance/models/{hash}                  one model by its file hash
    GET /api/v1/provenance/decisions/{did}                a machine's anchored decisions: head and batches
                                                          (the newest, or a page from ?from_seq=)
    GET /api/v1/provenance/decisions/{did}/batch?seq=N    the anchored batch holding record N
    GET /api/v1/provenance/items/{id}                     a tracked item with its history

Records are the maps of ``modules/provenance/README.md`` with bytes as hex. Writes are signed
transactions through ``POST /api/v1/tx``. Prove any of them with ``/api/v1/proofs?key=provenance/...``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, cast

from fastapi import APIRouter, Path, Query

from autarky.modules.provenance import ProvenanceModule
from autarky.node.node import Node
from autarky.web import views
from autarky.web.api import NodeDep, account_name, lock_id_from_hex
from autarky.web.errors import ERROR_RESPONSES, NOT_FOUND, ApiError

router = APIRouter(prefix="/api/v1/provenance", tags=["provenance"], responses=ERROR_RESPONSES)

MAX_BATCHES = 1000
_ITEM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")


def _module(node: Node) -> ProvenanceModule:
    return cast(ProvenanceModule, node.app.module("provenance"))


def _json(value: Any) -> dict[str, Any]:
    return cast(dict[str, Any], views.jsonable(value))


@router.get("/anchors/{anchor_id}", summary="One data anchor")
async def anchor(
    node: NodeDep, anchor_id: Annotated[str, Path(description="the anchor id (64 hex characters)")]
) -> dict[str, Any]:
    found = _module(node).anchor(node.state, lock_id_from_hex(anchor_id, "anchor id"))
    if found is None:
        raise ApiError(404, NOT_FOUND, f"no anchor {anchor_id.lower()}")
    return _json(found)


@router.get("/models", summary="Registered models, by model id and version")
async def models(
    node: NodeDep,
    model_id: Annotated[str | None, Query(max_length=64, description="only this model's versions")] = None,
) -> dict[str, Any]:
    found = _module(node).models(node.state, model_id)
    return {"models": [_json(model) for model in found], "total": len(found)}


@router.get("/models/{file_hash}", summary="One model by the sha256 of its file")
async def model(
    node: NodeDep, file_hash: Annotated[str, Path(description="the model file's sha256 (64 hex characters)")]
) -> dict[str, Any]:
    found = _module(node).model(node.state, lock_id_from_hex(file_hash, "model hash"))
    if found is None:
        raise ApiError(404, NOT_FOUND, f"no model {file_hash.lower()}")
    return _json(found)


@router.get("/decisions/{did}", summary="A machine's anchored decisions: head and batches")
async def decisions(
    node: NodeDep,
    did: Annotated[str, Path(description="the machine's did:key")],
    limit: Annotated[int, Query(ge=1, le=MAX_BATCHES, description="at most this many batches")] = 100,
    from_seq: Annotated[
        int | None,
        Query(ge=0, le=2**63 - 1, description="page in order from the batch starting at this record seq"),
    ] = None,
) -> dict[str, Any]:
    """Without ``from_seq``: the newest ``limit`` batches. With it: the batches from the one that
    starts at record ``from_seq`` on, oldest first, and ``next_seq``, the ``from_seq`` of the next
    page (null on the last one). Batches are never removed, so the pages of one walk never overlap."""
    machine = account_name(did)
    module = _module(node)
    state = node.state
    head = module.decision_head(state, machine)
    answer: dict[str, Any] = {"machine": machine, "head": None if head is None else _json(head)}
    if from_seq is None:
        batches = module.decision_batches(state, machine)
        answer["batches"] = [_json(batch) for batch in batches[-limit:]]
        answer["total"] = len(batches)
        return answer
    page = module.decision_batches(state, machine, from_seq, limit + 1)
    answer["batches"] = [_json(batch) for batch in page[:limit]]
    answer["next_seq"] = page[limit]["first_seq"] if len(page) > limit else None
    return answer


@router.get("/decisions/{did}/batch", summary="The anchored batch holding one decision record")
async def decision_batch(
    node: NodeDep,
    did: Annotated[str, Path(description="the machine's did:key")],
    seq: Annotated[int, Query(ge=0, le=2**63 - 1, description="the record's seq")],
) -> dict[str, Any]:
    machine = account_name(did)
    found = _module(node).decision_batch(node.state, machine, seq)
    if found is None:
        raise ApiError(404, NOT_FOUND, f"no anchored batch of {machine} holds record {seq}")
    return _json(found)


@router.get("/items/{item_id}", summary="A tracked item with its custody and condition history")
async def item(node: NodeDep, item_id: Annotated[str, Path(description="the item id")]) -> dict[str, Any]:
    module = _module(node)
    found = module.item(node.state, item_id) if _ITEM_ID.fullmatch(item_id) else None
    if found is None:
        raise ApiError(404, NOT_FOUND, f"no item {item_id[:64]!r}")
    return {**_json(found), "history": [_json(event) for event in module.item_history(node.state, item_id)]}
