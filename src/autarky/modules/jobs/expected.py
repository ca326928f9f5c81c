"""What the jobs module needs from other modules, and nothing more (Cosmos ``expected_keepers``).

The bounty waits in the shared escrow (module ``escrow``); the poster's owner, who may attest,
dispute or cancel for it, comes from ``identity``. ``build_app`` passes the real modules.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from autarky.ledger.block import Event
from autarky.ledger.router import TxContext
from autarky.ledger.state import Overlay, StateReader


class LockView(Protocol):
    @property
    def id(self) -> bytes: ...

    @property
    def amount(self) -> int: ...

    @property
    def holder(self) -> str: ...

    @property
    def payer(self) -> str: ...

    @property
    def asset(self) -> str: ...


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
        """Debit the sender into escrow: ``escrow.invalid_amount``, ``bank.unknown_asset``, the bank's
        guarded-debit codes."""
        ...

    def release(
        self, state: Overlay, lock_id: bytes, to: str, amount: int, *, holder: str
    ) -> list[Event]: ...

    def refund(
        self, state: Overlay, lock_id: bytes, amount: int | None = None, *, holder: str
    ) -> list[Event]: ...

    def get(self, state: StateReader, lock_id: bytes) -> LockView | None: ...

    def locks_held_by(self, state: StateReader, holder: str) -> Sequence[LockView]:
        """Every open lock ``holder`` controls (for the orphan check of the invariants)."""
        ...


class IdentityKeeper(Protocol):
    def owner_of(self, state: StateReader, account: str) -> str | None:
        """The owner DID of a registered machine, else None."""
        ...
