"""Handlers of the ``escrow/*`` messages (user locks): a ladder of guard clauses, then the writes.

Codes in order of precedence are in each docstring and in README.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from autarky.crypto.did import is_did_key
from autarky.ledger.router import TxContext
from autarky.modules.escrow import keeper
from autarky.modules.escrow.errors import (
    INVALID_AMOUNT,
    INVALID_ARBITER,
    INVALID_BENEFICIARIES,
    INVALID_PURPOSE,
    NOT_AUTHORIZED,
    NOT_BENEFICIARY,
    NOT_USER_LOCK,
    UNKNOWN_LOCK,
)
from autarky.modules.escrow.keeper import USER_HOLDER, Lock
from autarky.modules.escrow.messages import LockMsg, RefundMsg, ReleaseMsg

if TYPE_CHECKING:
    from autarky.modules.escrow.module import EscrowModule

MAX_BENEFICIARIES = 16
MAX_PURPOSE = 64


def lock(ctx: TxContext, escrow: EscrowModule, msg: LockMsg) -> None:
    """``escrow/lock``. Codes in order: ``escrow.invalid_beneficiaries``, ``escrow.invalid_arbiter``,
    ``escrow.invalid_purpose``, ``bank.counterparty_not_allowed`` (the payer's allowlist lacks a
    beneficiary), then :meth:`EscrowModule.lock`'s (``escrow.invalid_amount``,
    ``escrow.invalid_expiry``, ``bank.unknown_asset``, the guarded debit's)."""
    sender = ctx.sender
    beneficiaries = msg.beneficiaries
    if (
        not 1 <= len(beneficiaries) <= MAX_BENEFICIARIES
        or not all(is_did_key(b) for b in beneficiaries)
        or len(set(beneficiaries)) != len(beneficiaries)
        or sender in beneficiaries
    ):
        raise INVALID_BENEFICIARIES(f"1 to {MAX_BENEFICIARIES} distinct did:keys other than the payer")
    if msg.arbiter is not None and (not is_did_key(msg.arbiter) or msg.arbiter == sender):
        raise INVALID_ARBITER("the arbiter must be a did:key other than the payer")
    if len(msg.purpose) > MAX_PURPOSE:
        raise INVALID_PURPOSE(f"purpose of {len(msg.purpose)} characters; at most {MAX_PURPOSE}")
    for beneficiary in beneficiaries:
        escrow.bank.check_counterparty(ctx.state, sender, beneficiary)
    escrow.lock(
        ctx,
        asset=msg.asset,
        amount=msg.amount,
        holder=USER_HOLDER,
        expires_ms=msg.expires_ms,
        purpose=msg.purpose,
        beneficiaries=tuple(sorted(beneficiaries)),
        arbiter=msg.arbiter,
    )


def _user_lock(ctx: TxContext, lock_id: bytes) -> Lock:
    found = keeper.get(ctx.state, lock_id)
    if found is None:
        raise UNKNOWN_LOCK(f"no open lock {lock_id.hex()}")
    if found.holder != USER_HOLDER:
        raise NOT_USER_LOCK(f"lock {lock_id.hex()} is held by module {found.holder}")
    return found


def release(ctx: TxContext, escrow: EscrowModule, msg: ReleaseMsg) -> None:
    """``escrow/release``. Codes in order: ``escrow.unknown_lock``, ``escrow.held_by_module``,
    ``escrow.not_authorized`` (the sender is neither payer nor arbiter), ``escrow.not_beneficiary``,
    ``escrow.invalid_amount`` (not from 1 to what remains)."""
    found = _user_lock(ctx, msg.lock)
    if ctx.sender not in (found.payer, found.arbiter):
        raise NOT_AUTHORIZED(f"{ctx.sender} is neither the payer nor the arbiter of the lock")
    if msg.to not in found.beneficiaries:
        raise NOT_BENEFICIARY(f"{msg.to[:80]!r} is not a beneficiary of the lock")
    if not 1 <= msg.amount <= found.amount:
        raise INVALID_AMOUNT(f"amount {msg.amount} is not from 1 to the {found.amount} that remain")
    ctx.events.extend(escrow.release(ctx.state, found.id, msg.to, msg.amount, holder=USER_HOLDER))


def refund(ctx: TxContext, escrow: EscrowModule, msg: RefundMsg) -> None:
    """``escrow/refund``: everything that remains goes back to the payer. Codes in order:
    ``escrow.unknown_lock``, ``escrow.held_by_module``, ``escrow.not_authorized`` (the sender is
    neither the arbiter nor a beneficiary; the payer waits for the expiry)."""
    found = _user_lock(ctx, msg.lock)
    if ctx.sender != found.arbiter and ctx.sender not in found.beneficiaries:
        raise NOT_AUTHORIZED(f"{ctx.sender} is neither the arbiter nor a beneficiary of the lock")
    ctx.events.extend(escrow.refund(ctx.state, found.id, holder=USER_HOLDER))
