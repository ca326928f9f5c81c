"""The metering module's rejection codes, in order of precedence.

A message is checked top to bottom and the first failing check decides its code; README.md says
which codes each message can return. The code strings are part of consensus: never rename or
renumber them; add new codes at the place in the order where they are checked.

``core.invalid_message`` (a field is missing, unexpected or of the wrong type) comes before all of
these. Codes 1-8 need only the message, its sender and the block time; the rest read the state.
A ``metering/deposit`` that passes every metering check can still be refused by the escrow and the
bank (``escrow.invalid_amount`` ... ``bank.insufficient_funds``), after code 22.
"""

from __future__ import annotations

from autarky.ledger.errors import ErrorCode

# Checks on the message alone (its sender, and the injected block time), before any state is read.
INVALID_ACCOUNT = ErrorCode(
    "metering.invalid_account",
    "meter, subject or infra is not an Ed25519 did:key, or an account is its own infrastructure",
)
INVALID_DIRECTION = ErrorCode(
    "metering.invalid_direction",
    "direction is not 'export' or 'import', or an infrastructure meter is not an 'import' meter",
)
INVALID_UNIT = ErrorCode(
    "metering.invalid_unit", "the unit is not 1 to 16 of a-z, 0-9 starting with a letter"
)
INVALID_READING = ErrorCode(
    "metering.invalid_reading",
    "the batch is empty or too long, or a reading's value or time is outside 0..2**64-1",
)
WRONG_METER = ErrorCode("metering.wrong_meter", "a reading names a meter other than the transaction's sender")
INVALID_TARIFF = ErrorCode(
    "metering.invalid_tariff", "the tariff's asset is not an asset name or its price is outside 0..2**64-1"
)
INVALID_AMOUNT = ErrorCode("metering.invalid_amount", "the amount is not from 1 to 2**64-1")
INVALID_EXPIRY = ErrorCode(
    "metering.invalid_expiry", "expires_ms is outside 0..10**16-2 or not later than the block time"
)
FUTURE_READING = ErrorCode("metering.future_reading", "a reading is timed after the block time")

# Checks against the ledger state.
UNKNOWN_METER = ErrorCode("metering.unknown_meter", "the meter is not registered")
UNKNOWN_DEPOSIT = ErrorCode("metering.unknown_deposit", "no open metering deposit has this lock id")
NOT_AUTHORISED = ErrorCode(
    "metering.not_authorised",
    "the sender does not control the account this message acts for (its owner, or itself if unowned)",
)
METER_NOT_SIGNED = ErrorCode(
    "metering.meter_not_signed", "the meter neither co-signs its registration nor is owned by the sender"
)
METER_NOT_OF_INFRA = ErrorCode(
    "metering.meter_not_of_infra",
    "an infrastructure meter must be the infrastructure itself or be controlled by the same account",
)
ALREADY_REGISTERED = ErrorCode("metering.already_registered", "the meter is already registered")
UNIT_MISMATCH = ErrorCode(
    "metering.unit_mismatch", "the subject already has meters of this direction measuring another unit"
)
BEFORE_REGISTRATION = ErrorCode(
    "metering.before_registration", "a reading is timed before the meter's registration"
)
DUPLICATE_READING = ErrorCode(
    "metering.duplicate_reading",
    "a reading is timed at or before the meter's last reading (it arrived twice)",
)
VALUE_BACKWARDS = ErrorCode("metering.value_backwards", "a reading's value is below the meter's last value")
OVERFLOW = ErrorCode("metering.overflow", "a usage record, a bill or a total would exceed 2**64-1")
NO_TARIFF = ErrorCode("metering.no_tariff", "the infrastructure has no tariff (its own or the default)")
ASSET_MISMATCH = ErrorCode("metering.asset_mismatch", "the infrastructure's tariff is in another asset")
INSUFFICIENT_DEPOSIT = ErrorCode("metering.insufficient_deposit", "the deposit holds less than the amount")

METERING_CODES_IN_PRECEDENCE = (
    INVALID_ACCOUNT,
    INVALID_DIRECTION,
    INVALID_UNIT,
    INVALID_READING,
    WRONG_METER,
    INVALID_TARIFF,
    INVALID_AMOUNT,
    INVALID_EXPIRY,
    FUTURE_READING,
    UNKNOWN_METER,
    UNKNOWN_DEPOSIT,
    NOT_AUTHORISED,
    METER_NOT_SIGNED,
    METER_NOT_OF_INFRA,
    ALREADY_REGISTERED,
    UNIT_MISMATCH,
    BEFORE_REGISTRATION,
    DUPLICATE_READING,
    VALUE_BACKWARDS,
    OVERFLOW,
    NO_TARIFF,
    ASSET_MISMATCH,
    INSUFFICIENT_DEPOSIT,
)
"""Every metering code, in order of precedence. Part of consensus: add codes, never rename one."""

REGISTER_PRECEDENCE = (
    INVALID_ACCOUNT,
    INVALID_DIRECTION,
    INVALID_UNIT,
    NOT_AUTHORISED,
    METER_NOT_SIGNED,
    METER_NOT_OF_INFRA,
    ALREADY_REGISTERED,
    UNIT_MISMATCH,
)
DEREGISTER_PRECEDENCE = (INVALID_ACCOUNT, UNKNOWN_METER, NOT_AUTHORISED)
READ_PRECEDENCE = (
    INVALID_READING,
    WRONG_METER,
    FUTURE_READING,
    UNKNOWN_METER,
    BEFORE_REGISTRATION,
    DUPLICATE_READING,
    VALUE_BACKWARDS,
    OVERFLOW,
)
SET_TARIFF_PRECEDENCE = (INVALID_ACCOUNT, INVALID_TARIFF, NOT_AUTHORISED)
DEPOSIT_PRECEDENCE = (INVALID_ACCOUNT, INVALID_AMOUNT, INVALID_EXPIRY, NO_TARIFF, ASSET_MISMATCH)
WITHDRAW_PRECEDENCE = (INVALID_AMOUNT, UNKNOWN_DEPOSIT, NOT_AUTHORISED, INSUFFICIENT_DEPOSIT)
