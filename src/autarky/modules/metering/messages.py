"""The metering messages as typed, frozen values: parsing, value checks and builders.

Parsing checks the message alone (and its sender), never the state, in two stages whose order is
part of the module's precedence (README.md):

1. shape: every required field is present, no unexpected field is, and every field has its type
   (``core.invalid_message``); the optional fields (``infra`` of register, ``meter`` of a reading,
   ``amount`` of withdraw) may be left out or be None;
2. values, code by code in the order of ``errors.py``: ``metering.invalid_account``,
   ``metering.invalid_direction``, ``metering.invalid_unit``, ``metering.invalid_reading``,
   ``metering.wrong_meter``, ``metering.invalid_tariff``, ``metering.invalid_amount``,
   ``metering.invalid_expiry`` (only the range here; the handler compares with the block time).

A batch of readings is checked whole at each stage: every reading's shape, then every reading's
range, then every reading's meter, so the code of a batch does not depend on which reading is bad.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.ledger.errors import INVALID_MESSAGE, TxError
from autarky.ledger.router import check_field_names, require_field, require_text
from autarky.ledger.tx import MAX_U64
from autarky.modules.metering.errors import (
    INVALID_ACCOUNT,
    INVALID_AMOUNT,
    INVALID_DIRECTION,
    INVALID_EXPIRY,
    INVALID_READING,
    INVALID_TARIFF,
    INVALID_UNIT,
    WRONG_METER,
)

REGISTER = "metering/register"
DEREGISTER = "metering/deregister"
READ = "metering/read"
SET_TARIFF = "metering/set_tariff"
DEPOSIT = "metering/deposit"
WITHDRAW = "metering/withdraw"
MESSAGE_TYPES = (REGISTER, DEREGISTER, READ, SET_TARIFF, DEPOSIT, WITHDRAW)

EXPORT = "export"
IMPORT = "import"
DIRECTIONS = (EXPORT, IMPORT)
"""``export``: delivered by the subject to the grid; ``import``: taken by the subject."""

MAX_READINGS = 256
"""Most readings in one ``metering/read`` message (a day of 15-minute readings is 96)."""
MAX_EXPIRY_MS = 10**16 - 2
"""The latest deposit expiry: the escrow lock behind it expires 1 ms later, and the escrow takes
expiries up to 10**16 - 1 (16 digits, the year 2286)."""
LOCK_ID_BYTES = 32

# The bank's asset names (modules/bank/keeper.py); units use the same form.
_NAME = re.compile(r"[a-z][a-z0-9]{0,15}")


def is_name(value: object) -> bool:
    """An asset or unit name: 1 to 16 of a-z, 0-9, starting with a letter."""
    return type(value) is str and _NAME.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Register:
    meter: str
    subject: str
    direction: str
    unit: str
    infra: str | None


@dataclass(frozen=True, slots=True)
class Deregister:
    meter: str


@dataclass(frozen=True, slots=True)
class Reading:
    value: int
    """The meter's cumulative register (e.g. Wh since it was made); never goes down."""
    time_ms: int
    """When the meter took the reading, in ms since the Unix epoch (its own clock)."""


@dataclass(frozen=True, slots=True)
class Read:
    readings: tuple[Reading, ...]
    """In the order given, which must be the order they were taken (strictly increasing times)."""


@dataclass(frozen=True, slots=True)
class SetTariff:
    infra: str
    asset: str
    price_per_unit: int


@dataclass(frozen=True, slots=True)
class Deposit:
    infra: str
    asset: str
    amount: int
    expires_ms: int


@dataclass(frozen=True, slots=True)
class Withdraw:
    lock: bytes
    amount: int | None
    """None: everything the deposit still holds."""


# ---------------------------------------------------------------------------------------------------
# Parsers, one per message


def parse_register(message: Mapping[str, Any]) -> Register:
    check_field_names(message, ("meter", "subject", "direction", "unit"), ("infra",))
    meter = require_text(message, "meter")
    subject = require_text(message, "subject")
    direction = require_text(message, "direction")
    unit = require_text(message, "unit")
    infra = _optional_text(message, "infra")
    for name, value in (("meter", meter), ("subject", subject), ("infra", infra)):
        if value is not None:
            _check_account(name, value)
    if infra == subject:
        raise INVALID_ACCOUNT("the subject cannot be its own infrastructure")
    if direction not in DIRECTIONS:
        raise INVALID_DIRECTION(f"direction {direction[:40]!r} is not 'export' or 'import'")
    if infra is not None and direction != IMPORT:
        raise INVALID_DIRECTION("a meter at an infrastructure measures what the subject takes: 'import'")
    if not is_name(unit):
        raise INVALID_UNIT(f"unit {unit[:40]!r} is not 1 to 16 of a-z, 0-9 starting with a letter")
    return Register(meter, subject, direction, unit, infra)


def parse_deregister(message: Mapping[str, Any]) -> Deregister:
    check_field_names(message, ("meter",), ())
    meter = require_text(message, "meter")
    _check_account("meter", meter)
    return Deregister(meter)


def parse_read(message: Mapping[str, Any], sender: str) -> Read:
    check_field_names(message, ("readings",), ())
    items = require_field(message, "readings", list)
    shaped = [_reading_shape(index, item) for index, item in enumerate(items)]
    if not 1 <= len(shaped) <= MAX_READINGS:
        raise INVALID_READING(f"a batch holds 1 to {MAX_READINGS} readings, not {len(shaped)}")
    for index, (_, value, time_ms) in enumerate(shaped):
        if not 0 <= value <= MAX_U64 or not 0 <= time_ms <= MAX_U64:
            raise INVALID_READING(f"readings[{index}]: value and time_ms must be from 0 to 2**64-1")
    for index, (meter, _, _) in enumerate(shaped):
        if meter is not None and meter != sender:
            raise WRONG_METER(
                f"readings[{index}] names meter {meter[:80]!r}; the sender signs its own readings"
            )
    return Read(tuple(Reading(value, time_ms) for _, value, time_ms in shaped))


def parse_set_tariff(message: Mapping[str, Any]) -> SetTariff:
    check_field_names(message, ("infra", "asset", "price_per_unit"), ())
    infra = require_text(message, "infra")
    asset = require_text(message, "asset")
    price = require_field(message, "price_per_unit", int)
    _check_account("infra", infra)
    if not is_name(asset):
        raise INVALID_TARIFF(f"asset {asset[:40]!r} is not an asset name")
    if not 0 <= price <= MAX_U64:
        raise INVALID_TARIFF("price_per_unit must be from 0 to 2**64-1")
    return SetTariff(infra, asset, price)


def parse_deposit(message: Mapping[str, Any], sender: str) -> Deposit:
    check_field_names(message, ("infra", "asset", "amount", "expires_ms"), ())
    infra = require_text(message, "infra")
    asset = require_text(message, "asset")
    amount = require_field(message, "amount", int)
    expires_ms = require_field(message, "expires_ms", int)
    _check_account("infra", infra)
    if infra == sender:
        raise INVALID_ACCOUNT("an account cannot deposit with itself as the infrastructure")
    check_amount(amount)
    if not 0 <= expires_ms <= MAX_EXPIRY_MS:
        raise INVALID_EXPIRY("expires_ms must be a time in ms from 0 to 10**16-2")
    return Deposit(infra, asset, amount, expires_ms)


def parse_withdraw(message: Mapping[str, Any]) -> Withdraw:
    check_field_names(message, ("lock",), ("amount",))
    lock = message.get("lock")
    if type(lock) is not bytes or len(lock) != LOCK_ID_BYTES:
        raise INVALID_MESSAGE(f"field 'lock' must be a {LOCK_ID_BYTES}-byte lock id")
    amount = message.get("amount")
    if amount is not None and type(amount) is not int:
        raise INVALID_MESSAGE("field 'amount' must be an integer or None")
    if amount is not None:
        check_amount(amount)
    return Withdraw(lock, amount)


# ---------------------------------------------------------------------------------------------------
# Builders: the message maps clients put in a transaction body


def register(meter: str, subject: str, direction: str, unit: str, infra: str | None = None) -> dict[str, Any]:
    return {
        "type": REGISTER,
        "meter": meter,
        "subject": subject,
        "direction": direction,
        "unit": unit,
        "infra": infra,
    }


def deregister(meter: str) -> dict[str, Any]:
    return {"type": DEREGISTER, "meter": meter}


def read(readings: Sequence[tuple[int, int]]) -> dict[str, Any]:
    """``readings`` as ``(value, time_ms)`` pairs, oldest first."""
    return {"type": READ, "readings": [{"value": value, "time_ms": time_ms} for value, time_ms in readings]}


def set_tariff(infra: str, asset: str, price_per_unit: int) -> dict[str, Any]:
    return {"type": SET_TARIFF, "infra": infra, "asset": asset, "price_per_unit": price_per_unit}


def deposit(infra: str, asset: str, amount: int, expires_ms: int) -> dict[str, Any]:
    return {"type": DEPOSIT, "infra": infra, "asset": asset, "amount": amount, "expires_ms": expires_ms}


def withdraw(lock: bytes, amount: int | None = None) -> dict[str, Any]:
    return {"type": WITHDRAW, "lock": lock, "amount": amount}


# ---------------------------------------------------------------------------------------------------
# Checks


def check_amount(amount: int) -> None:
    if not 1 <= amount <= MAX_U64:
        raise INVALID_AMOUNT(f"amount {amount} is not from 1 to 2**64-1")


def _check_account(name: str, value: str) -> None:
    if not is_did_key(value):
        raise INVALID_ACCOUNT(f"{name} {value[:80]!r} is not an Ed25519 did:key")


def _optional_text(message: Mapping[str, Any], name: str) -> str | None:
    value = message.get(name)
    if value is not None and type(value) is not str:
        raise INVALID_MESSAGE(f"field {name!r} must be text or None")
    return value


def _reading_shape(index: int, item: object) -> tuple[str | None, int, int]:
    """``(meter, value, time_ms)`` of one reading, or ``core.invalid_message``."""
    if type(item) is not dict:
        raise INVALID_MESSAGE(f"readings[{index}] must be a map {{value, time_ms, meter?}}")
    try:
        check_field_names(item, ("value", "time_ms"), ("meter",))
        meter = _optional_text(item, "meter")
        value = require_field(item, "value", int)
        time_ms = require_field(item, "time_ms", int)
    except TxError as exc:
        raise INVALID_MESSAGE(f"readings[{index}]: {exc.detail}") from None
    return meter, value, time_ms
