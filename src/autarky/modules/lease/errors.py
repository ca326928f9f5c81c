"""The lease module's rejection codes, in order of precedence.

A message is checked top to bottom and the first failing check decides its code; README.md says
which codes each message can return. The code strings are part of consensus: never rename or
renumber them; add new codes at the place in the order where they are checked.

``core.invalid_message`` (a field is missing, unexpected or of the wrong type) comes before all of
these. Codes 1-8 need only the message; the rest read the state or the block time. ``lease/reserve``
ends with the escrow lock's codes (``escrow.invalid_amount``, ``bank.unknown_asset``, the bank's
guarded debit ``bank.account_frozen`` ... ``bank.insufficient_funds``).
"""

from __future__ import annotations

from autarky.ledger.errors import ErrorCode

# Checks on the message alone (lease/offer).
INVALID_KIND = ErrorCode("lease.invalid_kind", "resource_kind is not [a-z][a-z0-9_-]{0,31}")
INVALID_RESOURCE = ErrorCode("lease.invalid_resource", "resource is not a valid resource path")
INVALID_PRICE = ErrorCode("lease.invalid_price", "price_per_period is not from 1 to 2**64-1")
INVALID_ASSET = ErrorCode("lease.invalid_asset", "asset is not an asset name")
INVALID_PERIOD = ErrorCode("lease.invalid_period", "period_ms is outside the chain's bounds")
INVALID_PERIODS = ErrorCode(
    "lease.invalid_periods", "min_periods and max_periods are not 1 <= min <= max <= the chain's maximum"
)
INVALID_SERVICE_LEVEL = ErrorCode(
    "lease.invalid_service_level", "service_level is not a map of up to 16 metric names to integers"
)
INVALID_MONITOR = ErrorCode("lease.invalid_monitor", "monitor is not an Ed25519 did:key, or is the provider")

# Finding the record and the sender's role in it.
UNKNOWN_OFFER = ErrorCode("lease.unknown_offer", "no offer has this id")
UNKNOWN_LEASE = ErrorCode("lease.unknown_lease", "no lease has this id")
NOT_PROVIDER = ErrorCode("lease.not_provider", "only the offer's provider may do this")
NOT_RENTER = ErrorCode("lease.not_renter", "only the lease's renter may do this")
NOT_MONITOR = ErrorCode("lease.not_monitor", "only the monitor the offer names may judge a breach")

# Reserving a slot.
OFFER_WITHDRAWN = ErrorCode("lease.offer_withdrawn", "the offer has been withdrawn")
SELF_LEASE = ErrorCode("lease.self_lease", "the renter is the offer's provider or its monitor")
PERIODS_OUT_OF_RANGE = ErrorCode(
    "lease.periods_out_of_range", "periods is outside the offer's min_periods..max_periods"
)
INVALID_START = ErrorCode(
    "lease.invalid_start", "start_ms is before the block time, too far ahead, or the lease ends too late"
)
SLOT_TAKEN = ErrorCode("lease.slot_taken", "another reservation of the same resource overlaps the slot")

# The lease's life.
NOT_RESERVED = ErrorCode("lease.not_reserved", "the lease is not waiting for its start to be confirmed")
CONFIRM_TOO_LATE = ErrorCode("lease.confirm_too_late", "the time to confirm the start has passed")
NOT_ACTIVE = ErrorCode("lease.not_active", "the lease is not running (not confirmed yet, or closed)")
CLOSED = ErrorCode("lease.closed", "the lease is closed")
NOTHING_TO_END = ErrorCode("lease.nothing_to_end", "every period of the lease has started")

# Service-level breaches.
CLAIM_OPEN = ErrorCode("lease.claim_open", "a breach claim of this lease is still open")
UNKNOWN_METRIC = ErrorCode("lease.unknown_metric", "the offer's service level has no such metric")
INVALID_CLAIM = ErrorCode(
    "lease.invalid_claim", "the claimed periods are settled, not started yet, or outside the lease"
)
CLAIM_TOO_LATE = ErrorCode("lease.claim_too_late", "the report window of the first claimed period has passed")
NO_CLAIM = ErrorCode("lease.no_claim", "the lease has no open breach claim")

LEASE_CODES_IN_PRECEDENCE = (
    INVALID_KIND,
    INVALID_RESOURCE,
    INVALID_PRICE,
    INVALID_ASSET,
    INVALID_PERIOD,
    INVALID_PERIODS,
    INVALID_SERVICE_LEVEL,
    INVALID_MONITOR,
    UNKNOWN_OFFER,
    UNKNOWN_LEASE,
    NOT_PROVIDER,
    NOT_RENTER,
    NOT_MONITOR,
    OFFER_WITHDRAWN,
    SELF_LEASE,
    PERIODS_OUT_OF_RANGE,
    INVALID_START,
    SLOT_TAKEN,
    NOT_RESERVED,
    CONFIRM_TOO_LATE,
    NOT_ACTIVE,
    CLOSED,
    NOTHING_TO_END,
    CLAIM_OPEN,
    UNKNOWN_METRIC,
    INVALID_CLAIM,
    CLAIM_TOO_LATE,
    NO_CLAIM,
)
"""Every lease code, in order of precedence. Part of consensus: add codes, never rename one."""
