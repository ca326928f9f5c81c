"""One handler per provenance message.

Each handler is a ladder of guard clauses in the order of precedence of ``errors.py`` (the parser
has already run the message-only checks), then the writes and one event::

    anchor:            (none)
    register_model:    unknown_anchor, model_version_exists, model_hash_exists
    retire_model:      unknown_model, not_registrant, model_retired
    anchor_decisions:  not_machine_or_owner, out_of_order
    register_item:     item_exists
    item_event:        unknown_item, not_custodian, same_custodian

``anchor_decisions`` reads one key (the machine's head) and writes two (the batch and the head),
however many batches the machine has anchored: a fleet anchors many batches per block.
"""

from __future__ import annotations

from autarky.ledger.router import TxContext
from autarky.modules.provenance import keeper
from autarky.modules.provenance.errors import (
    ITEM_EXISTS,
    MODEL_HASH_EXISTS,
    MODEL_RETIRED,
    MODEL_VERSION_EXISTS,
    NOT_CUSTODIAN,
    NOT_MACHINE_OR_OWNER,
    NOT_REGISTRANT,
    OUT_OF_ORDER,
    SAME_CUSTODIAN,
    UNKNOWN_ANCHOR,
    UNKNOWN_ITEM,
    UNKNOWN_MODEL,
)
from autarky.modules.provenance.expected import IdentityKeeper
from autarky.modules.provenance.messages import (
    CUSTODY,
    Anchor,
    AnchorDecisions,
    ItemEvent,
    RegisterItem,
    RegisterModel,
    RetireModel,
)


def anchor(ctx: TxContext, msg: Anchor, anchor_id: bytes) -> None:
    """``provenance/anchor``: anyone anchors a Merkle root of records; stored with sender and height."""
    keeper.write_anchor(
        ctx.state,
        {
            "id": anchor_id,
            "schema": msg.schema,
            "root": msg.root,
            "count": msg.count,
            "from_ms": msg.from_ms,
            "until_ms": msg.until_ms,
            "metadata": dict(msg.metadata),
            "sender": ctx.sender,
            "height": ctx.height,
            "time_ms": ctx.env.time_ms,
        },
    )
    ctx.emit(
        "provenance.anchored",
        id=anchor_id,
        schema=msg.schema,
        root=msg.root,
        count=msg.count,
        sender=ctx.sender,
    )


def register_model(ctx: TxContext, msg: RegisterModel) -> None:
    """``provenance/register_model``: the sender registers a model file's hash as its owner."""
    for anchor_id in msg.training_anchors:
        if keeper.read_anchor(ctx.state, anchor_id) is None:
            raise UNKNOWN_ANCHOR(f"training anchor {anchor_id.hex()} is not on chain")
    if keeper.model_hash_of(ctx.state, msg.model_id, msg.version) is not None:
        raise MODEL_VERSION_EXISTS(f"{msg.model_id} {msg.version} is already registered")
    if keeper.read_model(ctx.state, msg.hash) is not None:
        raise MODEL_HASH_EXISTS(f"model file {msg.hash.hex()} is already registered")
    keeper.write_model(
        ctx.state,
        {
            "model_id": msg.model_id,
            "version": msg.version,
            "hash": msg.hash,
            "card_hash": msg.card_hash,
            "kind": msg.kind,
            "training_anchors": list(msg.training_anchors),
            "owner": ctx.sender,
            "height": ctx.height,
            "time_ms": ctx.env.time_ms,
            "retired_height": None,
        },
    )
    ctx.emit(
        "provenance.model_registered",
        model_id=msg.model_id,
        version=msg.version,
        hash=msg.hash,
        owner=ctx.sender,
    )


def retire_model(ctx: TxContext, msg: RetireModel) -> None:
    """``provenance/retire_model``: its registrant marks a model retired (it stays listed)."""
    model = keeper.read_model(ctx.state, msg.hash)
    if model is None:
        raise UNKNOWN_MODEL(f"no model {msg.hash.hex()}")
    if model["owner"] != ctx.sender:
        raise NOT_REGISTRANT(f"model {msg.hash.hex()} was registered by {model['owner']}")
    if model["retired_height"] is not None:
        raise MODEL_RETIRED(f"retired at height {model['retired_height']}")
    keeper.write_model(ctx.state, {**model, "retired_height": ctx.height})
    ctx.emit("provenance.model_retired", hash=msg.hash, model_id=model["model_id"], version=model["version"])


def anchor_decisions(ctx: TxContext, identity: IdentityKeeper, msg: AnchorDecisions) -> None:
    """``provenance/anchor_decisions``: the next contiguous batch of a machine's decision records."""
    if ctx.sender != msg.machine and identity.owner_of(ctx.state, msg.machine) != ctx.sender:
        raise NOT_MACHINE_OR_OWNER(f"{ctx.sender} is neither {msg.machine} nor its owner")
    head = keeper.read_dhead(ctx.state, msg.machine)
    anchored = 0 if head is None else head["count"]
    if msg.first_seq != anchored:
        raise OUT_OF_ORDER(f"first_seq must be {anchored}, the number of decisions anchored so far")
    keeper.write_batch(
        ctx.state,
        {
            "machine": msg.machine,
            "first_seq": msg.first_seq,
            "count": msg.count,
            "head": msg.head,
            "root": msg.root,
            "sender": ctx.sender,
            "height": ctx.height,
            "time_ms": ctx.env.time_ms,
            "tx": ctx.tx.hash,
        },
        ctx.height,
    )
    ctx.emit(
        "provenance.decisions_anchored",
        machine=msg.machine,
        first_seq=msg.first_seq,
        count=msg.count,
        root=msg.root,
    )


def register_item(ctx: TxContext, msg: RegisterItem) -> None:
    """``provenance/register_item``: the sender registers an item and becomes its custodian."""
    if keeper.read_item(ctx.state, msg.item_id) is not None:
        raise ITEM_EXISTS(f"item {msg.item_id!r} is already registered")
    item = {
        "item_id": msg.item_id,
        "kind": msg.kind,
        "metadata": dict(msg.metadata),
        "registrant": ctx.sender,
        "custodian": ctx.sender,
        "condition": None,
        "events": 0,
        "height": ctx.height,
        "time_ms": ctx.env.time_ms,
    }
    keeper.append_item_event(
        ctx.state,
        item,
        {"event": "registered", "by": ctx.sender, "height": ctx.height, "time_ms": ctx.env.time_ms},
    )
    ctx.emit("provenance.item_registered", item_id=msg.item_id, kind=msg.kind, custodian=ctx.sender)


def item_event(ctx: TxContext, msg: ItemEvent) -> None:
    """``provenance/item_event``: the custodian hands the item on or records its condition."""
    item = keeper.read_item(ctx.state, msg.item_id)
    if item is None:
        raise UNKNOWN_ITEM(f"no item {msg.item_id!r}")
    if item["custodian"] != ctx.sender:
        raise NOT_CUSTODIAN(f"the item is in the hands of {item['custodian']}")
    if msg.event == CUSTODY and msg.to == item["custodian"]:
        raise SAME_CUSTODIAN(f"{msg.to} already holds the item")
    event = {
        "event": msg.event,
        "by": ctx.sender,
        "height": ctx.height,
        "time_ms": ctx.env.time_ms,
        "digest": msg.digest,
    }
    if msg.event == CUSTODY:
        assert msg.to is not None
        keeper.append_item_event(ctx.state, {**item, "custodian": msg.to}, {**event, "to": msg.to})
        ctx.emit("provenance.item_custody", item_id=msg.item_id, **{"from": ctx.sender}, to=msg.to)
    else:
        assert msg.condition is not None
        updated = {**item, "condition": msg.condition}
        keeper.append_item_event(ctx.state, updated, {**event, "condition": msg.condition})
        ctx.emit("provenance.item_condition", item_id=msg.item_id, condition=msg.condition)
