"""``BankModule``: wires the bank's genesis, ante hook, handlers and invariants into the router."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from autarky.ledger.errors import UNKNOWN_MESSAGE
from autarky.ledger.router import Module, TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.modules.bank import handlers, keeper, messages
from autarky.modules.bank.errors import INSUFFICIENT_FUNDS, UNKNOWN_ASSET
from autarky.modules.bank.expected import IdentityKeeper, PolicyKeeper
from autarky.modules.bank.genesis import init_genesis
from autarky.modules.bank.guardrails import check_allowlist, guarded_debit
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

    # -- Narrow interface for modules that hold funds (escrow) -----------------------------------------

    def pay_into_module(self, ctx: TxContext, module_account: str, asset: str, amount: int) -> None:
        """The transaction's sender pays ``amount`` of ``asset`` into ``module_account``.

        Codes in order: ``bank.unknown_asset``, then the guarded debit's (``bank.account_frozen`` ...
        ``bank.insufficient_funds``; a module account always passes the allowlist). Emits nothing:
        the holding module's event describes the payment. The caller checked ``1 <= amount <= 2**64-1``.
        """
        assert keeper.is_module_account(module_account) and 1 <= amount <= keeper.MAX_AMOUNT
        if not keeper.asset_exists(ctx.state, asset):
            raise UNKNOWN_ASSET(f"no asset {asset[:40]!r} on this chain")
        guarded_debit(ctx, self.identity, asset, amount, module_account, INSUFFICIENT_FUNDS)

    def pay_out_of_module(
        self, state: Overlay, module_account: str, to: str, asset: str, amount: int
    ) -> None:
        """Move ``amount`` out of ``module_account`` (the holding module checked its own rules)."""
        assert keeper.is_module_account(module_account) and module_account != to
        keeper.transfer(state, module_account, to, asset, amount)

    def check_counterparty(self, state: StateReader, payer: str, counterparty: str) -> None:
        """``bank.counterparty_not_allowed`` when ``payer``'s guardrails may not pay ``counterparty``
        (the allowlist check of every guarded debit, alone)."""
        guard = keeper.guardrails(state, payer)
        if guard is not None:
            check_allowlist(guard, payer, counterparty)

    def balance(self, state: StateReader, account: str, asset: str) -> int:
        return keeper.balance(state, account, asset)
