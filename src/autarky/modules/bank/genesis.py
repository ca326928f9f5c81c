"""The bank's genesis: parameters, assets and initial balances, validated strictly.

Format (``app_state["bank"]``; every key optional)::

    {"params": {"fee_asset": "aut", "min_fee": 1},
     "assets": ["aut", "kwh"],
     "balances": [{"account": did, "asset": "aut", "amount": 1000}, ...]}

Every asset named in ``balances`` or as the fee asset exists; ``assets`` adds assets that start
with no supply. The supply of each asset is the sum of its balances and may not exceed 2**64-1.
Balance holders are did:keys or module accounts (``module:<name>``, e.g. the fee collector).
A bad genesis raises :class:`ValueError` with a message saying what is wrong.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.ledger.state import Overlay
from autarky.modules.bank import keeper

DEFAULT_PARAMS: dict[str, Any] = {"fee_asset": "aut", "min_fee": 1}
_GENESIS_KEYS = ("assets", "balances", "params")
_PARAMS_KEYS = ("fee_asset", "min_fee")
_BALANCE_KEYS = ("account", "amount", "asset")
_ASSET_FORM = " (1 to 16 of a-z, 0-9, starting with a letter)"
_MAX = "2**64-1"


def _check_keys(value: Any, allowed: tuple[str, ...], where: str, required: bool) -> None:
    if not isinstance(value, Mapping):
        raise ValueError(f"bank genesis: {where} must be a map")
    for key in value:
        if key not in allowed:
            raise ValueError(f"bank genesis: {where} has an unknown key {key!r} (allowed: {list(allowed)})")
    if required:
        for key in allowed:
            if key not in value:
                raise ValueError(f"bank genesis: {where} lacks the key {key!r}")


def init_genesis(state: Overlay, config: Mapping[str, Any]) -> None:
    _check_keys(config, _GENESIS_KEYS, "the bank section", required=False)
    params = config.get("params", DEFAULT_PARAMS)
    _check_keys(params, _PARAMS_KEYS, "params", required=True)
    fee_asset, min_fee = params["fee_asset"], params["min_fee"]
    if not keeper.is_asset_name(fee_asset):
        raise ValueError(f"bank genesis: params.fee_asset {fee_asset!r} is not an asset name{_ASSET_FORM}")
    if type(min_fee) is not int or not 0 <= min_fee <= keeper.MAX_AMOUNT:
        raise ValueError(f"bank genesis: params.min_fee must be an integer from 0 to {_MAX}, not {min_fee!r}")

    assets = config.get("assets", [])
    if type(assets) is not list:
        raise ValueError("bank genesis: assets must be a list of asset names")
    supplies: dict[str, int] = {fee_asset: 0}
    for asset in assets:
        if not keeper.is_asset_name(asset):
            raise ValueError(f"bank genesis: {asset!r} is not an asset name{_ASSET_FORM}")
        supplies[asset] = 0

    entries = config.get("balances", [])
    if type(entries) is not list:
        raise ValueError("bank genesis: balances must be a list of {account, asset, amount}")
    seen: dict[tuple[str, str], int] = {}
    for index, entry in enumerate(entries):
        where = f"balances[{index}]"
        _check_keys(entry, _BALANCE_KEYS, where, required=True)
        account, asset, amount = entry["account"], entry["asset"], entry["amount"]
        if not (is_did_key(account) or keeper.is_module_account(account)):
            raise ValueError(f"bank genesis: {where}.account {account!r} is no did:key or module:<name>")
        if not keeper.is_asset_name(asset):
            raise ValueError(f"bank genesis: {where}.asset {asset!r} is not an asset name{_ASSET_FORM}")
        if type(amount) is not int or not 1 <= amount <= keeper.MAX_AMOUNT:
            raise ValueError(f"bank genesis: {where}.amount must be from 1 to {_MAX}, not {amount!r}")
        if (account, asset) in seen:
            first = seen[account, asset]
            raise ValueError(f"bank genesis: {where} repeats balances[{first}] ({account}, {asset})")
        seen[account, asset] = index
        supplies[asset] = supplies.get(asset, 0) + amount
        if supplies[asset] > keeper.MAX_AMOUNT:
            raise ValueError(f"bank genesis: the supply of {asset} exceeds 2**64-1")
        keeper.credit(state, account, asset, amount)

    keeper.set_params(state, fee_asset, min_fee)
    for asset in sorted(supplies):
        keeper.set_supply(state, asset, supplies[asset])

