"""Attestations under random input: domain separation (R5) and tampering.

* An issuer's claim signature (``Domain.ATTESTATION``) is never accepted as a transaction signature
  (on any chain, through the real executor), a block header signature or a machine-to-machine
  message signature; and none of those is ever accepted as a claim signature, offline
  (``check_attestation``) or on the ledger (``identity/attest``).
* Any change to a signed claim (a byte of its portable form, or a value of its claim map inside an
  ``identity/attest`` message) is refused: offline the verdict is never ``valid``; on the ledger
  the message fails and the identity state is unchanged.

Random runs are replayable from the printed seed (``tests/conftest.py`` profiles).
"""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from autarky.crypto.domains import Domain
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.encoding import canonical_encode
from autarky.ledger.router import App
from autarky.ledger.tx import TxBody, encode_signed, sign_tx
from autarky.modules.bank import messages as bank_messages
from autarky.modules.harness import Chain
from autarky.modules.identity import IdentityModule
from autarky.modules.identity import attestations as att
from autarky.modules.identity import messages as m
from autarky.modules.identity.claims import (
    MAX_FIELD_INT,
    MIN_FIELD_INT,
    Claim,
    SignedClaim,
    make_claim,
    sign_claim,
)
from autarky.node.genesis import dev_genesis

CHAIN_ID = "test"
KEYS = [SigningKey.from_seed(sha256(f"attestation-property-{index}".encode())) for index in range(4)]
ISSUER, SUBJECT, OTHER, FUNDED = KEYS
NOW_MS = 1_767_225_600_000
TIME_MS = NOW_MS

chain_ids = st.sampled_from(["test", "a", "main", "main-net", "x" * 63])
field_names = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=32)
field_values = st.one_of(
    st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=256),
    st.integers(MIN_FIELD_INT, MAX_FIELD_INT),
)
schemas = st.from_regex(r"[a-z0-9][a-z0-9._-]{0,20}(/[a-z0-9][a-z0-9._-]{0,10}){0,2}", fullmatch=True)


@st.composite
def claims(draw: st.DrawFn) -> Claim:
    valid_from_ms = draw(st.integers(0, NOW_MS))
    valid_until_ms = draw(st.integers(NOW_MS + 10**7, 2**64 - 1))  # past the blocks the tests run
    fields = draw(st.dictionaries(field_names, field_values, max_size=16))
    return make_claim(ISSUER.did, SUBJECT.did, draw(schemas), fields, valid_from_ms, valid_until_ms)


def property_settings(max_examples: int) -> settings:
    return settings(
        max_examples=max_examples,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


ISSUER_KEYS = (ISSUER.public_key.raw,)


# --- domain separation ----------------------------------------------------------------------------


@property_settings(300)
@given(payload=st.binary(max_size=512), chain_id=chain_ids)
def test_a_claim_signature_is_no_other_signature_and_the_reverse(payload: bytes, chain_id: str) -> None:
    public = ISSUER.public_key
    claim_signature = ISSUER.sign(Domain.ATTESTATION, payload)
    assert public.verify(Domain.ATTESTATION, payload, claim_signature)
    for domain in (Domain.TRANSACTION, Domain.BLOCK_HEADER, Domain.VOTE, Domain.CUT):
        assert not public.verify(domain, payload, claim_signature, chain_id)
        assert not public.verify(Domain.ATTESTATION, payload, ISSUER.sign(domain, payload, chain_id))
    for domain in (Domain.MESSAGE, Domain.KEYSTORE_PROOF):
        assert not public.verify(domain, payload, claim_signature)
        assert not public.verify(Domain.ATTESTATION, payload, ISSUER.sign(domain, payload))


@property_settings(150)
@given(claim=claims(), chain_id=chain_ids)
def test_a_signature_of_another_domain_over_the_claim_is_never_a_claim_signature(
    claim: Claim, chain_id: str
) -> None:
    claim_bytes = claim.encode()
    forged = [
        ISSUER.sign(Domain.TRANSACTION, claim_bytes, chain_id),
        ISSUER.sign(Domain.BLOCK_HEADER, claim_bytes, chain_id),
        ISSUER.sign(Domain.VOTE, claim_bytes, chain_id),
        ISSUER.sign(Domain.MESSAGE, claim_bytes),
    ]
    for signature in forged:
        signed = SignedClaim(claim, ISSUER.public_key.raw, signature)
        assert att.check_attestation(signed, ISSUER_KEYS, NOW_MS).reason == "bad_signature"
        assert att.check_attestation(signed.to_bytes(), ISSUER_KEYS, NOW_MS).reason == "bad_signature"
    assert att.check_attestation(sign_claim(ISSUER, claim), ISSUER_KEYS, NOW_MS).valid


def _ledger() -> Chain:
    genesis = dev_genesis(CHAIN_ID, time_ms=TIME_MS, allocations=[(ISSUER.did, "aut", 10**9)])
    return Chain.from_genesis(genesis)


@property_settings(60)
@given(claim=claims(), data=st.data())
def test_through_the_executor_neither_signature_passes_for_the_other(
    claim: Claim, data: st.DataObject
) -> None:
    """On a real chain (all modules, fees): a transaction signed with the claim signature of its
    body bytes is ``core.bad_signature``; an ``identity/attest`` whose claim signature is the
    transaction-domain signature of the claim bytes fails with ``identity.bad_claim_signature``."""
    chain = _ledger()
    root = chain.root

    # 1. A claim signature over the transaction body is not a transaction signature.
    recipient = data.draw(st.sampled_from([SUBJECT, OTHER])).did
    body = TxBody(CHAIN_ID, ISSUER.did, 0, 1, 0, (bank_messages.send(recipient, "aut", 1),))
    body_bytes = body.encode()
    raw = encode_signed(body_bytes, [(ISSUER.public_key.raw, ISSUER.sign(Domain.ATTESTATION, body_bytes))])
    (receipt,) = chain.execute([raw])
    assert receipt.code == "core.bad_signature"
    assert chain.root == root, "a refused transaction changed the state root"
    assert chain.sequence(ISSUER.did) == 0

    # 2. A transaction signature over the claim is not a claim signature.
    forged = SignedClaim(
        claim, ISSUER.public_key.raw, ISSUER.sign(Domain.TRANSACTION, claim.encode(), CHAIN_ID)
    )
    before = {k: v for k, v in chain.data.items() if k.startswith("identity/")}
    tx = sign_tx(TxBody(CHAIN_ID, ISSUER.did, 0, 1, 0, (m.attest(forged),)), ISSUER)
    (receipt,) = chain.execute([tx.raw])
    assert receipt.code == "identity.bad_claim_signature"
    assert {k: v for k, v in chain.data.items() if k.startswith("identity/")} == before
    assert chain.invariants() == []

    # The control: the real claim signature anchors.
    tx = sign_tx(TxBody(CHAIN_ID, ISSUER.did, 1, 1, 0, (m.attest(sign_claim(ISSUER, claim)),)), ISSUER)
    (receipt,) = chain.execute([tx.raw])
    assert receipt.code == "ok", receipt.detail
    identity = chain.app.module("identity")
    assert isinstance(identity, IdentityModule)
    assert identity.check_attestation(chain.state, claim.id, NOW_MS)[1].valid


# --- tampering ------------------------------------------------------------------------------------


@st.composite
def byte_mutations(draw: st.DrawFn, data: bytes) -> bytes:
    kind = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "extend"]))
    index = draw(st.integers(0, len(data) - 1))
    if kind == "flip":
        bit = draw(st.integers(0, 7))
        return data[:index] + bytes([data[index] ^ (1 << bit)]) + data[index + 1 :]
    if kind == "set":
        value = draw(st.integers(0, 255).filter(lambda byte: byte != data[index]))
        return data[:index] + bytes([value]) + data[index + 1 :]
    if kind == "insert":
        return data[:index] + draw(st.binary(min_size=1, max_size=4)) + data[index:]
    if kind == "delete":
        return data[:index] + data[index + 1 :]
    if kind == "truncate":
        return data[:index]
    return data + draw(st.binary(min_size=1, max_size=4))


@property_settings(500)
@given(claim=claims(), data=st.data())
def test_a_changed_byte_of_a_signed_claim_is_never_valid(claim: Claim, data: st.DataObject) -> None:
    original = sign_claim(ISSUER, claim).to_bytes()
    assert att.check_attestation(original, ISSUER_KEYS, NOW_MS).valid
    tampered = data.draw(byte_mutations(original))
    assume(tampered != original)
    verdict = att.check_attestation(tampered, ISSUER_KEYS, NOW_MS)
    assert not verdict.valid
    assert verdict.reason in ("malformed", "bad_signature", "untrusted_key")


@property_settings(300)
@given(claim=claims(), data=st.data())
def test_a_changed_anchored_record_is_never_valid(claim: Claim, data: st.DataObject) -> None:
    """What a light client would hold if a node served it a doctored record value."""
    signed = sign_claim(ISSUER, claim)
    value = canonical_encode(
        {
            "claim": claim.encode(),
            "key": signed.key,
            "signature": signed.signature,
            "anchored": 5,
            "revoked": None,
        }
    )
    assert att.check_attestation(att.decode_record(value), ISSUER_KEYS, NOW_MS).valid
    tampered = data.draw(byte_mutations(value))
    assume(tampered != value)
    try:
        record = att.decode_record(tampered)
    except att.InvalidRecord:
        return
    verdict = att.check_attestation(record, ISSUER_KEYS, NOW_MS)
    # Only the heights are not signed: a changed anchoring height, or a record marked revoked, may
    # still decode; a revoked record is never valid, and nothing else about it can be changed.
    if (
        record.claim_bytes == claim.encode()
        and record.key == signed.key
        and record.signature == signed.signature
    ):
        assert verdict.valid == (record.revoked is None)
    else:
        assert not verdict.valid


def _claim_value_changes() -> st.SearchStrategy[tuple[str, Any]]:
    return st.one_of(
        st.tuples(st.just("subject"), st.sampled_from([OTHER.did, FUNDED.did])),
        st.tuples(st.just("issuer"), st.sampled_from([OTHER.did, FUNDED.did])),
        st.tuples(st.just("schema"), schemas),
        st.tuples(st.just("valid_from_ms"), st.integers(0, NOW_MS)),
        st.tuples(st.just("valid_until_ms"), st.integers(NOW_MS + 1, 2**64 - 1)),
        st.tuples(st.just("fields"), st.dictionaries(field_names, field_values, max_size=4)),
    )


@property_settings(60)
@given(claim=claims(), change=_claim_value_changes())
def test_a_changed_claim_in_an_attest_message_is_refused_and_changes_nothing(
    claim: Claim, change: tuple[str, Any]
) -> None:
    name, value = change
    message = m.attest(sign_claim(ISSUER, claim))
    changed_claim = {**message["claim"], name: value}
    assume(changed_claim != message["claim"])
    identity = IdentityModule()
    chain = Chain.from_genesis(
        {"chain_id": CHAIN_ID, "genesis_time_ms": TIME_MS, "app_state": {}},
        app=App([identity], authenticator=identity),
    )
    sender = changed_claim["issuer"] if name == "issuer" else ISSUER.did
    signer = next(key for key in KEYS if key.did == sender)
    tx = sign_tx(TxBody(CHAIN_ID, sender, 0, 0, 0, ({**message, "claim": changed_claim},)), signer)
    (receipt,) = chain.execute([tx.raw])
    assert receipt.code == "identity.bad_claim_signature", receipt.detail
    assert not any(key.startswith("identity/") for key in chain.data)
    assert chain.invariants() == []
