"""What the metering module needs from other modules, and nothing more (Cosmos ``expected_keepers``).

* ``identity``: who controls an account (its owner, or the account itself when it has none).
* ``escrow``: deposits are escrow locks with holder ``"metering"``; metering never moves money
  itself. ``build_app`` passes the real ``IdentityModule`` and ``EscrowModule``.
"""

from __future__ import annotations

from typing import Protocol

from autarky.ledger.block import Event
from autarky.ledger.router import TxContext
from autarky.ledger.state import Overlay, StateReader


class IdentityKeeper(Protocol):
    def owner_of(self, state: StateReader, account: str) -> str | None:
        """The owner DID of a registered machine, else None."""
        ...


class LockView(Protocol):
    """The fields of an escrow lock that metering reads."""

    @property
    def payer(self) -> str: ...

    @property
    def asset(self) -> str: ...

    @property
    def amount(self) -> int:
        """What the lock still holds."""
        ...

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
        """Debit ``amount`` of ``asset`` from the transaction's sender into a new lock; its id.

        Raises ``escrow.*`` and ``bank.*`` codes (unknown asset, guardrails, insufficient funds).
        """
        ...

    def release(self, state: Overlay, lock_id: bytes, to: str, amount: int, *, holder: str) -> list[Event]:
        """Pay ``amount`` from the lock to ``to``; the caller checked everything."""
        ...

    def refund(
        self, state: Overlay, lock_id: bytes, amount: int | None = None, *, holder: str
    ) -> list[Event]:
        """Return ``amount`` (None: all that remains) to the payer; the caller checked everything."""
        ...

    def get(self, state: StateReader, lock_id: bytes) -> LockView | None:
        """The lock, or None when it is closed or never existed."""
        ...
