"""What the market needs from other modules, and nothing more (Cosmos ``expected_keepers``).

* ``escrow`` holds every unit of money the market moves: a bid's payment and an ask's collateral
  are locked at submission (holder ``"market"``) and only released or refunded by the market's rules;
* ``metering`` gives the interval length and the metered delivery the market settles against;
* ``oracle`` (optional) gives a zone's price cap.

``build_app`` passes the real modules; unit tests pass small fakes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from autarky.ledger.block import Event
from autarky.ledger.router import TxContext
from autarky.ledger.state import Overlay, StateReader


class LockView(Protocol):
    """The fields of an escrow lock the market looks at (its invariants)."""

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
        """Debit ``amount`` from the transaction's sender into escrow; return the lock id.

        Codes: ``escrow.invalid_amount``, ``escrow.invalid_expiry``, ``bank.unknown_asset``, then the
        bank's guarded debit (``bank.account_frozen`` ... ``bank.insufficient_funds``)."""
        ...

    def release(self, state: Overlay, lock_id: bytes, to: str, amount: int, *, holder: str) -> list[Event]:
        """Pay ``amount`` (1 .. what remains) from the lock to ``to``."""
        ...

    def refund(
        self, state: Overlay, lock_id: bytes, amount: int | None = None, *, holder: str
    ) -> list[Event]:
        """Return ``amount`` (default: all that remains) to the payer."""
        ...

    def get(self, state: StateReader, lock_id: bytes) -> LockView | None: ...

    def locks_of(self, state: StateReader, account: str) -> Sequence[LockView]:
        """The open locks ``account`` pays."""
        ...


class MeteringKeeper(Protocol):
    def interval_ms(self, state: StateReader) -> int:
        """The length L of a delivery interval: interval k is block time [k*L, (k+1)*L)."""
        ...

    def energy(self, state: StateReader, account: str, direction: str, interval: int) -> int:
        """Metered units of ``account``'s meters of ``direction`` ("export" = delivered) in ``interval``."""
        ...

    def readings_complete(self, state: StateReader, account: str, direction: str, interval: int) -> bool:
        """True when each meter of that account and direction has a reading at or after the interval's end."""
        ...


class FinalValueView(Protocol):
    @property
    def value(self) -> int: ...

    @property
    def round(self) -> int: ...


class OracleKeeper(Protocol):
    def fresh(self, state: StateReader, feed: str, now_ms: int) -> FinalValueView | None:
        """The latest final value of ``feed``; None when there is none or it is older than the heartbeat."""
        ...
