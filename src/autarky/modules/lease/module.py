"""``LeaseModule``: capacity offered by the period, reserved with escrow (SPEC C7, leases).

Wires the messages, the end-of-block settlement and the invariants into the router. Money moves only
through the escrow module it is given (``expected.EscrowKeeper``); other modules and the API read
leases through the queries at the end of the class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from autarky.ledger.block import Event
from autarky.ledger.router import BlockEnv, Module, TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.modules.lease import handlers, keeper, messages
from autarky.modules.lease.expected import EscrowKeeper
from autarky.modules.lease.invariants import check_invariants
from autarky.modules.lease.params import Params, from_genesis
from autarky.modules.lease.records import LeaseRecord, OfferRecord


class LeaseModule(Module):
    name: ClassVar[str] = "lease"
    message_types: ClassVar[tuple[str, ...]] = messages.MESSAGE_TYPES

    def __init__(self, escrow: EscrowKeeper) -> None:
        self.escrow = escrow

    # -- Module ---------------------------------------------------------------------------------------

    def init_genesis(self, state: Overlay, config: Mapping[str, Any]) -> None:
        # Only settings given at genesis are stored: a chain that never configures leases keeps the
        # state root it would have without this module.
        params = from_genesis(config)
        if params is not None:
            keeper.set_params(state, params)

    def handle(self, ctx: TxContext, message: Mapping[str, Any]) -> None:
        params = keeper.params(ctx.state)
        msg = messages.parse(message, ctx.sender, params)
        if isinstance(msg, messages.Offer):
            handlers.offer(ctx, msg, keeper.new_offer_id(ctx.tx.hash, ctx.message_index))
        elif isinstance(msg, messages.WithdrawOffer):
            handlers.withdraw_offer(ctx, msg)
        elif isinstance(msg, messages.Reserve):
            lease_id = keeper.new_lease_id(ctx.tx.hash, ctx.message_index)
            handlers.reserve(ctx, self.escrow, params, msg, lease_id)
        elif isinstance(msg, messages.ConfirmStart):
            handlers.confirm_start(ctx, self.escrow, msg)
        elif isinstance(msg, messages.End):
            handlers.end(ctx, self.escrow, msg)
        elif isinstance(msg, messages.ReportBreach):
            handlers.report_breach(ctx, msg)
        elif isinstance(msg, messages.AckBreach):
            handlers.ack_breach(ctx, self.escrow, msg)
        else:
            handlers.judge_breach(ctx, self.escrow, msg)

    def end_block(self, state: Overlay, env: BlockEnv) -> list[Event]:
        return handlers.settle_due(state, self.escrow, env.time_ms)

    def invariants(self, state: StateReader) -> list[str]:
        return check_invariants(state, self.escrow)

    # -- Queries (API, other modules) -------------------------------------------------------------------

    def params(self, state: StateReader) -> Params:
        return keeper.params(state)

    def offer(self, state: StateReader, offer_id: bytes) -> OfferRecord | None:
        return keeper.read_offer(state, offer_id)

    def offers(self, state: StateReader) -> list[OfferRecord]:
        """Every offer, withdrawn ones too, in id order."""
        return list(keeper.offers(state))

    def lease(self, state: StateReader, lease_id: bytes) -> LeaseRecord | None:
        return keeper.read_lease(state, lease_id)

    def leases_of(self, state: StateReader, account: str) -> list[LeaseRecord]:
        """Every lease ``account`` rents or provides, in id order."""
        found = [keeper.read_lease(state, lease_id) for lease_id, _ in keeper.leases_of(state, account)]
        return [record for record in found if record is not None]

    def slots(self, state: StateReader, provider: str, resource: str) -> list[tuple[int, int, bytes]]:
        """``(start_ms, end_ms, lease id)`` of the resource's open reservations, by start."""
        return keeper.slots(state, provider, resource)
