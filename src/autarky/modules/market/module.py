"""``MarketModule``: the energy double auction (SPEC C7, P5) wired into the router.

The market sees other modules only through ``expected.py``: escrow holds the money, metering gives
the interval length and the delivered energy, the oracle (optional) a zone's price cap. The
read-only queries below are what the API, the CLI and other code use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from autarky.ledger.block import Event
from autarky.ledger.router import BlockEnv, Module, TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.modules.market import end_block, genesis, handlers, keeper
from autarky.modules.market.expected import EscrowKeeper, MeteringKeeper, OracleKeeper
from autarky.modules.market.invariants import check_invariants
from autarky.modules.market.keeper import ClearingRecord, OrderRecord, Params, Zone
from autarky.modules.market.messages import CANCEL, MESSAGE_TYPES, parse_cancel, parse_order


class MarketModule(Module):
    name: ClassVar[str] = "market"
    message_types: ClassVar[tuple[str, ...]] = MESSAGE_TYPES

    def __init__(
        self, escrow: EscrowKeeper, metering: MeteringKeeper, oracle: OracleKeeper | None = None
    ) -> None:
        self.escrow = escrow
        self.metering = metering
        self.oracle = oracle

    # -- Module ---------------------------------------------------------------------------------------

    def init_genesis(self, state: Overlay, config: Mapping[str, Any]) -> None:
        genesis.init_genesis(state, config, has_oracle=self.oracle is not None)

    def handle(self, ctx: TxContext, message: Mapping[str, Any]) -> None:
        if message["type"] == CANCEL:
            handlers.cancel(ctx, self.escrow, self.metering, parse_cancel(message))
        else:
            msg = parse_order(message)
            handlers.place_order(
                ctx, self.escrow, self.metering, msg, keeper.new_order_id(ctx.tx.hash, ctx.message_index)
            )

    def end_block(self, state: Overlay, env: BlockEnv) -> list[Event]:
        return end_block.run(state, env, self.escrow, self.metering, self.oracle)

    def invariants(self, state: StateReader) -> list[str]:
        return check_invariants(state, self.escrow)

    # -- Queries (API, CLI, other code) ---------------------------------------------------------------

    def params(self, state: StateReader) -> Params:
        return keeper.params(state)

    def zones(self, state: StateReader) -> list[Zone]:
        return keeper.zones(state)

    def zone(self, state: StateReader, name: str) -> Zone | None:
        return keeper.zone(state, name)

    def interval_ms(self, state: StateReader) -> int:
        """The delivery interval length L (metering's): interval k is block time [k*L, (k+1)*L)."""
        return self.metering.interval_ms(state)

    def order(self, state: StateReader, order_id: bytes) -> OrderRecord | None:
        return keeper.order(state, order_id)

    def book(self, state: StateReader, zone: str, interval: int) -> list[OrderRecord]:
        """Every order placed for ``zone`` and ``interval`` (any status), in id order."""
        return keeper.book(state, zone, interval)

    def clearing(self, state: StateReader, zone: str, interval: int) -> ClearingRecord | None:
        return keeper.clearing(state, zone, interval)

    def prices(
        self, state: StateReader, zone: str, first: int, last: int, limit: int
    ) -> list[ClearingRecord]:
        """Clearing records of ``zone`` for intervals ``first .. last``, oldest first, ``limit`` at most."""
        found: list[ClearingRecord] = []
        for record in keeper.clearings(state, zone, first, last):
            if len(found) == limit:
                break
            found.append(record)
        return found
