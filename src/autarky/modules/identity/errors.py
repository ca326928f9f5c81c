"""The identity module's rejection codes, in order of precedence.

A message is checked top to bottom and the first failing check decides its code (see README.md for
which codes each message can return). The code strings are part of consensus: never rename or
renumber them; add new codes at the place in the order where they are checked.

The codes for attestations and services (``bad_claim_signature``, ``attestation_not_found``,
``attestation_revoked``, ``not_assertion_key``, ``claim_expired``, ``attestation_exists``,
``service_not_found``, ``too_many_services``) and for the kill-switch (``already_paused``,
``not_paused``) were added later, each at the place where it is
checked; the codes that existed before kept their names and their relative order.

``core.invalid_message`` (a field is missing, unexpected or of the wrong type) comes before all of
these, and ``core.unknown_signer`` before ``identity.allowance_exceeded``, which only
:func:`autarky.modules.identity.keeper.charge_allowance` raises.
"""

from __future__ import annotations

from autarky.ledger.errors import ErrorCode

# Checks on the message alone, before any state is read.
INVALID_DID = ErrorCode("identity.invalid_did", "an identifier is not an Ed25519 did:key")
INVALID_KEY = ErrorCode(
    "identity.invalid_key", "a public key is not an acceptable Ed25519 key (wrong length, small order)"
)
INVALID_FIELD = ErrorCode("identity.invalid_field", "a descriptive field has a value that is not allowed")
TOO_LARGE = ErrorCode("identity.too_large", "a descriptive field is longer or has more entries than allowed")
INVALID_SCOPE = ErrorCode("identity.invalid_scope", "a key scope (actions or allowance) is not well formed")
BAD_CLAIM_SIGNATURE = ErrorCode(
    "identity.bad_claim_signature", "the claim's signature does not verify under the key it names"
)

# Checks against the ledger state.
ALREADY_REGISTERED = ErrorCode("identity.already_registered", "this DID is already registered")
NOT_REGISTERED = ErrorCode("identity.not_registered", "this DID is not a registered account")
ATTESTATION_NOT_FOUND = ErrorCode("identity.attestation_not_found", "no attestation with this id is anchored")
NOT_AUTHORISED = ErrorCode(
    "identity.not_authorised", "the sender is neither the account (with a full-scope key) nor its owner"
)
ACCOUNT_REVOKED = ErrorCode(
    "identity.account_revoked", "the account is revoked; only its owner can recover it"
)
ALREADY_PAUSED = ErrorCode("identity.already_paused", "the account is already paused")
NOT_PAUSED = ErrorCode("identity.not_paused", "the account is not paused, so it cannot be resumed")
ATTESTATION_REVOKED = ErrorCode("identity.attestation_revoked", "the attestation is already revoked")
KEY_NOT_FOUND = ErrorCode("identity.key_not_found", "the key is not a key of this account")
NOT_ASSERTION_KEY = ErrorCode(
    "identity.not_assertion_key",
    "the key that signed the claim is not an active full-scope key of the issuer (an assertionMethod)",
)
CLAIM_EXPIRED = ErrorCode("identity.claim_expired", "the claim's validity window has ended before this block")
ATTESTATION_EXISTS = ErrorCode("identity.attestation_exists", "this claim is already anchored")
SERVICE_NOT_FOUND = ErrorCode("identity.service_not_found", "the account has no service with this id")
LAST_FULL_KEY = ErrorCode("identity.last_full_key", "an account must keep at least one full-scope key")
KEY_IN_USE = ErrorCode("identity.key_in_use", "the key already belongs to a registered account")
TOO_MANY_KEYS = ErrorCode("identity.too_many_keys", "the account already has the maximum number of keys")
TOO_MANY_SERVICES = ErrorCode(
    "identity.too_many_services", "the account already has the maximum number of services"
)
MISSING_KEY_SIGNATURE = ErrorCode(
    "identity.missing_key_signature", "the key being installed did not co-sign the transaction"
)

# Raised by charge_allowance when another module spends through a scoped key.
ALLOWANCE_EXCEEDED = ErrorCode(
    "identity.allowance_exceeded", "the signing key's allowance does not cover this amount of this asset"
)

IDENTITY_CODES_IN_PRECEDENCE = (
    INVALID_DID,
    INVALID_KEY,
    INVALID_FIELD,
    TOO_LARGE,
    INVALID_SCOPE,
    BAD_CLAIM_SIGNATURE,
    ALREADY_REGISTERED,
    NOT_REGISTERED,
    ATTESTATION_NOT_FOUND,
    NOT_AUTHORISED,
    ACCOUNT_REVOKED,
    ALREADY_PAUSED,
    NOT_PAUSED,
    ATTESTATION_REVOKED,
    KEY_NOT_FOUND,
    NOT_ASSERTION_KEY,
    CLAIM_EXPIRED,
    ATTESTATION_EXISTS,
    SERVICE_NOT_FOUND,
    LAST_FULL_KEY,
    KEY_IN_USE,
    TOO_MANY_KEYS,
    TOO_MANY_SERVICES,
    MISSING_KEY_SIGNATURE,
    ALLOWANCE_EXCEEDED,
)
