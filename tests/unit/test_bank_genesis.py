"""The bank's genesis validation and its invariants, on bare state (no transactions)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.errors import ErrorCode
from autarky.ledger.state import MappingState, Overlay
from autarky.modules.bank import FEE_COLLECTOR, errors, keeper
from autarky.modules.bank.genesis import init_genesis
from autarky.modules.bank.invariants import invariants

ALICE = SigningKey.from_seed(sha256(b"autarky/bank-genesis/alice")).did
BOB = SigningKey.from_seed(sha256(b"autarky/bank-genesis/bob")).did


def genesis_state(config: dict[str, Any]) -> Overlay:
    state = Overlay(MappingState({}))
    init_genesis(state, config)
    return state


def balance(account: str, asset: str, amount: Any) -> dict[str, Any]:
    return {"account": account, "asset": asset, "amount": amount}


def test_genesis_sets_params_supply_and_balances() -> None:
    state = genesis_state(
        {
            "params": {"fee_asset": "aut", "min_fee": 2},
            "assets": ["gold"],
            "balances": [
                balance(ALICE, "aut", 100),
                balance(BOB, "aut", 50),
                balance(BOB, "kwh", 7),
                balance(FEE_COLLECTOR, "aut", 3),
            ],
        }
    )
    assert keeper.params(state) == {"fee_asset": "aut", "min_fee": 2}
    assert keeper.supplies(state) == {"aut": 153, "gold": 0, "kwh": 7}
    assert keeper.balances(state, BOB) == {"aut": 50, "kwh": 7}
    assert invariants(state) == []


def test_empty_genesis_has_the_default_params_and_the_fee_asset() -> None:
    state = genesis_state({})
    assert keeper.params(state) == {"fee_asset": "aut", "min_fee": 1}
    assert keeper.supplies(state) == {"aut": 0}
    assert invariants(state) == []


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"accounts": []}, "unknown key 'accounts'"),
        ({"params": {"fee_asset": "aut"}}, "lacks the key 'min_fee'"),
        ({"params": {"fee_asset": "aut", "min_fee": 1, "x": 0}}, "unknown key 'x'"),
        ({"params": {"fee_asset": "AUT", "min_fee": 1}}, "fee_asset 'AUT'"),
        ({"params": {"fee_asset": "aut", "min_fee": -1}}, "min_fee"),
        ({"params": {"fee_asset": "aut", "min_fee": True}}, "min_fee"),
        ({"params": []}, "params must be a map"),
        ({"assets": "aut"}, "assets must be a list"),
        ({"assets": ["ok", "Not-ok"]}, "'Not-ok' is not an asset name"),
        ({"balances": {}}, "balances must be a list"),
        ({"balances": [balance(ALICE, "aut", 0)]}, "balances[0].amount"),
        ({"balances": [balance(ALICE, "aut", True)]}, "balances[0].amount"),
        ({"balances": [balance(ALICE, "aut", 2**64)]}, "balances[0].amount"),
        ({"balances": [balance("alice", "aut", 1)]}, "balances[0].account"),
        ({"balances": [balance(ALICE, "a/b", 1)]}, "balances[0].asset"),
        ({"balances": [{"account": ALICE, "asset": "aut"}]}, "lacks the key 'amount'"),
        ({"balances": [balance(ALICE, "aut", 1), balance(ALICE, "aut", 2)]}, "repeats balances[0]"),
        ({"balances": [balance(ALICE, "aut", 2**64 - 1), balance(BOB, "aut", 1)]}, "supply of aut exceeds"),
    ],
)
def test_malformed_genesis_is_refused_with_a_clear_message(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError) as caught:
        genesis_state(config)
    assert message in str(caught.value)


def test_invariants_find_broken_supply_and_balances() -> None:
    state = genesis_state({"balances": [balance(ALICE, "aut", 10)]})
    state.set_obj(f"bank/bal/{BOB}/aut", 5)
    state.set_obj(f"bank/bal/{BOB}/ghost", 1)
    state.set_obj(f"bank/bal/{ALICE}/kwh", 0)
    broken = invariants(state)
    assert any("supply of aut is 10 but balances sum to 15" in problem for problem in broken)
    assert any("ghost, an asset without supply" in problem for problem in broken)
    assert any("kwh is 0, not a positive integer" in problem for problem in broken)


def test_invariants_find_malformed_controls() -> None:
    state = genesis_state({})
    state.set_obj("bank/frozen/robot", True)
    state.set_obj(f"bank/guard/{ALICE}", {"window_blocks": 0, "limits": {}, "allowlist": None})
    state.set_obj(f"bank/spent/{BOB}", [[1, "aut", 1]])
    broken = invariants(state)
    assert any("frozen entry for 'robot'" in problem for problem in broken)
    assert any(f"guardrails of {ALICE} do not validate" in problem for problem in broken)
    assert any(f"spend record for {BOB}" in problem for problem in broken)


def test_every_bank_code_is_documented_in_the_readme() -> None:
    readme = (Path(errors.__file__).parent / "README.md").read_text(encoding="utf-8")
    codes = [value.code for value in vars(errors).values() if isinstance(value, ErrorCode)]
    assert sorted(codes) == sorted(code.code for code in errors.BANK_CODES)
    for code in codes:
        assert code.startswith("bank.")
        assert f"`{code}`" in readme, f"{code} is not in the bank README"


def test_asset_and_module_names_refuse_a_trailing_newline() -> None:
    from autarky.modules.bank.keeper import is_asset_name, is_module_account

    assert is_asset_name("aut") and not is_asset_name("aut\n") and not is_asset_name("Aut")
    assert is_module_account("module:fees") and not is_module_account("module:fees\n")
