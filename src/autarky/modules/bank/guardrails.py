"""Guardrails: the rules the ledger enforces on a machine's own keys (SPEC C2).

A machine's owner installs guardrails with ``bank/set_guardrails``; from then on every debit from
the machine's account goes through :func:`guarded_debit`: in a transaction the machine sends (the
fee and each ``bank/send``), and when another account moves the machine's funds under a grant
(``bank/send_from``). Debits the owner authorises with ``bank/sweep`` do not: the owner signs
those. The stored form (``bank/guard/<did>``) is exactly the validated message value::

    {"window_blocks": int >= 1,
     "limits": {asset: {"per_tx": int | None, "per_window": int | None, "cosign_above": int | None}},
     "allowlist": [did, ...] | None}

``None`` in a limit means "no limit of that kind"; an asset missing from ``limits`` is not
limited. ``allowlist`` None allows any counterparty; a list allows only those DIDs (module accounts
are always allowed: the fee collector, so a machine can always pay its fees, and escrow, whose user
locks check their beneficiaries against the allowlist and whose module locks pay out only under the
market, lease, data and jobs rules).

Amounts are summed per transaction and paying account (``ctx.scratch``), so splitting a payment
into several messages of one transaction never escapes a per-transaction cap, and the fee counts
towards the sender's.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.ledger.errors import ErrorCode
from autarky.ledger.router import TxContext
from autarky.modules.bank import keeper
from autarky.modules.bank.errors import (
    ACCOUNT_FROZEN,
    COSIGN_REQUIRED,
    COUNTERPARTY_NOT_ALLOWED,
    INVALID_GUARDRAILS,
    PER_TX_CAP,
    WINDOW_LIMIT,
)
from autarky.modules.bank.expected import IdentityKeeper

MAX_WINDOW_BLOCKS = 1_000_000
"""About 11.5 days of one-second blocks; bounds the spend record a machine carries."""
MAX_LIMITED_ASSETS = 32
MAX_ALLOWLIST = 256

_GUARD_KEYS = ("allowlist", "limits", "window_blocks")
_LIMIT_KEYS = ("cosign_above", "per_tx", "per_window")

SCRATCH_KEY = "bank.tx_debits"
"""``ctx.scratch[SCRATCH_KEY]``: {payer: {asset: amount debited from payer so far in this transaction}}."""


@dataclass(frozen=True, slots=True)
class AssetLimits:
    per_tx: int | None
    per_window: int | None
    cosign_above: int | None


def _has_exactly(value: Any, keys: tuple[str, ...]) -> bool:
    """A map with exactly ``keys`` (CBOR keys may be integers, so no sorting of unknown keys)."""
    return type(value) is dict and len(value) == len(keys) and all(key in value for key in keys)


def _is_limit(value: Any) -> bool:
    return value is None or (type(value) is int and 0 <= value <= keeper.MAX_AMOUNT)


def validate_guardrails(value: Any) -> dict[str, Any]:
    """The canonical stored form of a guardrails value, or ``bank.invalid_guardrails``.

    Strict: exactly the documented keys, exact types (a bool is not an int), limits from 0 to
    2**64-1, well-formed asset names and DIDs, no duplicate in the allowlist. The allowlist is
    stored sorted so that two equal sets of counterparties store the same bytes.
    """
    if not _has_exactly(value, _GUARD_KEYS):
        raise INVALID_GUARDRAILS(f"guardrails must be a map with exactly the keys {list(_GUARD_KEYS)}")
    window_blocks, limits, allowlist = value["window_blocks"], value["limits"], value["allowlist"]
    if type(window_blocks) is not int or not 1 <= window_blocks <= MAX_WINDOW_BLOCKS:
        raise INVALID_GUARDRAILS(f"window_blocks must be an integer from 1 to {MAX_WINDOW_BLOCKS}")
    if type(limits) is not dict or len(limits) > MAX_LIMITED_ASSETS:
        raise INVALID_GUARDRAILS(f"limits must be a map of at most {MAX_LIMITED_ASSETS} assets")
    stored_limits: dict[str, dict[str, int | None]] = {}
    for asset in limits:
        if not keeper.is_asset_name(asset):
            raise INVALID_GUARDRAILS(f"limits: {str(asset)[:40]!r} is not an asset name")
    for asset in sorted(limits):
        limit = limits[asset]
        if not _has_exactly(limit, _LIMIT_KEYS):
            raise INVALID_GUARDRAILS(f"limits[{asset!r}] must be a map with exactly the keys {_LIMIT_KEYS}")
        for name in _LIMIT_KEYS:
            if not _is_limit(limit[name]):
                raise INVALID_GUARDRAILS(f"limits[{asset!r}][{name!r}] must be null or from 0 to 2**64-1")
        stored_limits[asset] = {name: limit[name] for name in _LIMIT_KEYS}
    stored_allowlist: list[str] | None = None
    if allowlist is not None:
        if type(allowlist) is not list or len(allowlist) > MAX_ALLOWLIST:
            raise INVALID_GUARDRAILS(f"allowlist must be null or a list of at most {MAX_ALLOWLIST} DIDs")
        for did in allowlist:
            if not is_did_key(did):
                raise INVALID_GUARDRAILS(f"allowlist: {str(did)[:80]!r} is not an Ed25519 did:key")
        stored_allowlist = sorted(allowlist)
        for first, second in itertools.pairwise(stored_allowlist):
            if first == second:
                raise INVALID_GUARDRAILS(f"allowlist names {first} twice")
    return {"window_blocks": window_blocks, "limits": stored_limits, "allowlist": stored_allowlist}


def limits_for(guard: dict[str, Any], asset: str) -> AssetLimits | None:
    limit = guard["limits"].get(asset)
    if limit is None:
        return None
    return AssetLimits(limit["per_tx"], limit["per_window"], limit["cosign_above"])


def guarded_debit(
    ctx: TxContext,
    identity: IdentityKeeper,
    asset: str,
    amount: int,
    counterparty: str,
    insufficient: ErrorCode,
    payer: str | None = None,
) -> None:
    """Debit ``amount`` of ``asset`` from ``payer`` to ``counterparty``, or reject.

    ``payer`` is the transaction's sender unless given (``bank/send_from`` names the account a grant
    lets the sender spend from). Every debit but the owner's ``bank/sweep`` goes this way. Checks, in
    order of precedence:

    1. the payer's wallet is frozen: ``bank.account_frozen``;
    2. guardrails with an allowlist that lacks ``counterparty`` (module accounts, the fee collector
       and escrow, are always allowed): ``bank.counterparty_not_allowed``;
    3. this transaction's total in ``asset`` (this debit included) above ``per_tx``: ``bank.per_tx_cap``;
    4. the debits in the window ending at this block plus this one above ``per_window``:
       ``bank.window_limit``;
    5. the payer's total above ``cosign_above`` and no full key of the payer's owner signed the
       transaction: ``bank.cosign_required``;
    6. a scoped signing key past its allowance: ``identity.allowance_exceeded`` (raised by identity;
       always the sender's signing key, whoever pays);
    7. not enough funds: ``insufficient`` (``bank.insufficient_funds``, or ``bank.insufficient_fee``).

    Then the amount moves, and for a guarded payer the debit is recorded at this block's height.
    The caller has checked that ``asset`` exists and that ``amount`` is positive.
    """
    assert amount > 0 and keeper.asset_exists(ctx.state, asset), (asset, amount)
    state, height = ctx.state, ctx.height
    payer = ctx.sender if payer is None else payer
    assert counterparty != payer
    if keeper.is_frozen(state, payer):
        raise ACCOUNT_FROZEN(f"{payer} is frozen by its owner")
    all_debits: dict[str, dict[str, int]] = ctx.scratch.setdefault(SCRATCH_KEY, {})
    tx_debits = all_debits.setdefault(payer, {})
    tx_total = tx_debits.get(asset, 0) + amount
    guard = keeper.guardrails(state, payer)
    if guard is not None:
        _check_guardrails(ctx, identity, guard, payer, asset, amount, tx_total, counterparty)
    identity.charge_signer_allowance(ctx, asset, amount)
    available = keeper.balance(state, payer, asset)
    if available < amount:
        raise insufficient(f"{payer} holds {available} {asset}, needs {amount}")
    keeper.transfer(state, payer, counterparty, asset, amount)
    if guard is not None:
        keeper.record_spent(state, payer, height, asset, amount, int(guard["window_blocks"]))
    tx_debits[asset] = tx_total


def check_allowlist(guard: dict[str, Any], payer: str, counterparty: str) -> None:
    """``bank.counterparty_not_allowed`` when ``guard`` has an allowlist without ``counterparty``.

    Module accounts (the fee collector, escrow) are always allowed: value paid into one leaves it
    only under that module's rules (escrow/lock checks its beneficiaries with this same function).
    """
    allowlist = guard["allowlist"]
    if allowlist is not None and not keeper.is_module_account(counterparty) and counterparty not in allowlist:
        raise COUNTERPARTY_NOT_ALLOWED(f"{counterparty} is not in the allowlist of {payer}")


def _check_guardrails(
    ctx: TxContext,
    identity: IdentityKeeper,
    guard: dict[str, Any],
    payer: str,
    asset: str,
    amount: int,
    tx_total: int,
    counterparty: str,
) -> None:
    check_allowlist(guard, payer, counterparty)
    limits = limits_for(guard, asset)
    if limits is None:
        return
    if limits.per_tx is not None and tx_total > limits.per_tx:
        raise PER_TX_CAP(f"{tx_total} {asset} in this transaction, the cap is {limits.per_tx}")
    if limits.per_window is not None:
        # The record already holds this transaction's earlier debits (they are written as they
        # happen), so "recorded + amount" is "window before this transaction + tx_total".
        window_total = keeper.window_spent(ctx.state, payer, asset, ctx.height) + amount
        if window_total > limits.per_window:
            window_blocks = guard["window_blocks"]
            limit = limits.per_window
            raise WINDOW_LIMIT(f"{window_total} {asset} in {window_blocks} blocks, the limit is {limit}")
    if limits.cosign_above is not None and tx_total > limits.cosign_above:
        owner = identity.owner_of(ctx.state, payer)
        if owner is None or not ctx.signed_by_account(owner):
            threshold = limits.cosign_above
            raise COSIGN_REQUIRED(f"{tx_total} {asset} is above {threshold}: the owner must co-sign")
