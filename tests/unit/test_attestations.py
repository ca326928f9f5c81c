"""Attestations and services of the identity module through the real executor, and the offline check.

Each test runs a chain of the identity module alone (no fees), so a receipt's code is identity's or
the core's; invariants are checked after every block. Block ``n`` has time ``n * 1000`` ms, so a
claim's validity window is easy to place around the blocks.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import pytest

from autarky.crypto.domains import Domain, domain_tag
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.encoding import canonical_encode, decode_trusted
from autarky.ledger.block import Receipt
from autarky.ledger.router import App
from autarky.ledger.state import Overlay, get_obj
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.harness import Chain
from autarky.modules.identity import IdentityModule, keeper
from autarky.modules.identity import attestations as att
from autarky.modules.identity import messages as m
from autarky.modules.identity.claims import (
    Claim,
    InvalidClaim,
    SignedClaim,
    attestation_id,
    decode_signed_claim,
    make_claim,
    sign_claim,
)
from autarky.modules.identity.did_document import MAX_DOCUMENT_ATTESTATIONS
from autarky.modules.identity.errors import IDENTITY_CODES_IN_PRECEDENCE
from support.small_order import SMALL_ORDER_KEYS

CHAIN_ID = "test"
BLOCK_MS = 1000
FOREVER_MS = 10**13


def key(label: str) -> SigningKey:
    return SigningKey.from_seed(sha256(label.encode()))


LAB, SENSOR, OWNER, STRANGER = key("lab"), key("sensor"), key("owner"), key("stranger")
K1, K2, K3 = key("k1"), key("k2"), key("k3")


def raw(signing_key: SigningKey) -> bytes:
    return signing_key.public_key.raw


class Harness:
    """A chain running only the identity module, with helpers that sign and submit one transaction."""

    def __init__(self) -> None:
        self.identity = IdentityModule()
        app = App([self.identity], authenticator=self.identity)
        genesis = {"chain_id": CHAIN_ID, "genesis_time_ms": 0, "app_state": {}}
        self.chain = Chain.from_genesis(genesis, app=app, block_ms=BLOCK_MS)

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

    def code(self, signer: SigningKey, *msgs: dict[str, Any], **kwargs: Any) -> str:
        """The receipt code; a refused transaction must leave the identity state as it was."""
        before = self.identity_state()
        receipt = self.submit(signer, *msgs, **kwargs)
        if receipt.code != "ok":
            assert self.identity_state() == before, f"a refusal ({receipt.code}) wrote identity state"
        return receipt.code

    def identity_state(self) -> dict[str, bytes]:
        return {k: v for k, v in self.chain.data.items() if k.startswith("identity/")}

    @property
    def now_ms(self) -> int:
        return self.chain.headers[-1].time_ms

    def next_block_ms(self) -> int:
        return self.now_ms + BLOCK_MS

    def attest(self, issuer: SigningKey, claim: Claim, signer: SigningKey | None = None) -> bytes:
        """Anchor ``claim`` signed by ``signer`` (default the issuer's key); returns its id."""
        self.ok(issuer, m.attest(sign_claim(signer or issuer, claim)), sender=claim.issuer)
        return claim.id

    def verdict(self, attestation: bytes, now_ms: int | None = None) -> str:
        _, verdict = self.identity.check_attestation(
            self.chain.state, attestation, self.now_ms if now_ms is None else now_ms
        )
        return verdict.reason

    def register_machine(self, machine: SigningKey = SENSOR, owner: SigningKey = OWNER) -> None:
        self.ok(owner, m.register(machine.did, "sensor", "acme", "t1"), cosigners=[machine])

    def register_self(self, who: SigningKey = LAB) -> None:
        self.ok(who, m.register(who.did, "calibration-lab"))


@pytest.fixture
def h() -> Harness:
    return Harness()


def calibration(
    issuer: SigningKey = LAB,
    subject: SigningKey = SENSOR,
    valid_from_ms: int = 0,
    valid_until_ms: int = FOREVER_MS,
    **fields: str | int,
) -> Claim:
    return make_claim(
        issuer.did,
        subject.did,
        "calibration/v1",
        fields or {"standard": "ISO-17025", "error_ppm": 120},
        valid_from_ms,
        valid_until_ms,
    )


def raw_claim(**changes: Any) -> dict[str, Any]:
    claim = {
        "issuer": LAB.did,
        "subject": SENSOR.did,
        "schema": "calibration/v1",
        "fields": {"standard": "ISO-17025"},
        "valid_from_ms": 0,
        "valid_until_ms": FOREVER_MS,
    }
    claim.update(changes)
    return claim


def raw_attest(claim: dict[str, Any], /, signer: SigningKey = LAB, **changes: Any) -> dict[str, Any]:
    """An attest message over any claim map, signed correctly unless ``changes`` say otherwise."""
    signature = signer.sign(Domain.ATTESTATION, canonical_encode(claim))
    message = {"type": m.ATTEST, "claim": claim, "key": raw(signer), "signature": signature}
    message.update(changes)
    return message


# --- codes ----------------------------------------------------------------------------------------


def test_new_codes_are_in_the_precedence_list_at_their_place() -> None:
    codes = [error.code for error in IDENTITY_CODES_IN_PRECEDENCE]
    assert len(codes) == len(set(codes))

    def before(first: str, second: str) -> bool:
        return codes.index(f"identity.{first}") < codes.index(f"identity.{second}")

    # The older codes keep their relative order.
    older = [
        "invalid_did", "invalid_key", "invalid_field", "too_large", "invalid_scope", "already_registered",
        "not_registered", "not_authorised", "account_revoked", "key_not_found", "last_full_key",
        "key_in_use", "too_many_keys", "missing_key_signature", "allowance_exceeded",
    ]  # fmt: skip
    assert [code for code in codes if code.removeprefix("identity.") in older] == [
        f"identity.{code}" for code in older
    ]
    assert before("too_large", "bad_claim_signature") and before("bad_claim_signature", "not_registered")
    assert before("not_registered", "attestation_not_found") and before(
        "attestation_not_found", "not_authorised"
    )
    assert before("account_revoked", "attestation_revoked") and before("attestation_revoked", "key_not_found")
    assert before("key_not_found", "not_assertion_key")
    assert before("not_assertion_key", "claim_expired") and before("claim_expired", "attestation_exists")
    assert before("attestation_exists", "service_not_found") and before("service_not_found", "last_full_key")
    assert before("too_many_keys", "too_many_services") and before(
        "too_many_services", "missing_key_signature"
    )


# --- claims alone ---------------------------------------------------------------------------------


def test_a_claim_is_canonical_cbor_and_its_id_is_the_sha256_of_it() -> None:
    claim = calibration()
    assert claim.encode() == canonical_encode(claim.to_cbor())
    assert claim.id == sha256(claim.encode()) == attestation_id(claim.encode())
    assert claim.fields == (("error_ppm", 120), ("standard", "ISO-17025"))  # sorted by name
    signed = sign_claim(LAB, claim)
    # The id names the claim, not the signature: another key signing the same claim gives the same id.
    assert sign_claim(K1, claim).id == signed.id
    # The signature covers the attestation domain tag and the claim bytes.
    assert domain_tag(Domain.ATTESTATION) == b"AUTARKY-ATTEST-V1\x00"
    assert LAB.public_key.verify(Domain.ATTESTATION, claim.encode(), signed.signature)


def test_the_portable_signed_claim_round_trips() -> None:
    signed = sign_claim(LAB, calibration())
    data = signed.to_bytes()
    assert data == canonical_encode(
        {"claim": signed.claim.to_cbor(), "key": raw(LAB), "signature": signed.signature}
    )
    assert decode_signed_claim(data) == signed
    assert m.attest(signed) == {"type": "identity/attest", **signed.to_cbor()}


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"", "core.invalid_message"),
        (b"\xa0", "core.invalid_message"),  # an empty map
        (canonical_encode([1, 2]), "core.invalid_message"),
        (b"\xff" * 9000, "core.invalid_message"),  # too long to read
        (bytes.fromhex("a2616101616101"), "core.invalid_message"),  # not canonical (duplicate key)
    ],
)
def test_decode_signed_claim_refuses_what_is_not_one(data: bytes, code: str) -> None:
    with pytest.raises(InvalidClaim) as raised:
        decode_signed_claim(data)
    assert raised.value.code == code
    assert isinstance(raised.value, ValueError)


def test_make_claim_checks_every_rule() -> None:
    with pytest.raises(InvalidClaim, match=r"identity\.invalid_field"):
        make_claim(LAB.did, SENSOR.did, "Calibration", {}, 0, 1)
    with pytest.raises(InvalidClaim, match=r"identity\.invalid_did"):
        make_claim("did:web:lab.example", SENSOR.did, "calibration/v1", {}, 0, 1)
    with pytest.raises(InvalidClaim, match=r"identity\.invalid_field"):
        make_claim(LAB.did, SENSOR.did, "calibration/v1", {}, 5, 5)  # an empty window
    # No floats anywhere: a claim with one cannot even be encoded, let alone signed.
    with pytest.raises(TypeError):
        canonical_encode(raw_claim(fields={"error_ppm": 1.5}))


# --- attest ---------------------------------------------------------------------------------------


def test_attest_anchors_the_claim_with_its_record_and_indexes(h: Harness) -> None:
    claim = calibration()
    signed = sign_claim(LAB, claim)
    receipt = h.ok(LAB, m.attest(signed))
    assert [(e.type, dict(e.attributes)) for e in receipt.events] == [
        (
            "identity.attested",
            {"id": claim.id, "issuer": LAB.did, "subject": SENSOR.did, "schema": "calibration/v1"},
        )
    ]
    height = h.chain.height
    record = h.identity.attestation(h.chain.state, claim.id)
    assert record == keeper.AttestationRecord(claim.encode(), raw(LAB), signed.signature, height, None)
    assert record.claim == claim
    # The state layout of README.md: the record, and one entry in each index naming the other party.
    data = h.chain.data
    assert f"identity/att/{claim.id.hex()}" in data
    padded = f"{height:020d}"
    assert get_obj(h.chain.state, f"identity/attsub/{SENSOR.did}/{padded}/{claim.id.hex()}") == LAB.did
    assert get_obj(h.chain.state, f"identity/attiss/{LAB.did}/{padded}/{claim.id.hex()}") == SENSOR.did
    assert h.identity.attestations_about(h.chain.state, SENSOR.did) == [claim.id]
    assert h.identity.attestations_by(h.chain.state, LAB.did) == [claim.id]
    assert h.identity.attestations_about(h.chain.state, LAB.did) == []
    assert h.verdict(claim.id) == "valid"


def test_an_unregistered_issuer_attests_with_the_key_inside_its_did(h: Harness) -> None:
    attestation = h.attest(LAB, calibration())
    assert h.verdict(attestation) == "valid"


def test_a_registered_issuer_may_sign_the_claim_with_another_full_scope_key(h: Harness) -> None:
    h.register_self()
    h.ok(LAB, m.add_key(LAB.did, raw(K1)), cosigners=[K1])
    attestation = h.attest(LAB, calibration(), signer=K1)  # the transaction by LAB's key, the claim by K1
    record = h.identity.attestation(h.chain.state, attestation)
    assert record is not None and record.key == raw(K1)
    assert h.verdict(attestation) == "valid"
    # The same claim signed by LAB's other key has the same id: it is anchored once.
    assert h.code(LAB, m.attest(sign_claim(LAB, calibration()))) == "identity.attestation_exists"


def test_attestations_are_listed_in_anchoring_order(h: Harness) -> None:
    first = h.attest(LAB, calibration(valid_from_ms=1))
    second = h.attest(STRANGER, calibration(issuer=STRANGER))
    third = h.attest(LAB, calibration(valid_from_ms=2))
    assert h.identity.attestations_about(h.chain.state, SENSOR.did) == [first, second, third]
    assert h.identity.attestations_by(h.chain.state, LAB.did) == [first, third]


def test_attest_only_by_the_issuer_with_a_full_scope_key(h: Harness) -> None:
    signed = sign_claim(LAB, calibration())
    # Someone else submits the issuer's signed claim: refused, whoever signed the claim.
    assert h.code(STRANGER, m.attest(signed)) == "identity.not_authorised"
    # The issuer's scoped key, even one scoped to identity/attest, does not anchor.
    h.register_self()
    h.ok(LAB, m.add_key(LAB.did, raw(K1), [m.ATTEST]), cosigners=[K1])
    assert h.code(K1, m.attest(signed), sender=LAB.did) == "identity.not_authorised"
    h.ok(LAB, m.attest(signed))


def test_attest_refuses_a_claim_key_that_is_not_an_assertion_key(h: Harness) -> None:
    h.register_self()
    # a key of nobody
    assert h.code(LAB, m.attest(sign_claim(K1, calibration()))) == "identity.not_assertion_key"
    # a key of another account
    assert h.code(LAB, m.attest(sign_claim(STRANGER, calibration()))) == "identity.not_assertion_key"
    # a scoped key of the issuer itself
    h.ok(LAB, m.add_key(LAB.did, raw(K2), ["bank/send"]), cosigners=[K2])
    assert h.code(LAB, m.attest(sign_claim(K2, calibration()))) == "identity.not_assertion_key"


def test_attest_refuses_a_signature_by_another_key_than_the_one_named(h: Harness) -> None:
    claim = calibration()
    by_stranger = sign_claim(STRANGER, claim)
    wrong = SignedClaim(claim, raw(LAB), by_stranger.signature)
    assert h.code(LAB, m.attest(wrong)) == "identity.bad_claim_signature"


def test_a_transaction_signature_is_not_a_claim_signature(h: Harness) -> None:
    claim = calibration()
    for domain, chain in (
        (Domain.TRANSACTION, CHAIN_ID),
        (Domain.MESSAGE, None),
        (Domain.BLOCK_HEADER, CHAIN_ID),
    ):
        signature = LAB.sign(domain, claim.encode(), chain)
        assert (
            h.code(LAB, m.attest(SignedClaim(claim, raw(LAB), signature))) == "identity.bad_claim_signature"
        )


def test_a_tampered_claim_is_refused(h: Harness) -> None:
    claim = raw_claim()
    message = raw_attest(claim)
    message["claim"] = {**claim, "valid_until_ms": FOREVER_MS + 1}
    assert h.code(LAB, message) == "identity.bad_claim_signature"
    message = raw_attest(claim)
    message["claim"] = {**claim, "subject": STRANGER.did}
    assert h.code(LAB, message) == "identity.bad_claim_signature"


def test_attest_refuses_a_claim_that_has_expired_before_the_block(h: Harness) -> None:
    block_ms = h.next_block_ms()
    assert (
        h.code(LAB, m.attest(sign_claim(LAB, calibration(valid_until_ms=block_ms))))
        == "identity.claim_expired"
    )
    # one millisecond later it is still in force at this block's time: anchored
    h.ok(LAB, m.attest(sign_claim(LAB, calibration(valid_until_ms=h.next_block_ms() + 1))))
    # a claim that starts in the future is anchored, and is not yet valid
    later = h.attest(LAB, calibration(valid_from_ms=FOREVER_MS - 1))
    assert h.verdict(later) == "not_yet_valid"


def test_attest_twice_and_after_revocation(h: Harness) -> None:
    attestation = h.attest(LAB, calibration())
    assert h.code(LAB, m.attest(sign_claim(LAB, calibration()))) == "identity.attestation_exists"
    h.ok(LAB, m.revoke_attestation(attestation))
    assert h.code(LAB, m.attest(sign_claim(LAB, calibration()))) == "identity.attestation_exists"
    # A new claim (a new window start) is a new attestation.
    renewed = h.attest(LAB, calibration(valid_from_ms=1))
    assert renewed != attestation and h.verdict(renewed) == "valid"


def test_a_failing_message_rolls_back_the_anchoring(h: Harness) -> None:
    signed = sign_claim(LAB, calibration())
    receipt = h.submit(LAB, m.attest(signed), m.revoke_attestation(b"\x01" * 32))
    assert receipt.code == "identity.attestation_not_found"
    assert h.identity.attestation(h.chain.state, signed.id) is None
    assert h.identity.attestations_about(h.chain.state, SENSOR.did) == []


def test_a_revoked_issuer_cannot_attest_and_its_attestations_fall(h: Harness) -> None:
    h.register_machine(LAB, OWNER)  # the lab's account is owned (and revocable) by OWNER
    attestation = h.attest(LAB, calibration())
    h.ok(OWNER, m.revoke(LAB.did))
    assert h.verdict(attestation) == "issuer_revoked"
    assert h.code(LAB, m.attest(sign_claim(LAB, calibration(valid_from_ms=7)))) == "core.account_revoked"
    # Offline, a revoked issuer has no assertion keys.
    account = h.identity.account(h.chain.state, LAB.did)
    assert att.assertion_keys(LAB.did, account) == ()
    record = h.identity.attestation(h.chain.state, attestation)
    assert record is not None
    assert att.check_attestation(record, (), h.now_ms).reason == "untrusted_key"
    # Recovery brings the issuer back with a new key: attestations by the old key stay withdrawn.
    h.ok(OWNER, m.recover(LAB.did, raw(K1)), cosigners=[K1])
    assert h.verdict(attestation) == "untrusted_key"


def test_a_rotated_key_withdraws_what_it_signed(h: Harness) -> None:
    h.register_self()
    old = h.attest(LAB, calibration())
    h.ok(LAB, m.rotate(LAB.did, raw(LAB), raw(K1)), cosigners=[K1])
    assert h.verdict(old) == "untrusted_key"
    # The old key can no longer sign claims (nor transactions) for the lab.
    assert h.code(K1, m.attest(sign_claim(LAB, calibration(valid_from_ms=3))), sender=LAB.did) == (
        "identity.not_assertion_key"
    )
    renewed = h.attest(K1, calibration(valid_from_ms=3))  # K1 signs the transaction and the claim
    assert h.verdict(renewed) == "valid"


def test_keeping_attestations_across_a_key_change(h: Harness) -> None:
    """The documented migration: add the new key, re-issue, then remove the old key."""
    h.register_self()
    original = h.attest(LAB, calibration())
    h.ok(LAB, m.add_key(LAB.did, raw(K1)), cosigners=[K1])
    reissued = h.attest(LAB, calibration(valid_from_ms=1), signer=K1)
    h.ok(LAB, m.remove_key(LAB.did, raw(LAB)))
    assert h.verdict(reissued) == "valid"
    assert h.verdict(original) == "untrusted_key"


# --- attest: message checks and precedence --------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"schema": ""}, "identity.invalid_field"),
        ({"schema": "Calibration/v1"}, "identity.invalid_field"),
        ({"schema": "calibration//v1"}, "identity.invalid_field"),
        ({"schema": "calibration/v1/"}, "identity.invalid_field"),
        ({"schema": "calibration v1"}, "identity.invalid_field"),
        ({"schema": "a" * 65}, "identity.too_large"),
        ({"fields": {"": "x"}}, "identity.invalid_field"),
        ({"fields": {"n": 2**63}}, "identity.invalid_field"),
        ({"fields": {"n": -(2**63) - 1}}, "identity.invalid_field"),
        ({"fields": {f"f{i}": i for i in range(17)}}, "identity.too_large"),
        ({"fields": {"f" * 33: 1}}, "identity.too_large"),
        ({"fields": {"note": "x" * 257}}, "identity.too_large"),
        ({"valid_from_ms": -1}, "identity.invalid_field"),
        ({"valid_until_ms": 2**64}, "identity.invalid_field"),
        ({"valid_from_ms": 5, "valid_until_ms": 5}, "identity.invalid_field"),
        ({"valid_from_ms": 6, "valid_until_ms": 5}, "identity.invalid_field"),
        ({"issuer": "did:web:lab.example"}, "identity.invalid_did"),
        ({"subject": "did:key:z6Mk"}, "identity.invalid_did"),
        ({"fields": {"ok": True}}, "core.invalid_message"),
        ({"fields": {"ok": None}}, "core.invalid_message"),
        ({"fields": {"ok": ["a"]}}, "core.invalid_message"),
        ({"fields": ["a"]}, "core.invalid_message"),
        ({"valid_from_ms": True}, "core.invalid_message"),
        ({"schema": b"calibration/v1"}, "core.invalid_message"),
        ({"extra": 1}, "core.invalid_message"),
    ],
)
def test_attest_claim_checks(h: Harness, changes: dict[str, Any], code: str) -> None:
    assert h.code(LAB, raw_attest(raw_claim(**changes))) == code


@pytest.mark.parametrize(
    "field", ["issuer", "subject", "schema", "fields", "valid_from_ms", "valid_until_ms"]
)
def test_attest_claim_requires_every_field(h: Harness, field: str) -> None:
    claim = raw_claim()
    del claim[field]
    assert h.code(LAB, raw_attest(claim)) == "core.invalid_message"


def test_attest_limits_are_inclusive(h: Harness) -> None:
    fields: dict[str, str | int] = {f"{index:0>32}": "x" * 256 for index in range(14)}
    fields.update({"low": -(2**63), "high": 2**63 - 1})
    claim = raw_claim(schema="s" * 64, fields=fields, valid_from_ms=0, valid_until_ms=2**64 - 1)
    assert len(claim["fields"]) == 16
    assert h.code(LAB, raw_attest(claim)) == "ok"


@pytest.mark.parametrize(
    "changes",
    [
        {"claim": []},
        {"key": "not bytes"},
        {"signature": None},
        {"extra": 1},
    ],
)
def test_attest_message_shape(h: Harness, changes: dict[str, Any]) -> None:
    assert h.code(LAB, raw_attest(raw_claim(), **changes)) == "core.invalid_message"


@pytest.mark.parametrize("missing", ["claim", "key", "signature"])
def test_attest_message_requires_every_field(h: Harness, missing: str) -> None:
    message = raw_attest(raw_claim())
    del message[missing]
    assert h.code(LAB, message) == "core.invalid_message"


@pytest.mark.parametrize("small", SMALL_ORDER_KEYS[::4])
def test_attest_refuses_small_order_keys(h: Harness, small: bytes) -> None:
    assert h.code(LAB, raw_attest(raw_claim(), key=small)) == "identity.invalid_key"


def test_attest_signature_of_the_wrong_length(h: Harness) -> None:
    message = raw_attest(raw_claim())
    assert h.code(LAB, {**message, "signature": message["signature"][:63]}) == "identity.bad_claim_signature"


def test_attest_precedence(h: Harness) -> None:
    bad_signature = b"\x00" * 64
    # invalid_message before everything
    assert h.code(LAB, raw_attest(raw_claim(issuer=7), key=SMALL_ORDER_KEYS[0])) == "core.invalid_message"
    # invalid_did (issuer before subject) before invalid_key
    assert h.code(LAB, raw_attest(raw_claim(issuer="x", schema=""), key=SMALL_ORDER_KEYS[0])) == (
        "identity.invalid_did"
    )
    # invalid_key before invalid_field
    assert h.code(LAB, raw_attest(raw_claim(schema=""), key=SMALL_ORDER_KEYS[0])) == "identity.invalid_key"
    # invalid_field before too_large
    assert h.code(LAB, raw_attest(raw_claim(schema="a" * 65, fields={"": 1}))) == "identity.invalid_field"
    # too_large before bad_claim_signature
    assert (
        h.code(LAB, raw_attest(raw_claim(schema="a" * 65), signature=bad_signature)) == "identity.too_large"
    )
    # bad_claim_signature before not_authorised (a stateful check)
    assert (
        h.code(STRANGER, raw_attest(raw_claim(), signature=bad_signature)) == "identity.bad_claim_signature"
    )
    # not_authorised before not_assertion_key
    assert h.code(STRANGER, m.attest(sign_claim(K1, calibration()))) == "identity.not_authorised"
    # not_assertion_key before claim_expired
    assert (
        h.code(LAB, m.attest(sign_claim(K1, calibration(valid_until_ms=1)))) == "identity.not_assertion_key"
    )
    # claim_expired before attestation_exists
    expired = calibration(valid_until_ms=h.next_block_ms() + 1)
    h.attest(LAB, expired)
    assert h.code(LAB, m.attest(sign_claim(LAB, expired))) == "identity.claim_expired"


# --- revoke_attestation ---------------------------------------------------------------------------


def test_revoke_attestation(h: Harness) -> None:
    attestation = h.attest(LAB, calibration())
    receipt = h.ok(LAB, m.revoke_attestation(attestation))
    assert [(e.type, dict(e.attributes)) for e in receipt.events] == [
        ("identity.attestation_revoked", {"id": attestation, "issuer": LAB.did, "subject": SENSOR.did})
    ]
    record = h.identity.attestation(h.chain.state, attestation)
    assert record is not None and record.revoked == h.chain.height
    assert h.verdict(attestation) == "revoked"
    # It stays listed (marked), so a verifier learns it was revoked rather than never issued.
    assert h.identity.attestations_about(h.chain.state, SENSOR.did) == [attestation]


def test_revoke_attestation_errors_in_precedence(h: Harness) -> None:
    attestation = h.attest(LAB, calibration())
    assert h.code(LAB, {"type": m.REVOKE_ATTESTATION}) == "core.invalid_message"
    assert h.code(LAB, {"type": m.REVOKE_ATTESTATION, "id": attestation.hex()}) == "core.invalid_message"
    assert h.code(LAB, {"type": m.REVOKE_ATTESTATION, "id": attestation, "x": 1}) == "core.invalid_message"
    assert h.code(LAB, m.revoke_attestation(attestation[:31])) == "identity.invalid_field"
    # attestation_not_found before not_authorised
    assert h.code(STRANGER, m.revoke_attestation(b"\x02" * 32)) == "identity.attestation_not_found"
    # only the issuer: not the subject, not a stranger
    assert h.code(SENSOR, m.revoke_attestation(attestation)) == "identity.not_authorised"
    assert h.code(STRANGER, m.revoke_attestation(attestation)) == "identity.not_authorised"
    h.ok(LAB, m.revoke_attestation(attestation))
    revoked_at = h.chain.height
    # not_authorised before attestation_revoked
    assert h.code(STRANGER, m.revoke_attestation(attestation)) == "identity.not_authorised"
    assert h.code(LAB, m.revoke_attestation(attestation)) == "identity.attestation_revoked"
    record = h.identity.attestation(h.chain.state, attestation)
    assert record is not None and record.revoked == revoked_at  # the first revocation stays


def test_a_key_scoped_to_revoke_attestation_may_revoke(h: Harness) -> None:
    h.register_self()
    attestation = h.attest(LAB, calibration())
    h.ok(LAB, m.add_key(LAB.did, raw(K1), [m.REVOKE_ATTESTATION]), cosigners=[K1])
    h.ok(K1, m.revoke_attestation(attestation), sender=LAB.did)
    assert h.verdict(attestation) == "revoked"


# --- validity windows -----------------------------------------------------------------------------


def test_the_window_is_from_inclusive_until_exclusive(h: Harness) -> None:
    attestation = h.attest(LAB, calibration(valid_from_ms=50_000, valid_until_ms=60_000))
    assert h.verdict(attestation, 49_999) == "not_yet_valid"
    assert h.verdict(attestation, 50_000) == "valid"
    assert h.verdict(attestation, 59_999) == "valid"
    assert h.verdict(attestation, 60_000) == "expired"
    assert h.verdict(b"\x03" * 32) == "not_found"


def test_verdict_order_revoked_before_the_window(h: Harness) -> None:
    attestation = h.attest(LAB, calibration(valid_until_ms=60_000))
    h.ok(LAB, m.revoke_attestation(attestation))
    assert h.verdict(attestation, 70_000) == "revoked"


# --- services -------------------------------------------------------------------------------------


def test_set_replace_and_remove_a_service(h: Harness) -> None:
    h.register_machine()
    receipt = h.ok(OWNER, m.set_service(SENSOR.did, "telemetry", "MQTTBroker", "mqtts://broker.example:8883"))
    assert [(e.type, dict(e.attributes)) for e in receipt.events] == [
        (
            "identity.service_set",
            {
                "did": SENSOR.did,
                "service_id": "telemetry",
                "service_type": "MQTTBroker",
                "endpoint": "mqtts://broker.example:8883",
            },
        )
    ]
    stored = get_obj(h.chain.state, f"identity/svc/{SENSOR.did}/telemetry")
    assert stored == {"type": "MQTTBroker", "endpoint": "mqtts://broker.example:8883", "set": h.chain.height}
    h.ok(SENSOR, m.set_service(SENSOR.did, "telemetry", "MQTTBroker", "mqtts://other.example:8883"))
    h.ok(SENSOR, m.set_service(SENSOR.did, "home", "LinkedDomains", "https://acme.example/t1"))
    services = h.identity.services(h.chain.state, SENSOR.did)
    assert [(s.service_id, s.endpoint) for s in services] == [
        ("home", "https://acme.example/t1"),
        ("telemetry", "mqtts://other.example:8883"),
    ]
    receipt = h.ok(OWNER, m.remove_service(SENSOR.did, "home"))
    assert [(e.type, dict(e.attributes)) for e in receipt.events] == [
        ("identity.service_removed", {"did": SENSOR.did, "service_id": "home"})
    ]
    assert [s.service_id for s in h.identity.services(h.chain.state, SENSOR.did)] == ["telemetry"]


def test_at_most_eight_services_and_replacing_does_not_count(h: Harness) -> None:
    h.register_self()
    for index in range(8):
        h.ok(LAB, m.set_service(LAB.did, f"s{index}", "LinkedDomains", f"https://lab.example/{index}"))
    assert h.code(LAB, m.set_service(LAB.did, "s8", "LinkedDomains", "https://x.example")) == (
        "identity.too_many_services"
    )
    h.ok(LAB, m.set_service(LAB.did, "s7", "LinkedDomains", "https://lab.example/new"))


@pytest.mark.parametrize(
    ("fields", "code"),
    [
        (("", "T", "https://x"), "identity.invalid_field"),
        (("-a", "T", "https://x"), "identity.invalid_field"),
        (("a#b", "T", "https://x"), "identity.invalid_field"),
        (("a/b", "T", "https://x"), "identity.invalid_field"),
        (("a", "", "https://x"), "identity.invalid_field"),
        (("a", "Two words", "https://x"), "identity.invalid_field"),
        (("a", "T", ""), "identity.invalid_field"),
        (("a", "T", "no-scheme"), "identity.invalid_field"),
        (("a", "T", "https://a b"), "identity.invalid_field"),
        (("a", "T", "https://x\n"), "identity.invalid_field"),
        (("a", "T", "1https://x"), "identity.invalid_field"),
        (("a" * 33, "T", "https://x"), "identity.too_large"),
        (("a", "T" * 65, "https://x"), "identity.too_large"),
        (("a", "T", "https://" + "x" * 249), "identity.too_large"),
        (("a" * 33, "", "https://x"), "identity.invalid_field"),  # invalid_field before too_large
    ],
)
def test_set_service_value_checks(h: Harness, fields: tuple[str, str, str], code: str) -> None:
    h.register_self()
    assert h.code(LAB, m.set_service(LAB.did, *fields)) == code


def test_set_service_limits_are_inclusive(h: Harness) -> None:
    h.register_self()
    h.ok(LAB, m.set_service(LAB.did, "a" * 32, "T" * 64, "https://" + "x" * 248))
    h.ok(LAB, m.set_service(LAB.did, "A.b_c-9", "did:example/Type", "urn:uuid:1234"))


def test_service_authority_and_precedence(h: Harness) -> None:
    h.register_machine()
    h.ok(OWNER, m.add_key(SENSOR.did, raw(K1), ["identity/set_service"]), cosigners=[K1])
    service = m.set_service(SENSOR.did, "t", "T", "https://x")
    assert h.code(LAB, {**service, "extra": 1}) == "core.invalid_message"
    assert h.code(LAB, {**service, "endpoint": 5}) == "core.invalid_message"
    assert h.code(LAB, m.remove_service(SENSOR.did, "")) == "identity.invalid_field"
    assert h.code(LAB, m.remove_service(SENSOR.did, "x" * 33)) == "identity.too_large"
    assert h.code(LAB, m.set_service("did:web:x", "", "T", "https://x")) == "identity.invalid_did"
    # not_registered before not_authorised
    assert h.code(LAB, m.set_service(STRANGER.did, "t", "T", "https://x")) == "identity.not_registered"
    assert h.code(LAB, service) == "identity.not_authorised"
    # a scoped key of the account itself does not change its entry, even when its scope names the message
    assert h.code(K1, service, sender=SENSOR.did) == "identity.not_authorised"
    assert h.code(OWNER, m.remove_service(SENSOR.did, "t")) == "identity.service_not_found"
    h.ok(OWNER, service)
    h.ok(OWNER, m.revoke(SENSOR.did))
    # account_revoked before service_not_found and too_many_services
    assert h.code(OWNER, m.set_service(SENSOR.did, "u", "T", "https://x")) == "identity.account_revoked"
    assert h.code(OWNER, m.remove_service(SENSOR.did, "nope")) == "identity.account_revoked"


# --- DID documents --------------------------------------------------------------------------------


def test_did_document_lists_services_and_attestations(h: Harness) -> None:
    h.register_machine()
    h.ok(OWNER, m.set_service(SENSOR.did, "telemetry", "MQTTBroker", "mqtts://broker.example:8883"))
    first = h.attest(LAB, calibration(valid_until_ms=40_000))
    second = h.attest(STRANGER, calibration(issuer=STRANGER, site="depot"))
    first_anchored = h.chain.height - 1
    h.ok(LAB, m.revoke_attestation(first))

    document = h.identity.did_document(h.chain.state, SENSOR.did, now_ms=h.now_ms)
    assert document["service"] == [
        {
            "id": f"{SENSOR.did}#telemetry",
            "type": "MQTTBroker",
            "serviceEndpoint": "mqtts://broker.example:8883",
        }
    ]
    extension = document["autarky"]
    assert extension["attestations_total"] == 2
    listed = extension["attestations"]
    assert [entry["id"] for entry in listed] == [second.hex(), first.hex()]  # newest first
    assert listed[1] == {
        "id": first.hex(),
        "issuer": LAB.did,
        "schema": "calibration/v1",
        "valid_from_ms": 0,
        "valid_until_ms": 40_000,
        "anchored": first_anchored,
        "revoked": h.chain.height,
        "valid": False,
        "verdict": "revoked",
    }
    assert listed[0]["valid"] is True and listed[0]["issuer"] == STRANGER.did
    json.dumps(document)
    # Without a time, the document states the facts only.
    plain = h.identity.did_document(h.chain.state, SENSOR.did)["autarky"]["attestations"]
    assert "valid" not in plain[0] and "verdict" not in plain[0]
    # The issuer's own document lists no attestations it issued (only those about it).
    assert h.identity.did_document(h.chain.state, LAB.did)["autarky"]["attestations"] == []


def test_implicit_did_document_has_no_services_but_lists_attestations(h: Harness) -> None:
    attestation = h.attest(LAB, calibration())
    document = h.identity.did_document(h.chain.state, SENSOR.did)
    assert document["service"] == []
    assert document["autarky"]["registered"] is False
    assert [entry["id"] for entry in document["autarky"]["attestations"]] == [attestation.hex()]


def test_did_document_lists_at_most_the_newest_attestations(h: Harness) -> None:
    total = MAX_DOCUMENT_ATTESTATIONS + 3
    claims = [calibration(valid_from_ms=index) for index in range(total)]
    ids = [claim.id for claim in claims]
    for start in range(0, total, 30):
        h.ok(LAB, *(m.attest(sign_claim(LAB, claim)) for claim in claims[start : start + 30]))
    extension = h.identity.did_document(h.chain.state, SENSOR.did)["autarky"]
    assert extension["attestations_total"] == total
    shown = [entry["id"] for entry in extension["attestations"]]
    assert len(shown) == MAX_DOCUMENT_ATTESTATIONS
    # Anchoring order: by height, then by id within a block (the index key order).
    anchored = [i.hex() for i in h.identity.attestations_about(h.chain.state, SENSOR.did)]
    assert sorted(anchored) == sorted(i.hex() for i in ids)
    assert shown == list(reversed(anchored))[:MAX_DOCUMENT_ATTESTATIONS]


# --- the offline check ----------------------------------------------------------------------------


def test_offline_check_of_a_proved_record(h: Harness) -> None:
    h.register_self()
    attestation = h.attest(LAB, calibration(valid_until_ms=90_000))
    # What a light client holds after checking two state proofs: the two stored values.
    record_value = h.chain.data[f"identity/att/{attestation.hex()}"]
    account_value = h.chain.data[f"identity/acct/{LAB.did}"]
    record = att.decode_record(record_value)
    keys = att.assertion_keys(LAB.did, decode_trusted(account_value))
    assert keys == (raw(LAB),)
    assert att.check_attestation(record, keys, 10_000) == att.Verdict("valid", "valid until 90000 ms")
    assert att.check_attestation(record, keys, 90_000).reason == "expired"
    assert att.check_attestation(record, (raw(K1),), 10_000).reason == "untrusted_key"
    # the same answer as from state
    assert att.resolve_attestation(h.chain.state, attestation, 10_000) == (
        record,
        att.Verdict("valid", "valid until 90000 ms"),
    )


def test_offline_check_of_a_signed_claim_carried_in_a_message() -> None:
    signed = sign_claim(LAB, calibration(valid_from_ms=1_000, valid_until_ms=2_000))
    data = signed.to_bytes()
    implicit_keys = att.assertion_keys(LAB.did, None)  # the proof showed the lab is not registered
    assert implicit_keys == (raw(LAB),)
    assert att.check_attestation(data, implicit_keys, 1_500).valid
    assert att.check_attestation(signed, implicit_keys, 1_500).valid
    assert att.check_attestation(data, implicit_keys, 999).reason == "not_yet_valid"
    assert att.check_attestation(data, implicit_keys, 2_000).reason == "expired"
    assert att.check_attestation(data, (raw(K1),), 1_500).reason == "untrusted_key"
    assert att.check_attestation(b"garbage", implicit_keys, 1_500).reason == "malformed"
    forged = SignedClaim(calibration(valid_from_ms=0, valid_until_ms=2_000), raw(LAB), signed.signature)
    assert att.check_attestation(forged, implicit_keys, 1_500).reason == "bad_signature"
    assert att.check_attestation(forged.to_bytes(), implicit_keys, 1_500).reason == "bad_signature"


def test_offline_check_of_damaged_records() -> None:
    claim = calibration()
    signed = sign_claim(LAB, claim)
    good = keeper.AttestationRecord(claim.encode(), raw(LAB), signed.signature, 3, None)
    keys = (raw(LAB),)
    assert att.check_attestation(good, keys, 5).valid
    wrong_key = keeper.AttestationRecord(claim.encode(), raw(K1), signed.signature, 3, None)
    assert att.check_attestation(wrong_key, (raw(K1),), 5).reason == "bad_signature"
    not_a_claim = keeper.AttestationRecord(b"\xa0", raw(LAB), signed.signature, 3, None)
    assert att.check_attestation(not_a_claim, keys, 5).reason == "malformed"
    revoked = keeper.AttestationRecord(claim.encode(), raw(LAB), signed.signature, 3, 4)
    assert att.check_attestation(revoked, keys, 5).reason == "revoked"
    for value in (b"", b"\xa0", canonical_encode({**good.to_cbor(), "revoked": "no"}), canonical_encode([1])):
        with pytest.raises(att.InvalidRecord):
            att.decode_record(value)
    assert att.decode_record(canonical_encode(good.to_cbor())) == good


def test_check_proved_gives_the_verdict_the_state_gives(h: Harness) -> None:
    h.register_machine(LAB, OWNER)
    attestation = h.attest(LAB, calibration(valid_until_ms=90_000))

    def both(now_ms: int) -> tuple[str, str]:
        record = att.decode_record(h.chain.data[f"identity/att/{attestation.hex()}"])
        account = decode_trusted(h.chain.data[f"identity/acct/{LAB.did}"])
        return att.check_proved(record, account, now_ms).reason, h.verdict(attestation, now_ms)

    assert both(10_000) == ("valid", "valid")
    assert both(90_000) == ("expired", "expired")
    h.ok(OWNER, m.revoke(LAB.did))
    assert both(10_000) == ("issuer_revoked", "issuer_revoked")
    h.ok(OWNER, m.recover(LAB.did, raw(K1)), cosigners=[K1])
    assert both(10_000) == ("untrusted_key", "untrusted_key")
    # An unregistered issuer, proved absent.
    other = h.attest(STRANGER, calibration(issuer=STRANGER))
    record = h.identity.attestation(h.chain.state, other)
    assert record is not None and att.check_proved(record, None, 10_000).valid


def test_assertion_keys_of_a_stored_record() -> None:
    account = {
        "status": "active",
        "keys": [
            {"key": raw(K1), "actions": None, "allowance": None, "added": 0},
            {"key": raw(K2), "actions": ["bank/send"], "allowance": None, "added": 0},
            {"key": raw(K3), "actions": None, "allowance": None, "added": 2},
        ],
    }
    assert att.assertion_keys(LAB.did, account) == (raw(K1), raw(K3))
    assert att.assertion_keys(LAB.did, {**account, "status": "revoked"}) == ()
    assert att.assertion_keys("did:web:x", None) == ()


# --- replay and invariants ------------------------------------------------------------------------


def test_replay_reproduces_attestations_and_services(h: Harness) -> None:
    h.register_self()
    h.ok(LAB, m.set_service(LAB.did, "home", "LinkedDomains", "https://lab.example"))
    attestation = h.attest(LAB, calibration())
    h.ok(LAB, m.revoke_attestation(attestation))
    # Re-execute every block on a fresh chain of the same modules: the same state root.
    again = Harness()
    for header, txs in zip(h.chain.headers[1:], h.chain.blocks[1:], strict=True):
        again.chain.execute(txs, header.time_ms)
    assert again.chain.root == h.chain.root
    assert again.chain.data == h.chain.data


def test_invariants_notice_a_damaged_attestation_state(h: Harness) -> None:
    attestation = h.attest(LAB, calibration())
    state = Overlay(h.chain.state)
    record = h.identity.attestation(h.chain.state, attestation)
    assert record is not None
    index = f"identity/attsub/{SENSOR.did}/{record.anchored:020d}/{attestation.hex()}"
    state.delete(index)
    state.set_obj(f"identity/svc/{STRANGER.did}/x", {"type": "T", "endpoint": "https://x", "set": 1})
    problems = h.identity.invariants(state)
    assert any("is missing" in problem for problem in problems)
    assert any("not a registered account" in problem for problem in problems)
    state = Overlay(h.chain.state)
    state.set_obj(f"identity/att/{attestation.hex()}", {**record.to_cbor(), "signature": b"\x00" * 64})
    assert any("does not verify" in problem for problem in h.identity.invariants(state))
