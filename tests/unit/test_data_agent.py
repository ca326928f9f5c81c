"""The buyer's agent: it refuses offers whose required attestations do not check, with a typed code.

Attestations are anchored on the in-memory chain through the identity module (``identity/attest``),
then revoked, left to expire, orphaned by a key rotation or by the issuer's revocation; the agent
reads them through the identity module (``BuyerAgent``) or from evidence the buyer established
itself (``check_offer``). Each refusal code, and the order in which they are checked.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.data import (
    BuyerAgent,
    BuyerTerms,
    DataModule,
    Evidence,
    OfferRecord,
    OfferRefused,
    Requirement,
    check_offer,
)
from autarky.modules.data import keeper as data_keeper
from autarky.modules.data import messages as data
from autarky.modules.data.errors import AGENT_CODES_IN_PRECEDENCE
from autarky.modules.harness import Chain
from autarky.modules.identity import IdentityModule
from autarky.modules.identity import messages as identity
from autarky.modules.identity.attestations import Verdict
from autarky.modules.identity.claims import Claim, make_claim, sign_claim

CHAIN_ID = "data-agent-test"
T0 = 1_700_000_000_000
DAY_MS = 86_400_000


def key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/data-agent-test/" + name.encode()))


STATION, TRACTOR, LAB, OTHER_LAB, LAB_NEW_KEY = (
    key(n) for n in ("station", "tractor", "lab", "other-lab", "lab-new-key")
)


class World:
    def __init__(self) -> None:
        genesis: dict[str, Any] = {
            "chain_id": CHAIN_ID,
            "genesis_time_ms": T0,
            "app_state": {"bank": {"params": {"fee_asset": "aut", "min_fee": 0}}},
        }
        self.chain = Chain.from_genesis(genesis)
        identity_module = self.chain.app.module("identity")
        data_module = self.chain.app.module("data")
        assert isinstance(identity_module, IdentityModule) and isinstance(data_module, DataModule)
        self.identity = identity_module
        self.data = data_module
        self.agent = BuyerAgent(identity_module)

    @property
    def now(self) -> int:
        return self.chain.headers[-1].time_ms

    def run(self, signer: SigningKey, *msgs: dict[str, Any], cosigners: tuple[SigningKey, ...] = ()) -> bytes:
        body = TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, tuple(msgs))
        tx = sign_tx(body, signer, cosigners)
        (receipt,) = self.chain.execute([tx.raw])
        assert receipt.code == "ok", (receipt.code, receipt.detail)
        assert self.chain.invariants() == []
        return tx.hash

    def offer(self, *requirements: tuple[str, str], **fields: Any) -> OfferRecord:
        terms: dict[str, Any] = {
            "kind": "stream",
            "name": "weather",
            "price": 5,
            "asset": "aut",
            "per": "period",
            "period_ms": 3_600_000,
            "licence": "CC-BY-4.0",
            "required_attestations": list(requirements),
        }
        terms.update(fields)
        tx_hash = self.run(STATION, data.offer(**terms))
        record = self.data.offer(self.chain.state, data_keeper.new_offer_id(tx_hash, 0))
        assert record is not None
        return record

    def attest(
        self,
        issuer: SigningKey,
        schema: str = "calibration/v1",
        subject: SigningKey = STATION,
        valid_from_ms: int = T0,
        valid_until_ms: int = T0 + 30 * DAY_MS,
        signer: SigningKey | None = None,
    ) -> Claim:
        claim = make_claim(
            issuer.did, subject.did, schema, {"standard": "ISO-17025"}, valid_from_ms, valid_until_ms
        )
        self.run(issuer, identity.attest(sign_claim(signer or issuer, claim)))
        return claim

    def code(self, offer: OfferRecord, at_ms: int | None = None, terms: BuyerTerms = BuyerTerms()) -> str:
        agent = BuyerAgent(self.identity, terms)
        try:
            agent.check(self.chain.state, offer, self.now if at_ms is None else at_ms)
        except OfferRefused as refused:
            return refused.code
        return "approved"


CALIBRATION = ("calibration/v1", LAB.did)


def test_an_offer_without_requirements_is_approved_with_nothing_to_show() -> None:
    w = World()
    offer = w.offer()
    approval = w.agent.check(w.chain.state, offer, w.now)
    assert approval.offer == offer.id and approval.satisfied_by == ()


def test_missing_until_the_named_issuer_attests_the_named_claim_about_the_seller() -> None:
    w = World()
    offer = w.offer(CALIBRATION)
    assert w.code(offer) == "data.attestation_missing"
    w.attest(OTHER_LAB)  # the right claim by another issuer
    w.attest(LAB, schema="safety/v1")  # the right issuer, another claim
    w.attest(LAB, subject=TRACTOR)  # the right issuer and claim, about someone else
    assert w.code(offer) == "data.attestation_missing"
    claim = w.attest(LAB)
    approval = w.agent.check(w.chain.state, offer, w.now)
    assert approval.satisfied_by == ((Requirement(*CALIBRATION), claim.id),)


def test_a_revoked_attestation_is_refused_and_a_newer_valid_one_satisfies_again() -> None:
    w = World()
    offer = w.offer(CALIBRATION)
    claim = w.attest(LAB)
    w.run(LAB, identity.revoke_attestation(claim.id))
    with pytest.raises(OfferRefused) as refused:
        w.agent.check(w.chain.state, offer, w.now)
    assert refused.value.code == "data.attestation_revoked" and claim.id.hex() in refused.value.detail
    renewed = w.attest(LAB, valid_until_ms=T0 + 31 * DAY_MS)
    assert w.agent.check(w.chain.state, offer, w.now).satisfied_by[0][1] == renewed.id


def test_an_attestation_outside_its_window_is_refused_as_expired() -> None:
    w = World()
    offer = w.offer(CALIBRATION)
    w.attest(LAB, valid_from_ms=T0 + DAY_MS, valid_until_ms=T0 + 2 * DAY_MS)
    assert w.code(offer, at_ms=T0 + DAY_MS - 1) == "data.attestation_expired"  # not yet valid
    assert w.code(offer, at_ms=T0 + DAY_MS) == "approved"
    assert w.code(offer, at_ms=T0 + 2 * DAY_MS) == "data.attestation_expired"


def test_an_attestation_signed_with_a_key_the_issuer_no_longer_holds_is_invalid() -> None:
    w = World()
    w.run(LAB, identity.register(LAB.did, "calibration-lab"))
    offer = w.offer(CALIBRATION)
    w.attest(LAB)
    assert w.code(offer) == "approved"
    rotate = identity.rotate(LAB.did, LAB.public_key.raw, LAB_NEW_KEY.public_key.raw)
    w.run(LAB, rotate, cosigners=(LAB_NEW_KEY,))
    assert w.code(offer) == "data.attestation_invalid"


def test_an_attestation_whose_issuer_is_revoked_counts_as_revoked() -> None:
    w = World()
    w.run(LAB, identity.register(LAB.did, "calibration-lab"))
    offer = w.offer(CALIBRATION)
    w.attest(LAB)
    w.run(LAB, identity.revoke(LAB.did))
    assert w.code(offer) == "data.attestation_revoked"


def test_every_requirement_must_hold_and_the_first_failing_one_decides() -> None:
    w = World()
    offer = w.offer(("safety/v1", OTHER_LAB.did), CALIBRATION)
    calibration = w.attest(LAB)
    w.run(LAB, identity.revoke_attestation(calibration.id))
    assert w.code(offer) == "data.attestation_missing"  # the first requirement, safety, is missing
    safety = w.attest(OTHER_LAB, schema="safety/v1")
    assert w.code(offer) == "data.attestation_revoked"  # now the second decides
    renewed = w.attest(LAB, valid_until_ms=T0 + 40 * DAY_MS)
    approval = w.agent.check(w.chain.state, offer, w.now)
    assert [attestation for _, attestation in approval.satisfied_by] == [safety.id, renewed.id]


def test_one_valid_attestation_among_failing_ones_is_enough() -> None:
    w = World()
    offer = w.offer(CALIBRATION)
    old = w.attest(LAB, valid_until_ms=T0 + DAY_MS)
    current = w.attest(LAB, valid_until_ms=T0 + 60 * DAY_MS)
    w.run(LAB, identity.revoke_attestation(current.id))
    fresh = w.attest(LAB, valid_until_ms=T0 + 61 * DAY_MS)
    approval = w.agent.check(w.chain.state, offer, T0 + 2 * DAY_MS)
    assert approval.satisfied_by[0][1] == fresh.id
    evidence = w.agent.evidence(w.chain.state, offer, T0 + 2 * DAY_MS)
    assert {item.attestation_id for item in evidence} == {old.id, current.id, fresh.id}


def test_the_buyers_own_terms_come_before_attestations_in_order() -> None:
    w = World()
    offer = w.offer(CALIBRATION, price=7, licence="proprietary/acme")
    assert w.code(offer) == "data.attestation_missing"
    strict = BuyerTerms(licences=("CC-BY-4.0",), max_price={"aut": 5})
    assert w.code(offer, terms=strict) == "data.licence_refused"
    assert w.code(offer, terms=replace(strict, licences=None)) == "data.price_too_high"
    assert w.code(offer, terms=BuyerTerms(max_price={"kwh": 100})) == "data.price_too_high"
    assert w.code(offer, terms=BuyerTerms(max_price={"aut": 7})) == "data.attestation_missing"
    w.run(STATION, data.withdraw(offer.id))
    withdrawn = w.data.offer(w.chain.state, offer.id)
    assert withdrawn is not None and w.code(withdrawn, terms=strict) == "data.offer_withdrawn"
    assert [code.code for code in AGENT_CODES_IN_PRECEDENCE][:3] == [
        "data.offer_withdrawn",
        "data.licence_refused",
        "data.price_too_high",
    ]


def test_check_offer_decides_from_evidence_the_buyer_established_itself() -> None:
    """The same decision over evidence from proofs: only attestations about the seller count."""
    w = World()
    offer = w.offer(CALIBRATION)
    valid, revoked = Verdict("valid", ""), Verdict("revoked", "by its issuer")
    about_station = Evidence(b"\x01" * 32, LAB.did, STATION.did, "calibration/v1", 5, valid)
    about_tractor = Evidence(b"\x02" * 32, LAB.did, TRACTOR.did, "calibration/v1", 6, valid)
    assert check_offer(offer, [about_station]).satisfied_by[0][1] == b"\x01" * 32
    with pytest.raises(OfferRefused) as refused:
        check_offer(offer, [about_tractor])
    assert refused.value.code == "data.attestation_missing"
    older_valid_now_revoked = replace(about_station, verdict=revoked)
    newer_expired = Evidence(b"\x03" * 32, LAB.did, STATION.did, "calibration/v1", 9, Verdict("expired", ""))
    with pytest.raises(OfferRefused) as refused:
        check_offer(offer, [older_valid_now_revoked, newer_expired])
    assert refused.value.code == "data.attestation_expired"  # the newest candidate explains
    with pytest.raises(OfferRefused) as refused:
        check_offer(offer, [replace(newer_expired, verdict=Verdict("bad_signature", ""))])
    assert refused.value.code == "data.attestation_invalid"


def test_evidence_of_an_anchored_record_reads_its_claim() -> None:
    w = World()
    claim = w.attest(LAB)
    record, verdict = w.identity.check_attestation(w.chain.state, claim.id, w.now)
    assert record is not None
    item = Evidence.of(claim.id, record, verdict)
    assert (item.issuer, item.subject, item.schema, item.verdict.valid) == (
        LAB.did,
        STATION.did,
        "calibration/v1",
        True,
    )
    assert item.anchored == record.anchored
