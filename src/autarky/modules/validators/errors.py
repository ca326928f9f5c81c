"""The validators module's rejection codes, in order of precedence (see module.py). Part of consensus."""

from __future__ import annotations

from autarky.ledger.errors import ErrorCode

INVALID_KEY = ErrorCode("validators.invalid_key", "a validator key is not an acceptable Ed25519 public key")
NO_CHANGE = ErrorCode("validators.no_change", "the update is empty or names a key twice")
NOT_GOVERNED = ErrorCode(
    "validators.not_governed", "a validator set change needs signatures of a quorum of the current validators"
)
ALREADY_MEMBER = ErrorCode("validators.already_member", "the key is already a validator")
NOT_MEMBER = ErrorCode("validators.not_member", "the key is not a validator")
INVALID_SIZE = ErrorCode("validators.invalid_size", "the validator set would be empty or too large")
