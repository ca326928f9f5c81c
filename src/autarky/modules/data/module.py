"""``DataModule``: the data market (SPEC C7): offers of streams and datasets, purchases paid through
the escrow, a ``read`` grant for each buyer, and refunds when delivery is not acknowledged in time.

Other modules and the edges (API, CLI) see it through the read-only queries below; the key itself
travels off the ledger, in a signed and encrypted message (``autarky.messaging.keydelivery``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from autarky.ledger.block import Event
from autarky.ledger.router import BlockEnv, Module, TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.modules.data import handlers, keeper
from autarky.modules.data.expected import EscrowKeeper, PolicyKeeper
from autarky.modules.data.invariants import check_invariants
from autarky.modules.data.keeper import Params
from autarky.modules.data.messages import (
    ACK_DELIVERY,
    BUY,
    MESSAGE_TYPES,
    OFFER,
    WITHDRAW,
    parse_ack_delivery,
    parse_buy,
    parse_offer,
    parse_withdraw,
)
from autarky.modules.data.records import OfferRecord, PurchaseRecord


class DataModule(Module):
    name: ClassVar[str] = "data"
    message_types: ClassVar[tuple[str, ...]] = MESSAGE_TYPES

    def __init__(self, escrow: EscrowKeeper, policy: PolicyKeeper) -> None:
        self.escrow = escrow
        self.policy = policy

    # -- Module ---------------------------------------------------------------------------------------

    def init_genesis(self, state: Overlay, config: Mapping[str, Any]) -> None:
        """``{"params": {"delivery_window_ms": int, "max_units": int}}``, every key optional.

        With no ``params`` nothing is written (the defaults apply), so a chain that never configures
        the module keeps its state root. ``ValueError`` for anything else.
        """
        for name in config:
            if name != "params":
                raise ValueError(f"data genesis: unknown key {name!r} (allowed: ['params'])")
        if "params" in config:
            keeper.set_params(state, keeper.validate_params(config["params"]))

    def handle(self, ctx: TxContext, message: Mapping[str, Any]) -> None:
        message_type = message["type"]
        if message_type == OFFER:
            handlers.offer(ctx, parse_offer(message), keeper.new_offer_id(ctx.tx.hash, ctx.message_index))
        elif message_type == WITHDRAW:
            handlers.withdraw(ctx, parse_withdraw(message))
        elif message_type == BUY:
            purchase_id = keeper.new_purchase_id(ctx.tx.hash, ctx.message_index)
            handlers.buy(ctx, self.escrow, self.policy, parse_buy(message), purchase_id)
        elif message_type == ACK_DELIVERY:
            handlers.ack_delivery(ctx, self.escrow, parse_ack_delivery(message))
        else:
            raise AssertionError(f"the router sent {message_type!r} to data")

    def end_block(self, state: Overlay, env: BlockEnv) -> list[Event]:
        return handlers.refund_overdue(state, self.escrow, self.policy, env.height, env.time_ms)

    def invariants(self, state: StateReader) -> list[str]:
        return check_invariants(state, self.escrow, self.policy)

    # -- Queries (read-only) ---------------------------------------------------------------------------

    def params(self, state: StateReader) -> Params:
        return keeper.params(state)

    def offer(self, state: StateReader, offer_id: bytes) -> OfferRecord | None:
        return keeper.read_offer(state, offer_id)

    def offers(self, state: StateReader, seller: str | None = None) -> list[OfferRecord]:
        """Every offer (of ``seller``, when given), withdrawn ones included, in id order."""
        if seller is None:
            return list(keeper.iter_offers(state))
        found = (keeper.read_offer(state, offer_id) for offer_id in keeper.offers_of_seller(state, seller))
        return [record for record in found if record is not None]

    def purchase(self, state: StateReader, purchase_id: bytes) -> PurchaseRecord | None:
        return keeper.read_purchase(state, purchase_id)

    def purchases_of(self, state: StateReader, account: str) -> list[PurchaseRecord]:
        """The purchases ``account`` made as buyer and those it sold as seller, in id order."""
        ids = sorted({*keeper.purchases_of_buyer(state, account), *keeper.sales_of_seller(state, account)})
        found = (keeper.read_purchase(state, purchase_id) for purchase_id in ids)
        return [record for record in found if record is not None]

    def purchases_of_offer(self, state: StateReader, offer_id: bytes) -> list[PurchaseRecord]:
        found = (keeper.read_purchase(state, pid) for pid in keeper.purchases_of_offer(state, offer_id))
        return [record for record in found if record is not None]
