"""The buyer's agent: should this machine buy this offer? A pure decision, before anything is signed.

An offer names the attestations its seller holds (``required_attestations``: a ``claim``, i.e. an
attestation schema such as ``calibration/v1``, by a named ``issuer``). The agent refuses an offer
unless, for every requirement, some attestation **about the seller**, **by that issuer**, with that
schema, is **valid now**: anchored, its signature verifying under a key the issuer holds now, its
issuer not revoked, itself not revoked, inside its validity window (``identity.attestations``).
It also refuses a withdrawn offer, a licence the buyer does not accept and a price above the
buyer's limit. Checks, in order (:data:`errors.AGENT_CODES_IN_PRECEDENCE`), the first failure
deciding::

    data.offer_withdrawn, data.licence_refused, data.price_too_high,
    then for each requirement in the offer's order:
    data.attestation_missing     no attestation about the seller by that issuer with that claim
    data.attestation_revoked     none is valid; the newest one is revoked, or its issuer is
    data.attestation_expired     none is valid; the newest one is expired or not yet valid
    data.attestation_invalid     none is valid; the newest one is malformed, badly signed or signed
                                 with a key the issuer no longer holds

The decision (:func:`check_offer`) takes the evidence as plain values, so the same code runs

* on a node or in a test, over ledger state: :class:`BuyerAgent` reads the attestations about the
  seller through the identity module and judges them at ``now_ms``;
* on a machine that trusts no node: the evidence comes from attestations it checked against state
  proofs (``autarky.web.client.verify_attestation``), as ``autarky data buy`` does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from autarky.ledger.state import StateReader
from autarky.modules.data.errors import (
    ATTESTATION_EXPIRED,
    ATTESTATION_INVALID,
    ATTESTATION_MISSING,
    ATTESTATION_REVOKED,
    LICENCE_REFUSED,
    OFFER_WITHDRAWN,
    PRICE_TOO_HIGH,
    refuse,
)
from autarky.modules.data.expected import AttestationReader
from autarky.modules.data.records import OfferRecord, Requirement
from autarky.modules.identity import attestations as verdicts
from autarky.modules.identity.attestations import Verdict
from autarky.modules.identity.keeper import AttestationRecord


@dataclass(frozen=True, slots=True)
class Evidence:
    """One attestation and its verdict, as the buyer established them."""

    attestation_id: bytes
    issuer: str
    subject: str
    schema: str
    anchored: int
    """The anchoring height: among several candidates, the newest one explains a refusal."""
    verdict: Verdict

    @classmethod
    def of(cls, attestation_id: bytes, record: AttestationRecord, verdict: Verdict) -> Evidence:
        """From an anchored record (e.g. decoded from a proved value) and its verdict."""
        claim = record.claim
        return cls(attestation_id, claim.issuer, claim.subject, claim.schema, record.anchored, verdict)

    def matches(self, requirement: Requirement, seller: str) -> bool:
        return (self.subject, self.issuer, self.schema) == (seller, requirement.issuer, requirement.claim)


@dataclass(frozen=True, slots=True)
class BuyerTerms:
    """What the buyer accepts besides attestations. None means anything."""

    licences: tuple[str, ...] | None = None
    """Licences the buyer accepts, e.g. ``("CC-BY-4.0",)``."""
    max_price: Mapping[str, int] | None = field(default=None)
    """Per asset, the most the buyer pays per unit (period or item); an asset not named is refused."""


@dataclass(frozen=True, slots=True)
class Approval:
    """The offer passed: for each requirement, in the offer's order, the attestation that satisfies it."""

    offer: bytes
    satisfied_by: tuple[tuple[Requirement, bytes], ...]


def check_offer(
    offer: OfferRecord, evidence: Sequence[Evidence], terms: BuyerTerms = BuyerTerms()
) -> Approval:
    """Approve ``offer`` or raise :class:`~autarky.modules.data.errors.OfferRefused` (see the module
    docstring for the order). ``evidence`` may hold anything; only attestations about the seller
    count."""
    if offer.withdrawn is not None:
        raise refuse(OFFER_WITHDRAWN, f"offer {offer.id.hex()} was withdrawn at height {offer.withdrawn}")
    if terms.licences is not None and offer.licence not in terms.licences:
        raise refuse(LICENCE_REFUSED, f"licence {offer.licence!r} is not one of {list(terms.licences)}")
    if terms.max_price is not None:
        limit = terms.max_price.get(offer.asset)
        if limit is None or offer.price > limit:
            raise refuse(PRICE_TOO_HIGH, f"{offer.price} {offer.asset} per {offer.per}; the limit is {limit}")
    satisfied: list[tuple[Requirement, bytes]] = []
    for requirement in offer.required_attestations:
        satisfied.append((requirement, _satisfy(requirement, offer.seller, evidence)))
    return Approval(offer.id, tuple(satisfied))


def _satisfy(requirement: Requirement, seller: str, evidence: Sequence[Evidence]) -> bytes:
    candidates = [item for item in evidence if item.matches(requirement, seller)]
    for item in candidates:
        if item.verdict.valid:
            return item.attestation_id
    wanted = f"{requirement.claim} by {requirement.issuer} about {seller}"
    if not candidates:
        raise refuse(ATTESTATION_MISSING, f"no attestation {wanted}")
    newest = max(candidates, key=lambda item: (item.anchored, item.attestation_id))
    detail = f"{wanted}: {newest.attestation_id.hex()} is {newest.verdict.reason}: {newest.verdict.detail}"
    if newest.verdict.reason in (verdicts.REVOKED, verdicts.ISSUER_REVOKED):
        raise refuse(ATTESTATION_REVOKED, detail)
    if newest.verdict.reason in (verdicts.EXPIRED, verdicts.NOT_YET_VALID):
        raise refuse(ATTESTATION_EXPIRED, detail)
    raise refuse(ATTESTATION_INVALID, detail)


class BuyerAgent:
    """The agent over ledger state: gathers the evidence through the identity module, then decides
    with :func:`check_offer`."""

    def __init__(self, identity: AttestationReader, terms: BuyerTerms = BuyerTerms()) -> None:
        self.identity = identity
        self.terms = terms

    def evidence(self, state: StateReader, offer: OfferRecord, now_ms: int) -> list[Evidence]:
        """The attestations about the offer's seller that bear on its requirements, judged at ``now_ms``."""
        wanted = [(requirement.issuer, requirement.claim) for requirement in offer.required_attestations]
        found: list[Evidence] = []
        for attestation_id in self.identity.attestations_about(state, offer.seller):
            record, verdict = self.identity.check_attestation(state, attestation_id, now_ms)
            if record is None:
                continue
            item = Evidence.of(attestation_id, record, verdict)
            if (item.issuer, item.schema) in wanted:
                found.append(item)
        return found

    def check(self, state: StateReader, offer: OfferRecord, now_ms: int) -> Approval:
        """Approve ``offer`` at ``now_ms`` or raise ``OfferRefused``."""
        return check_offer(offer, self.evidence(state, offer, now_ms), self.terms)
