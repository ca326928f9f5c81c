"""What the data module needs from other modules, and nothing more (Cosmos ``expected_keepers``).

* ``escrow`` holds a purchase's payment: :class:`EscrowKeeper` (lock at purchase, release to the
  seller on acknowledgement, refund to the buyer at the deadline, and a read for invariants);
* ``policy`` gives the buyer its ``read`` grant: :class:`PolicyKeeper` (issue at purchase, revoke on
  refund, and a read for invariants);
* ``identity`` answers the buyer's agent about attestations: :class:`AttestationReader`.

``build_app`` passes the real modules; nothing else of theirs is reachable from here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from autarky.ledger.block import Event
from autarky.ledger.router import TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.modules.identity.attestations import Verdict
from autarky.modules.identity.keeper import AttestationRecord


class LockView(Protocol):
    """What the data module reads of an escrow lock."""

    @property
    def id(self) -> bytes: ...
    @property
    def payer(self) -> str: ...
    @property
    def asset(self) -> str: ...
    @property
    def amount(self) -> int: ...
    @property
    def holder(self) -> str: ...
    @property
    def beneficiaries(self) -> tuple[str, ...]: ...


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
        """Debit ``amount`` of ``asset`` from the transaction's sender into escrow; the lock id.

        Codes in order: ``escrow.invalid_amount``, ``escrow.invalid_expiry``, ``bank.unknown_asset``,
        then the bank's guarded debit (``bank.account_frozen`` ... ``bank.insufficient_funds``).
        """
        ...

    def release(self, state: Overlay, lock_id: bytes, to: str, amount: int, *, holder: str) -> list[Event]:
        """Pay ``amount`` from the lock to ``to`` (the caller checked everything)."""
        ...

    def refund(
        self, state: Overlay, lock_id: bytes, amount: int | None = None, *, holder: str
    ) -> list[Event]:
        """Return ``amount`` (default: all that remains) to the payer."""
        ...

    def get(self, state: StateReader, lock_id: bytes) -> LockView | None:
        """The open lock, or None once it is released or refunded in full."""
        ...

    def locks_for(self, state: StateReader, account: str) -> Sequence[LockView]:
        """The open locks naming ``account`` as a beneficiary."""
        ...


class GrantView(Protocol):
    """What the data module reads of a grant record."""

    @property
    def grantor(self) -> str: ...
    @property
    def grantee(self) -> str: ...
    @property
    def action(self) -> str: ...
    @property
    def resource(self) -> str: ...
    @property
    def expires_ms(self) -> int | None: ...
    @property
    def revoked(self) -> int | None: ...


class PolicyKeeper(Protocol):
    def issue_grant(
        self,
        ctx: TxContext,
        *,
        issuer: str,
        reference: bytes,
        grantor: str,
        grantee: str,
        action: str,
        resource: str,
        expires_ms: int | None,
    ) -> bytes:
        """A root grant from ``grantor`` to ``grantee`` created for ``issuer``'s record ``reference``."""
        ...

    def revoke_issued(self, state: Overlay, *, issuer: str, reference: bytes, height: int) -> list[Event]:
        """Revoke that grant (no event if it is already revoked)."""
        ...

    def grant(self, state: StateReader, grant_id: bytes) -> GrantView | None:
        """The stored grant record, or None."""
        ...


class AttestationReader(Protocol):
    def attestations_about(self, state: StateReader, subject: str) -> list[bytes]:
        """Ids of the attestations about ``subject``, in anchoring order."""
        ...

    def check_attestation(
        self, state: StateReader, attestation_id: bytes, now_ms: int
    ) -> tuple[AttestationRecord | None, Verdict]:
        """The anchored attestation and its verdict at ``now_ms``."""
        ...
