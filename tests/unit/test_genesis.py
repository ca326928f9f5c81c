"""Genesis documents: dev_genesis builds what the modules accept; JSON round trips; bad input is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from autarky.crypto.keys import SigningKey
from autarky.encoding import canonical_decode, canonical_encode
from autarky.ledger.executor import execute_genesis
from autarky.modules import build_app
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.harness import Chain
from autarky.modules.identity.keeper import read_account
from autarky.node.genesis import (
    GenesisError,
    check_genesis,
    dev_genesis,
    funded_accounts,
    genesis_from_json,
    genesis_hash,
    genesis_to_json,
    load_genesis,
    write_genesis,
)

TIME_MS = 1_767_225_600_000


def _keys(count: int) -> list[SigningKey]:
    return [SigningKey.from_seed(bytes([index + 1]) * 32) for index in range(count)]


def test_dev_genesis_funds_accounts_and_registers_identities() -> None:
    owner, machine = _keys(2)
    genesis = dev_genesis(
        "demo-chain",
        time_ms=TIME_MS,
        allocations=[(owner.did, "aut", 1_000), (owner.did, "aut", 500), (machine.did, "kwh", 7)],
        identities=[
            {"did": machine.did, "owner": owner.did, "kind": "solar-inverter", "serial_digest": b"\x01" * 32}
        ],
        min_fee=2,
    )
    assert genesis["chain_id"] == "demo-chain"
    assert genesis["genesis_time_ms"] == TIME_MS
    chain = Chain.from_genesis(genesis)
    state = chain.state
    assert bank_keeper.balance(state, owner.did, "aut") == 1_500
    assert bank_keeper.balance(state, machine.did, "kwh") == 7
    assert bank_keeper.params(state) == {"fee_asset": "aut", "min_fee": 2}
    record = read_account(state, machine.did)
    assert record is not None and record.owner == owner.did and record.kind == "solar-inverter"
    assert record.serial_digest == b"\x01" * 32
    # Bytes are stored as hex in the document itself, so JSON and CBOR carry the same value.
    assert genesis["app_state"]["identity"]["accounts"][0]["serial_digest"] == "01" * 32
    assert chain.invariants() == []
    assert sorted(funded_accounts(genesis)) == sorted([owner.did, machine.did])


def test_extra_assets_start_with_no_supply() -> None:
    (owner,) = _keys(1)
    genesis = dev_genesis("c1", time_ms=0, allocations=[(owner.did, "aut", 1)], assets=["kwh", "aut"])
    assert genesis["app_state"]["bank"]["assets"] == ["kwh"]
    assert bank_keeper.supply(Chain.from_genesis(genesis).state, "kwh") == 0


def test_json_round_trip_keeps_the_document_and_its_hash(tmp_path: Path) -> None:
    owner, machine = _keys(2)
    genesis = dev_genesis(
        "round-trip",
        time_ms=TIME_MS,
        allocations=[(owner.did, "aut", 10**9)],
        identities=[
            {"did": machine.did, "owner": owner.did, "kind": "ev-charger", "metadata": {"site": "A"}}
        ],
    )
    path = tmp_path / "genesis.json"
    write_genesis(path, genesis)
    loaded = load_genesis(path)
    assert loaded == genesis
    assert genesis_hash(loaded) == genesis_hash(genesis)
    # The node stores CBOR: the same document, byte for byte.
    assert canonical_decode(canonical_encode(loaded)) == genesis
    assert check_genesis(loaded) == execute_genesis(genesis, build_app()).header.state_root
    # Written for people: indented, keys sorted.
    text = path.read_text(encoding="utf-8")
    assert text.startswith("{\n") and json.loads(text) == genesis


def test_genesis_to_json_turns_bytes_into_hex() -> None:
    (owner,) = _keys(1)
    genesis = dev_genesis("c1", time_ms=0, allocations=[(owner.did, "aut", 1)])
    genesis["app_state"]["identity"]["accounts"] = [
        {"did": owner.did, "kind": "gateway", "keys": [{"key": owner.public_key.raw}]}
    ]
    document = json.loads(genesis_to_json(genesis))
    assert document["app_state"]["identity"]["accounts"][0]["keys"][0]["key"] == owner.public_key.hex()
    assert check_genesis(document) == check_genesis(genesis)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda g: g.pop("chain_id"), "lacks the field 'chain_id'"),
        (lambda g: g.update(extra=1), "unknown field 'extra'"),
        (lambda g: g.update(chain_id="Bad Chain"), "chain_id"),
        (lambda g: g.update(genesis_time_ms=-1), "genesis_time_ms"),
        (lambda g: g["app_state"].update(weather={}), "unknown module 'weather'"),
        (lambda g: g["app_state"]["bank"]["balances"][0].update(amount=0), "amount"),
        (lambda g: g["app_state"]["bank"]["balances"][0].update(account="bob"), "account"),
        (lambda g: g["app_state"]["identity"]["accounts"].append({"kind": "x"}), "genesis account 0"),
    ],
)
def test_bad_documents_are_refused_with_a_named_reason(change: object, message: str) -> None:
    (owner,) = _keys(1)
    genesis = dev_genesis("c1", time_ms=0, allocations=[(owner.did, "aut", 5)])
    change(genesis)  # type: ignore[operator]
    with pytest.raises(GenesisError, match=message):
        check_genesis(genesis)


def test_dev_genesis_refuses_bad_allocations() -> None:
    (owner,) = _keys(1)
    with pytest.raises(GenesisError, match="positive integer"):
        dev_genesis("c1", time_ms=0, allocations=[(owner.did, "aut", 0)])
    with pytest.raises(GenesisError, match="asset"):
        dev_genesis("c1", time_ms=0, allocations=[(owner.did, "AUT!", 5)])


def test_load_genesis_names_the_file_and_refuses_floats(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    with pytest.raises(GenesisError, match="does not exist"):
        load_genesis(missing)
    (owner,) = _keys(1)
    genesis = dev_genesis("c1", time_ms=0, allocations=[(owner.did, "aut", 5)])
    text = genesis_to_json(genesis).replace('"amount": 5', '"amount": 5.0')
    path = tmp_path / "float.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(GenesisError, match=r"float\.json.*not an integer"):
        load_genesis(path)
    with pytest.raises(GenesisError, match="not valid JSON"):
        genesis_from_json("{")
