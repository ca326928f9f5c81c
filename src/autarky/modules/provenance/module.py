"""``ProvenanceModule``: data anchors, the model registry, decision batches and tracked items (SPEC C10).

Wires the messages and the invariants into the router. It holds no money and has no end_block;
a machine's owner comes from ``identity``. Other modules, agents and the API read provenance
through the queries at the end of the class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from autarky.ledger.router import Module, TxContext
from autarky.ledger.state import StateReader
from autarky.modules.provenance import handlers, keeper, messages
from autarky.modules.provenance.expected import IdentityKeeper
from autarky.modules.provenance.invariants import check_invariants


class ProvenanceModule(Module):
    name: ClassVar[str] = "provenance"
    message_types: ClassVar[tuple[str, ...]] = messages.MESSAGE_TYPES

    def __init__(self, identity: IdentityKeeper) -> None:
        self.identity = identity

    # -- Module ---------------------------------------------------------------------------------------

    def handle(self, ctx: TxContext, message: Mapping[str, Any]) -> None:
        msg = messages.parse(message)
        if isinstance(msg, messages.Anchor):
            handlers.anchor(ctx, msg, keeper.new_anchor_id(ctx.tx.hash, ctx.message_index))
        elif isinstance(msg, messages.RegisterModel):
            handlers.register_model(ctx, msg)
        elif isinstance(msg, messages.RetireModel):
            handlers.retire_model(ctx, msg)
        elif isinstance(msg, messages.AnchorDecisions):
            handlers.anchor_decisions(ctx, self.identity, msg)
        elif isinstance(msg, messages.RegisterItem):
            handlers.register_item(ctx, msg)
        else:
            handlers.item_event(ctx, msg)

    def invariants(self, state: StateReader) -> list[str]:
        return check_invariants(state)

    # -- Queries (API, agents, explain) -----------------------------------------------------------------

    def anchor(self, state: StateReader, anchor_id: bytes) -> dict[str, Any] | None:
        return keeper.read_anchor(state, anchor_id)

    def model(self, state: StateReader, file_hash: bytes) -> dict[str, Any] | None:
        return keeper.read_model(state, file_hash)

    def models(self, state: StateReader, model_id: str | None = None) -> list[dict[str, Any]]:
        return keeper.models(state, model_id)

    def decision_head(self, state: StateReader, machine: str) -> dict[str, Any] | None:
        """``{count, head, height}`` of the machine's anchored decisions, or None."""
        return keeper.read_dhead(state, machine)

    def decision_batches(
        self, state: StateReader, machine: str, from_seq: int = 0, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """The machine's anchored batches from the one starting at ``from_seq`` on, at most ``limit``."""
        return keeper.batches(state, machine, from_seq, limit)

    def decision_batch(self, state: StateReader, machine: str, seq: int) -> dict[str, Any] | None:
        """The anchored batch that holds the machine's record ``seq``, or None."""
        return keeper.batch_containing(state, machine, seq)

    def item(self, state: StateReader, item_id: str) -> dict[str, Any] | None:
        return keeper.read_item(state, item_id)

    def item_history(self, state: StateReader, item_id: str) -> list[dict[str, Any]]:
        return keeper.item_history(state, item_id)
