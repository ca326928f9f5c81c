"""The jobs module's rejection codes, in order of precedence.

A message is checked top to bottom and the first failing check decides its code; README.md says
which codes each message can return. The code strings are part of consensus: never rename or
renumber them; add new codes at the place in the order where they are checked.

``core.invalid_message`` (a field is missing, unexpected or of the wrong type) comes before all of
these. Codes 1-6 need only the message; 7 the block time and parameters; the rest read the state.
``jobs/post`` ends with the escrow lock's codes (``escrow.invalid_amount``, ``bank.unknown_asset``,
the bank's guarded debit ``bank.account_frozen`` ... ``bank.insufficient_funds``).
"""

from __future__ import annotations

from autarky.ledger.errors import ErrorCode

# Checks on the message alone (jobs/post).
INVALID_KIND = ErrorCode("jobs.invalid_kind", "kind is not [a-z][a-z0-9_-]{0,31}")
INVALID_DESCRIPTION = ErrorCode(
    "jobs.invalid_description", "description is not 1 to 280 characters without control characters"
)
INVALID_BOUNTY = ErrorCode("jobs.invalid_bounty", "bounty is not from 1 to 2**64-1")
INVALID_ASSET = ErrorCode("jobs.invalid_asset", "asset is not an asset name")
INVALID_ATTESTERS = ErrorCode(
    "jobs.invalid_attesters",
    'attesters is not 1 to 8 distinct entries, each "poster", "owner" or an Ed25519 did:key other '
    "than the poster",
)
INVALID_ARBITER = ErrorCode(
    "jobs.invalid_arbiter", "arbiter is not an Ed25519 did:key, or is the poster or a named attester"
)
INVALID_DEADLINE = ErrorCode(
    "jobs.invalid_deadline", "deadline_ms is not after the block time, or too far ahead"
)
NO_OWNER = ErrorCode("jobs.no_owner", 'the attesters name "owner" but the poster has no registered owner')

# Finding the job and the sender's role in it.
UNKNOWN_JOB = ErrorCode("jobs.unknown_job", "no job has this id")
NOT_POSTER = ErrorCode("jobs.not_poster", "only the job's poster, or its owner, may do this")
NOT_PROVIDER = ErrorCode("jobs.not_provider", "only the provider who accepted the job may do this")
NOT_ATTESTER = ErrorCode("jobs.not_attester", "the sender is not an allowed attester of this job")
NOT_ARBITER = ErrorCode("jobs.not_arbiter", "only the job's arbiter may resolve a dispute")

# The job's status.
NOT_OPEN = ErrorCode("jobs.not_open", "the job is not open")
NOT_ACCEPTED = ErrorCode("jobs.not_accepted", "the job is not accepted and waiting for completion")
NOT_COMPLETED = ErrorCode("jobs.not_completed", "the job is not completed and waiting for attestation")
NOT_ATTESTED = ErrorCode("jobs.not_attested", "the job is not attested and in its dispute window")
NOT_DISPUTED = ErrorCode("jobs.not_disputed", "the job is not disputed")

# Times and the rest.
DEADLINE_PASSED = ErrorCode("jobs.deadline_passed", "the job's deadline has passed")
CONFLICTING_ROLE = ErrorCode(
    "jobs.conflicting_role", "the provider may not be the poster, its arbiter or one of its attesters"
)
ATTEST_TOO_LATE = ErrorCode("jobs.attest_too_late", "the time to attest the completion has passed")
EVIDENCE_MISMATCH = ErrorCode("jobs.evidence_mismatch", "the attested evidence is not the completion's")
DISPUTE_TOO_LATE = ErrorCode("jobs.dispute_too_late", "the dispute window has closed")
RESOLVE_TOO_LATE = ErrorCode("jobs.resolve_too_late", "the time to resolve the dispute has passed")
INVALID_AMOUNT = ErrorCode("jobs.invalid_amount", "provider_amount is not from 0 to the bounty")

JOBS_CODES_IN_PRECEDENCE = (
    INVALID_KIND,
    INVALID_DESCRIPTION,
    INVALID_BOUNTY,
    INVALID_ASSET,
    INVALID_ATTESTERS,
    INVALID_ARBITER,
    INVALID_DEADLINE,
    NO_OWNER,
    UNKNOWN_JOB,
    NOT_POSTER,
    NOT_PROVIDER,
    NOT_ATTESTER,
    NOT_ARBITER,
    NOT_OPEN,
    NOT_ACCEPTED,
    NOT_COMPLETED,
    NOT_ATTESTED,
    NOT_DISPUTED,
    DEADLINE_PASSED,
    CONFLICTING_ROLE,
    ATTEST_TOO_LATE,
    EVIDENCE_MISMATCH,
    DISPUTE_TOO_LATE,
    RESOLVE_TOO_LATE,
    INVALID_AMOUNT,
)
"""Every jobs code, in order of precedence. Part of consensus: add codes, never rename one."""
