"""The identity module through the real executor: every message, every code, and their precedence.

Each test runs a chain of the identity module alone (no fees), so a receipt's code is identity's
or the core's. Invariants are checked after every block.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from autarky.crypto.did import did_from_public_key
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.block import Receipt
from autarky.ledger.errors import ACCOUNT_REVOKED, TxError
from autarky.ledger.router import App, KeyScope
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.harness import Chain
from autarky.modules.identity import IdentityModule
from autarky.modules.identity import messages as m
from autarky.modules.identity.errors import IDENTITY_CODES_IN_PRECEDENCE
from support.small_order import SMALL_ORDER_KEYS as _SMALL_ORDER_KEYS

CHAIN_ID = "test"

SMALL_ORDER_KEYS = list(_SMALL_ORDER_KEYS)
SMALL = SMALL_ORDER_KEYS[4]  # the neutral point, order 1


def key(label: str) -> SigningKey:
    return SigningKey.from_seed(sha256(label.encode()))


OWNER, MACHINE, STRANGER, PERSON = key("owner"), key("machine"), key("stranger"), key("person")
K1, K2, K3 = key("k1"), key("k2"), key("k3")


class Harness:
    """A chain running only the identity module, with helpers that sign and submit one transaction."""

    def __init__(self, accounts: list[dict[str, Any]] | None = None) -> None:
        self.identity = IdentityModule()
        app = App([self.identity], authenticator=self.identity)
        app_state = {"identity": {"accounts": accounts}} if accounts is not None else {}
        genesis = {"chain_id": CHAIN_ID, "genesis_time_ms": 0, "app_state": app_state}
        self.chain = Chain.from_genesis(genesis, app=app)
        assert self.chain.invariants() == []

    def submit(
        self,
        signer: SigningKey,
        *msgs: dict[str, Any],
        sender: str | None = None,
        cosigners: Sequence[SigningKey] = (),
    ) -> Receipt:
        sender = sender or signer.did
        body = TxBody(CHAIN_ID, sender, self.chain.sequence(sender), 0, 0, tuple(msgs))
        (receipt,) = self.chain.execute([sign_tx(body, signer, cosigners).raw])
        assert self.chain.invariants() == []
        return receipt

    def ok(self, signer: SigningKey, *msgs: dict[str, Any], **kwargs: Any) -> Receipt:
        receipt = self.submit(signer, *msgs, **kwargs)
        assert receipt.code == "ok", receipt.detail
        return receipt

    def record(self, did: str) -> dict[str, Any]:
        record = self.identity.account(self.chain.state, did)
        assert record is not None
        return record

    def keys_of(self, did: str) -> list[bytes]:
        return [entry["key"] for entry in self.record(did)["keys"]]

    def scope(self, did: str, public_key: bytes) -> KeyScope:
        return self.identity.authenticate(self.chain.state, did, public_key)

    def auth_code(self, did: str, public_key: bytes) -> str:
        try:
            self.scope(did, public_key)
        except TxError as exc:
            return exc.code
        return "ok"

    # Common set-ups -------------------------------------------------------------------------------

    def register_machine(self, machine: SigningKey = MACHINE, owner: SigningKey = OWNER) -> None:
        self.ok(owner, m.register(machine.did, "pump", "acme", "p1"), cosigners=[machine])

    def register_self(self, person: SigningKey = PERSON) -> None:
        self.ok(person, m.register(person.did, "person"))

    def add_scoped(
        self,
        did: str,
        signer: SigningKey,
        new: SigningKey,
        actions: list[str],
        allowance: dict[str, int] | None,
    ) -> None:
        self.ok(signer, m.add_key(did, new.public_key.raw, actions, allowance), cosigners=[new])


def raw(signing_key: SigningKey) -> bytes:
    return signing_key.public_key.raw


@pytest.fixture
def h() -> Harness:
    return Harness()


def test_codes_are_namespaced_and_distinct() -> None:
    codes = [error.code for error in IDENTITY_CODES_IN_PRECEDENCE]
    assert len(codes) == len(set(codes))
    assert all(code.startswith("identity.") for code in codes)


# --- register ----------------------------------------------------------------------------------------


def test_self_registration(h: Harness) -> None:
    receipt = h.ok(PERSON, m.register(PERSON.did, "person", metadata={"name": "Ada"}))
    record = h.record(PERSON.did)
    assert record["owner"] is None
    assert record["status"] == "active"
    assert record["registered"] == 1
    assert record["keys"] == [{"key": raw(PERSON), "actions": None, "allowance": None, "added": 1}]
    assert [(e.type, dict(e.attributes)) for e in receipt.events] == [
        ("identity.registered", {"did": PERSON.did, "owner": None, "kind": "person"})
    ]
    assert h.identity.owner_of(h.chain.state, PERSON.did) is None
    assert not h.identity.is_machine(h.chain.state, PERSON.did)


def test_machine_registration_makes_the_sender_its_owner(h: Harness) -> None:
    digest = sha256(b"SN-0042")
    msg = m.register(MACHINE.did, "pump", "acme", "p1", digest, ["pump", "meter"], {"site": "north"})
    receipt = h.ok(OWNER, msg, cosigners=[MACHINE])
    record = h.record(MACHINE.did)
    assert record == {
        "owner": OWNER.did,
        "kind": "pump",
        "maker": "acme",
        "model": "p1",
        "serial_digest": digest,
        "capabilities": ["pump", "meter"],
        "metadata": {"site": "north"},
        "status": "active",
        "registered": 1,
        "keys": [{"key": raw(MACHINE), "actions": None, "allowance": None, "added": 1}],
    }
    assert receipt.events[0].get("owner") == OWNER.did
    assert h.identity.owner_of(h.chain.state, MACHINE.did) == OWNER.did
    assert h.identity.is_machine(h.chain.state, MACHINE.did)
    assert h.identity.account(h.chain.state, OWNER.did) is None  # the owner stays implicit


def test_register_refuses_a_registered_did(h: Harness) -> None:
    h.register_machine()
    receipt = h.submit(STRANGER, m.register(MACHINE.did, "pump"), cosigners=[MACHINE])
    assert receipt.code == "identity.already_registered"
    assert h.record(MACHINE.did)["owner"] == OWNER.did


def test_register_refuses_a_did_whose_key_another_account_holds(h: Harness) -> None:
    h.register_self()
    h.add_scoped(PERSON.did, PERSON, K1, ["bank/send"], None)
    receipt = h.submit(OWNER, m.register(K1.did, "pump"), cosigners=[K1])
    assert receipt.code == "identity.key_in_use"


def test_register_needs_the_machine_key_to_cosign(h: Harness) -> None:
    receipt = h.submit(OWNER, m.register(MACHINE.did, "pump"))
    assert receipt.code == "identity.missing_key_signature"
    assert h.identity.account(h.chain.state, MACHINE.did) is None


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"did": "did:web:example.com"}, "identity.invalid_did"),
        ({"did": "did:key:z" + "1" * 40}, "identity.invalid_did"),
        ({"kind": ""}, "identity.invalid_field"),
        ({"serial_digest": b"\x01" * 31}, "identity.invalid_field"),
        ({"capabilities": ["pump", "pump"]}, "identity.invalid_field"),
        ({"capabilities": [""]}, "identity.invalid_field"),
        ({"metadata": {"": "x"}}, "identity.invalid_field"),
        ({"kind": "k" * 65}, "identity.too_large"),
        ({"maker": "m" * 65}, "identity.too_large"),
        ({"model": "m" * 65}, "identity.too_large"),
        ({"capabilities": [f"c{i}" for i in range(17)]}, "identity.too_large"),
        ({"capabilities": ["c" * 65]}, "identity.too_large"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "identity.too_large"),
        ({"metadata": {"k" * 33: "v"}}, "identity.too_large"),
        ({"metadata": {"k": "v" * 257}}, "identity.too_large"),
        ({"kind": 7}, "core.invalid_message"),
        ({"serial_digest": "00" * 32}, "core.invalid_message"),
        ({"capabilities": "pump"}, "core.invalid_message"),
        ({"capabilities": [1]}, "core.invalid_message"),
        ({"metadata": {"k": 1}}, "core.invalid_message"),
        ({"metadata": ["k"]}, "core.invalid_message"),
        ({"extra": 1}, "core.invalid_message"),
    ],
)
def test_register_message_checks(h: Harness, changes: dict[str, Any], code: str) -> None:
    msg = {**m.register(MACHINE.did, "pump"), **changes}
    assert h.submit(OWNER, msg, cosigners=[MACHINE]).code == code


def test_register_limits_are_inclusive(h: Harness) -> None:
    msg = m.register(
        MACHINE.did,
        "k" * 64,
        "m" * 64,
        "m" * 64,
        sha256(b"x"),
        ["c" * 62 + f"{i:02d}" for i in range(16)],
        {("k" * 30) + f"{i:02d}": "v" * 256 for i in range(16)},
    )
    h.ok(OWNER, msg, cosigners=[MACHINE])


@pytest.mark.parametrize("field", ["did", "kind", "maker", "model", "capabilities", "metadata"])
def test_register_requires_every_field(h: Harness, field: str) -> None:
    msg = m.register(MACHINE.did, "pump")
    del msg[field]
    assert h.submit(OWNER, msg, cosigners=[MACHINE]).code == "core.invalid_message"


def test_register_serial_digest_may_be_left_out(h: Harness) -> None:
    msg = m.register(MACHINE.did, "pump")
    del msg["serial_digest"]
    h.ok(OWNER, msg, cosigners=[MACHINE])
    assert h.record(MACHINE.did)["serial_digest"] is None


def test_register_precedence(h: Harness) -> None:
    # Message checks come first, in code order: invalid_did, invalid_field, too_large.
    bad_did_and_kind = {**m.register("did:web:x", ""), "capabilities": ["c"] * 20}
    assert h.submit(OWNER, bad_did_and_kind).code == "identity.invalid_did"
    empty_kind_and_too_many = {**m.register(MACHINE.did, ""), "capabilities": [f"c{i}" for i in range(20)]}
    assert h.submit(OWNER, empty_kind_and_too_many).code == "identity.invalid_field"
    wrong_type_and_bad_did = {**m.register("did:web:x", "pump"), "metadata": 3}
    assert h.submit(OWNER, wrong_type_and_bad_did).code == "core.invalid_message"
    # State checks: already_registered before key_in_use before missing_key_signature.
    h.register_machine()
    assert h.submit(STRANGER, m.register(MACHINE.did, "pump")).code == "identity.already_registered"
    h.add_scoped(MACHINE.did, MACHINE, K1, ["bank/send"], None)
    assert h.submit(STRANGER, m.register(K1.did, "pump")).code == "identity.key_in_use"


# --- add_key -----------------------------------------------------------------------------------------


def test_add_key_by_the_account_itself(h: Harness) -> None:
    h.register_self()
    receipt = h.ok(PERSON, m.add_key(PERSON.did, raw(K1)), cosigners=[K1])
    assert h.keys_of(PERSON.did) == [raw(PERSON), raw(K1)]
    assert [(e.type, dict(e.attributes)) for e in receipt.events] == [
        ("identity.key_added", {"did": PERSON.did, "key": raw(K1), "full": True})
    ]
    assert h.scope(PERSON.did, raw(K1)) == KeyScope(raw(K1), None, None)
    # The new key signs for the account.
    h.ok(K1, m.add_key(PERSON.did, raw(K2)), sender=PERSON.did, cosigners=[K2])


def test_add_scoped_key_by_the_owner(h: Harness) -> None:
    h.register_machine()
    h.ok(OWNER, m.add_key(MACHINE.did, raw(K1), ["bank/send", "bank/freeze"], {"aut": 100}), cosigners=[K1])
    entry = h.record(MACHINE.did)["keys"][1]
    assert entry == {
        "key": raw(K1),
        "actions": ["bank/freeze", "bank/send"],
        "allowance": {"aut": 100},
        "added": 2,
    }
    assert h.scope(MACHINE.did, raw(K1)) == KeyScope(raw(K1), ("bank/freeze", "bank/send"), (("aut", 100),))


def test_add_key_not_registered(h: Harness) -> None:
    receipt = h.submit(PERSON, m.add_key(PERSON.did, raw(K1)), cosigners=[K1])
    assert receipt.code == "identity.not_registered"


def test_add_key_by_a_stranger_is_not_authorised(h: Harness) -> None:
    h.register_machine()
    receipt = h.submit(STRANGER, m.add_key(MACHINE.did, raw(K1)), cosigners=[K1])
    assert receipt.code == "identity.not_authorised"


def test_a_scoped_key_cannot_change_keys_even_if_it_names_the_action(h: Harness) -> None:
    h.register_self()
    h.add_scoped(PERSON.did, PERSON, K1, ["identity/add_key", "identity/remove_key"], None)
    receipt = h.submit(K1, m.add_key(PERSON.did, raw(K2)), sender=PERSON.did, cosigners=[K2])
    assert receipt.code == "identity.not_authorised"
    receipt = h.submit(K1, m.remove_key(PERSON.did, raw(PERSON)), sender=PERSON.did)
    assert receipt.code == "identity.not_authorised"


def test_a_machine_may_manage_its_own_keys_with_a_full_key(h: Harness) -> None:
    h.register_machine()
    h.ok(MACHINE, m.add_key(MACHINE.did, raw(K1)), cosigners=[K1])
    assert h.keys_of(MACHINE.did) == [raw(MACHINE), raw(K1)]


def test_add_key_on_a_revoked_account(h: Harness) -> None:
    h.register_machine()
    h.ok(OWNER, m.revoke(MACHINE.did))
    receipt = h.submit(OWNER, m.add_key(MACHINE.did, raw(K1)), cosigners=[K1])
    assert receipt.code == "identity.account_revoked"


def test_add_key_already_used(h: Harness) -> None:
    h.register_machine()
    h.register_self()
    receipt = h.submit(OWNER, m.add_key(MACHINE.did, raw(PERSON)), cosigners=[PERSON])
    assert receipt.code == "identity.key_in_use"
    receipt = h.submit(OWNER, m.add_key(MACHINE.did, raw(MACHINE)), cosigners=[MACHINE])
    assert receipt.code == "identity.key_in_use"


def test_add_key_at_most_eight(h: Harness) -> None:
    h.register_machine()
    extra = [key(f"extra-{i}") for i in range(8)]
    for new in extra[:7]:
        h.ok(OWNER, m.add_key(MACHINE.did, raw(new)), cosigners=[new])
    assert len(h.keys_of(MACHINE.did)) == 8
    receipt = h.submit(OWNER, m.add_key(MACHINE.did, raw(extra[7])), cosigners=[extra[7]])
    assert receipt.code == "identity.too_many_keys"


def test_add_key_needs_proof_of_possession(h: Harness) -> None:
    h.register_machine()
    assert h.submit(OWNER, m.add_key(MACHINE.did, raw(K1))).code == "identity.missing_key_signature"
    assert h.keys_of(MACHINE.did) == [raw(MACHINE)]


@pytest.mark.parametrize("small", SMALL_ORDER_KEYS)
def test_add_key_refuses_small_order_keys(h: Harness, small: bytes) -> None:
    h.register_machine()
    assert h.submit(OWNER, m.add_key(MACHINE.did, small)).code == "identity.invalid_key"


@pytest.mark.parametrize(
    ("actions", "allowance", "code"),
    [
        (None, {"aut": 1}, "identity.invalid_scope"),
        ([], None, "identity.invalid_scope"),
        (["Bank/Send"], None, "identity.invalid_scope"),
        (["bank"], None, "identity.invalid_scope"),
        (["bank/send", "bank/send"], None, "identity.invalid_scope"),
        ([f"bank/a{i}" for i in range(17)], None, "identity.invalid_scope"),
        (["bank/send"], {"aut": -1}, "identity.invalid_scope"),
        (["bank/send"], {"aut": 2**64}, "identity.invalid_scope"),
        (["bank/send"], {"": 1}, "identity.invalid_scope"),
        (["bank/send"], {"a" * 65: 1}, "identity.invalid_scope"),
        (["bank/send"], {f"a{i}": 1 for i in range(17)}, "identity.invalid_scope"),
        (["bank/send"], {"aut": True}, "core.invalid_message"),
        ([1], None, "core.invalid_message"),
        ("bank/send", None, "core.invalid_message"),
    ],
)
def test_add_key_scope_checks(h: Harness, actions: Any, allowance: Any, code: str) -> None:
    h.register_machine()
    msg = {**m.add_key(MACHINE.did, raw(K1)), "actions": actions, "allowance": allowance}
    assert h.submit(OWNER, msg, cosigners=[K1]).code == code


def test_add_key_scope_limits_are_inclusive(h: Harness) -> None:
    h.register_machine()
    actions = [f"bank/a{i}" for i in range(16)]
    allowance = {f"a{i}": 2**64 - 1 for i in range(15)} | {"b" * 64: 0}
    h.ok(OWNER, m.add_key(MACHINE.did, raw(K1), actions, allowance), cosigners=[K1])
    h.ok(OWNER, m.add_key(MACHINE.did, raw(K2), ["bank/send"], {}), cosigners=[K2])


@pytest.mark.parametrize(
    "changes",
    [{"key": raw(K1).hex()}, {"key": None}, {"did": 3}, {"colour": "red"}],
)
def test_add_key_shape(h: Harness, changes: dict[str, Any]) -> None:
    h.register_machine()
    msg = {**m.add_key(MACHINE.did, raw(K1)), **changes}
    assert h.submit(OWNER, msg, cosigners=[K1]).code == "core.invalid_message"


def test_add_key_optional_fields_may_be_left_out(h: Harness) -> None:
    h.register_machine()
    h.ok(OWNER, {"type": "identity/add_key", "did": MACHINE.did, "key": raw(K1)}, cosigners=[K1])


def test_add_key_precedence(h: Harness) -> None:
    h.register_machine()
    h.register_self()
    # invalid_key (message) before not_registered (state)
    assert h.submit(OWNER, m.add_key(STRANGER.did, SMALL)).code == "identity.invalid_key"
    # invalid_did before invalid_key before invalid_scope
    assert h.submit(OWNER, m.add_key("did:web:x", SMALL, [])).code == "identity.invalid_did"
    assert h.submit(OWNER, m.add_key(MACHINE.did, SMALL, [])).code == "identity.invalid_key"
    # not_registered before not_authorised
    assert h.submit(STRANGER, m.add_key(K3.did, raw(K1))).code == "identity.not_registered"
    # not_authorised before account_revoked
    h.ok(PERSON, m.revoke(PERSON.did))
    assert h.submit(STRANGER, m.add_key(PERSON.did, raw(K1))).code == "identity.not_authorised"
    h.ok(OWNER, m.revoke(MACHINE.did))
    # account_revoked before key_in_use and missing_key_signature
    assert h.submit(OWNER, m.add_key(MACHINE.did, raw(PERSON))).code == "identity.account_revoked"
    h.ok(OWNER, m.recover(MACHINE.did, raw(MACHINE)), cosigners=[MACHINE])
    # key_in_use before too_many_keys before missing_key_signature
    for index in range(7):
        new = key(f"more-{index}")
        h.ok(OWNER, m.add_key(MACHINE.did, raw(new)), cosigners=[new])
    assert h.submit(OWNER, m.add_key(MACHINE.did, raw(PERSON))).code == "identity.key_in_use"
    assert h.submit(OWNER, m.add_key(MACHINE.did, raw(K1))).code == "identity.too_many_keys"


# --- remove_key --------------------------------------------------------------------------------------


def test_remove_key(h: Harness) -> None:
    h.register_machine()
    h.ok(OWNER, m.add_key(MACHINE.did, raw(K1)), cosigners=[K1])
    receipt = h.ok(MACHINE, m.remove_key(MACHINE.did, raw(K1)))
    assert [(e.type, dict(e.attributes)) for e in receipt.events] == [
        ("identity.key_removed", {"did": MACHINE.did, "key": raw(K1)})
    ]
    assert h.keys_of(MACHINE.did) == [raw(MACHINE)]
    assert h.submit(K1, m.revoke(MACHINE.did), sender=MACHINE.did).code == "core.unknown_signer"


def test_remove_the_signing_key_itself_when_another_full_key_remains(h: Harness) -> None:
    h.register_self()
    h.ok(PERSON, m.add_key(PERSON.did, raw(K1)), cosigners=[K1])
    h.ok(PERSON, m.remove_key(PERSON.did, raw(PERSON)))
    assert h.auth_code(PERSON.did, raw(PERSON)) == "core.unknown_signer"  # the did's own key too
    assert h.auth_code(PERSON.did, raw(K1)) == "ok"


def test_remove_key_not_found(h: Harness) -> None:
    h.register_machine()
    assert h.submit(OWNER, m.remove_key(MACHINE.did, raw(K1))).code == "identity.key_not_found"


def test_remove_the_last_full_key_is_refused(h: Harness) -> None:
    h.register_machine()
    h.add_scoped(MACHINE.did, OWNER, K1, ["bank/send"], None)
    assert h.submit(OWNER, m.remove_key(MACHINE.did, raw(MACHINE))).code == "identity.last_full_key"
    # a scoped key can always go
    h.ok(OWNER, m.remove_key(MACHINE.did, raw(K1)))


def test_remove_key_authority_and_precedence(h: Harness) -> None:
    h.register_machine()
    assert h.submit(STRANGER, m.remove_key(MACHINE.did, raw(K1))).code == "identity.not_authorised"
    assert h.submit(OWNER, m.remove_key(STRANGER.did, raw(K1))).code == "identity.not_registered"
    assert h.submit(OWNER, m.remove_key(MACHINE.did, SMALL)).code == "identity.invalid_key"
    h.ok(OWNER, m.revoke(MACHINE.did))
    assert h.submit(OWNER, m.remove_key(MACHINE.did, raw(K1))).code == "identity.account_revoked"


# --- rotate ------------------------------------------------------------------------------------------


def test_rotate_by_the_current_key(h: Harness) -> None:
    h.register_machine()
    receipt = h.ok(MACHINE, m.rotate(MACHINE.did, raw(MACHINE), raw(K1)), cosigners=[K1])
    assert [(e.type, dict(e.attributes)) for e in receipt.events] == [
        ("identity.key_rotated", {"did": MACHINE.did, "old_key": raw(MACHINE), "new_key": raw(K1)})
    ]
    assert h.keys_of(MACHINE.did) == [raw(K1)]
    # The old key (the one inside the did) no longer signs; the new one does.
    old = h.submit(MACHINE, m.add_key(MACHINE.did, raw(K2)), cosigners=[K2])
    assert old.code == "core.unknown_signer"
    h.ok(K1, m.add_key(MACHINE.did, raw(K2)), sender=MACHINE.did, cosigners=[K2])
    # The DID stays the same and still resolves.
    assert h.identity.did_document(h.chain.state, MACHINE.did)["id"] == MACHINE.did


def test_rotate_by_the_owner_keeps_the_scope_and_place(h: Harness) -> None:
    h.register_machine()
    h.add_scoped(MACHINE.did, OWNER, K1, ["bank/send"], {"aut": 5})
    h.ok(OWNER, m.add_key(MACHINE.did, raw(K3)), cosigners=[K3])
    h.ok(OWNER, m.rotate(MACHINE.did, raw(K1), raw(K2)), cosigners=[K2])
    keys = h.record(MACHINE.did)["keys"]
    assert [entry["key"] for entry in keys] == [raw(MACHINE), raw(K2), raw(K3)]
    assert keys[1]["actions"] == ["bank/send"] and keys[1]["allowance"] == {"aut": 5}
    assert h.scope(MACHINE.did, raw(K2)) == KeyScope(raw(K2), ("bank/send",), (("aut", 5),))
    assert h.auth_code(MACHINE.did, raw(K1)) == "core.unknown_signer"


def test_rotate_errors(h: Harness) -> None:
    h.register_machine()
    h.register_self()
    assert (
        h.submit(OWNER, m.rotate(MACHINE.did, raw(K1), raw(K2)), cosigners=[K2]).code
        == "identity.key_not_found"
    )
    assert h.submit(OWNER, m.rotate(MACHINE.did, raw(MACHINE), raw(PERSON))).code == "identity.key_in_use"
    assert h.submit(OWNER, m.rotate(MACHINE.did, raw(MACHINE), raw(MACHINE))).code == "identity.key_in_use"
    assert (
        h.submit(OWNER, m.rotate(MACHINE.did, raw(MACHINE), raw(K2))).code == "identity.missing_key_signature"
    )
    assert h.submit(STRANGER, m.rotate(MACHINE.did, raw(MACHINE), raw(K2))).code == "identity.not_authorised"
    assert h.submit(OWNER, m.rotate(K3.did, raw(MACHINE), raw(K2))).code == "identity.not_registered"
    # field order among invalid keys: old_key is checked first, both before any state check
    assert h.submit(OWNER, m.rotate(K3.did, SMALL, b"\x00" * 31)).code == "identity.invalid_key"
    # key_not_found before key_in_use
    assert h.submit(OWNER, m.rotate(MACHINE.did, raw(K1), raw(PERSON))).code == "identity.key_not_found"
    h.ok(OWNER, m.revoke(MACHINE.did))
    assert h.submit(OWNER, m.rotate(MACHINE.did, raw(MACHINE), raw(K2)), cosigners=[K2]).code == (
        "identity.account_revoked"
    )


@pytest.mark.parametrize("small", SMALL_ORDER_KEYS[::3])
def test_rotate_refuses_small_order_keys(h: Harness, small: bytes) -> None:
    h.register_machine()
    assert h.submit(OWNER, m.rotate(MACHINE.did, raw(MACHINE), small)).code == "identity.invalid_key"


# --- revoke ------------------------------------------------------------------------------------------


def test_revoke_by_the_owner_refuses_every_later_transaction(h: Harness) -> None:
    h.register_machine()
    h.add_scoped(MACHINE.did, OWNER, K1, ["identity/revoke"], None)
    receipt = h.ok(OWNER, m.revoke(MACHINE.did))
    assert [(e.type, dict(e.attributes)) for e in receipt.events] == [
        ("identity.revoked", {"did": MACHINE.did})
    ]
    assert h.record(MACHINE.did)["status"] == "revoked"
    for signer, msg in [
        (MACHINE, m.add_key(MACHINE.did, raw(K2))),
        (MACHINE, m.register(K3.did, "pump")),
        (K1, m.revoke(MACHINE.did)),
    ]:
        assert h.submit(signer, msg, sender=MACHINE.did).code == ACCOUNT_REVOKED.code
    # A key the account never listed is unknown before it is revoked (core precedence).
    assert h.submit(STRANGER, m.revoke(MACHINE.did), sender=MACHINE.did).code == "core.unknown_signer"
    # Its keys stay indexed to it: nobody else can take them.
    assert h.submit(OWNER, m.register(MACHINE.did, "pump"), cosigners=[MACHINE]).code == (
        "identity.already_registered"
    )
    h.register_self()
    assert h.submit(PERSON, m.add_key(PERSON.did, raw(K1)), cosigners=[K1]).code == "identity.key_in_use"


def test_revoke_authority(h: Harness) -> None:
    h.register_machine()
    h.register_self()
    # A machine with an owner cannot revoke itself; a stranger cannot revoke anyone.
    assert h.submit(MACHINE, m.revoke(MACHINE.did)).code == "identity.not_authorised"
    assert h.submit(STRANGER, m.revoke(PERSON.did)).code == "identity.not_authorised"
    assert h.submit(OWNER, m.revoke(K3.did)).code == "identity.not_registered"
    # A self-owned account revokes itself with a full key, not with a scoped one.
    h.add_scoped(PERSON.did, PERSON, K1, ["identity/revoke"], None)
    assert h.submit(K1, m.revoke(PERSON.did), sender=PERSON.did).code == "identity.not_authorised"
    h.ok(PERSON, m.revoke(PERSON.did))
    assert h.submit(PERSON, m.revoke(PERSON.did)).code == ACCOUNT_REVOKED.code
    h.ok(OWNER, m.revoke(MACHINE.did))
    assert h.submit(OWNER, m.revoke(MACHINE.did)).code == "identity.account_revoked"


# --- recover -----------------------------------------------------------------------------------------


def test_recover_a_revoked_machine(h: Harness) -> None:
    h.register_machine()
    h.add_scoped(MACHINE.did, OWNER, K1, ["bank/send"], None)
    h.ok(OWNER, m.revoke(MACHINE.did))
    receipt = h.ok(OWNER, m.recover(MACHINE.did, raw(K2)), cosigners=[K2])
    assert [(e.type, dict(e.attributes)) for e in receipt.events] == [
        ("identity.recovered", {"did": MACHINE.did, "new_key": raw(K2)})
    ]
    record = h.record(MACHINE.did)
    assert record["status"] == "active"
    assert record["keys"] == [{"key": raw(K2), "actions": None, "allowance": None, "added": 4}]
    assert h.auth_code(MACHINE.did, raw(MACHINE)) == "core.unknown_signer"
    assert h.auth_code(MACHINE.did, raw(K1)) == "core.unknown_signer"
    h.ok(K2, m.add_key(MACHINE.did, raw(K3)), sender=MACHINE.did, cosigners=[K3])
    # The old keys are free again.
    h.ok(STRANGER, m.register(K1.did, "sensor"), cosigners=[K1])


def test_recover_an_active_machine_with_one_of_its_keys(h: Harness) -> None:
    h.register_machine()
    h.add_scoped(MACHINE.did, OWNER, K1, ["bank/send"], {"aut": 10})
    h.ok(OWNER, m.recover(MACHINE.did, raw(K1)), cosigners=[K1])
    assert h.record(MACHINE.did)["keys"] == [{"key": raw(K1), "actions": None, "allowance": None, "added": 3}]
    assert h.scope(MACHINE.did, raw(K1)).full


def test_recover_errors(h: Harness) -> None:
    h.register_machine()
    h.register_self()
    assert (
        h.submit(MACHINE, m.recover(MACHINE.did, raw(K1)), cosigners=[K1]).code == "identity.not_authorised"
    )
    # a self-owned account has no one to recover it
    assert h.submit(PERSON, m.recover(PERSON.did, raw(K1)), cosigners=[K1]).code == "identity.not_authorised"
    assert h.submit(OWNER, m.recover(K3.did, raw(K1)), cosigners=[K1]).code == "identity.not_registered"
    assert h.submit(OWNER, m.recover(MACHINE.did, raw(PERSON))).code == "identity.key_in_use"
    assert h.submit(OWNER, m.recover(MACHINE.did, raw(K1))).code == "identity.missing_key_signature"


@pytest.mark.parametrize("small", SMALL_ORDER_KEYS[1::3])
def test_recover_refuses_small_order_keys(h: Harness, small: bytes) -> None:
    h.register_machine()
    assert h.submit(OWNER, m.recover(MACHINE.did, small)).code == "identity.invalid_key"


@pytest.mark.parametrize("small", SMALL_ORDER_KEYS[2::3])
def test_register_refuses_dids_of_small_order_keys(h: Harness, small: bytes) -> None:
    import base58

    did = "did:key:z" + base58.b58encode(b"\xed\x01" + small).decode()
    assert h.submit(OWNER, m.register(did, "pump")).code == "identity.invalid_did"


# --- authentication ----------------------------------------------------------------------------------


def test_implicit_accounts_sign_only_with_their_own_key(h: Harness) -> None:
    assert h.scope(PERSON.did, raw(PERSON)) == KeyScope(raw(PERSON), None, None)
    assert h.auth_code(PERSON.did, raw(K1)) == "core.unknown_signer"
    assert h.auth_code("not a did", raw(K1)) == "core.unknown_signer"
    receipt = h.submit(K1, m.register(PERSON.did, "person"), sender=PERSON.did, cosigners=[PERSON])
    assert receipt.code == "core.unknown_signer"


def test_registered_accounts_sign_only_with_listed_keys(h: Harness) -> None:
    h.register_machine()
    assert h.scope(MACHINE.did, raw(MACHINE)).full
    assert h.auth_code(MACHINE.did, raw(OWNER)) == "core.unknown_signer"  # the owner is not a key


def test_scoped_keys_are_refused_other_message_types(h: Harness) -> None:
    h.register_machine()
    h.add_scoped(MACHINE.did, OWNER, K1, ["bank/send"], {"aut": 5})
    receipt = h.submit(K1, m.register(K3.did, "pump"), sender=MACHINE.did, cosigners=[K3])
    assert receipt.code == "core.key_scope"
    # ... even inside a transaction whose other message is allowed
    receipt = h.submit(K1, m.revoke(MACHINE.did), m.register(K3.did, "pump"), sender=MACHINE.did)
    assert receipt.code == "core.key_scope"


def test_a_key_authenticates_for_at_most_one_registered_account(h: Harness) -> None:
    h.register_machine()
    h.ok(OWNER, m.add_key(MACHINE.did, raw(K1)), cosigners=[K1])
    # K1 still signs for its own implicit account (nobody registered it) and for MACHINE.
    assert h.auth_code(K1.did, raw(K1)) == "ok"
    assert h.auth_code(MACHINE.did, raw(K1)) == "ok"
    assert h.submit(K1, m.register(K1.did, "sensor")).code == "identity.key_in_use"


def test_a_failed_message_leaves_no_trace(h: Harness) -> None:
    h.register_machine()
    receipt = h.submit(OWNER, m.add_key(MACHINE.did, raw(K1)), m.revoke(STRANGER.did), cosigners=[K1])
    assert receipt.code == "identity.not_registered"
    assert receipt.events == ()
    assert h.keys_of(MACHINE.did) == [raw(MACHINE)]
    assert h.chain.state.get("identity/key/" + raw(K1).hex()) is None


def test_several_messages_in_one_transaction(h: Harness) -> None:
    msgs = (
        m.register(MACHINE.did, "pump"),
        m.add_key(MACHINE.did, raw(K1), ["bank/send"], {"aut": 3}),
        m.rotate(MACHINE.did, raw(MACHINE), raw(K2)),
    )
    receipt = h.ok(OWNER, *msgs, cosigners=[MACHINE, K1, K2])
    assert [event.type for event in receipt.events] == [
        "identity.registered",
        "identity.key_added",
        "identity.key_rotated",
    ]
    assert h.keys_of(MACHINE.did) == [raw(K2), raw(K1)]
    assert did_from_public_key(raw(MACHINE)) == MACHINE.did
