"""COSE_Sign1 (RFC 9052) with EdDSA over Ed25519: the outer form of every machine-to-machine message.

Wire form, in canonical CBOR (``autarky.encoding``)::

    18([protected, {}, payload, signature])        ; COSE_Sign1_Tagged, what :func:`sign1` produces

    protected = bstr .cbor {1: -8, 3: content_type, 4: kid}
                ; alg EdDSA, content type (text), key id (bytes); exactly these three labels
    {}        = the unprotected header: always empty (it is not signed, so nothing may live there)
    payload   = bstr (the application's canonical CBOR)
    signature = bstr .size 64 (Ed25519 over the Sig_structure below)

The signature covers ``["Signature1", protected, external_aad, payload]`` with
``external_aad = domain_tag(domain)`` (see :func:`autarky.crypto.keys.cose_sig_structure`), so a
standard COSE library verifies our messages when it is given that ``external_aad``, and a COSE
signature can never be taken for a transaction, header, vote or cut signature: those cover bytes that
start with ``AUTARKY-``, these bytes start with the CBOR array head ``0x84``.

**Tagged and untagged.** :func:`sign1` always produces the tagged form (CBOR tag 18, the single
byte ``0xd2``), which generic COSE tools need to know what they are reading. :func:`decode_sign1`
accepts the tagged form and, for constrained senders whose context already says "COSE_Sign1", the
untagged array; the tag is outside the signature, so both forms carry the same signed message (a
receiver's replay guard, keyed on the signed content, sees them as one). Any other tag is refused.

**Strictness.** Every part must be canonical CBOR (one encoding per value), the protected header
must hold exactly alg, content type and kid, alg must be EdDSA (-8), and the unprotected header
must be empty. Anything else raises :class:`CoseError`; nothing here raises anything else for bad
input. This module checks shape only; :meth:`Sign1.verify` checks a signature against a key the
caller chose (a message's kid says which key the sender claims, never which key to trust).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

from autarky.crypto.domains import Domain
from autarky.crypto.keys import SIGNATURE_BYTES, PublicKey, SigningKey, cose_sig_structure, verify_raw
from autarky.encoding import DecodeError, canonical_decode, canonical_encode

ALG_EDDSA = -8
LABEL_ALG = 1
LABEL_CONTENT_TYPE = 3
LABEL_KID = 4
TAG_COSE_SIGN1 = 18
TAG_PREFIX = b"\xd2"  # CBOR major type 6, value 18: the one-byte head of tag 18
_LABELS = (LABEL_ALG, LABEL_CONTENT_TYPE, LABEL_KID)
MAX_KID_BYTES = 256
MAX_CONTENT_TYPE_CHARS = 128


class CoseError(ValueError):
    """Bytes that are not a COSE_Sign1 message of the form this module accepts."""


@dataclass(frozen=True, slots=True)
class Sign1:
    """A decoded COSE_Sign1 message; ``protected`` and ``payload`` are the exact signed byte strings."""

    protected: bytes
    kid: bytes
    content_type: str
    payload: bytes
    signature: bytes
    tagged: bool

    def signed_bytes(self, domain: Domain) -> bytes:
        """The Sig_structure this message's signature covers under ``domain``."""
        return cose_sig_structure(domain, self.protected, self.payload)

    def verify(self, public_key: PublicKey | bytes, domain: Domain) -> bool:
        """True when ``signature`` is ``public_key``'s signature over :meth:`signed_bytes`."""
        raw = public_key.raw if isinstance(public_key, PublicKey) else public_key
        return verify_raw(raw, self.signed_bytes(domain), self.signature)


# A sender signs with the same few key ids, and a receiver meets the same few senders: both
# functions below are pure functions of their arguments, so remembering answers changes nothing.
@functools.lru_cache(maxsize=1 << 12)
def protected_header(kid: bytes, content_type: str) -> bytes:
    """The serialized protected header ``{1: -8, 3: content_type, 4: kid}`` (canonical CBOR)."""
    _check_kid(kid)
    _check_content_type(content_type)
    return canonical_encode({LABEL_ALG: ALG_EDDSA, LABEL_CONTENT_TYPE: content_type, LABEL_KID: kid})


def sign1(key: SigningKey, domain: Domain, kid: bytes, content_type: str, payload: bytes) -> bytes:
    """A tagged COSE_Sign1 message: ``payload`` signed by ``key`` under ``domain``, naming ``kid``."""
    if type(payload) is not bytes:
        raise TypeError("payload must be bytes")
    protected = protected_header(kid, content_type)
    signature = key.sign_cose(domain, protected, payload)
    return TAG_PREFIX + canonical_encode([protected, {}, payload, signature])


def encode_sign1(message: Sign1, *, tagged: bool = True) -> bytes:
    """The wire bytes of ``message`` (tagged or not); the signature is unchanged either way."""
    body = canonical_encode([message.protected, {}, message.payload, message.signature])
    return TAG_PREFIX + body if tagged else body


def decode_sign1(data: bytes, *, max_bytes: int) -> Sign1:
    """Decode and shape-check a COSE_Sign1 message (tagged or untagged). Raises :class:`CoseError`."""
    if type(data) is not bytes:
        raise CoseError("a COSE_Sign1 message is bytes")
    if len(data) > max_bytes:
        raise CoseError(f"message of {len(data)} bytes exceeds the limit of {max_bytes}")
    tagged = data[:1] == TAG_PREFIX
    protected, payload, signature = _split_sign1(data, 1 if tagged else 0)
    if len(signature) != SIGNATURE_BYTES:
        raise CoseError(f"the signature is a byte string of {SIGNATURE_BYTES} bytes")
    kid, content_type = _parse_protected(protected)
    return Sign1(protected, kid, content_type, payload, signature, tagged)


def _split_sign1(data: bytes, start: int) -> tuple[bytes, bytes, bytes]:
    """``(protected, payload, signature)`` of the canonical array ``[bstr, {}, bstr, bstr]`` at ``start``.

    The outer array is on every message's path and its shape is fixed, so it is read directly
    instead of through the general decoder: the same bytes are accepted (one array head, byte
    string heads in their shortest form, an empty map, nothing after), which
    ``tests/property/test_envelope_fuzz.py`` checks against ``canonical_decode``.
    """
    if data[start : start + 1] != b"\x84":
        raise CoseError("COSE_Sign1 is an array of 4: [protected, unprotected, payload, signature]")
    protected, position = _byte_string(data, start + 1, "the protected header")
    if data[position : position + 1] != b"\xa0":
        raise CoseError("the unprotected header must be an empty map")
    payload, position = _byte_string(data, position + 1, "the payload")
    signature, position = _byte_string(data, position, "the signature")
    if position != len(data):
        raise CoseError("not canonical CBOR (or trailing bytes) after the COSE_Sign1 array")
    return protected, payload, signature


_LENGTH_BYTES = {24: 1, 25: 2, 26: 4, 27: 8}


def _byte_string(data: bytes, position: int, what: str) -> tuple[bytes, int]:
    """The canonical CBOR byte string at ``position`` and the position after it."""
    if position >= len(data) or data[position] >> 5 != 2:
        raise CoseError(f"{what} is a byte string")
    info = data[position] & 0x1F
    if info < 24:
        length, position = info, position + 1
    elif info in _LENGTH_BYTES:
        size = _LENGTH_BYTES[info]
        if position + 1 + size > len(data):
            raise CoseError(f"{what}: truncated length")
        length = int.from_bytes(data[position + 1 : position + 1 + size], "big")
        if length < (24 if size == 1 else 1 << (4 * size)):
            raise CoseError(f"{what}: length not in its shortest form (not canonical CBOR)")
        position += 1 + size
    else:
        raise CoseError(f"{what}: indefinite or reserved length (not canonical CBOR)")
    if position + length > len(data):
        raise CoseError(f"{what}: truncated")
    return data[position : position + length], position + length


def _decode(data: bytes, what: str) -> Any:
    try:
        return canonical_decode(data)
    except DecodeError as exc:
        raise CoseError(f"{what}: {exc}") from exc


@functools.lru_cache(maxsize=1 << 12)
def _parse_protected(protected: bytes) -> tuple[bytes, str]:
    header = _decode(protected, "protected header")
    # The canonical decoder admits only int and text labels (never bools, so True is not 1 here).
    if type(header) is not dict or len(header) != 3 or not all(label in header for label in _LABELS):
        raise CoseError("the protected header holds exactly alg (1), content type (3) and kid (4)")
    if type(header[LABEL_ALG]) is not int or header[LABEL_ALG] != ALG_EDDSA:
        raise CoseError(f"alg must be EdDSA ({ALG_EDDSA})")
    kid, content_type = header[LABEL_KID], header[LABEL_CONTENT_TYPE]
    _check_kid(kid)
    _check_content_type(content_type)
    return kid, content_type


def _check_kid(kid: object) -> None:
    if type(kid) is not bytes or not 1 <= len(kid) <= MAX_KID_BYTES:
        raise CoseError(f"kid is a byte string of 1 to {MAX_KID_BYTES} bytes")


def _check_content_type(content_type: object) -> None:
    if type(content_type) is not str or not 1 <= len(content_type) <= MAX_CONTENT_TYPE_CHARS:
        raise CoseError(f"content type is text of 1 to {MAX_CONTENT_TYPE_CHARS} characters")


__all__ = [
    "ALG_EDDSA",
    "MAX_KID_BYTES",
    "TAG_COSE_SIGN1",
    "CoseError",
    "Sign1",
    "decode_sign1",
    "encode_sign1",
    "protected_header",
    "sign1",
]
