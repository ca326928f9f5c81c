"""Billing at shared infrastructure: tariff times metered quantity, paid from deposits in escrow.

A reading of an infrastructure meter (one registered with ``infra``) bills its subject for each
interval's new energy at the infrastructure's tariff (its own, else the default; none: no bill).
The amount is paid from the subject's open deposits at that infrastructure in the tariff's asset,
soonest expiry first, then by lock id; a deposit whose expiry has come (``expires_ms <=`` block
time) pays nothing, its end-of-block refund is due. What the deposits cannot cover becomes debt,
which the subject's next deposit at that infrastructure pays first. All integer: ``amount =
quantity * price_per_unit``, no rounding anywhere.
"""

from __future__ import annotations

from dataclasses import replace

from autarky.ledger.router import TxContext
from autarky.ledger.tx import MAX_U64
from autarky.modules.metering import keeper
from autarky.modules.metering.errors import OVERFLOW
from autarky.modules.metering.expected import EscrowKeeper

HOLDER = "metering"
"""The escrow holder name of every deposit: only this module releases or refunds them."""


def bill(ctx: TxContext, escrow: EscrowKeeper, meter: keeper.MeterRecord, deltas: dict[int, int]) -> None:
    """Bill ``meter``'s subject for ``deltas`` (interval -> new energy) at the meter's infrastructure."""
    assert meter.infra is not None
    payer, infra = meter.subject, meter.infra
    tariff = keeper.tariff(ctx.state, infra)
    if tariff is None:
        return
    price, asset = tariff.price_per_unit, tariff.asset

    quantity = sum(deltas.values())
    amount = quantity * price
    statement = keeper.read_statement(ctx.state, payer, infra, asset)
    if max(statement.quantity + quantity, statement.billed + amount) > MAX_U64:
        raise OVERFLOW(f"the statement of {payer} at {infra} would exceed 2**64-1")
    for interval, energy in deltas.items():
        old_quantity, old_amount = keeper.read_bill(ctx.state, payer, infra, asset, interval)
        # No overflow here: each bill is at most its statement's totals, checked above.
        keeper.write_bill(
            ctx.state, payer, infra, asset, interval, (old_quantity + energy, old_amount + energy * price)
        )

    paid = _pay_from_deposits(ctx, escrow, payer, infra, asset, amount)
    statement = replace(
        statement,
        quantity=statement.quantity + quantity,
        billed=statement.billed + amount,
        paid=statement.paid + paid,
        debt=statement.debt + amount - paid,
    )
    keeper.write_statement(ctx.state, payer, infra, asset, statement)
    ctx.emit(
        "metering.bill",
        payer=payer,
        infra=infra,
        meter=meter.meter,
        asset=asset,
        quantity=quantity,
        price_per_unit=price,
        amount=amount,
        paid=paid,
    )
    if amount > paid:
        ctx.emit(
            "metering.debt", payer=payer, infra=infra, asset=asset, amount=amount - paid, debt=statement.debt
        )


def settle_debt(ctx: TxContext, escrow: EscrowKeeper, deposit: keeper.DepositRecord) -> None:
    """Pay the payer's debt at the deposit's infrastructure (in its asset) from a new deposit."""
    statement = keeper.read_statement(ctx.state, deposit.payer, deposit.infra, deposit.asset)
    if statement.debt == 0:
        return
    amount = min(statement.debt, deposit.amount)
    ctx.events.extend(escrow.release(ctx.state, deposit.lock, deposit.infra, amount, holder=HOLDER))
    keeper.take_from_deposit(ctx.state, deposit, amount)
    statement = replace(statement, paid=statement.paid + amount, debt=statement.debt - amount)
    keeper.write_statement(ctx.state, deposit.payer, deposit.infra, deposit.asset, statement)
    ctx.emit(
        "metering.debt_paid",
        lock=deposit.lock,
        payer=deposit.payer,
        infra=deposit.infra,
        asset=deposit.asset,
        amount=amount,
        debt=statement.debt,
    )


def _pay_from_deposits(
    ctx: TxContext, escrow: EscrowKeeper, payer: str, infra: str, asset: str, amount: int
) -> int:
    """Release up to ``amount`` to ``infra`` from the payer's live deposits; what was paid."""
    paid = 0
    for deposit in keeper.deposits_for(ctx.state, payer, infra, asset):
        if paid == amount:
            break
        if deposit.expires_ms <= ctx.env.time_ms:
            continue
        take = min(amount - paid, deposit.amount)
        ctx.events.extend(escrow.release(ctx.state, deposit.lock, infra, take, holder=HOLDER))
        keeper.take_from_deposit(ctx.state, deposit, take)
        paid += take
    return paid
