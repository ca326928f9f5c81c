"""Ed25519 keys through PyNaCl (libsodium), the one verifier every replica uses.

Why one verifier: Ed25519 libraries accept different sets of edge-case signatures (see
``../shared/vectors``). Replicas using different ones would disagree on which transactions are
valid. ``tests/unit/test_ed25519_vectors.py`` pins libsodium's acceptance set.

Keys never sign raw bytes: :meth:`SigningKey.sign` takes a :class:`Domain`, so a signature made for
one purpose cannot be replayed for another. :meth:`SigningKey.sign_cose` (machine-to-machine
envelopes, ``crypto/cose.py``) signs a COSE ``Sig_structure`` that it builds itself, with the domain
tag as its ``external_aad``. Public keys that are not canonical points of the
prime-order subgroup (small-order keys in particular) are refused on construction, so every path
by which a key enters the system refuses them.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import nacl.bindings
import nacl.exceptions
import nacl.signing

from autarky.crypto.domains import Domain, domain_tag
from autarky.encoding import encode_int

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
SEED_BYTES = 32


class InvalidKey(ValueError):
    """Bytes that are not an acceptable Ed25519 public key (wrong length, not on the curve, small order)."""


def check_public_key(raw: bytes) -> bytes:
    """Return ``raw`` if it is an acceptable Ed25519 public key, else raise :class:`InvalidKey`.

    libsodium's ``crypto_core_ed25519_is_valid_point`` refuses non-canonical encodings, points not
    on the curve, small-order points and points outside the prime-order subgroup.
    """
    if type(raw) is not bytes or len(raw) != PUBLIC_KEY_BYTES:
        raise InvalidKey(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes")
    if not _is_valid_point(raw):
        raise InvalidKey("public key is not a valid prime-order point (small-order or non-canonical)")
    return raw


@functools.lru_cache(maxsize=1 << 16)
def _is_valid_point(raw: bytes) -> bool:
    # The subgroup check costs ~40 µs and a transfer meets the same few keys several times; the
    # answer is a pure function of the bytes, so remembering it cannot change any result.
    return bool(nacl.bindings.crypto_core_ed25519_is_valid_point(raw))


@dataclass(frozen=True, slots=True)
class PublicKey:
    """A checked Ed25519 public key."""

    raw: bytes

    def __post_init__(self) -> None:
        check_public_key(self.raw)

    def verify(self, domain: Domain, payload: bytes, signature: bytes, chain_id: str | None = None) -> bool:
        """True when ``signature`` is this key's signature over ``domain_tag || payload``."""
        return verify_raw(self.raw, domain_tag(domain, chain_id) + payload, signature)

    def verify_cose(self, domain: Domain, protected: bytes, payload: bytes, signature: bytes) -> bool:
        """True when ``signature`` is this key's COSE_Sign1 signature (see :func:`cose_sig_structure`)."""
        return verify_raw(self.raw, cose_sig_structure(domain, protected, payload), signature)

    @property
    def did(self) -> str:
        from autarky.crypto.did import did_from_public_key

        return did_from_public_key(self.raw)

    def hex(self) -> str:
        return self.raw.hex()


COSE_SIGN1_CONTEXT = "Signature1"
_SIG_STRUCTURE_HEAD = b"\x84\x6aSignature1"  # CBOR: array of 4, then the 10-character text


def cose_sig_structure(domain: Domain, protected: bytes, payload: bytes) -> bytes:
    """The bytes a COSE_Sign1 signature covers (RFC 9052 section 4.4), bound to ``domain``.

    ``Sig_structure = ["Signature1", protected, external_aad, payload]`` in CBOR, with
    ``external_aad = domain_tag(domain)``. A standard COSE verifier given that ``external_aad``
    checks the same bytes. They start with the CBOR array head ``0x84``, and every byte string
    :meth:`SigningKey.sign` covers starts with ``AUTARKY-`` (``0x41``), so a COSE signature is never
    a transaction, header, vote or cut signature, and the reverse. Only domains that are not bound
    to a chain can be used (``domain_tag`` raises otherwise).

    Built by hand (it is on every message's path); equal to ``canonical_encode`` of that list,
    which ``tests/golden/test_cose_golden.py`` checks.
    """
    if type(protected) is not bytes or type(payload) is not bytes:
        raise TypeError("protected header and payload must be bytes")
    aad = domain_tag(domain)
    return b"".join(
        (
            _SIG_STRUCTURE_HEAD,
            _bstr_head(len(protected)),
            protected,
            _bstr_head(len(aad)),
            aad,
            _bstr_head(len(payload)),
            payload,
        )
    )


def _bstr_head(length: int) -> bytes:
    """The CBOR head of a byte string of ``length`` bytes (major type 2, shortest form)."""
    head = encode_int(length)
    return bytes((head[0] | 0x40,)) + head[1:]


def verify_raw(public_key: bytes, tagged_message: bytes, signature: bytes) -> bool:
    """Verify a signature over already-tagged bytes. Never raises for bad input; returns False."""
    if type(signature) is not bytes or len(signature) != SIGNATURE_BYTES:
        return False
    if type(public_key) is not bytes or len(public_key) != PUBLIC_KEY_BYTES:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + tagged_message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, nacl.exceptions.TypeError):
        return False
    return True


class SigningKey:
    """An Ed25519 private key. Create with :meth:`generate` or :meth:`from_seed`."""

    __slots__ = ("_key", "public_key")

    def __init__(self, key: nacl.signing.SigningKey) -> None:
        self._key = key
        self.public_key = PublicKey(bytes(key.verify_key))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(nacl.signing.SigningKey.generate())

    @classmethod
    def from_seed(cls, seed: bytes) -> SigningKey:
        if type(seed) is not bytes or len(seed) != SEED_BYTES:
            raise InvalidKey(f"an Ed25519 seed is {SEED_BYTES} bytes")
        return cls(nacl.signing.SigningKey(seed))

    @property
    def seed(self) -> bytes:
        """The 32-byte secret seed. Handle with care: only the keystore should call this."""
        return bytes(self._key)

    @property
    def did(self) -> str:
        return self.public_key.did

    def sign(self, domain: Domain, payload: bytes, chain_id: str | None = None) -> bytes:
        """Sign ``domain_tag(domain, chain_id) || payload`` and return the 64-byte signature."""
        return self._key.sign(domain_tag(domain, chain_id) + payload).signature

    def sign_cose(self, domain: Domain, protected: bytes, payload: bytes) -> bytes:
        """Sign the COSE_Sign1 ``Sig_structure`` of ``protected`` and ``payload`` under ``domain``.

        See :func:`cose_sig_structure`; the 64-byte signature goes into a COSE_Sign1 message.
        """
        return self._key.sign(cose_sig_structure(domain, protected, payload)).signature

    def __repr__(self) -> str:
        return f"SigningKey({self.did})"
