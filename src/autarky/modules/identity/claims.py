"""Attestation claims: what an issuer signs about a subject, in a form anyone can check offline.

A **claim** is a canonical-CBOR map with exactly these fields::

    {"issuer": did, "subject": did, "schema": str, "fields": {str: str | int},
     "valid_from_ms": int, "valid_until_ms": int}

e.g. a calibration lab (issuer) saying that sensor X (subject) was calibrated::

    {"issuer": "did:key:z6Mk…lab", "subject": "did:key:z6Mk…sensor", "schema": "calibration/v1",
     "fields": {"standard": "ISO-17025", "error_ppm": 120}, "valid_from_ms": …, "valid_until_ms": …}

The claim's bytes (``claim_bytes``) are its canonical CBOR. The issuer signs
``domain_tag(ATTESTATION) || claim_bytes`` (``AUTARKY-ATTEST-V1`` and a NUL byte; not bound to a
chain), so the signature is never a valid transaction, block header, vote or machine-to-machine
message signature, and none of those is ever a valid claim signature.

A **signed claim** is the claim with the public key that signed it and the signature, as a
canonical-CBOR map (the portable form, ``SignedClaim.to_bytes()``)::

    {"claim": {...}, "key": 32 bytes, "signature": 64 bytes}

which is also exactly the body of the ``identity/attest`` message (plus its ``"type"``).

The **attestation id** is ``sha256(claim_bytes)``: it names the claim, not the signature, so the same
claim signed with two keys of the issuer has one id (and is anchored at most once).

Validity is the half-open window ``valid_from_ms <= t < valid_until_ms`` (milliseconds since the Unix
epoch; the window must not be empty).

Value rules (checked in this order; the codes are those of the ``identity/attest`` message, see
README.md): the shape (``core.invalid_message``: exact fields, text, int (never bool) or a map from
text to text or int); ``identity.invalid_did`` (issuer, then subject); ``identity.invalid_key`` (the
key); ``identity.invalid_field`` (schema not like ``calibration/v1``, an empty field name, an
integer field value outside the signed 64-bit range, a time outside 0..2**64-1, an empty window);
``identity.too_large`` (schema over 64 characters, over 16 fields, a field name over 32
characters, a text value over 256); ``identity.bad_claim_signature`` (the signature does not verify
under the key).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.crypto.domains import Domain, domain_tag
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SIGNATURE_BYTES, InvalidKey, SigningKey, check_public_key, verify_raw
from autarky.encoding import DecodeError, canonical_decode, canonical_encode
from autarky.ledger.errors import INVALID_MESSAGE, TxError
from autarky.ledger.tx import MAX_U64
from autarky.modules.identity.errors import (
    BAD_CLAIM_SIGNATURE,
    INVALID_DID,
    INVALID_FIELD,
    INVALID_KEY,
    TOO_LARGE,
)

MAX_SCHEMA_CHARS = 64
MAX_CLAIM_FIELDS = 16
MAX_FIELD_NAME_CHARS = 32
MAX_FIELD_TEXT_CHARS = 256
MIN_FIELD_INT = -(2**63)
MAX_FIELD_INT = 2**63 - 1
MAX_SIGNED_CLAIM_BYTES = 8 * 1024
"""Largest portable signed claim :func:`decode_signed_claim` reads (the caps above keep a valid one
under 6 KiB)."""

CLAIM_FIELDS = ("issuer", "subject", "schema", "fields", "valid_from_ms", "valid_until_ms")
SIGNED_CLAIM_FIELDS = ("claim", "key", "signature")

# ``calibration/v1``, ``iso-17025/cert/v2``: lower-case segments separated by single slashes.
_SCHEMA = re.compile(r"[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)*")

FieldValue = str | int
Fields = tuple[tuple[str, FieldValue], ...]


class InvalidClaim(ValueError):
    """Bytes or a map that are not a well-formed (signed) claim; ``code`` is the message's code."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Claim:
    """A checked claim. ``fields`` are sorted by name."""

    issuer: str
    subject: str
    schema: str
    fields: Fields
    valid_from_ms: int
    valid_until_ms: int

    def to_cbor(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "subject": self.subject,
            "schema": self.schema,
            "fields": dict(self.fields),
            "valid_from_ms": self.valid_from_ms,
            "valid_until_ms": self.valid_until_ms,
        }

    def encode(self) -> bytes:
        """The claim's canonical bytes: what the issuer signs (after the domain tag), what the id hashes."""
        return canonical_encode(self.to_cbor())

    @property
    def id(self) -> bytes:
        return attestation_id(self.encode())

    def valid_at(self, time_ms: int) -> bool:
        return self.valid_from_ms <= time_ms < self.valid_until_ms

    def to_json(self) -> dict[str, Any]:
        return self.to_cbor()


@dataclass(frozen=True, slots=True)
class SignedClaim:
    """A claim, the public key that signed it and the signature. The signature is checked on parsing."""

    claim: Claim
    key: bytes
    signature: bytes

    @property
    def id(self) -> bytes:
        return self.claim.id

    def to_cbor(self) -> dict[str, Any]:
        return {"claim": self.claim.to_cbor(), "key": self.key, "signature": self.signature}

    def to_bytes(self) -> bytes:
        """The portable form: canonical CBOR ``{"claim", "key", "signature"}``."""
        return canonical_encode(self.to_cbor())


def attestation_id(claim_bytes: bytes) -> bytes:
    """SHA-256 of the claim's canonical bytes."""
    return sha256(claim_bytes)


def signing_payload(claim_bytes: bytes) -> bytes:
    """The exact bytes a claim signature covers: the attestation domain tag, then the claim."""
    return domain_tag(Domain.ATTESTATION) + claim_bytes


def verify_claim_signature(claim_bytes: bytes, key: bytes, signature: bytes) -> bool:
    """True when ``signature`` is ``key``'s signature over the claim in the attestation domain."""
    return verify_raw(key, signing_payload(claim_bytes), signature)


def make_claim(
    issuer: str,
    subject: str,
    schema: str,
    fields: Mapping[str, FieldValue],
    valid_from_ms: int,
    valid_until_ms: int,
) -> Claim:
    """A checked claim from its parts; raises :class:`InvalidClaim` naming the failed rule."""
    raw = {
        "issuer": issuer,
        "subject": subject,
        "schema": schema,
        "fields": dict(fields),
        "valid_from_ms": valid_from_ms,
        "valid_until_ms": valid_until_ms,
    }
    try:
        return parse_claim(raw)
    except TxError as exc:
        raise InvalidClaim(exc.code, exc.detail) from None


def sign_claim(key: SigningKey, claim: Claim) -> SignedClaim:
    """The issuer's signature over ``claim`` with ``key`` (one of the issuer's full-scope keys)."""
    signature = key.sign(Domain.ATTESTATION, claim.encode())
    return SignedClaim(claim, key.public_key.raw, signature)


def decode_signed_claim(raw: bytes) -> SignedClaim:
    """Parse and check a portable signed claim (its signature included); raises :class:`InvalidClaim`.

    It does not say whether the key is the issuer's: that needs the issuer's keys (see
    ``attestations.check_attestation``).
    """
    if type(raw) is not bytes:
        raise InvalidClaim(INVALID_MESSAGE.code, "a signed claim is bytes")
    if len(raw) > MAX_SIGNED_CLAIM_BYTES:
        raise InvalidClaim(INVALID_MESSAGE.code, f"a signed claim is at most {MAX_SIGNED_CLAIM_BYTES} bytes")
    try:
        value = canonical_decode(raw)
    except DecodeError as exc:
        raise InvalidClaim(INVALID_MESSAGE.code, f"not canonical CBOR: {exc}") from None
    if type(value) is not dict:
        raise InvalidClaim(INVALID_MESSAGE.code, "a signed claim is a map {claim, key, signature}")
    try:
        return parse_signed_claim(value, SIGNED_CLAIM_FIELDS)
    except TxError as exc:
        raise InvalidClaim(exc.code, exc.detail) from None


# ---------------------------------------------------------------------------------------------------
# Parsing: shape first (core.invalid_message), then values code by code


def parse_signed_claim(value: Mapping[str, Any], allowed: tuple[str, ...]) -> SignedClaim:
    """Check a signed claim map (the ``identity/attest`` message has ``"type"`` in ``allowed`` too).

    Raises :class:`TxError` with the first failing code in the documented order.
    """
    for name in sorted(str(name) for name in value):
        if name not in allowed:
            raise INVALID_MESSAGE(f"unexpected field {name[:40]!r}")
    for name in SIGNED_CLAIM_FIELDS:
        if name not in value:
            raise INVALID_MESSAGE(f"missing field {name!r}")
    raw_claim, key, signature = value["claim"], value["key"], value["signature"]
    if type(raw_claim) is not dict:
        raise INVALID_MESSAGE("field 'claim' must be a map")
    if type(key) is not bytes:
        raise INVALID_MESSAGE("field 'key' must be a 32-byte public key")
    if type(signature) is not bytes:
        raise INVALID_MESSAGE("field 'signature' must be bytes")
    _check_claim_shape(raw_claim)
    _check_claim_dids(raw_claim)
    try:
        check_public_key(key)
    except InvalidKey as exc:
        raise INVALID_KEY(f"key: {exc}") from None
    claim = _check_claim_values(raw_claim)
    if len(signature) != SIGNATURE_BYTES or not verify_claim_signature(claim.encode(), key, signature):
        raise BAD_CLAIM_SIGNATURE("the signature is not this key's signature over the claim")
    return SignedClaim(claim, key, signature)


def parse_claim(raw_claim: Any) -> Claim:
    """Check a claim map alone (no signature); raises :class:`TxError`."""
    if type(raw_claim) is not dict:
        raise INVALID_MESSAGE("a claim must be a map")
    _check_claim_shape(raw_claim)
    _check_claim_dids(raw_claim)
    return _check_claim_values(raw_claim)


def decode_claim_bytes(claim_bytes: bytes) -> Claim:
    """The claim stored in an attestation record (canonical CBOR); raises :class:`TxError`."""
    try:
        return parse_claim(canonical_decode(claim_bytes))
    except DecodeError as exc:
        raise INVALID_MESSAGE(f"claim bytes are not canonical CBOR: {exc}") from None


def _check_claim_shape(raw: Mapping[str, Any]) -> None:
    for name in sorted(str(name) for name in raw):
        if name not in CLAIM_FIELDS:
            raise INVALID_MESSAGE(f"unexpected claim field {name[:40]!r}")
    for name in CLAIM_FIELDS:
        if name not in raw:
            raise INVALID_MESSAGE(f"missing claim field {name!r}")
    for name in ("issuer", "subject", "schema"):
        if type(raw[name]) is not str:
            raise INVALID_MESSAGE(f"claim field {name!r} must be text")
    fields = raw["fields"]
    if type(fields) is not dict or any(
        type(name) is not str or type(value) not in (str, int) for name, value in fields.items()
    ):
        raise INVALID_MESSAGE("claim field 'fields' must be a map from text to text or integer")
    for name in ("valid_from_ms", "valid_until_ms"):
        if type(raw[name]) is not int:
            raise INVALID_MESSAGE(f"claim field {name!r} must be an integer")


def _check_claim_dids(raw: Mapping[str, Any]) -> None:
    # The same rule as messages.check_did (which imports this module, so it is not imported here).
    for name in ("issuer", "subject"):
        if not is_did_key(raw[name]):
            raise INVALID_DID(f"{name} must be an Ed25519 did:key with an acceptable key")


def _check_claim_values(raw: Mapping[str, Any]) -> Claim:
    """Every ``invalid_field`` check, then every ``too_large`` check (the shape is already checked)."""
    schema: str = raw["schema"]
    fields: dict[str, FieldValue] = raw["fields"]
    valid_from_ms: int = raw["valid_from_ms"]
    valid_until_ms: int = raw["valid_until_ms"]
    if not _SCHEMA.fullmatch(schema):
        raise INVALID_FIELD(
            "schema must be lower-case segments of a-z, 0-9, '.', '_', '-' separated by '/', "
            "e.g. 'calibration/v1'"
        )
    for name, value in sorted(fields.items()):
        if not name:
            raise INVALID_FIELD("claim field names must not be empty")
        if type(value) is int and not MIN_FIELD_INT <= value <= MAX_FIELD_INT:
            raise INVALID_FIELD(f"the integer value of {name[:40]!r} is outside the signed 64-bit range")
    for name, value in (("valid_from_ms", valid_from_ms), ("valid_until_ms", valid_until_ms)):
        if not 0 <= value <= MAX_U64:
            raise INVALID_FIELD(f"{name} must be between 0 and 2**64 - 1")
    if valid_from_ms >= valid_until_ms:
        raise INVALID_FIELD("valid_from_ms must be before valid_until_ms (the window is [from, until))")
    if len(schema) > MAX_SCHEMA_CHARS:
        raise TOO_LARGE(f"schema is longer than {MAX_SCHEMA_CHARS} characters")
    if len(fields) > MAX_CLAIM_FIELDS:
        raise TOO_LARGE(f"a claim has at most {MAX_CLAIM_FIELDS} fields")
    for name, value in sorted(fields.items()):
        if len(name) > MAX_FIELD_NAME_CHARS:
            raise TOO_LARGE(
                f"claim field name {name[:40]!r} is longer than {MAX_FIELD_NAME_CHARS} characters"
            )
        if type(value) is str and len(value) > MAX_FIELD_TEXT_CHARS:
            raise TOO_LARGE(f"the value of {name!r} is longer than {MAX_FIELD_TEXT_CHARS} characters")
    return Claim(
        raw["issuer"], raw["subject"], schema, tuple(sorted(fields.items())), valid_from_ms, valid_until_ms
    )
