"""Is an attestation valid? The offline check, and the same check resolved from ledger state.

An attestation is **valid at time t** when, checked in this order (the first failure is the verdict):

1. ``malformed``: it is a well-formed signed claim or attestation record;
2. ``bad_signature``: its signature verifies under its key, over the claim, in the attestation domain;
3. ``issuer_revoked`` (from state only): the issuer's account is not revoked;
4. ``untrusted_key``: its key is an assertion key of the issuer *now*: an active full-scope key of a
   registered issuer, or the key inside the did:key of an unregistered one. Rotating or removing a
   key therefore withdraws the attestations it signed (re-issue them with the new key first; an
   account may hold up to 8 keys while it migrates). Offline, a revoked issuer has no assertion
   keys, so its attestations are ``untrusted_key``;
5. ``revoked``: an anchored attestation has not been revoked by its issuer;
6. ``not_yet_valid`` / ``expired``: ``valid_from_ms <= t < valid_until_ms``.

Otherwise the verdict is ``valid``.

:func:`check_attestation` needs no state: the caller gives what it has proved (an attestation record
read with a state proof of ``identity/att/<id hex>``, or a signed claim received in a message) and the
issuer's assertion keys (:func:`assertion_keys` of a proved ``identity/acct/<issuer>`` value, or of
None when the proof shows the issuer is not registered). :func:`check_proved` takes that account
value itself and so also answers ``issuer_revoked``; :func:`resolve_attestation` does the same from
the node's state. None of them raises for bad input.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import InvalidDid, public_key_from_did
from autarky.encoding import DecodeError, canonical_decode
from autarky.ledger.errors import TxError
from autarky.ledger.state import StateReader
from autarky.modules.identity.claims import (
    Claim,
    InvalidClaim,
    SignedClaim,
    decode_claim_bytes,
    decode_signed_claim,
    verify_claim_signature,
)
from autarky.modules.identity.keeper import (
    ACTIVE,
    AttestationRecord,
    read_attestation,
    read_raw_account,
)
from autarky.modules.identity.keeper import REVOKED as REVOKED_ACCOUNT

VALID = "valid"
MALFORMED = "malformed"
BAD_SIGNATURE = "bad_signature"
ISSUER_REVOKED = "issuer_revoked"
UNTRUSTED_KEY = "untrusted_key"
REVOKED = "revoked"
NOT_YET_VALID = "not_yet_valid"
EXPIRED = "expired"
NOT_FOUND = "not_found"
REASONS = (
    VALID,
    MALFORMED,
    BAD_SIGNATURE,
    ISSUER_REVOKED,
    UNTRUSTED_KEY,
    REVOKED,
    NOT_YET_VALID,
    EXPIRED,
    NOT_FOUND,
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of a check: ``reason`` is one of :data:`REASONS` (``valid`` when it holds)."""

    reason: str
    detail: str

    @property
    def valid(self) -> bool:
        return self.reason == VALID

    def to_json(self) -> dict[str, Any]:
        return {"valid": self.valid, "reason": self.reason, "detail": self.detail}


def assertion_keys(did: str, account: Mapping[str, Any] | None) -> tuple[bytes, ...]:
    """The keys that may sign claims for ``did``: given its account record as stored (None if it is
    not registered), the active full-scope keys; the did:key's own key for an unregistered DID;
    none for a revoked account (or a DID that is not a did:key)."""
    if account is None:
        try:
            return (public_key_from_did(did),)
        except InvalidDid:
            return ()
    if account.get("status") != ACTIVE:
        return ()
    keys = account.get("keys")
    if type(keys) is not list:
        return ()
    return tuple(
        entry["key"]
        for entry in keys
        if type(entry) is dict and entry.get("actions") is None and type(entry.get("key")) is bytes
    )


class InvalidRecord(ValueError):
    """Bytes that are not an attestation record as the ledger stores it."""


def decode_record(raw: bytes) -> AttestationRecord:
    """An attestation record from the bytes stored under ``identity/att/<id hex>`` (e.g. a value
    proved with a state proof); raises :class:`InvalidRecord`. The claim inside is checked by
    :func:`check_attestation`, which answers ``malformed`` for a bad one."""
    try:
        value = canonical_decode(raw)
    except DecodeError as exc:
        raise InvalidRecord(f"not canonical CBOR: {exc}") from None
    fields = ("anchored", "claim", "key", "revoked", "signature")
    if type(value) is not dict or sorted(str(name) for name in value) != list(fields):
        raise InvalidRecord(f"an attestation record is a map of {list(fields)}")
    anchored, revoked = value["anchored"], value["revoked"]
    if type(value["claim"]) is not bytes or type(value["key"]) is not bytes:
        raise InvalidRecord("claim and key are bytes")
    if type(value["signature"]) is not bytes or type(anchored) is not int:
        raise InvalidRecord("signature is bytes and anchored a height")
    if revoked is not None and type(revoked) is not int:
        raise InvalidRecord("revoked is a height or None")
    return AttestationRecord.from_cbor(value)


def check_attestation(
    attestation: AttestationRecord | SignedClaim | bytes,
    issuer_keys: Sequence[bytes],
    now_ms: int,
) -> Verdict:
    """The verdict on ``attestation`` at ``now_ms``, offline (see the module docstring for the order).

    ``attestation`` is an anchored record (:func:`decode_record` of a proved value), a
    :class:`SignedClaim`, or a signed claim's portable bytes (``SignedClaim.to_bytes()``, e.g.
    received in a message; they cannot be revoked, so step 5 does not apply). ``issuer_keys`` are
    the issuer's assertion keys as the caller proved them (:func:`assertion_keys`). Never raises for
    bad input.
    """
    if isinstance(attestation, bytes):
        try:
            attestation = decode_signed_claim(attestation)
        except InvalidClaim as exc:
            return _bad_claim(exc.code, exc.detail)
    claim, verdict = _claim_and_signature(attestation)
    if claim is None:
        return verdict
    return _check_claim(claim, attestation, issuer_keys, now_ms)


def resolve_attestation(
    state: StateReader, attestation_id: bytes, now_ms: int
) -> tuple[AttestationRecord | None, Verdict]:
    """The anchored record with id ``attestation_id`` (None if there is none) and its verdict at
    ``now_ms``, from ``state``: the issuer's keys and status are read from the same state."""
    record = read_attestation(state, attestation_id)
    if record is None:
        return None, Verdict(NOT_FOUND, f"no attestation {attestation_id.hex()} is anchored")
    return record, verdict_in_state(state, record, now_ms)


def verdict_in_state(state: StateReader, record: AttestationRecord, now_ms: int) -> Verdict:
    """The verdict on an anchored ``record`` at ``now_ms`` with the issuer as ``state`` holds it."""
    claim, verdict = _claim_and_signature(record)
    if claim is None:
        return verdict
    return check_proved(record, read_raw_account(state, claim.issuer), now_ms)


def check_proved(
    attestation: AttestationRecord | SignedClaim, issuer_account: Mapping[str, Any] | None, now_ms: int
) -> Verdict:
    """:func:`check_attestation` given the issuer's account record as proved (the decoded value of
    ``identity/acct/<issuer>``, None when the proof shows it absent): the same verdict as
    :func:`resolve_attestation` from the node's state, ``issuer_revoked`` included. Never raises
    for bad input."""
    claim, verdict = _claim_and_signature(attestation)
    if claim is None:
        return verdict
    if issuer_account is not None and issuer_account.get("status") == REVOKED_ACCOUNT:
        return Verdict(ISSUER_REVOKED, f"the issuer {claim.issuer} is revoked")
    return _check_claim(claim, attestation, assertion_keys(claim.issuer, issuer_account), now_ms)


def summary(attestation_id: bytes, record: AttestationRecord) -> dict[str, Any]:
    """What a DID document and a listing show of an anchored attestation (plain JSON data)."""
    claim = record.claim
    return {
        "id": attestation_id.hex(),
        "issuer": claim.issuer,
        "subject": claim.subject,
        "schema": claim.schema,
        "valid_from_ms": claim.valid_from_ms,
        "valid_until_ms": claim.valid_until_ms,
        "anchored": record.anchored,
        "revoked": record.revoked,
    }


def record_json(attestation_id: bytes, record: AttestationRecord) -> dict[str, Any]:
    """The whole record as plain JSON data: the claim decoded, and its bytes, key and signature as hex."""
    claim = record.claim
    return {
        **summary(attestation_id, record),
        "fields": dict(claim.fields),
        "claim_cbor": record.claim_bytes.hex(),
        "key": record.key.hex(),
        "signature": record.signature.hex(),
    }


# ---------------------------------------------------------------------------------------------------


def _bad_claim(code: str, detail: str) -> Verdict:
    if code == "identity.bad_claim_signature":
        return Verdict(BAD_SIGNATURE, detail)
    return Verdict(MALFORMED, f"{code}: {detail}")


def _claim_and_signature(attestation: AttestationRecord | SignedClaim) -> tuple[Claim | None, Verdict]:
    """The claim when it is well formed and its signature verifies; else None and the verdict."""
    if isinstance(attestation, SignedClaim):
        # A SignedClaim is checked when it is built by parsing; one built directly is checked here.
        claim_bytes, key, signature = attestation.claim.encode(), attestation.key, attestation.signature
    else:
        claim_bytes, key, signature = attestation.claim_bytes, attestation.key, attestation.signature
    try:
        claim = decode_claim_bytes(claim_bytes)
    except TxError as exc:
        return None, _bad_claim(exc.code, exc.detail)
    if claim.encode() != claim_bytes:
        return None, Verdict(MALFORMED, "the claim bytes are not the claim's canonical encoding")
    if not verify_claim_signature(claim_bytes, key, signature):
        return None, Verdict(BAD_SIGNATURE, "the signature is not this key's signature over the claim")
    return claim, Verdict(VALID, "")


def _check_claim(
    claim: Claim, attestation: AttestationRecord | SignedClaim, issuer_keys: Sequence[bytes], now_ms: int
) -> Verdict:
    if attestation.key not in issuer_keys:
        return Verdict(UNTRUSTED_KEY, f"the signing key is not an assertion key of the issuer {claim.issuer}")
    if isinstance(attestation, AttestationRecord) and attestation.revoked is not None:
        return Verdict(REVOKED, f"revoked by its issuer at height {attestation.revoked}")
    if now_ms < claim.valid_from_ms:
        return Verdict(NOT_YET_VALID, f"valid from {claim.valid_from_ms} ms; now is {now_ms} ms")
    if now_ms >= claim.valid_until_ms:
        return Verdict(EXPIRED, f"valid until {claim.valid_until_ms} ms (exclusive); now is {now_ms} ms")
    return Verdict(VALID, f"valid until {claim.valid_until_ms} ms")
