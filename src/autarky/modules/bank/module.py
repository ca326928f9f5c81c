"""``BankModule``: wires the bank's genesis, ante hook, handlers and invariants into the router."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from autarky.ledger.errors import UNKNOWN_MESSAGE
from autarky.ledger.router import Module, TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.modules.bank import handlers, messages
from autarky.modules.bank.expected import IdentityKeeper, PolicyKeeper
from autarky.modules.bank.genesis import init_genesis
from autarky.modules.bank.invariants import invariants


class BankModule(Module):
    """Multi-asset balances, fees, transfers and machine guardrails (SPEC C2)."""

    name: ClassVar[str] = "bank"
    message_types: ClassVar[tuple[str, ...]] = messages.MESSAGE_TYPES

    def __init__(self, identity: IdentityKeeper, policy: PolicyKeeper | None = None) -> None:
        self.identity = identity
        # bank/send_from needs grants; an application without the policy module refuses it.
        self.policy = policy

    def init_genesis(self, state: Overlay, config: Mapping[str, Any]) -> None:
        init_genesis(state, config)

    def ante(self, ctx: TxContext) -> None:
        handlers.ante(ctx, self.identity)

    def handle(self, ctx: TxContext, message: Mapping[str, Any]) -> None:
        msg = messages.parse(message)
        if isinstance(msg, messages.Send):
            handlers.send(ctx, self.identity, msg)
        elif isinstance(msg, messages.SendFrom):
            if self.policy is None:
                raise UNKNOWN_MESSAGE("bank/send_from needs the policy module, which this chain does not run")
            handlers.send_from(ctx, self.identity, self.policy, msg)
        elif isinstance(msg, messages.SetGuardrails):
            handlers.set_guardrails(ctx, self.identity, msg)
        elif isinstance(msg, messages.Freeze):
            handlers.freeze(ctx, self.identity, msg)
        elif isinstance(msg, messages.Unfreeze):
            handlers.unfreeze(ctx, self.identity, msg)
        else:
            handlers.sweep(ctx, self.identity, msg)

    def invariants(self, state: StateReader) -> list[str]:
        return invariants(state)
