"""What the oracle module needs from other modules, and nothing more (Cosmos ``expected_keepers``).

Only reward budgets move money, and only through the shared escrow: ``oracle/fund`` locks the
budget (held by ``oracle``), a final round releases rewards from it, and a budget that runs out,
expires or is withdrawn is refunded to its payer. ``build_app`` passes the real ``EscrowModule``.
"""

from __future__ import annotations

from typing import Protocol

from autarky.ledger.block import Event
from autarky.ledger.router import TxContext
from autarky.ledger.state import Overlay, StateReader


class LockView(Protocol):
    """What the oracle reads of an escrow lock (its invariants compare it with the budget)."""

    @property
    def payer(self) -> str: ...

    @property
    def asset(self) -> str: ...

    @property
    def amount(self) -> int: ...

    @property
    def holder(self) -> str: ...


class EscrowKeeper(Protocol):
    def lock(
        self,
        ctx: TxContext,
        *,
        asset: str,
        amount: int,
        holder: str,
        expires_ms: int,
        purpose: str,
        beneficiaries: tuple[str, ...] = (),
    ) -> bytes:
        """Debit the sender into escrow and return the lock id (escrow.* then bank.* codes)."""
        ...

    def release(self, state: Overlay, lock_id: bytes, to: str, amount: int, *, holder: str) -> list[Event]:
        """Pay ``amount`` (1 .. what remains) from the lock to ``to``."""
        ...

    def refund(
        self, state: Overlay, lock_id: bytes, amount: int | None = None, *, holder: str
    ) -> list[Event]:
        """Return ``amount`` (default: all that remains) to the payer."""
        ...

    def get(self, state: StateReader, lock_id: bytes) -> LockView | None:
        """The open lock ``lock_id``, or None once it is closed."""
        ...
