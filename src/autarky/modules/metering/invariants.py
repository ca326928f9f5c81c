"""What must hold in the metering state after every block. Run by tests; each broken rule is one line.

1. The parameters, when stored, are in range (``interval_ms`` 1..2**32, a well-formed default tariff).
2. Every meter record is well formed and its ``by_subject`` index entry exists with its unit; every
   index entry names a registered meter with that subject, direction and unit.
3. No double counting: a meter with a baseline has a last reading no earlier than its registration,
   and ``counted == last value - baseline`` (the energy it put into interval records since it was
   registered); a meter without a baseline has counted nothing.
4. Usage records and bills are positive integers within 2**64-1; every statement has
   ``billed == paid + debt``.
5. Deposits agree with the escrow: every open deposit has a live lock with holder ``metering``, the
   same payer and asset, and exactly the amount the record expects; its two index entries exist, and
   every index entry names an open deposit.

The checks report what they find rather than assert, so a corrupted state gives a readable list.
"""

from __future__ import annotations

from autarky.ledger.state import StateReader
from autarky.ledger.tx import MAX_U64
from autarky.modules.metering import keeper
from autarky.modules.metering.billing import HOLDER
from autarky.modules.metering.expected import EscrowKeeper
from autarky.modules.metering.genesis import MAX_INTERVAL_MS
from autarky.modules.metering.messages import DIRECTIONS


def check_invariants(state: StateReader, escrow: EscrowKeeper) -> list[str]:
    problems: list[str] = []
    problems.extend(_params_problems(state))
    problems.extend(_meter_problems(state))
    problems.extend(_record_problems(state))
    problems.extend(_deposit_problems(state, escrow))
    return problems


def _params_problems(state: StateReader) -> list[str]:
    if state.get(keeper.PARAMS_KEY) is None:
        return []
    try:
        params = keeper.read_params(state)
    except (KeyError, TypeError, IndexError) as exc:
        return [f"params: malformed: {exc!r}"]
    problems = []
    if type(params.interval_ms) is not int or not 1 <= params.interval_ms <= MAX_INTERVAL_MS:
        problems.append(f"params: interval_ms {params.interval_ms!r} is out of range")
    tariff = params.default_tariff
    if tariff is not None and not 0 <= tariff.price_per_unit <= MAX_U64:
        problems.append(f"params: default tariff price {tariff.price_per_unit} is out of range")
    return problems


def _meter_problems(state: StateReader) -> list[str]:
    problems: list[str] = []
    records: dict[str, keeper.MeterRecord] = {}
    for meter, value in keeper.iter_raw(state, keeper.METER_PREFIX):
        try:
            record = keeper.MeterRecord.from_cbor(meter, value)
        except (KeyError, TypeError) as exc:
            problems.append(f"meter {meter}: malformed record: {exc!r}")
            continue
        records[meter] = record
        problems.extend(_counting_problems(state, record))
    index: dict[str, object] = dict(keeper.iter_raw(state, keeper.BY_SUBJECT_PREFIX))
    for record in records.values():
        key = f"{record.subject}/{record.direction}/{record.meter}"
        if record.direction not in DIRECTIONS:
            problems.append(f"meter {record.meter}: direction {record.direction!r}")
        if index.get(key) != record.unit:
            problems.append(
                f"meter {record.meter}: index entry {key} holds {index.get(key)!r}, not {record.unit!r}"
            )
    for key in index:
        subject, direction, meter = key.split("/")
        found = records.get(meter)
        if found is None or (found.subject, found.direction) != (subject, direction):
            problems.append(f"index entry {key} names no registered meter of that subject and direction")
    return problems


def _counting_problems(state: StateReader, record: keeper.MeterRecord) -> list[str]:
    name = f"meter {record.meter}"
    last = keeper.read_last(state, record.meter)
    if record.baseline is None:
        if record.counted != 0 or record.readings != 0:
            return [f"{name}: no baseline, yet {record.counted} counted in {record.readings} readings"]
        return []
    if last is None:
        return [f"{name}: a baseline without a last reading"]
    problems = []
    if last.time_ms < record.registered_ms:
        problems.append(
            f"{name}: last reading at {last.time_ms}, before its registration at {record.registered_ms}"
        )
    if record.counted != last.value - record.baseline:
        problems.append(
            f"{name}: counted {record.counted}, but last value {last.value} - baseline {record.baseline} "
            f"= {last.value - record.baseline}"
        )
    return problems


def _record_problems(state: StateReader) -> list[str]:
    problems: list[str] = []
    for key, value in keeper.iter_raw(state, keeper.USAGE_PREFIX):
        if type(value) is not int or not 1 <= value <= MAX_U64:
            problems.append(f"usage {key}: {value!r} is not from 1 to 2**64-1")
    for key, value in keeper.iter_raw(state, keeper.BILL_PREFIX):
        quantity, amount = value
        if not 1 <= quantity <= MAX_U64 or not 0 <= amount <= MAX_U64:
            problems.append(f"bill {key}: quantity {quantity}, amount {amount} out of range")
    for key, value in keeper.iter_raw(state, keeper.STATEMENT_PREFIX):
        statement = keeper.Statement.from_cbor(value)
        if statement.billed != statement.paid + statement.debt or min(statement.paid, statement.debt) < 0:
            problems.append(
                f"statement {key}: billed {statement.billed} != paid {statement.paid} + debt {statement.debt}"
            )
    return problems


def _deposit_problems(state: StateReader, escrow: EscrowKeeper) -> list[str]:
    problems: list[str] = []
    expected_of: dict[str, object] = {}
    expected_due: dict[str, object] = {}
    for lock_hex, value in keeper.iter_raw(state, keeper.DEPOSIT_PREFIX):
        record = keeper.DepositRecord.from_cbor(bytes.fromhex(lock_hex), value)
        name = f"deposit {lock_hex}"
        expected_of[keeper.deposit_of_key(record)] = True
        expected_due[keeper.deposit_due_key(record.expires_ms, record.lock)] = record.payer
        lock = escrow.get(state, record.lock)
        if record.amount <= 0:
            problems.append(f"{name}: holds {record.amount}")
        if lock is None:
            problems.append(f"{name}: its escrow lock is closed")
        elif (lock.holder, lock.payer, lock.asset, lock.amount) != (
            HOLDER,
            record.payer,
            record.asset,
            record.amount,
        ):
            problems.append(
                f"{name}: the lock is ({lock.holder}, {lock.payer}, {lock.asset}, {lock.amount}), the record "
                f"({HOLDER}, {record.payer}, {record.asset}, {record.amount})"
            )
    for prefix, expected in (
        (keeper.DEPOSIT_OF_PREFIX, expected_of),
        (keeper.DEPOSIT_DUE_PREFIX, expected_due),
    ):
        found = {prefix + rest: value for rest, value in keeper.iter_raw(state, prefix)}
        for key, value in found.items():
            if expected.get(key) != value:
                problems.append(f"index entry {key} ({value!r}) names no open deposit")
        for key in expected:
            if key not in found:
                problems.append(f"index entry {key} is missing")
    return problems
