"""The bank's ante hook and message handlers: a ladder of guard clauses, then the writes, then events.

Each function documents its codes in order of precedence; the README repeats them. Every debit
goes through :func:`guardrails.guarded_debit`, from the transaction's sender or, in
``bank/send_from``, from the account whose grant the sender uses; only ``bank/sweep``, which the
owner signs, moves a machine's funds without it.
"""

from __future__ import annotations

from autarky.crypto.did import is_did_key
from autarky.ledger.block import AttrValue
from autarky.ledger.router import TxContext
from autarky.modules.bank import keeper
from autarky.modules.bank.errors import (
    ACCOUNT_FROZEN,
    FEE_TOO_LOW,
    GRANTOR_MISMATCH,
    INSUFFICIENT_FEE,
    INSUFFICIENT_FUNDS,
    INVALID_AMOUNT,
    INVALID_RECIPIENT,
    NOT_OWNER,
    SELF_TRANSFER,
    UNKNOWN_ASSET,
)
from autarky.modules.bank.expected import IdentityKeeper, PolicyKeeper
from autarky.modules.bank.guardrails import guarded_debit, validate_guardrails
from autarky.modules.bank.messages import Freeze, Send, SendFrom, SetGuardrails, Sweep, Unfreeze

SPEND_ACTION = "spend"
"""The action a grant must allow for ``bank/send_from``; its resource is ``bank/<asset>`` (or ``bank``)."""


def ante(ctx: TxContext, identity: IdentityKeeper) -> None:
    """Before any message: refuse a frozen sender, then charge the fee to the fee collector.

    Codes in order: ``bank.account_frozen``, ``bank.fee_too_low``, then the guarded debit's
    (``bank.counterparty_not_allowed`` cannot happen: the fee collector is always allowed), with
    ``bank.insufficient_fee`` for missing funds. A zero fee (allowed when ``min_fee`` is 0) moves
    nothing and emits nothing.
    """
    sender, fee = ctx.sender, ctx.tx.body.fee
    if keeper.is_frozen(ctx.state, sender):
        raise ACCOUNT_FROZEN(f"{sender} is frozen by its owner")
    params = keeper.params(ctx.state)
    fee_asset, min_fee = params["fee_asset"], params["min_fee"]
    if fee < min_fee:
        raise FEE_TOO_LOW(f"fee {fee} is below the minimum of {min_fee} {fee_asset}")
    if fee == 0:
        return
    guarded_debit(ctx, identity, fee_asset, fee, keeper.FEE_COLLECTOR, INSUFFICIENT_FEE)
    ctx.emit("bank.fee", payer=sender, amount=fee, asset=fee_asset)


def _emit_transfer(ctx: TxContext, source: str, to: str, asset: str, amount: int) -> None:
    # "from" is a Python keyword, so the attributes go in as a map.
    attributes: dict[str, AttrValue] = {"from": source, "to": to, "asset": asset, "amount": amount}
    ctx.emit("bank.transfer", **attributes)


def _check_recipient(ctx: TxContext, to: str, source: str) -> None:
    if not is_did_key(to):
        raise INVALID_RECIPIENT(f"{to[:80]!r} is not an Ed25519 did:key")
    if to == source:
        raise SELF_TRANSFER(f"{source} cannot send to itself")


def send(ctx: TxContext, identity: IdentityKeeper, msg: Send) -> None:
    """``bank/send``. Codes in order: ``bank.invalid_amount``, ``bank.invalid_recipient``,
    ``bank.self_transfer``, ``bank.unknown_asset``, then the guarded debit's codes
    (``bank.account_frozen`` ... ``bank.insufficient_funds``)."""
    if not 1 <= msg.amount <= keeper.MAX_AMOUNT:
        raise INVALID_AMOUNT(f"amount {msg.amount} is not from 1 to 2**64-1")
    _check_recipient(ctx, msg.to, ctx.sender)
    if not keeper.asset_exists(ctx.state, msg.asset):
        raise UNKNOWN_ASSET(f"no asset {msg.asset[:40]!r} on this chain")
    guarded_debit(ctx, identity, msg.asset, msg.amount, msg.to, INSUFFICIENT_FUNDS)
    _emit_transfer(ctx, ctx.sender, msg.to, msg.asset, msg.amount)


def spend_resource(asset: str) -> str:
    """The resource ``bank/send_from`` asks a grant to cover: ``bank/<asset>``."""
    return f"bank/{asset}"


def send_from(ctx: TxContext, identity: IdentityKeeper, policy: PolicyKeeper, msg: SendFrom) -> None:
    """``bank/send_from``: the sender moves ``msg.payer``'s funds under a grant ``msg.payer`` gave.

    Codes in order: ``bank.invalid_amount``, ``bank.invalid_recipient``, ``bank.self_transfer`` (to
    the payer), ``bank.unknown_asset``, then the grant's (``policy.unknown_grant`` ...
    ``policy.spend_over_limit``: the sender must hold a live grant chain allowing ``spend`` on
    ``bank/<asset>`` with room for the amount), ``bank.grantor_mismatch`` (the chain's root grantor
    is not the payer), then the guarded debit's codes for the payer (its freeze and guardrails; the
    sender's signing key's allowance). The use and the spend count on every grant of the chain.
    """
    if not 1 <= msg.amount <= keeper.MAX_AMOUNT:
        raise INVALID_AMOUNT(f"amount {msg.amount} is not from 1 to 2**64-1")
    _check_recipient(ctx, msg.to, msg.payer)
    if not keeper.asset_exists(ctx.state, msg.asset):
        raise UNKNOWN_ASSET(f"no asset {msg.asset[:40]!r} on this chain")
    use = policy.use_grant(
        ctx, msg.grant, SPEND_ACTION, spend_resource(msg.asset), spend=(msg.asset, msg.amount)
    )
    if use.root_grantor != msg.payer:
        raise GRANTOR_MISMATCH(f"grant {msg.grant.hex()} comes from {use.root_grantor}, not {msg.payer}")
    guarded_debit(ctx, identity, msg.asset, msg.amount, msg.to, INSUFFICIENT_FUNDS, payer=msg.payer)
    _emit_transfer(ctx, msg.payer, msg.to, msg.asset, msg.amount)


def _require_owner(ctx: TxContext, identity: IdentityKeeper, machine: str) -> str:
    owner = identity.owner_of(ctx.state, machine)
    if owner is None or owner != ctx.sender:
        raise NOT_OWNER(f"{ctx.sender} is not the registered owner of {machine}")
    return owner


def set_guardrails(ctx: TxContext, identity: IdentityKeeper, msg: SetGuardrails) -> None:
    """``bank/set_guardrails``. Codes in order: ``bank.not_owner``, ``bank.invalid_guardrails``.

    Clearing (``guardrails`` null) also forgets the machine's spend record; replacing keeps it, so a
    new, lower window limit counts what the machine already spent in its window.
    """
    _require_owner(ctx, identity, msg.machine)
    stored = None if msg.guardrails is None else validate_guardrails(msg.guardrails)
    keeper.set_guardrails(ctx.state, msg.machine, stored)
    ctx.emit("bank.guardrails_set", machine=msg.machine, owner=ctx.sender, cleared=stored is None)


def freeze(ctx: TxContext, identity: IdentityKeeper, msg: Freeze) -> None:
    """``bank/freeze``. Codes: ``bank.not_owner``. Freezing a frozen machine succeeds again."""
    _require_owner(ctx, identity, msg.machine)
    keeper.set_frozen(ctx.state, msg.machine, True)
    ctx.emit("bank.frozen", machine=msg.machine, owner=ctx.sender)


def unfreeze(ctx: TxContext, identity: IdentityKeeper, msg: Unfreeze) -> None:
    """``bank/unfreeze``. Codes: ``bank.not_owner``. Unfreezing an unfrozen machine succeeds."""
    _require_owner(ctx, identity, msg.machine)
    keeper.set_frozen(ctx.state, msg.machine, False)
    ctx.emit("bank.unfrozen", machine=msg.machine, owner=ctx.sender)


def sweep(ctx: TxContext, identity: IdentityKeeper, msg: Sweep) -> None:
    """``bank/sweep``. Codes in order: ``bank.not_owner``, ``bank.invalid_recipient``, ``bank.self_transfer``.

    Moves every balance of the machine, in asset order, to ``to`` (the owner when null). The owner
    signs, so neither the machine's freeze nor its guardrails apply, and nothing is recorded in
    the machine's spend record.
    """
    owner = _require_owner(ctx, identity, msg.machine)
    to = owner if msg.to is None else msg.to
    _check_recipient(ctx, to, msg.machine)
    moved = keeper.balances(ctx.state, msg.machine)
    for asset, amount in moved.items():
        keeper.transfer(ctx.state, msg.machine, to, asset, amount)
        _emit_transfer(ctx, msg.machine, to, asset, amount)
    ctx.emit("bank.swept", machine=msg.machine, to=to, assets=len(moved))
