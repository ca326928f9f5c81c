"""``EscrowModule``: one shared way to lock funds under conditions (SPEC C7), used by every market.

Other modules hold funds only through :meth:`EscrowModule.lock`, :meth:`release` and :meth:`refund`
(the ``EscrowKeeper`` their ``expected.py`` declares). A lock names its ``holder`` (the module whose
rules release it, or ``"escrow"`` for a lock made with the ``escrow/lock`` message) and an expiry:
at the first block whose time reaches it, :meth:`end_block` refunds whatever remains to the payer.
Escrow never creates or destroys value: every unit locked is in ``module:escrow`` until it is
released to a party or refunded to the payer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from autarky.ledger.block import Event
from autarky.ledger.router import BlockEnv, Module, TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.modules.escrow import handlers, keeper
from autarky.modules.escrow.errors import INVALID_AMOUNT, INVALID_EXPIRY
from autarky.modules.escrow.expected import BankKeeper
from autarky.modules.escrow.invariants import check_invariants
from autarky.modules.escrow.keeper import ESCROW_ACCOUNT, Lock
from autarky.modules.escrow.messages import (
    LOCK,
    MESSAGE_TYPES,
    RELEASE,
    parse_lock,
    parse_refund,
    parse_release,
)

MAX_AMOUNT = 2**64 - 1
_SCRATCH_INDEX = "escrow.next_lock_index"


def _event(event_type: str, **attributes: Any) -> Event:
    return Event(event_type, tuple(sorted(attributes.items())))


class EscrowModule(Module):
    name: ClassVar[str] = "escrow"
    message_types: ClassVar[tuple[str, ...]] = MESSAGE_TYPES

    def __init__(self, bank: BankKeeper) -> None:
        self.bank = bank

    # -- Module ---------------------------------------------------------------------------------------

    def init_genesis(self, state: Overlay, config: Mapping[str, Any]) -> None:
        if config:
            raise ValueError("escrow genesis takes no settings: locks are made by transactions")

    def handle(self, ctx: TxContext, message: Mapping[str, Any]) -> None:
        message_type = message["type"]
        if message_type == LOCK:
            handlers.lock(ctx, self, parse_lock(message))
        elif message_type == RELEASE:
            handlers.release(ctx, self, parse_release(message))
        else:
            handlers.refund(ctx, self, parse_refund(message))

    def end_block(self, state: Overlay, env: BlockEnv) -> list[Event]:
        """Refund every lock whose expiry has come (in expiry, then id order)."""
        events: list[Event] = []
        for lock_id in keeper.due(state, env.time_ms):
            lock = keeper.get(state, lock_id)
            assert lock is not None, "the due index names only open locks"
            events.append(_event("escrow.expired", lock=lock.id, holder=lock.holder, amount=lock.amount))
            events.extend(self.refund(state, lock.id, holder=lock.holder))
        return events

    def invariants(self, state: StateReader) -> list[str]:
        return check_invariants(state, self.bank)

    # -- Narrow interface for other modules -----------------------------------------------------------

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
        arbiter: str | None = None,
    ) -> bytes:
        """Lock ``amount`` of ``asset`` from the transaction's sender; return the new lock's id.

        Codes in order: ``escrow.invalid_amount``, ``escrow.invalid_expiry`` (not after the block
        time, or beyond the 16-digit horizon), ``bank.unknown_asset``, then the guarded debit's codes
        (``bank.account_frozen`` ... ``bank.insufficient_funds``). Emits ``escrow.locked``.
        """
        assert holder and len(purpose) <= 64
        if not 1 <= amount <= MAX_AMOUNT:
            raise INVALID_AMOUNT(f"amount {amount} is not from 1 to 2**64-1")
        if not ctx.env.time_ms < expires_ms <= keeper.MAX_EXPIRY_MS:
            raise INVALID_EXPIRY(f"expires_ms {expires_ms} is not after the block time {ctx.env.time_ms}")
        self.bank.pay_into_module(ctx, ESCROW_ACCOUNT, asset, amount)
        index: int = ctx.scratch.get(_SCRATCH_INDEX, 0)
        ctx.scratch[_SCRATCH_INDEX] = index + 1
        lock = Lock(
            id=keeper.new_lock_id(ctx.tx.hash, index),
            payer=ctx.sender,
            asset=asset,
            amount=amount,
            locked=amount,
            holder=holder,
            purpose=purpose,
            expires_ms=expires_ms,
            beneficiaries=beneficiaries,
            arbiter=arbiter,
            height=ctx.height,
        )
        keeper.create(ctx.state, lock)
        ctx.emit(
            "escrow.locked",
            lock=lock.id,
            payer=lock.payer,
            asset=asset,
            amount=amount,
            holder=holder,
            purpose=purpose,
            expires_ms=expires_ms,
        )
        return lock.id

    def release(self, state: Overlay, lock_id: bytes, to: str, amount: int, *, holder: str) -> list[Event]:
        """Pay ``amount`` (1 .. what remains) from the lock to ``to``; the lock closes at 0."""
        lock = self._held(state, lock_id, holder)
        assert 1 <= amount <= lock.amount, (amount, lock.amount)
        self.bank.pay_out_of_module(state, ESCROW_ACCOUNT, to, lock.asset, amount)
        keeper.set_amount(state, lock, lock.amount - amount)
        attributes: dict[str, Any] = {
            "lock": lock.id,
            "to": to,
            "asset": lock.asset,
            "amount": amount,
            "remaining": lock.amount - amount,
        }
        return [_event("escrow.released", **attributes)]

    def refund(
        self, state: Overlay, lock_id: bytes, amount: int | None = None, *, holder: str
    ) -> list[Event]:
        """Return ``amount`` (default: everything that remains) to the payer; the lock closes at 0."""
        lock = self._held(state, lock_id, holder)
        amount = lock.amount if amount is None else amount
        assert 1 <= amount <= lock.amount, (amount, lock.amount)
        self.bank.pay_out_of_module(state, ESCROW_ACCOUNT, lock.payer, lock.asset, amount)
        keeper.set_amount(state, lock, lock.amount - amount)
        return [
            _event(
                "escrow.refunded",
                lock=lock.id,
                payer=lock.payer,
                asset=lock.asset,
                amount=amount,
                remaining=lock.amount - amount,
            )
        ]

    def get(self, state: StateReader, lock_id: bytes) -> Lock | None:
        return keeper.get(state, lock_id)

    def locks_of(self, state: StateReader, account: str) -> list[Lock]:
        """The open locks ``account`` pays."""
        return keeper.locks_of(state, account)

    def locks_for(self, state: StateReader, account: str) -> list[Lock]:
        """The open locks naming ``account`` as a beneficiary."""
        return keeper.locks_for(state, account)

    def locks_held_by(self, state: StateReader, holder: str) -> list[Lock]:
        """Every open lock ``holder`` controls, in id order (a scan of all locks: for invariants)."""
        return [lock for lock in keeper.all_locks(state) if lock.holder == holder]

    @staticmethod
    def _held(state: StateReader, lock_id: bytes, holder: str) -> Lock:
        lock = keeper.get(state, lock_id)
        assert lock is not None, f"no open lock {lock_id.hex()}"
        assert lock.holder == holder, f"lock {lock_id.hex()} is held by {lock.holder}, not {holder}"
        return lock
