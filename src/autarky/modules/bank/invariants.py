"""The bank's invariants: what must hold after every block (run by tests, like Cosmos crisis).

Each check returns human-readable descriptions of what is broken; an empty list means all hold.
"""

from __future__ import annotations

from autarky.crypto.did import is_did_key
from autarky.ledger.errors import TxError
from autarky.ledger.state import StateReader
from autarky.modules.bank import keeper
from autarky.modules.bank.guardrails import validate_guardrails


def supply_matches_balances(state: StateReader) -> list[str]:
    """For every asset, supply equals the sum of balances; every balance is positive and in an asset."""
    broken: list[str] = []
    supplies = keeper.supplies(state)
    totals: dict[str, int] = {asset: 0 for asset in supplies}
    for account, asset, amount in keeper.all_balances(state):
        if type(amount) is not int or amount <= 0:
            broken.append(f"balance of {account} in {asset} is {amount!r}, not a positive integer")
            continue
        if asset not in supplies:
            broken.append(f"{account} holds {amount} {asset}, an asset without supply")
            continue
        totals[asset] += amount
    for asset, total in totals.items():
        if total != supplies[asset]:
            broken.append(f"supply of {asset} is {supplies[asset]} but balances sum to {total}")
    return broken


def params_are_sound(state: StateReader) -> list[str]:
    params = keeper.params(state)
    if not keeper.asset_exists(state, params["fee_asset"]):
        return [f"the fee asset {params['fee_asset']!r} has no supply entry"]
    return []


def controls_are_well_formed(state: StateReader) -> list[str]:
    """Frozen, guard and spend entries name well-formed DIDs; guardrails validate; records are guarded."""
    broken: list[str] = []
    for did in keeper.frozen_accounts(state):
        if not is_did_key(did):
            broken.append(f"frozen entry for {did!r}, not a did:key")
    for did in keeper.guarded_accounts(state):
        if not is_did_key(did):
            broken.append(f"guardrails for {did!r}, not a did:key")
        stored = keeper.guardrails(state, did)
        try:
            if validate_guardrails(stored) != stored:
                broken.append(f"guardrails of {did} are not in their canonical stored form")
        except TxError as exc:
            broken.append(f"guardrails of {did} do not validate: {exc.detail}")
    for did in keeper.spent_accounts(state):
        if keeper.guardrails(state, did) is None:
            broken.append(f"spend record for {did}, which has no guardrails")
    return broken


def invariants(state: StateReader) -> list[str]:
    return [*supply_matches_balances(state), *params_are_sound(state), *controls_are_well_formed(state)]
