"""The escrow module's rejection codes, in order of precedence (README.md says which entry point
returns which). ``core.invalid_message`` precedes all of them. The strings are part of consensus."""

from __future__ import annotations

from autarky.ledger.errors import ErrorCode

# escrow/lock (message fields, in this order), then EscrowModule.lock's own checks.
INVALID_BENEFICIARIES = ErrorCode(
    "escrow.invalid_beneficiaries",
    "beneficiaries must be 1 to 16 distinct Ed25519 did:keys other than the payer",
)
INVALID_ARBITER = ErrorCode("escrow.invalid_arbiter", "the arbiter is not a did:key, or is the payer")
INVALID_PURPOSE = ErrorCode("escrow.invalid_purpose", "the purpose is longer than 64 characters")
INVALID_AMOUNT = ErrorCode("escrow.invalid_amount", "the amount is not from 1 to 2**64-1, or beyond the lock")
INVALID_EXPIRY = ErrorCode("escrow.invalid_expiry", "expires_ms is not later than the block time")

# escrow/release and escrow/refund.
UNKNOWN_LOCK = ErrorCode("escrow.unknown_lock", "no open lock has this id")
NOT_USER_LOCK = ErrorCode(
    "escrow.held_by_module", "the lock is held by a module; only that module's rules release it"
)
NOT_AUTHORIZED = ErrorCode(
    "escrow.not_authorized",
    "the sender may not release (payer or arbiter) or refund (arbiter or beneficiary)",
)
NOT_BENEFICIARY = ErrorCode("escrow.not_beneficiary", "the recipient is not one of the lock's beneficiaries")

ESCROW_CODES_IN_PRECEDENCE = (
    INVALID_BENEFICIARIES,
    INVALID_ARBITER,
    INVALID_PURPOSE,
    INVALID_AMOUNT,
    INVALID_EXPIRY,
    UNKNOWN_LOCK,
    NOT_USER_LOCK,
    NOT_AUTHORIZED,
    NOT_BENEFICIARY,
)
