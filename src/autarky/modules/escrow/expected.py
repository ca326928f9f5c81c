"""What escrow needs from the bank, and nothing more (wired to the real ``BankModule`` in build_app)."""

from __future__ import annotations

from typing import Protocol

from autarky.ledger.router import TxContext
from autarky.ledger.state import Overlay, StateReader


class BankKeeper(Protocol):
    def pay_into_module(self, ctx: TxContext, module_account: str, asset: str, amount: int) -> None:
        """The sender pays into a module account: ``bank.unknown_asset``, then the guarded debit's codes."""
        ...

    def pay_out_of_module(
        self, state: Overlay, module_account: str, to: str, asset: str, amount: int
    ) -> None:
        """Move funds out of a module account (the caller checked its own rules)."""
        ...

    def check_counterparty(self, state: StateReader, payer: str, counterparty: str) -> None:
        """``bank.counterparty_not_allowed`` when ``payer``'s allowlist (if any) lacks ``counterparty``."""
        ...

    def balance(self, state: StateReader, account: str, asset: str) -> int: ...
