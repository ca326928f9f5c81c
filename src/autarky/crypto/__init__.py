"""Keys, did:key identifiers, domain-tagged signatures and the encrypted keystore."""

from autarky.crypto.did import InvalidDid, did_from_public_key, fingerprint, is_did_key, public_key_from_did
from autarky.crypto.domains import Domain, check_chain_id, domain_tag
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import InvalidKey, PublicKey, SigningKey, check_public_key, verify_raw

__all__ = [
    "Domain",
    "InvalidDid",
    "InvalidKey",
    "PublicKey",
    "SigningKey",
    "check_chain_id",
    "check_public_key",
    "did_from_public_key",
    "domain_tag",
    "fingerprint",
    "is_did_key",
    "public_key_from_did",
    "sha256",
    "verify_raw",
]
