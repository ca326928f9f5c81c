"""The bank module's rejection codes and, per entry point, their order of precedence.

Every code is part of consensus (it is hashed into the block's result root): never rename or
reuse one. Each entry point checks its codes in the order of its ``*_PRECEDENCE`` tuple below and
stops at the first that applies; ``core.invalid_message`` (message shape) comes before all of a
message's codes. README.md documents the same orders.

The guarded debit (the fee, every ``bank/send``, and every ``bank/send_from`` for its payer) checks,
in this order::

    bank.account_frozen -> bank.counterparty_not_allowed -> bank.per_tx_cap -> bank.window_limit
    -> bank.cosign_required -> identity.allowance_exceeded (from identity) -> bank.insufficient_funds
    (bank.insufficient_fee when the debit is the fee)
"""

from __future__ import annotations

from autarky.ledger.errors import ErrorCode

# ante (the fee), in order of precedence.
ACCOUNT_FROZEN = ErrorCode("bank.account_frozen", "the sender's wallet is frozen by its owner")
FEE_TOO_LOW = ErrorCode("bank.fee_too_low", "the transaction fee is below the chain's minimum fee")
INSUFFICIENT_FEE = ErrorCode("bank.insufficient_fee", "the sender cannot pay the transaction fee")

# Message checks (before any debit), in order of precedence.
INVALID_AMOUNT = ErrorCode("bank.invalid_amount", "the amount must be a whole number from 1 to 2**64-1")
INVALID_RECIPIENT = ErrorCode("bank.invalid_recipient", "the recipient is not an Ed25519 did:key")
SELF_TRANSFER = ErrorCode("bank.self_transfer", "an account cannot send to itself")
UNKNOWN_ASSET = ErrorCode("bank.unknown_asset", "no such asset on this chain")
NOT_OWNER = ErrorCode("bank.not_owner", "only the machine's registered owner may do this")
INVALID_GUARDRAILS = ErrorCode("bank.invalid_guardrails", "the guardrails are not well formed")

# The guarded debit, in order of precedence (ACCOUNT_FROZEN first, above).
COUNTERPARTY_NOT_ALLOWED = ErrorCode(
    "bank.counterparty_not_allowed", "the machine's guardrails do not allow paying this counterparty"
)
PER_TX_CAP = ErrorCode(
    "bank.per_tx_cap", "the transaction would spend more than the machine's per-transaction cap"
)
WINDOW_LIMIT = ErrorCode(
    "bank.window_limit", "the transaction would spend more than the machine's limit for its rolling window"
)
COSIGN_REQUIRED = ErrorCode(
    "bank.cosign_required", "a spend this large needs the owner's co-signature on the transaction"
)
INSUFFICIENT_FUNDS = ErrorCode("bank.insufficient_funds", "the balance is lower than the amount")

# bank/send_from: after the grant's own policy.* codes, before the guarded debit of the payer.
GRANTOR_MISMATCH = ErrorCode(
    "bank.grantor_mismatch", "the grant's root grantor is not the account the funds would leave"
)

GUARDED_DEBIT_PRECEDENCE = (
    ACCOUNT_FROZEN,
    COUNTERPARTY_NOT_ALLOWED,
    PER_TX_CAP,
    WINDOW_LIMIT,
    COSIGN_REQUIRED,
    # identity.allowance_exceeded, raised by the identity module, comes here.
    INSUFFICIENT_FUNDS,  # INSUFFICIENT_FEE when the debit is the fee
)
"""The order in which ``guardrails.guarded_debit`` checks a debit."""

ANTE_PRECEDENCE = (ACCOUNT_FROZEN, FEE_TOO_LOW, INSUFFICIENT_FEE)
SEND_PRECEDENCE = (INVALID_AMOUNT, INVALID_RECIPIENT, SELF_TRANSFER, UNKNOWN_ASSET, *GUARDED_DEBIT_PRECEDENCE)
SET_GUARDRAILS_PRECEDENCE = (NOT_OWNER, INVALID_GUARDRAILS)
FREEZE_PRECEDENCE = (NOT_OWNER,)
SWEEP_PRECEDENCE = (NOT_OWNER, INVALID_RECIPIENT, SELF_TRANSFER)
SEND_FROM_PRECEDENCE = (
    INVALID_AMOUNT,
    INVALID_RECIPIENT,
    SELF_TRANSFER,
    UNKNOWN_ASSET,
    # policy.unknown_grant ... policy.spend_over_limit, raised by the policy module, come here.
    GRANTOR_MISMATCH,
    *GUARDED_DEBIT_PRECEDENCE,
)

BANK_CODES = (
    ACCOUNT_FROZEN,
    FEE_TOO_LOW,
    INSUFFICIENT_FEE,
    INVALID_AMOUNT,
    INVALID_RECIPIENT,
    SELF_TRANSFER,
    UNKNOWN_ASSET,
    NOT_OWNER,
    INVALID_GUARDRAILS,
    COUNTERPARTY_NOT_ALLOWED,
    PER_TX_CAP,
    WINDOW_LIMIT,
    COSIGN_REQUIRED,
    INSUFFICIENT_FUNDS,
    GRANTOR_MISMATCH,
)
"""Every bank code. Part of consensus: add new codes, never rename or remove one."""
