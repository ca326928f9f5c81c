"""The bank keeper: the only code that reads or writes keys under ``bank/``.

State layout (every value canonical CBOR)::

    bank/params                    {"fee_asset": str, "min_fee": int}
    bank/supply/<asset>            int >= 0           (an asset exists iff it has this key)
    bank/bal/<account>/<asset>     int > 0            (zero balances are deleted, never stored)
    bank/guard/<did>               {"window_blocks", "limits", "allowlist"}  (see guardrails.py)
    bank/frozen/<did>              True               (absent means not frozen)
    bank/spent/<did>               [[height, asset, amount], ...]  debits inside the rolling window

Queries take any :class:`StateReader` (the node's committed state or an overlay); writes take an
:class:`Overlay`. Writes assume the caller has done every check: a violated assumption here is a
bug and fails an assertion, never a rejection.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from autarky.encoding import encode_ordered
from autarky.ledger.state import Overlay, StateReader, get_obj

PREFIX = "bank/"
PARAMS_KEY = "bank/params"
SUPPLY_PREFIX = "bank/supply/"
BALANCE_PREFIX = "bank/bal/"
GUARD_PREFIX = "bank/guard/"
FROZEN_PREFIX = "bank/frozen/"
SPENT_PREFIX = "bank/spent/"

FEE_COLLECTOR = "module:fees"
"""The account every fee is paid to. Fees move value; they never change supply."""

MAX_AMOUNT = 2**64 - 1
"""The largest amount in a message, and the largest supply of any asset (so no sum overflows u64)."""

# fullmatch, not match with "$": "$" also matches before a trailing newline ("aut\n").
_ASSET = re.compile(r"[a-z][a-z0-9]{0,15}")
_MODULE_ACCOUNT = re.compile(r"module:[a-z][a-z0-9_]{0,31}")


def is_asset_name(value: object) -> bool:
    return type(value) is str and _is_asset_name(value)


@functools.lru_cache(maxsize=4096)
def _is_asset_name(value: str) -> bool:
    # A transfer checks its asset name about twenty times on the way; the answer never changes.
    return _ASSET.fullmatch(value) is not None


def is_module_account(value: object) -> bool:
    return type(value) is str and _MODULE_ACCOUNT.fullmatch(value) is not None


# ---------------------------------------------------------------------------------------------
# Params


def params(state: StateReader) -> dict[str, Any]:
    value = get_obj(state, PARAMS_KEY)
    assert type(value) is dict, "bank/params is written at genesis"
    return value


def set_params(state: Overlay, fee_asset: str, min_fee: int) -> None:
    assert is_asset_name(fee_asset) and type(min_fee) is int and min_fee >= 0
    state.set_obj(PARAMS_KEY, {"fee_asset": fee_asset, "min_fee": min_fee})


# ---------------------------------------------------------------------------------------------
# Supply


def asset_exists(state: StateReader, asset: str) -> bool:
    return is_asset_name(asset) and state.get(SUPPLY_PREFIX + asset) is not None


def supply(state: StateReader, asset: str) -> int:
    """The total supply of ``asset``; 0 for an asset that does not exist."""
    if not is_asset_name(asset):
        return 0
    value = get_obj(state, SUPPLY_PREFIX + asset)
    return 0 if value is None else int(value)


def supplies(state: StateReader) -> dict[str, int]:
    """Every asset and its supply, sorted by asset."""
    return {
        key[len(SUPPLY_PREFIX) :]: int(get_obj(state, key)) for key, _ in state.iter_prefix(SUPPLY_PREFIX)
    }


def set_supply(state: Overlay, asset: str, amount: int) -> None:
    assert is_asset_name(asset) and type(amount) is int and 0 <= amount <= MAX_AMOUNT
    state.set_obj(SUPPLY_PREFIX + asset, amount)


# ---------------------------------------------------------------------------------------------
# Balances


def _balance_key(account: str, asset: str) -> str:
    assert "/" not in account and is_asset_name(asset), (account, asset)
    return f"{BALANCE_PREFIX}{account}/{asset}"


def balance(state: StateReader, account: str, asset: str) -> int:
    if "/" in account or not is_asset_name(asset):
        return 0
    value = get_obj(state, _balance_key(account, asset))
    return 0 if value is None else int(value)


def balances(state: StateReader, account: str) -> dict[str, int]:
    """Every non-zero balance of ``account``, sorted by asset."""
    if "/" in account:
        return {}
    prefix = f"{BALANCE_PREFIX}{account}/"
    return {key[len(prefix) :]: int(get_obj(state, key)) for key, _ in state.iter_prefix(prefix)}


def all_balances(state: StateReader) -> list[tuple[str, str, int]]:
    """Every stored (account, asset, amount), in key order. For invariants and exports."""
    result: list[tuple[str, str, int]] = []
    for key, _ in state.iter_prefix(BALANCE_PREFIX):
        account, _, asset = key[len(BALANCE_PREFIX) :].rpartition("/")
        result.append((account, asset, get_obj(state, key)))
    return result


def _set_balance(state: Overlay, account: str, asset: str, amount: int) -> None:
    assert type(amount) is int and amount >= 0, f"balance of {account} in {asset} would be {amount}"
    if amount == 0:
        state.delete(_balance_key(account, asset))
    else:
        state.set_obj(_balance_key(account, asset), amount)


def credit(state: Overlay, account: str, asset: str, amount: int) -> None:
    """Add ``amount`` to a balance. Only :func:`transfer` and genesis create value in an account."""
    assert amount > 0
    _set_balance(state, account, asset, balance(state, account, asset) + amount)


def transfer(state: Overlay, sender: str, recipient: str, asset: str, amount: int) -> None:
    """Move ``amount`` of ``asset``. The caller has checked funds; supply is unchanged."""
    assert amount > 0 and sender != recipient, (sender, recipient, amount)
    assert asset_exists(state, asset), asset
    available = balance(state, sender, asset)
    assert available >= amount, f"transfer of {amount} {asset} from {sender} holding {available}"
    _set_balance(state, sender, asset, available - amount)
    credit(state, recipient, asset, amount)


# ---------------------------------------------------------------------------------------------
# Guardrails, freezes and the rolling-window spend record


def guardrails(state: StateReader, did: str) -> dict[str, Any] | None:
    """The stored guardrails of ``did`` (see guardrails.py for their shape), or None."""
    value = get_obj(state, GUARD_PREFIX + did)
    assert value is None or type(value) is dict
    return value


def set_guardrails(state: Overlay, did: str, value: dict[str, Any] | None) -> None:
    """Install guardrails, or clear them (None), which also forgets the spend record."""
    if value is None:
        state.delete(GUARD_PREFIX + did)
        state.delete(SPENT_PREFIX + did)
    else:
        state.set_obj(GUARD_PREFIX + did, value)


def guarded_accounts(state: StateReader) -> list[str]:
    return [key[len(GUARD_PREFIX) :] for key, _ in state.iter_prefix(GUARD_PREFIX)]


def is_frozen(state: StateReader, did: str) -> bool:
    return state.get(FROZEN_PREFIX + did) is not None


def set_frozen(state: Overlay, did: str, frozen: bool) -> None:
    if frozen:
        state.set_obj(FROZEN_PREFIX + did, True)
    else:
        state.delete(FROZEN_PREFIX + did)


def frozen_accounts(state: StateReader) -> list[str]:
    return [key[len(FROZEN_PREFIX) :] for key, _ in state.iter_prefix(FROZEN_PREFIX)]


def spent_entries(state: StateReader, did: str) -> list[list[Any]]:
    """The recorded debits ``[[height, asset, amount], ...]`` of a guarded account, oldest first."""
    value = get_obj(state, SPENT_PREFIX + did)
    return [] if value is None else list(value)


def spent_accounts(state: StateReader) -> list[str]:
    return [key[len(SPENT_PREFIX) :] for key, _ in state.iter_prefix(SPENT_PREFIX)]


def _window_blocks(state: StateReader, did: str) -> int | None:
    guard = guardrails(state, did)
    return None if guard is None else int(guard["window_blocks"])


def window_spent(state: StateReader, did: str, asset: str, height: int) -> int:
    """What ``did`` debited in ``asset`` in the window of its guardrails ending at ``height``.

    The window is the ``window_blocks`` blocks ``height - window_blocks + 1 .. height``. An account
    without guardrails keeps no record, so this is 0 for it.
    """
    window_blocks = _window_blocks(state, did)
    if window_blocks is None:
        return 0
    oldest = height - window_blocks
    return sum(
        amount
        for at, entry_asset, amount in spent_entries(state, did)
        if oldest < at <= height and entry_asset == asset
    )


def record_spent(
    state: Overlay, did: str, height: int, asset: str, amount: int, window_blocks: int | None = None
) -> None:
    """Add a debit at ``height`` to a guarded account's record, dropping entries outside its window.

    Debits in the same block and asset are merged into one entry, so the record holds at most one
    entry per (block, asset) inside the window. ``window_blocks``: the guardrails' window, when the
    caller has just read them (otherwise read here).
    """
    if window_blocks is None:
        window_blocks = _window_blocks(state, did)
    assert window_blocks is not None, f"{did} has no guardrails"
    assert amount > 0
    oldest = height - window_blocks
    entries: list[list[Any]] = []
    merged = False
    for at, entry_asset, entry_amount in spent_entries(state, did):
        assert at <= height, "the spend record never holds a future block"
        if at <= oldest:
            continue
        if at == height and entry_asset == asset:
            entry_amount += amount
            merged = True
        entries.append([at, entry_asset, entry_amount])
    if not merged:
        entries.append([height, asset, amount])
    # Lists of integers and asset names only (read from this record or given here): their plain
    # encoding is the canonical one, without set_obj's walk for maps and tuples.
    state.set(SPENT_PREFIX + did, encode_ordered(entries))
