"""The metering module's state: the only functions that read or write keys under ``metering/``.

State keys (values are canonical CBOR; ``<interval>`` and ``<ms>`` are 20 decimal digits, so
prefix scans list intervals and due deposits in time order)::

    metering/params                                        Params (absent: the defaults)
    metering/meter/<meter>                                 MeterRecord of a registered meter
    metering/last/<meter>                                  [time_ms, value]: the meter's last reading
    metering/by_subject/<subject>/<direction>/<meter>      unit: the subject's meters
    metering/usage/<account>/<direction>/<interval>        int > 0: energy in that interval
    metering/tariff/<infra>                                Tariff set by the infrastructure's controller
    metering/bill/<payer>/<infra>/<asset>/<interval>       [quantity, amount] billed in that interval
    metering/statement/<payer>/<infra>/<asset>             Statement: totals and outstanding debt
    metering/deposit/<lock hex>                            DepositRecord of an open deposit
    metering/deposit_of/<payer>/<infra>/<asset>/<ms>/<lock hex>   True: deposits by payer, by expiry
    metering/deposit_due/<ms>/<lock hex>                   the payer: deposits by expiry (end_block)

``metering/last/<meter>`` outlives a registration, so a meter's readings are monotone over its
whole life (re-registering it cannot count energy twice).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from autarky.encoding import decode_trusted
from autarky.ledger.state import Overlay, StateReader, get_obj, get_record

PARAMS_KEY = "metering/params"
METER_PREFIX = "metering/meter/"
LAST_PREFIX = "metering/last/"
BY_SUBJECT_PREFIX = "metering/by_subject/"
USAGE_PREFIX = "metering/usage/"
TARIFF_PREFIX = "metering/tariff/"
BILL_PREFIX = "metering/bill/"
STATEMENT_PREFIX = "metering/statement/"
DEPOSIT_PREFIX = "metering/deposit/"
DEPOSIT_OF_PREFIX = "metering/deposit_of/"
DEPOSIT_DUE_PREFIX = "metering/deposit_due/"

DEFAULT_INTERVAL_MS = 900_000
TIME_DIGITS = 20
"""Every u64 fits in 20 decimal digits; zero-padded, text order is numeric order."""


def padded(number: int) -> str:
    assert 0 <= number < 10**TIME_DIGITS, number
    return f"{number:0{TIME_DIGITS}d}"


# ---------------------------------------------------------------------------------------------------
# Records


@dataclass(frozen=True, slots=True)
class Tariff:
    asset: str
    price_per_unit: int

    def to_cbor(self) -> dict[str, Any]:
        return {"asset": self.asset, "price_per_unit": self.price_per_unit}

    @classmethod
    def from_cbor(cls, value: Any) -> Tariff:
        return cls(value["asset"], value["price_per_unit"])


@dataclass(frozen=True, slots=True)
class Params:
    interval_ms: int = DEFAULT_INTERVAL_MS
    default_tariff: Tariff | None = None
    """The tariff of an infrastructure that has not set its own (set by governance); None: none."""

    def to_cbor(self) -> dict[str, Any]:
        tariff = None if self.default_tariff is None else self.default_tariff.to_cbor()
        return {"interval_ms": self.interval_ms, "default_tariff": tariff}

    @classmethod
    def from_cbor(cls, value: Any) -> Params:
        tariff = value["default_tariff"]
        return cls(value["interval_ms"], None if tariff is None else Tariff.from_cbor(tariff))


@dataclass(frozen=True, slots=True)
class MeterRecord:
    meter: str
    subject: str
    direction: str
    unit: str
    infra: str | None
    registered: int
    """The height of the registration."""
    registered_ms: int
    """The block time of the registration: readings taken before it are refused."""
    baseline: int | None
    """The value of the first reading since registration (None before it)."""
    counted: int
    """Energy attributed to intervals since registration: last value - baseline."""
    readings: int
    """Readings accepted since registration, the baseline included."""

    def to_cbor(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "direction": self.direction,
            "unit": self.unit,
            "infra": self.infra,
            "registered": self.registered,
            "registered_ms": self.registered_ms,
            "baseline": self.baseline,
            "counted": self.counted,
            "readings": self.readings,
        }

    @classmethod
    def from_cbor(cls, meter: str, value: Any) -> MeterRecord:
        return cls(
            meter,
            value["subject"],
            value["direction"],
            value["unit"],
            value["infra"],
            value["registered"],
            value["registered_ms"],
            value["baseline"],
            value["counted"],
            value["readings"],
        )


@dataclass(frozen=True, slots=True)
class LastReading:
    time_ms: int
    value: int


@dataclass(frozen=True, slots=True)
class Statement:
    """What a payer owes an infrastructure in one asset, over the life of the chain."""

    quantity: int = 0
    """Units billed."""
    billed: int = 0
    """Amount billed: the sum of quantity * tariff of every bill."""
    paid: int = 0
    """Amount paid to the infrastructure from deposits (when billed, or later against debt)."""
    debt: int = 0
    """Amount billed and not paid yet: always billed - paid."""

    def to_cbor(self) -> dict[str, Any]:
        return {"quantity": self.quantity, "billed": self.billed, "paid": self.paid, "debt": self.debt}

    @classmethod
    def from_cbor(cls, value: Any) -> Statement:
        return cls(value["quantity"], value["billed"], value["paid"], value["debt"])


@dataclass(frozen=True, slots=True)
class DepositRecord:
    lock: bytes
    payer: str
    infra: str
    asset: str
    amount: int
    """What the escrow lock still holds: exactly its remaining amount."""
    expires_ms: int
    height: int

    def to_cbor(self) -> dict[str, Any]:
        return {
            "payer": self.payer,
            "infra": self.infra,
            "asset": self.asset,
            "amount": self.amount,
            "expires_ms": self.expires_ms,
            "height": self.height,
        }

    @classmethod
    def from_cbor(cls, lock: bytes, value: Any) -> DepositRecord:
        return cls(
            lock,
            value["payer"],
            value["infra"],
            value["asset"],
            value["amount"],
            value["expires_ms"],
            value["height"],
        )


# ---------------------------------------------------------------------------------------------------
# Parameters


def read_params(state: StateReader) -> Params:
    found = get_record(state, PARAMS_KEY, Params.from_cbor)
    return Params() if found is None else found


def write_params(state: Overlay, params: Params) -> None:
    state.set_obj(PARAMS_KEY, params.to_cbor())


# ---------------------------------------------------------------------------------------------------
# Meters and readings


def meter_key(meter: str) -> str:
    return METER_PREFIX + meter


def last_key(meter: str) -> str:
    return LAST_PREFIX + meter


def by_subject_key(subject: str, direction: str, meter: str) -> str:
    return f"{BY_SUBJECT_PREFIX}{subject}/{direction}/{meter}"


def read_meter(state: StateReader, meter: str) -> MeterRecord | None:
    value = get_obj(state, meter_key(meter))
    return None if value is None else MeterRecord.from_cbor(meter, value)


def read_last(state: StateReader, meter: str) -> LastReading | None:
    value = get_obj(state, last_key(meter))
    return None if value is None else LastReading(value[0], value[1])


def meters_of(state: StateReader, subject: str, direction: str | None = None) -> list[tuple[str, str, str]]:
    """``(direction, meter, unit)`` of every meter registered to ``subject``, in key order."""
    prefix = f"{BY_SUBJECT_PREFIX}{subject}/" + ("" if direction is None else f"{direction}/")
    found: list[tuple[str, str, str]] = []
    for key, raw in state.iter_prefix(prefix):
        found_direction, _, meter = key[len(BY_SUBJECT_PREFIX) + len(subject) + 1 :].partition("/")
        found.append((found_direction, meter, str(decode_trusted(raw))))
    return found


def write_meter(state: Overlay, record: MeterRecord) -> None:
    state.set_obj(meter_key(record.meter), record.to_cbor())


def add_meter(state: Overlay, record: MeterRecord) -> None:
    """Store a new registration and its index entry. The caller has done every check."""
    assert state.get(meter_key(record.meter)) is None, record.meter
    write_meter(state, record)
    state.set_obj(by_subject_key(record.subject, record.direction, record.meter), record.unit)


def remove_meter(state: Overlay, record: MeterRecord) -> None:
    """Forget a registration; its last reading and the usage it produced stay."""
    state.delete(meter_key(record.meter))
    state.delete(by_subject_key(record.subject, record.direction, record.meter))


def write_last(state: Overlay, meter: str, reading: LastReading) -> None:
    state.set_obj(last_key(meter), [reading.time_ms, reading.value])


def usage_key(account: str, direction: str, interval: int) -> str:
    return f"{USAGE_PREFIX}{account}/{direction}/{padded(interval)}"


def usage(state: StateReader, account: str, direction: str, interval: int) -> int:
    if not 0 <= interval < 10**TIME_DIGITS:
        return 0
    value = get_obj(state, usage_key(account, direction, interval))
    return 0 if value is None else int(value)


def write_usage(state: Overlay, account: str, direction: str, interval: int, energy: int) -> None:
    assert energy > 0
    state.set_obj(usage_key(account, direction, interval), energy)


def usage_range(
    state: StateReader, account: str, direction: str, first: int, last: int
) -> list[tuple[int, int]]:
    """``(interval, energy)`` of every non-empty interval from ``first`` to ``last`` (inclusive)."""
    prefix = f"{USAGE_PREFIX}{account}/{direction}/"
    found: list[tuple[int, int]] = []
    if first > last:
        return found
    # Scan only the keys sharing the leading digits of both ends: a short range scans few keys.
    low, high = padded(first), padded(min(last, 10**TIME_DIGITS - 1))
    shared = 0
    while shared < TIME_DIGITS and low[shared] == high[shared]:
        shared += 1
    for key, raw in state.iter_prefix(prefix + low[:shared]):
        interval = int(key[len(prefix) :])
        if interval > last:
            break
        if interval >= first:
            found.append((interval, int(decode_trusted(raw))))
    return found


# ---------------------------------------------------------------------------------------------------
# Tariffs, bills and statements


def tariff_key(infra: str) -> str:
    return TARIFF_PREFIX + infra


def own_tariff(state: StateReader, infra: str) -> Tariff | None:
    value = get_obj(state, tariff_key(infra))
    return None if value is None else Tariff.from_cbor(value)


def tariff(state: StateReader, infra: str) -> Tariff | None:
    """The tariff that bills at ``infra``: its own, else the default of the params, else None."""
    own = own_tariff(state, infra)
    return read_params(state).default_tariff if own is None else own


def write_tariff(state: Overlay, infra: str, value: Tariff) -> None:
    state.set_obj(tariff_key(infra), value.to_cbor())


def bill_key(payer: str, infra: str, asset: str, interval: int) -> str:
    return f"{BILL_PREFIX}{payer}/{infra}/{asset}/{padded(interval)}"


def read_bill(state: StateReader, payer: str, infra: str, asset: str, interval: int) -> tuple[int, int]:
    value = get_obj(state, bill_key(payer, infra, asset, interval))
    return (0, 0) if value is None else (int(value[0]), int(value[1]))


def write_bill(
    state: Overlay, payer: str, infra: str, asset: str, interval: int, bill: tuple[int, int]
) -> None:
    state.set_obj(bill_key(payer, infra, asset, interval), list(bill))


def bills_of(state: StateReader, payer: str) -> list[tuple[str, str, int, int, int]]:
    """``(infra, asset, interval, quantity, amount)`` of every bill of ``payer``, in key order."""
    prefix = f"{BILL_PREFIX}{payer}/"
    found: list[tuple[str, str, int, int, int]] = []
    for key, raw in state.iter_prefix(prefix):
        infra, asset, interval = key[len(prefix) :].split("/")
        quantity, amount = decode_trusted(raw)
        found.append((infra, asset, int(interval), quantity, amount))
    return found


def statement_key(payer: str, infra: str, asset: str) -> str:
    return f"{STATEMENT_PREFIX}{payer}/{infra}/{asset}"


def read_statement(state: StateReader, payer: str, infra: str, asset: str) -> Statement:
    value = get_obj(state, statement_key(payer, infra, asset))
    return Statement() if value is None else Statement.from_cbor(value)


def write_statement(state: Overlay, payer: str, infra: str, asset: str, statement: Statement) -> None:
    assert statement.billed == statement.paid + statement.debt, statement
    state.set_obj(statement_key(payer, infra, asset), statement.to_cbor())


def statements_of(state: StateReader, payer: str) -> list[tuple[str, str, Statement]]:
    """``(infra, asset, statement)`` of every statement of ``payer``, in key order."""
    prefix = f"{STATEMENT_PREFIX}{payer}/"
    found: list[tuple[str, str, Statement]] = []
    for key, raw in state.iter_prefix(prefix):
        infra, asset = key[len(prefix) :].split("/")
        found.append((infra, asset, Statement.from_cbor(decode_trusted(raw))))
    return found


# ---------------------------------------------------------------------------------------------------
# Deposits


def deposit_key(lock: bytes) -> str:
    return DEPOSIT_PREFIX + lock.hex()


def deposit_of_key(record: DepositRecord) -> str:
    return (
        f"{DEPOSIT_OF_PREFIX}{record.payer}/{record.infra}/{record.asset}/"
        f"{padded(record.expires_ms)}/{record.lock.hex()}"
    )


def deposit_due_key(expires_ms: int, lock: bytes) -> str:
    return f"{DEPOSIT_DUE_PREFIX}{padded(expires_ms)}/{lock.hex()}"


def read_deposit(state: StateReader, lock: bytes) -> DepositRecord | None:
    value = get_obj(state, deposit_key(lock))
    return None if value is None else DepositRecord.from_cbor(lock, value)


def deposits_for(state: StateReader, payer: str, infra: str, asset: str) -> list[DepositRecord]:
    """The open deposits of ``payer`` at ``infra`` in ``asset``, soonest expiry first, then lock id."""
    prefix = f"{DEPOSIT_OF_PREFIX}{payer}/{infra}/{asset}/"
    found: list[DepositRecord] = []
    for key, _ in state.iter_prefix(prefix):
        record = read_deposit(state, bytes.fromhex(key.rpartition("/")[2]))
        assert record is not None, key
        found.append(record)
    return found


def deposits_of(state: StateReader, payer: str) -> list[DepositRecord]:
    """Every open deposit of ``payer``: by infrastructure, asset, expiry, lock id."""
    found: list[DepositRecord] = []
    for key, _ in state.iter_prefix(f"{DEPOSIT_OF_PREFIX}{payer}/"):
        record = read_deposit(state, bytes.fromhex(key.rpartition("/")[2]))
        assert record is not None, key
        found.append(record)
    return found


def due_deposits(state: StateReader, now_ms: int) -> list[bytes]:
    """Lock ids of the deposits with ``expires_ms <= now_ms``, soonest first; stops at the first later one."""
    found: list[bytes] = []
    for key, _ in state.iter_prefix(DEPOSIT_DUE_PREFIX):
        expires, _, lock_hex = key[len(DEPOSIT_DUE_PREFIX) :].partition("/")
        if int(expires) > now_ms:
            break
        found.append(bytes.fromhex(lock_hex))
    return found


def add_deposit(state: Overlay, record: DepositRecord) -> None:
    assert record.amount > 0 and state.get(deposit_key(record.lock)) is None, record
    state.set_obj(deposit_key(record.lock), record.to_cbor())
    state.set_obj(deposit_of_key(record), True)
    state.set_obj(deposit_due_key(record.expires_ms, record.lock), record.payer)


def take_from_deposit(state: Overlay, record: DepositRecord, amount: int) -> DepositRecord:
    """Lower what the deposit holds by ``amount`` (paid out or refunded); remove it when empty."""
    assert 0 < amount <= record.amount, (amount, record)
    left = replace(record, amount=record.amount - amount)
    if left.amount == 0:
        state.delete(deposit_key(record.lock))
        state.delete(deposit_of_key(record))
        state.delete(deposit_due_key(record.expires_ms, record.lock))
    else:
        state.set_obj(deposit_key(record.lock), left.to_cbor())
    return left


# ---------------------------------------------------------------------------------------------------
# Raw iteration, for invariants


def iter_raw(state: StateReader, prefix: str) -> Iterator[tuple[str, Any]]:
    """(the key after ``prefix``, decoded value) of every key under ``prefix``."""
    for key, raw in state.iter_prefix(prefix):
        yield key[len(prefix) :], decode_trusted(raw)
