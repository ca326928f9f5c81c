"""One handler per market message: a ladder of guard clauses, then the escrow lock and the writes.

The parser has already run the message-only checks (``market.invalid_interval``,
``market.invalid_quantity``, ``market.invalid_price``); the handlers go on in the order of
``errors.py``::

    bid, ask: unknown_zone, too_large, gate_closed, too_far_ahead, book_full, then the escrow lock's
              codes (bank.unknown_asset, bank.account_frozen ... bank.insufficient_funds)
    cancel:   unknown_order, not_owner, not_open, gate_closed
"""

from __future__ import annotations

from autarky.ledger.router import TxContext
from autarky.ledger.tx import MAX_U64
from autarky.modules.market import keeper
from autarky.modules.market.errors import (
    BOOK_FULL,
    GATE_CLOSED,
    NOT_OPEN,
    NOT_OWNER,
    TOO_FAR_AHEAD,
    TOO_LARGE,
    UNKNOWN_ORDER,
    UNKNOWN_ZONE,
)
from autarky.modules.market.expected import EscrowKeeper, MeteringKeeper
from autarky.modules.market.genesis import MAX_DELAY_MS
from autarky.modules.market.keeper import HOLDER, OPEN, OrderRecord
from autarky.modules.market.messages import Cancel, PlaceOrder


def backstop_expiry_ms(interval: int, interval_ms: int) -> int:
    """The expiry of an order's escrow lock: the end of its interval plus the longest settlement
    delay genesis (or governance) may set, plus one interval. The market always settles or refunds
    before it; escrow's own refund at expiry is only a backstop."""
    return (interval + 2) * interval_ms + MAX_DELAY_MS


def place_order(
    ctx: TxContext, escrow: EscrowKeeper, metering: MeteringKeeper, msg: PlaceOrder, order_id: bytes
) -> None:
    """``market/bid`` and ``market/ask``: escrow the payment (bid) or the collateral (ask), then book it."""
    zone = keeper.zone(ctx.state, msg.zone)
    if zone is None:
        raise UNKNOWN_ZONE(f"no zone {msg.zone[:40]!r}")
    rate = zone.penalty_per_unit if msg.side == "ask" else 0
    escrowed = msg.quantity * (msg.limit_price if msg.side == "bid" else rate)
    if escrowed > MAX_U64:
        what = "quantity * limit_price" if msg.side == "bid" else f"quantity * penalty_per_unit ({rate})"
        raise TOO_LARGE(f"{what} = {escrowed} exceeds 2**64-1")
    interval_ms = metering.interval_ms(ctx.state)
    now = ctx.env.time_ms
    gate_ms = msg.interval * interval_ms
    if now >= gate_ms:
        raise GATE_CLOSED(f"interval {msg.interval} starts at {gate_ms} ms; the block time is {now} ms")
    params = keeper.params(ctx.state)
    latest = now // interval_ms + params.max_intervals_ahead
    if msg.interval > latest:
        raise TOO_FAR_AHEAD(f"orders may be placed up to interval {latest}, not {msg.interval}")
    if keeper.open_count(ctx.state, msg.interval, msg.zone) >= params.max_orders_per_interval:
        raise BOOK_FULL(f"{params.max_orders_per_interval} orders already wait in {msg.zone}/{msg.interval}")

    lock_id = None
    if escrowed > 0:
        lock_id = escrow.lock(
            ctx,
            asset=zone.asset,
            amount=escrowed,
            holder=HOLDER,
            expires_ms=backstop_expiry_ms(msg.interval, interval_ms),
            purpose=f"market/{msg.side}",
        )
    record = OrderRecord(
        id=order_id,
        owner=ctx.sender,
        side=msg.side,
        zone=msg.zone,
        interval=msg.interval,
        quantity=msg.quantity,
        limit_price=msg.limit_price,
        height=ctx.height,
        lock=lock_id,
        escrowed=escrowed,
        penalty_per_unit=rate,
        status=OPEN,
        fill=0,
        delivered=0,
        paid=0,
        penalty=0,
    )
    keeper.create_order(ctx.state, record)
    ctx.emit(
        "market.order",
        order=order_id,
        owner=ctx.sender,
        side=msg.side,
        zone=msg.zone,
        interval=msg.interval,
        quantity=msg.quantity,
        limit_price=msg.limit_price,
        lock=lock_id,
        escrowed=escrowed,
    )


def cancel(ctx: TxContext, escrow: EscrowKeeper, metering: MeteringKeeper, msg: Cancel) -> None:
    """``market/cancel``: the owner withdraws an open order before its gate; its escrow returns."""
    record = keeper.order(ctx.state, msg.order)
    if record is None:
        raise UNKNOWN_ORDER(f"no order {msg.order.hex()}")
    if record.owner != ctx.sender:
        raise NOT_OWNER(f"order {msg.order.hex()} belongs to {record.owner}")
    if record.status != OPEN:
        raise NOT_OPEN(f"order {msg.order.hex()} is {record.status}")
    gate_ms = record.interval * metering.interval_ms(ctx.state)
    if ctx.env.time_ms >= gate_ms:
        raise GATE_CLOSED(f"interval {record.interval} started at {gate_ms} ms: the order is being cleared")

    if record.lock is not None:
        ctx.events.extend(escrow.refund(ctx.state, record.lock, holder=HOLDER))
    keeper.cancel_order(ctx.state, record)
    ctx.emit(
        "market.cancelled", order=record.id, owner=record.owner, zone=record.zone, interval=record.interval
    )
