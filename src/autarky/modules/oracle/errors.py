"""The oracle module's rejection codes, in order of precedence.

A message is checked top to bottom and the first failing check decides its code; README.md says
which codes each message can return. The code strings are part of consensus: never rename or
renumber them; add new codes at the place in the order where they are checked.

``core.invalid_message`` (a field is missing, unexpected or of the wrong type) comes before all of
these. Codes 1-9 need only the message (and the module's genesis parameters); 10-20 read the state
and the block time. ``oracle/fund`` continues with the escrow's codes (``escrow.invalid_amount``,
``escrow.invalid_expiry``, ``bank.unknown_asset``, then the bank's guarded-debit codes) after its own.
"""

from __future__ import annotations

from autarky.ledger.errors import ErrorCode

# Checks on the message alone.
INVALID_FEED = ErrorCode("oracle.invalid_feed", "the feed name is not a valid feed name")
INVALID_REPORTERS = ErrorCode(
    "oracle.invalid_reporters",
    "the reporters are not 1 to max_reporters distinct Ed25519 did:keys",
)
INVALID_QUORUM = ErrorCode("oracle.invalid_quorum", "the quorum is not from 1 to the number of reporters")
INVALID_TIMING = ErrorCode(
    "oracle.invalid_timing",
    "heartbeat_ms is not from 1 to the largest heartbeat, or round_ms is not from 1 to heartbeat_ms",
)
INVALID_DECIMALS = ErrorCode("oracle.invalid_decimals", "decimals is not from 0 to 18")
INVALID_DESCRIPTION = ErrorCode("oracle.invalid_description", "the description is longer than 256 bytes")
INVALID_ROUND = ErrorCode("oracle.invalid_round", "the round is not from 1 to 2**64-1")
INVALID_VALUE = ErrorCode("oracle.invalid_value", "the value is not a signed 64-bit integer")
INVALID_REWARD = ErrorCode(
    "oracle.invalid_reward", "the reward per report is not from 1 to 2**64-1, or is more than the amount"
)

# Checks against the ledger state and the block time.
FEED_EXISTS = ErrorCode("oracle.feed_exists", "a feed with this name exists")
UNKNOWN_FEED = ErrorCode("oracle.unknown_feed", "no feed has this name")
NOT_OWNER = ErrorCode("oracle.not_owner", "only the feed's owner may change its reporters")
NOT_REPORTER = ErrorCode("oracle.not_reporter", "the sender is not a registered reporter of the feed")
ROUND_CLOSED = ErrorCode(
    "oracle.round_closed", "the round is before the feed's current round: final, stale or abandoned"
)
ROUND_AHEAD = ErrorCode("oracle.round_ahead", "the round is after the feed's current round")
ROUND_STALE = ErrorCode(
    "oracle.round_stale", "the current round has been open round_ms or longer; it closes as stale"
)
ALREADY_REPORTED = ErrorCode("oracle.already_reported", "the reporter has already reported in this round")
BUDGET_EXISTS = ErrorCode("oracle.budget_exists", "the feed already has a reward budget")
NO_BUDGET = ErrorCode("oracle.no_budget", "the feed has no reward budget")
NOT_FUNDER = ErrorCode("oracle.not_funder", "only the account that funded the budget may withdraw it")

ORACLE_CODES_IN_PRECEDENCE = (
    INVALID_FEED,
    INVALID_REPORTERS,
    INVALID_QUORUM,
    INVALID_TIMING,
    INVALID_DECIMALS,
    INVALID_DESCRIPTION,
    INVALID_ROUND,
    INVALID_VALUE,
    INVALID_REWARD,
    FEED_EXISTS,
    UNKNOWN_FEED,
    NOT_OWNER,
    NOT_REPORTER,
    ROUND_CLOSED,
    ROUND_AHEAD,
    ROUND_STALE,
    ALREADY_REPORTED,
    BUDGET_EXISTS,
    NO_BUDGET,
    NOT_FUNDER,
)
"""Every oracle code, in order of precedence. Part of consensus: add codes, never rename one."""
