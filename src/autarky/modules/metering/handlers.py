"""One handler per metering message, and the end-of-block expiry of deposits.

Each handler is a ladder of guard clauses in the order of precedence of ``errors.py`` (the parser
has already run the message-only checks), then the writes, then its events::

    register:    not_authorised, meter_not_signed, meter_not_of_infra, already_registered, unit_mismatch
    deregister:  unknown_meter, not_authorised
    read:        future_reading, unknown_meter, then per reading in order: before_registration,
                 duplicate_reading, value_backwards; then overflow
    set_tariff:  not_authorised
    deposit:     invalid_expiry, no_tariff, asset_mismatch, then the escrow's and bank's codes
    withdraw:    unknown_deposit, not_authorised, insufficient_deposit

The **controller** of an account is its owner (``identity.owner_of``) or, for an account without
an owner, the account itself. Money moves only through the escrow (``billing.py``).
"""

from __future__ import annotations

from dataclasses import replace

from autarky.ledger.block import AttrValue, Event
from autarky.ledger.router import BlockEnv, TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.ledger.tx import MAX_U64
from autarky.modules.metering import billing, keeper
from autarky.modules.metering.billing import HOLDER
from autarky.modules.metering.errors import (
    ALREADY_REGISTERED,
    ASSET_MISMATCH,
    BEFORE_REGISTRATION,
    DUPLICATE_READING,
    FUTURE_READING,
    INSUFFICIENT_DEPOSIT,
    INVALID_EXPIRY,
    METER_NOT_OF_INFRA,
    METER_NOT_SIGNED,
    NO_TARIFF,
    NOT_AUTHORISED,
    OVERFLOW,
    UNIT_MISMATCH,
    UNKNOWN_DEPOSIT,
    UNKNOWN_METER,
    VALUE_BACKWARDS,
)
from autarky.modules.metering.expected import EscrowKeeper, IdentityKeeper
from autarky.modules.metering.messages import Deposit, Deregister, Read, Register, SetTariff, Withdraw

DEPOSIT_PURPOSE = "metering/deposit"


def controller(identity: IdentityKeeper, state: StateReader, account: str) -> str:
    """Who acts for ``account``: its owner, or the account itself when it has none."""
    owner = identity.owner_of(state, account)
    return account if owner is None else owner


def register(ctx: TxContext, identity: IdentityKeeper, msg: Register) -> None:
    """``metering/register``: the subject's controller attaches a meter to the subject."""
    if controller(identity, ctx.state, msg.subject) != ctx.sender:
        raise NOT_AUTHORISED(f"only the controller of {msg.subject} registers meters for it")
    meter_consents = (
        msg.meter == ctx.sender
        or ctx.signed_by_account(msg.meter)
        or identity.owner_of(ctx.state, msg.meter) == ctx.sender
    )
    if not meter_consents:
        raise METER_NOT_SIGNED(f"meter {msg.meter} must co-sign, or be a machine the sender owns")
    if msg.infra is not None and controller(identity, ctx.state, msg.meter) != controller(
        identity, ctx.state, msg.infra
    ):
        raise METER_NOT_OF_INFRA(f"meter {msg.meter} is not controlled by the controller of {msg.infra}")
    if keeper.read_meter(ctx.state, msg.meter) is not None:
        raise ALREADY_REGISTERED(f"meter {msg.meter} is registered; deregister it first")
    for _, _, unit in keeper.meters_of(ctx.state, msg.subject, msg.direction):
        if unit != msg.unit:
            raise UNIT_MISMATCH(f"the subject's {msg.direction} meters measure {unit!r}, not {msg.unit!r}")

    record = keeper.MeterRecord(
        meter=msg.meter,
        subject=msg.subject,
        direction=msg.direction,
        unit=msg.unit,
        infra=msg.infra,
        registered=ctx.height,
        registered_ms=ctx.env.time_ms,
        baseline=None,
        counted=0,
        readings=0,
    )
    keeper.add_meter(ctx.state, record)
    ctx.emit(
        "metering.registered",
        meter=msg.meter,
        subject=msg.subject,
        direction=msg.direction,
        unit=msg.unit,
        infra=msg.infra,
    )


def deregister(ctx: TxContext, identity: IdentityKeeper, msg: Deregister) -> None:
    """``metering/deregister``: by the subject's controller, the meter, or the meter's controller."""
    record = keeper.read_meter(ctx.state, msg.meter)
    if record is None:
        raise UNKNOWN_METER(f"meter {msg.meter} is not registered")
    allowed = (
        controller(identity, ctx.state, record.subject),
        record.meter,
        controller(identity, ctx.state, record.meter),
    )
    if ctx.sender not in allowed:
        raise NOT_AUTHORISED("the subject's controller, the meter or the meter's controller deregisters it")

    keeper.remove_meter(ctx.state, record)
    ctx.emit("metering.deregistered", meter=record.meter, subject=record.subject, by=ctx.sender)


def read(ctx: TxContext, escrow: EscrowKeeper, msg: Read) -> None:
    """``metering/read``: the meter (the sender) reports a batch; all of it is accepted or none."""
    for index, reading in enumerate(msg.readings):
        if reading.time_ms > ctx.env.time_ms:
            raise FUTURE_READING(
                f"readings[{index}] is timed {reading.time_ms}, after the block time {ctx.env.time_ms}"
            )
    record = keeper.read_meter(ctx.state, ctx.sender)
    if record is None:
        raise UNKNOWN_METER(f"{ctx.sender} is not a registered meter")
    interval_ms = keeper.read_params(ctx.state).interval_ms

    last = keeper.read_last(ctx.state, record.meter)
    baseline = record.baseline
    deltas: dict[int, int] = {}  # interval -> energy; filled in time order, so intervals ascend
    for index, reading in enumerate(msg.readings):
        if reading.time_ms < record.registered_ms:
            raise BEFORE_REGISTRATION(
                f"readings[{index}] is timed {reading.time_ms}, "
                f"before the registration at {record.registered_ms}"
            )
        if last is not None and reading.time_ms <= last.time_ms:
            raise DUPLICATE_READING(
                f"readings[{index}] is timed {reading.time_ms}, not after the last reading at {last.time_ms}"
            )
        if last is not None and reading.value < last.value:
            raise VALUE_BACKWARDS(f"readings[{index}] is {reading.value}, below the last value {last.value}")
        if baseline is None:
            baseline = reading.value  # the first reading since registration only sets the baseline
        elif last is not None and reading.value > last.value:
            interval = (reading.time_ms - 1) // interval_ms  # time_ms > last time >= 0, so >= 0
            deltas[interval] = deltas.get(interval, 0) + reading.value - last.value
        last = keeper.LastReading(reading.time_ms, reading.value)
    assert last is not None and baseline is not None

    for interval, energy in deltas.items():
        total = keeper.usage(ctx.state, record.subject, record.direction, interval) + energy
        if total > MAX_U64:
            raise OVERFLOW(f"the usage of interval {interval} would exceed 2**64-1")
        keeper.write_usage(ctx.state, record.subject, record.direction, interval, total)
    energy_total = sum(deltas.values())
    keeper.write_last(ctx.state, record.meter, last)
    keeper.write_meter(
        ctx.state,
        replace(
            record,
            baseline=baseline,
            counted=record.counted + energy_total,
            readings=record.readings + len(msg.readings),
        ),
    )
    ctx.emit(
        "metering.read",
        meter=record.meter,
        subject=record.subject,
        direction=record.direction,
        readings=len(msg.readings),
        value=last.value,
        time_ms=last.time_ms,
        energy=energy_total,
    )
    if record.infra is not None and deltas:
        billing.bill(ctx, escrow, record, deltas)


def set_tariff(ctx: TxContext, identity: IdentityKeeper, msg: SetTariff) -> None:
    """``metering/set_tariff``: the infrastructure's controller sets what its users pay per unit."""
    if controller(identity, ctx.state, msg.infra) != ctx.sender:
        raise NOT_AUTHORISED(f"only the controller of {msg.infra} sets its tariff")

    keeper.write_tariff(ctx.state, msg.infra, keeper.Tariff(msg.asset, msg.price_per_unit))
    ctx.emit(
        "metering.tariff_set",
        infra=msg.infra,
        asset=msg.asset,
        price_per_unit=msg.price_per_unit,
        by=ctx.sender,
    )


def deposit(ctx: TxContext, escrow: EscrowKeeper, msg: Deposit) -> None:
    """``metering/deposit``: the sender prepays for its use of an infrastructure, in escrow."""
    if msg.expires_ms <= ctx.env.time_ms:
        raise INVALID_EXPIRY(f"expires_ms {msg.expires_ms} is not after the block time {ctx.env.time_ms}")
    tariff = keeper.tariff(ctx.state, msg.infra)
    if tariff is None:
        raise NO_TARIFF(f"{msg.infra} has no tariff and there is no default tariff")
    if tariff.asset != msg.asset:
        raise ASSET_MISMATCH(f"{msg.infra} bills in {tariff.asset!r}, not {msg.asset!r}")

    # The escrow's backstop refund comes 1 ms after the deposit's own expiry, which this module's
    # end_block handles first (README, Deposits).
    lock = escrow.lock(
        ctx,
        asset=msg.asset,
        amount=msg.amount,
        holder=HOLDER,
        expires_ms=msg.expires_ms + 1,
        purpose=DEPOSIT_PURPOSE,
        beneficiaries=(msg.infra,),
    )
    record = keeper.DepositRecord(
        lock, ctx.sender, msg.infra, msg.asset, msg.amount, msg.expires_ms, ctx.height
    )
    keeper.add_deposit(ctx.state, record)
    ctx.emit(
        "metering.deposited",
        lock=lock,
        payer=ctx.sender,
        infra=msg.infra,
        asset=msg.asset,
        amount=msg.amount,
        expires_ms=msg.expires_ms,
    )
    billing.settle_debt(ctx, escrow, record)


def withdraw(ctx: TxContext, escrow: EscrowKeeper, msg: Withdraw) -> None:
    """``metering/withdraw``: the payer takes back what a deposit still holds (all, or ``amount``)."""
    record = keeper.read_deposit(ctx.state, msg.lock)
    if record is None:
        raise UNKNOWN_DEPOSIT(f"no open deposit has lock {msg.lock.hex()}")
    if record.payer != ctx.sender:
        raise NOT_AUTHORISED("only the payer withdraws a deposit")
    amount = record.amount if msg.amount is None else msg.amount
    if amount > record.amount:
        raise INSUFFICIENT_DEPOSIT(f"the deposit holds {record.amount}, not {amount}")

    ctx.events.extend(escrow.refund(ctx.state, record.lock, amount, holder=HOLDER))
    left = keeper.take_from_deposit(ctx.state, record, amount)
    ctx.emit(
        "metering.withdrawn",
        lock=record.lock,
        payer=record.payer,
        infra=record.infra,
        asset=record.asset,
        amount=amount,
        remaining=left.amount,
    )


def expire_deposits(state: Overlay, env: BlockEnv, escrow: EscrowKeeper) -> list[Event]:
    """End of block: refund every deposit whose ``expires_ms`` has come (``<=`` the block time)."""
    events: list[Event] = []
    for lock in keeper.due_deposits(state, env.time_ms):
        record = keeper.read_deposit(state, lock)
        assert record is not None, lock.hex()
        events.extend(escrow.refund(state, lock, None, holder=HOLDER))
        keeper.take_from_deposit(state, record, record.amount)
        attributes: dict[str, AttrValue] = {
            "lock": lock,
            "payer": record.payer,
            "infra": record.infra,
            "asset": record.asset,
            "amount": record.amount,
        }
        events.append(Event("metering.deposit_expired", tuple(sorted(attributes.items()))))
    return events
