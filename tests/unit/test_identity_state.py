"""Identity genesis, DID documents, allowances through the keeper, and the invariants' own checks."""

from __future__ import annotations

import json
from typing import Any

import base58
import pytest

from autarky.crypto.did import InvalidDid, fingerprint
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.errors import TxError
from autarky.ledger.router import App, KeyScope
from autarky.ledger.state import MappingState, Overlay
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.harness import Chain
from autarky.modules.identity import IdentityModule
from autarky.modules.identity import messages as m
from autarky.modules.identity.invariants import check_invariants

CHAIN_ID = "test"


def key(label: str) -> SigningKey:
    return SigningKey.from_seed(sha256(label.encode()))


OWNER, MACHINE, PERSON = key("owner"), key("machine"), key("person")
K1, K2 = key("k1"), key("k2")


def raw(signing_key: SigningKey) -> bytes:
    return signing_key.public_key.raw


def chain_with(accounts: list[dict[str, Any]]) -> tuple[Chain, IdentityModule]:
    identity = IdentityModule()
    genesis = {"chain_id": CHAIN_ID, "genesis_time_ms": 0, "app_state": {"identity": {"accounts": accounts}}}
    chain = Chain.from_genesis(genesis, app=App([identity], authenticator=identity))
    assert chain.invariants() == []
    return chain, identity


MACHINE_ACCOUNT: dict[str, Any] = {
    "did": MACHINE.did,
    "owner": OWNER.did,
    "kind": "charger",
    "maker": "acme",
    "model": "c9",
    "serial_digest": sha256(b"SN-1").hex(),
    "capabilities": ["charge:ccs"],
    "metadata": {"site": "depot"},
    "keys": [
        {"key": raw(MACHINE), "actions": None, "allowance": None},
        {"key": raw(K1).hex(), "actions": ["bank/send"], "allowance": {"aut": 100}},
    ],
}


# --- genesis -----------------------------------------------------------------------------------------


def test_genesis_accounts() -> None:
    chain, identity = chain_with([MACHINE_ACCOUNT, {"did": PERSON.did, "kind": "person"}])
    machine = identity.account(chain.state, MACHINE.did)
    assert machine == {
        "owner": OWNER.did,
        "kind": "charger",
        "maker": "acme",
        "model": "c9",
        "serial_digest": sha256(b"SN-1"),
        "capabilities": ["charge:ccs"],
        "metadata": {"site": "depot"},
        "status": "active",
        "registered": 0,
        "keys": [
            {"key": raw(MACHINE), "actions": None, "allowance": None, "added": 0},
            {"key": raw(K1), "actions": ["bank/send"], "allowance": {"aut": 100}, "added": 0},
        ],
    }
    person = identity.account(chain.state, PERSON.did)
    assert person is not None
    assert (
        person["owner"],
        person["maker"],
        person["model"],
        person["capabilities"],
        person["metadata"],
    ) == (
        None,
        "",
        "",
        [],
        {},
    )
    assert [entry["key"] for entry in person["keys"]] == [raw(PERSON)]
    assert identity.authenticate(chain.state, MACHINE.did, raw(K1)) == KeyScope(
        raw(K1), ("bank/send",), (("aut", 100),)
    )


def test_genesis_may_be_empty() -> None:
    app_states: list[dict[str, Any]] = [{}, {"identity": {}}, {"identity": {"accounts": []}}]
    for app_state in app_states:
        identity = IdentityModule()
        genesis = {"chain_id": CHAIN_ID, "genesis_time_ms": 0, "app_state": app_state}
        chain = Chain.from_genesis(genesis, app=App([identity], authenticator=identity))
        assert list(chain.state.iter_prefix("identity/")) == []


def _with(**changes: Any) -> dict[str, Any]:
    account = {**MACHINE_ACCOUNT, **changes}
    return {key: value for key, value in account.items() if value is not _DROP}


_DROP = object()


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"accounts": {}}, "must be a list"),
        ({"people": []}, "unknown field 'people'"),
        ({"accounts": [[]]}, "must be a map"),
        ({"accounts": [_with(colour="red")]}, "unknown field 'colour'"),
        ({"accounts": [_with(did=_DROP)]}, "did must be str"),
        ({"accounts": [_with(did="did:web:x")]}, "did:key"),
        ({"accounts": [_with(kind=_DROP)]}, "kind must be str"),
        ({"accounts": [_with(owner="someone")]}, "did:key"),
        ({"accounts": [_with(owner=MACHINE.did)]}, "its own owner"),
        ({"accounts": [_with(kind="")]}, "kind must not be empty"),
        ({"accounts": [_with(kind="k" * 65)]}, "longer than 64"),
        ({"accounts": [_with(serial_digest="zz")]}, "hex"),
        ({"accounts": [_with(serial_digest="00" * 31)]}, "32 bytes"),
        ({"accounts": [_with(capabilities="x")]}, "list of text"),
        ({"accounts": [_with(metadata={"a": 1})]}, "map from text to text"),
        ({"accounts": [_with(keys=[])]}, "1 to 8 keys"),
        ({"accounts": [_with(keys=[{"key": raw(K2), "actions": ["bank/send"]}])]}, "full scope"),
        ({"accounts": [_with(keys=[{"key": raw(K2)}, {"key": raw(K2)}])]}, "listed twice"),
        ({"accounts": [_with(keys=[{"key": "01" + "00" * 31}])]}, "prime-order"),
        ({"accounts": [_with(keys=[{"key": raw(K2), "allowance": {"aut": 1}}])]}, "allowance applies only"),
        ({"accounts": [_with(keys=[{"key": raw(K2), "actions": "bank/send"}])]}, "list of message types"),
        ({"accounts": [_with(keys=[{"key": raw(K2), "weight": 1}])]}, "fields"),
        ({"accounts": [MACHINE_ACCOUNT, MACHINE_ACCOUNT]}, "appears twice"),
        (
            {"accounts": [MACHINE_ACCOUNT, {"did": PERSON.did, "kind": "p", "keys": [{"key": raw(K1)}]}]},
            "is also",
        ),
        ({"accounts": [{"did": K1.did, "kind": "p"}, MACHINE_ACCOUNT]}, "is also"),
    ],
)
def test_genesis_is_validated_strictly(config: dict[str, Any], message: str) -> None:
    identity = IdentityModule()
    with pytest.raises(ValueError, match=message):
        identity.init_genesis(Overlay(MappingState({})), config)


# --- DID documents -----------------------------------------------------------------------------------


def test_implicit_did_document() -> None:
    chain, identity = chain_with([])
    document = identity.did_document(chain.state, PERSON.did)
    method_id = f"{PERSON.did}#{fingerprint(PERSON.did)}"
    assert document["@context"][0] == "https://www.w3.org/ns/did/v1"
    assert document["id"] == PERSON.did
    assert "controller" not in document
    assert document["verificationMethod"] == [
        {
            "id": method_id,
            "type": "Multikey",
            "controller": PERSON.did,
            "publicKeyMultibase": fingerprint(PERSON.did),
        }
    ]
    assert document["authentication"] == [method_id]
    assert document["assertionMethod"] == [method_id]
    assert document["autarky"]["registered"] is False
    assert document["autarky"]["status"] == "active"
    assert document["autarky"]["owner"] is None
    json.dumps(document)


def test_registered_did_document() -> None:
    chain, identity = chain_with([MACHINE_ACCOUNT])
    document = identity.did_document(chain.state, MACHINE.did)
    assert document["controller"] == OWNER.did
    multibases = [method["publicKeyMultibase"] for method in document["verificationMethod"]]
    assert multibases == [fingerprint(MACHINE.did), fingerprint(K1.did)]
    for method, public_key in zip(document["verificationMethod"], (raw(MACHINE), raw(K1)), strict=True):
        decoded = base58.b58decode(method["publicKeyMultibase"][1:])
        assert decoded == b"\xed\x01" + public_key
        assert method["controller"] == MACHINE.did
    # Only the full-scope key authenticates for the DID subject as such.
    assert document["authentication"] == [document["verificationMethod"][0]["id"]]
    assert document["assertionMethod"] == document["authentication"]
    extension = document["autarky"]
    assert {name: extension[name] for name in ("kind", "maker", "model", "status", "owner")} == {
        "kind": "charger",
        "maker": "acme",
        "model": "c9",
        "status": "active",
        "owner": OWNER.did,
    }
    assert extension["capabilities"] == ["charge:ccs"]
    assert extension["metadata"] == {"site": "depot"}
    assert extension["serial_digest"] == sha256(b"SN-1").hex()
    assert extension["keys"][1]["actions"] == ["bank/send"]
    assert extension["keys"][1]["allowance"] == {"aut": 100}
    json.dumps(document)


def test_revoked_did_document_has_no_usable_keys() -> None:
    chain, identity = chain_with([MACHINE_ACCOUNT])
    body = TxBody(CHAIN_ID, OWNER.did, 0, 0, 0, (m.revoke(MACHINE.did),))
    (receipt,) = chain.execute([sign_tx(body, OWNER).raw])
    assert receipt.ok
    document = identity.did_document(chain.state, MACHINE.did)
    assert document["autarky"]["status"] == "revoked"
    assert len(document["verificationMethod"]) == 2
    assert document["authentication"] == []
    assert document["assertionMethod"] == []


@pytest.mark.parametrize(
    "did",
    [
        "did:web:example.com",
        "did:key:z6Mk",
        "",
        "did:key:z" + base58.b58encode(b"\xed\x01" + b"\x01" + bytes(31)).decode(),
    ],
)
def test_did_document_refuses_non_did_key(did: str) -> None:
    chain, identity = chain_with([])
    with pytest.raises(InvalidDid):
        identity.did_document(chain.state, did)
    assert issubclass(InvalidDid, ValueError)


# --- charge_allowance --------------------------------------------------------------------------------


def test_charge_allowance() -> None:
    chain, identity = chain_with([MACHINE_ACCOUNT])
    state = chain.overlay()
    counter = "identity/allow/" + MACHINE.did + "/" + raw(K1).hex() + "/aut"
    identity.charge_allowance(state, MACHINE.did, raw(K1), "aut", 60)
    assert state.get_obj(counter) == 60
    identity.charge_allowance(state, MACHINE.did, raw(K1), "aut", 40)
    assert state.get_obj(counter) == 100
    identity.charge_allowance(state, MACHINE.did, raw(K1), "aut", 0)
    with pytest.raises(TxError) as exceeded:
        identity.charge_allowance(state, MACHINE.did, raw(K1), "aut", 1)
    assert exceeded.value.code == "identity.allowance_exceeded"
    with pytest.raises(TxError) as other_asset:
        identity.charge_allowance(state, MACHINE.did, raw(K1), "kwh", 1)
    assert other_asset.value.code == "identity.allowance_exceeded"
    assert state.get_obj(counter) == 100
    assert check_invariants(state) == []


def test_charge_allowance_no_ops_and_unknown_key() -> None:
    chain, identity = chain_with([MACHINE_ACCOUNT])
    state = chain.overlay()
    identity.charge_allowance(state, MACHINE.did, raw(MACHINE), "aut", 10**9)  # full scope
    identity.charge_allowance(state, PERSON.did, raw(PERSON), "aut", 10**9)  # implicit account
    assert len(state) == 0
    with pytest.raises(TxError) as unknown:
        identity.charge_allowance(state, MACHINE.did, raw(K2), "aut", 1)
    assert unknown.value.code == "core.unknown_signer"


def test_charge_allowance_scoped_key_without_allowance() -> None:
    account = _with(
        keys=[{"key": raw(MACHINE)}, {"key": raw(K1), "actions": ["bank/send"], "allowance": None}]
    )
    chain, identity = chain_with([account])
    state = chain.overlay()
    identity.charge_allowance(state, MACHINE.did, raw(K1), "aut", 10**9)
    assert len(state) == 0


def test_empty_allowance_spends_nothing() -> None:
    account = _with(keys=[{"key": raw(MACHINE)}, {"key": raw(K1), "actions": ["bank/send"], "allowance": {}}])
    chain, identity = chain_with([account])
    with pytest.raises(TxError, match="no allowance"):
        identity.charge_allowance(chain.overlay(), MACHINE.did, raw(K1), "aut", 1)


# --- the invariants see corruption ---------------------------------------------------------------


def _corrupt(change: Any) -> list[str]:
    chain, _ = chain_with([MACHINE_ACCOUNT, {"did": PERSON.did, "kind": "person"}])
    state = chain.overlay()
    change(state)
    return check_invariants(state)


def _edit_record(state: Overlay, **changes: Any) -> None:
    record = state.get_obj("identity/acct/" + MACHINE.did)
    state.set_obj("identity/acct/" + MACHINE.did, {**record, **changes})


def test_invariants_detect_a_missing_index_entry() -> None:
    problems = _corrupt(lambda s: s.delete("identity/key/" + raw(K1).hex()))
    assert any("not indexed" in problem for problem in problems)


def test_invariants_detect_a_stray_index_entry() -> None:
    problems = _corrupt(lambda s: s.set_obj("identity/key/" + raw(K2).hex(), MACHINE.did))
    assert any("does not list it" in problem for problem in problems)


def test_invariants_detect_an_index_entry_pointing_elsewhere() -> None:
    problems = _corrupt(lambda s: s.set_obj("identity/key/" + raw(K1).hex(), PERSON.did))
    assert len(problems) == 2


def test_invariants_detect_bad_records() -> None:
    assert any("status" in p for p in _corrupt(lambda s: _edit_record(s, status="lost")))
    assert any("1 to 8 keys" in p for p in _corrupt(lambda s: _edit_record(s, keys=[])))
    scoped_only = [{"key": raw(K1), "actions": ["bank/send"], "allowance": None, "added": 0}]
    assert any("no full-scope" in p for p in _corrupt(lambda s: _edit_record(s, keys=scoped_only)))
    full_with_allowance = [{"key": raw(MACHINE), "actions": None, "allowance": {"aut": 1}, "added": 0}]
    assert any("has an allowance" in p for p in _corrupt(lambda s: _edit_record(s, keys=full_with_allowance)))
    assert any("owner" in p for p in _corrupt(lambda s: _edit_record(s, owner=MACHINE.did)))
    assert any("fields" in p for p in _corrupt(lambda s: _edit_record(s, colour="red")))


def test_invariants_detect_bad_allowance_counters() -> None:
    base = "identity/allow/" + MACHINE.did + "/"
    assert _corrupt(lambda s: s.set_obj(base + raw(K1).hex() + "/aut", 100)) == []
    assert _corrupt(lambda s: s.set_obj(base + raw(K1).hex() + "/aut", 101)) != []
    assert _corrupt(lambda s: s.set_obj(base + raw(K1).hex() + "/kwh", 1)) != []
    assert _corrupt(lambda s: s.set_obj(base + raw(MACHINE).hex() + "/aut", 1)) != []
    assert _corrupt(lambda s: s.set_obj(base + raw(K1).hex() + "/aut", 0)) != []
    assert _corrupt(lambda s: s.set_obj("identity/allow/nonsense", 1)) != []


def test_a_key_scope_action_with_a_trailing_newline_is_refused() -> None:
    import pytest

    from autarky.ledger.errors import TxError
    from autarky.modules.identity import messages

    assert messages.check_scope(["bank/send"], None) == (("bank/send",), None)
    with pytest.raises(TxError) as refused:
        messages.check_scope(["bank/send\n"], None)
    assert refused.value.code == "identity.invalid_scope"
