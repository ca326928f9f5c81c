"""``did:key`` identifiers for Ed25519 keys: ``did:key:z`` + base58btc(0xed 0x01 || public key).

Parsing checks the multicodec prefix and the key itself (small-order keys are refused), so a DID
that parses is a DID whose key can be used.
"""

from __future__ import annotations

import functools

import base58

from autarky.crypto.keys import InvalidKey, check_public_key

_PREFIX = "did:key:z"
_ED25519_MULTICODEC = b"\xed\x01"
MAX_DID_LENGTH = 128


class InvalidDid(ValueError):
    """A string that is not a ``did:key`` for an acceptable Ed25519 key."""


def did_from_public_key(public_key: bytes) -> str:
    check_public_key(public_key)
    return _did_from_checked_key(public_key)


@functools.lru_cache(maxsize=1 << 16)
def _did_from_checked_key(public_key: bytes) -> str:
    return _PREFIX + base58.b58encode(_ED25519_MULTICODEC + public_key).decode("ascii")


def public_key_from_did(did: str) -> bytes:
    """The 32-byte key inside a ``did:key``; raises :class:`InvalidDid`."""
    if type(did) is not str or not did.startswith(_PREFIX) or len(did) > MAX_DID_LENGTH:
        raise InvalidDid(f"not an Ed25519 did:key: {str(did)[:80]!r}")
    return _parse_did(did)


# Parsing is a pure function of the string and is met several times per transaction (sender,
# recipient, owner); remembering answers for valid DIDs cannot change any result.
@functools.lru_cache(maxsize=1 << 16)
def _parse_did(did: str) -> bytes:
    try:
        decoded = base58.b58decode(did[len(_PREFIX) :])
    except ValueError as exc:
        raise InvalidDid(f"did:key is not valid base58btc: {did[:80]!r}") from exc
    if len(decoded) != 34 or decoded[:2] != _ED25519_MULTICODEC:
        raise InvalidDid(f"did:key does not hold an Ed25519 key (multicodec 0xed01): {did[:80]!r}")
    key = decoded[2:]
    try:
        check_public_key(key)
    except InvalidKey as exc:
        raise InvalidDid(f"did:key holds an unacceptable key: {exc}") from exc
    if did_from_public_key(key) != did:
        raise InvalidDid(f"did:key is not in its canonical form: {did[:80]!r}")
    return key


def is_did_key(value: object) -> bool:
    try:
        public_key_from_did(value)  # type: ignore[arg-type]
    except InvalidDid:
        return False
    return True


def fingerprint(did: str) -> str:
    """The ``z6Mk…`` part of a did:key; safe in NATS subjects and file names."""
    public_key_from_did(did)
    return did[len("did:key:") :]
