"""``OracleModule``: data feeds with registered reporters, rounds finalized at the median (SPEC C9).

Other modules read feeds only through the narrow interface below: :meth:`OracleModule.latest` (the
latest final value, however old) and :meth:`OracleModule.fresh` (the same, or None once it is as old
as the feed's heartbeat). Both are pure reads of the state, usable in handlers (``ctx.state``, time
``ctx.env.time_ms``) and in ``end_block`` (``state``, ``env.time_ms``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from autarky.ledger.block import Event
from autarky.ledger.errors import UNKNOWN_MESSAGE
from autarky.ledger.router import BlockEnv, Module, TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.modules.oracle import handlers, keeper, rewards
from autarky.modules.oracle.expected import EscrowKeeper
from autarky.modules.oracle.invariants import check_invariants
from autarky.modules.oracle.messages import (
    CREATE_FEED,
    DEFUND,
    FUND,
    MESSAGE_TYPES,
    REPORT,
    SET_REPORTERS,
    parse_create_feed,
    parse_defund,
    parse_fund,
    parse_report,
    parse_set_reporters,
)
from autarky.modules.oracle.params import parse_params
from autarky.modules.oracle.records import Budget, Feed, FinalValue, is_fresh


class OracleModule(Module):
    name: ClassVar[str] = "oracle"
    message_types: ClassVar[tuple[str, ...]] = MESSAGE_TYPES

    def __init__(self, escrow: EscrowKeeper | None = None) -> None:
        # Reward budgets need the escrow; an application without it refuses oracle/fund and
        # oracle/defund, and feeds work the same without rewards.
        self.escrow = escrow

    # -- Module ---------------------------------------------------------------------------------------

    def init_genesis(self, state: Overlay, config: Mapping[str, Any]) -> None:
        # Feeds are created by transactions; genesis sets only parameters, and writes nothing when
        # it sets none (a chain that never uses the oracle keeps its state root).
        params = parse_params(config)
        if params is not None:
            keeper.write_params(state, params)

    def handle(self, ctx: TxContext, message: Mapping[str, Any]) -> None:
        message_type = message["type"]
        if message_type == CREATE_FEED:
            handlers.create_feed(ctx, parse_create_feed(message, keeper.read_params(ctx.state)))
        elif message_type == SET_REPORTERS:
            params = keeper.read_params(ctx.state)
            handlers.set_reporters(ctx, params, parse_set_reporters(message, params))
        elif message_type == REPORT:
            handlers.report(ctx, parse_report(message))
        elif message_type in (FUND, DEFUND):
            if self.escrow is None:
                raise UNKNOWN_MESSAGE(
                    f"{message_type} needs the escrow module, which this chain does not run"
                )
            if message_type == FUND:
                rewards.fund(ctx, self.escrow, parse_fund(message))
            else:
                rewards.defund(ctx, self.escrow, parse_defund(message))
        else:
            raise AssertionError(f"the router sent {message_type!r} to oracle")

    def end_block(self, state: Overlay, env: BlockEnv) -> list[Event]:
        return handlers.end_block(state, env, keeper.read_params(state), self.escrow)

    def invariants(self, state: StateReader) -> list[str]:
        return check_invariants(state, self.escrow)

    # -- Narrow interface for other modules -----------------------------------------------------------

    def latest(self, state: StateReader, feed: str) -> FinalValue | None:
        """The feed's latest final value (value, round, block time of finalization), or None when
        the feed does not exist or has no final round yet. Its age is not checked: see :meth:`fresh`."""
        return keeper.read_latest(state, feed)

    def fresh(self, state: StateReader, feed: str, now_ms: int) -> FinalValue | None:
        """The latest final value while ``now_ms < time_ms + heartbeat_ms``, else None (also when the
        feed does not exist or has no final value). Pass the block time as ``now_ms``."""
        final = keeper.read_latest(state, feed)
        if final is None:
            return None
        config = keeper.read_feed(state, feed)
        assert config is not None, f"a final value of feed {feed!r}, which does not exist"
        return final if is_fresh(final, config.heartbeat_ms, now_ms) else None

    def feed(self, state: StateReader, feed: str) -> Feed | None:
        """The feed's configuration (owner, reporters, quorum, heartbeat, decimals) and current round."""
        return keeper.read_feed(state, feed)

    def budget(self, state: StateReader, feed: str) -> Budget | None:
        """The feed's reward budget, or None."""
        return keeper.read_budget(state, feed)
