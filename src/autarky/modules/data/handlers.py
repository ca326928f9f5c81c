"""One handler per data message, and the refunds of ``end_block``.

Each handler is a ladder of guard clauses in the order of precedence of ``errors.py`` (the parser
has already run the message-only checks), then the writes, then one event::

    offer:         (parsing only)
    withdraw:      unknown_offer, not_seller, offer_withdrawn
    buy:           invalid_units, unknown_offer, offer_withdrawn, wrong_unit, self_purchase,
                   amount_too_large, then escrow's codes (bank.unknown_asset, bank.account_frozen
                   ... bank.insufficient_funds)
    ack_delivery:  unknown_purchase, not_buyer, already_settled, delivery_overdue

Money moves only through the escrow: a purchase locks ``price * units`` from the buyer; the buyer's
acknowledgement releases it all to the seller; a purchase still open at its deadline is refunded
in ``end_block`` and its grant revoked.
"""

from __future__ import annotations

from dataclasses import replace

from autarky.ledger.block import Event
from autarky.ledger.router import TxContext
from autarky.ledger.state import Overlay
from autarky.ledger.tx import MAX_U64
from autarky.modules.data import keeper
from autarky.modules.data.errors import (
    ALREADY_SETTLED,
    AMOUNT_TOO_LARGE,
    DELIVERY_OVERDUE,
    INVALID_UNITS,
    NOT_BUYER,
    NOT_SELLER,
    OFFER_WITHDRAWN,
    SELF_PURCHASE,
    UNKNOWN_OFFER,
    UNKNOWN_PURCHASE,
    WRONG_UNIT,
)
from autarky.modules.data.expected import EscrowKeeper, PolicyKeeper
from autarky.modules.data.messages import AckDelivery, Buy, Offer, Withdraw
from autarky.modules.data.records import (
    DELIVERED,
    OPEN,
    PER_PERIOD,
    READ_ACTION,
    REFUNDED,
    OfferRecord,
    PurchaseRecord,
    resource_of,
)

MODULE = "data"
"""The module's name: the holder of its escrow locks and the issuer of its grants."""
LOCK_PURPOSE = "data/purchase"


def offer(ctx: TxContext, msg: Offer, offer_id: bytes) -> None:
    """``data/offer``: the sender offers a stream or a dataset on these terms."""
    record = OfferRecord(
        id=offer_id,
        seller=ctx.sender,
        kind=msg.kind,
        name=msg.name,
        description=msg.description,
        price=msg.price,
        asset=msg.asset,
        per=msg.per,
        period_ms=msg.period_ms,
        licence=msg.licence,
        required_attestations=msg.required_attestations,
        content_hash=msg.content_hash,
        created=ctx.height,
        withdrawn=None,
        sold=0,
    )
    keeper.create_offer(ctx.state, record)
    ctx.emit(
        "data.offered",
        offer=offer_id,
        seller=ctx.sender,
        kind=msg.kind,
        name=msg.name,
        price=msg.price,
        asset=msg.asset,
        per=msg.per,
    )


def withdraw(ctx: TxContext, msg: Withdraw) -> None:
    """``data/withdraw``: the seller takes the offer off the market; open purchases go on."""
    record = _offer(ctx, msg.offer)
    if ctx.sender != record.seller:
        raise NOT_SELLER(f"{ctx.sender} is not the seller of offer {record.id.hex()}")
    if record.withdrawn is not None:
        raise OFFER_WITHDRAWN(f"offer {record.id.hex()} was withdrawn at height {record.withdrawn}")

    keeper.write_offer(ctx.state, replace(record, withdrawn=ctx.height))
    ctx.emit("data.withdrawn", offer=record.id, seller=record.seller)


def buy(ctx: TxContext, escrow: EscrowKeeper, policy: PolicyKeeper, msg: Buy, purchase_id: bytes) -> None:
    """``data/buy``: lock the price in escrow and give the buyer ``read:data/<offer>`` until the end of
    the paid periods (per item: for the offer's access window, or without expiry)."""
    params = keeper.params(ctx.state)
    if not 1 <= msg.units <= params.max_units:
        raise INVALID_UNITS(f"{msg.units} {msg.unit}s is not from 1 to {params.max_units}")
    record = _offer(ctx, msg.offer)
    if record.withdrawn is not None:
        raise OFFER_WITHDRAWN(f"offer {record.id.hex()} was withdrawn at height {record.withdrawn}")
    if msg.unit != record.per:
        raise WRONG_UNIT(f"offer {record.id.hex()} is priced per {record.per}; buy {record.per}s")
    if ctx.sender == record.seller:
        raise SELF_PURCHASE(f"{ctx.sender} sells offer {record.id.hex()}")
    amount = record.price * msg.units
    if amount > MAX_U64:
        raise AMOUNT_TOO_LARGE(f"{record.price} x {msg.units} = {amount} is more than 2**64-1")

    now_ms = ctx.env.time_ms
    deliver_by_ms = now_ms + params.delivery_window_ms
    access_until_ms = _access_until(record, msg.units, now_ms)
    # The escrow's own expiry is only a backstop: this module refunds at deliver_by_ms, and its
    # end_block runs before escrow's, so the backstop one window later never finds the lock open.
    lock_id = escrow.lock(
        ctx,
        asset=record.asset,
        amount=amount,
        holder=MODULE,
        expires_ms=deliver_by_ms + params.delivery_window_ms,
        purpose=LOCK_PURPOSE,
        beneficiaries=(record.seller,),
    )
    grant_id = policy.issue_grant(
        ctx,
        issuer=MODULE,
        reference=purchase_id,
        grantor=record.seller,
        grantee=ctx.sender,
        action=READ_ACTION,
        resource=resource_of(record.id),
        expires_ms=access_until_ms,
    )
    purchase = PurchaseRecord(
        id=purchase_id,
        offer=record.id,
        buyer=ctx.sender,
        seller=record.seller,
        asset=record.asset,
        units=msg.units,
        amount=amount,
        lock=lock_id,
        grant=grant_id,
        created=ctx.height,
        bought_ms=now_ms,
        access_until_ms=access_until_ms,
        deliver_by_ms=deliver_by_ms,
        status=OPEN,
        key_hash=None,
        settled=None,
    )
    keeper.create_purchase(ctx.state, purchase)
    keeper.write_offer(ctx.state, replace(record, sold=record.sold + 1))
    ctx.emit(
        "data.bought",
        purchase=purchase_id,
        offer=record.id,
        buyer=ctx.sender,
        seller=record.seller,
        asset=record.asset,
        amount=amount,
        units=msg.units,
        grant=grant_id,
        lock=lock_id,
        access_until_ms=access_until_ms,
        deliver_by_ms=deliver_by_ms,
    )


def ack_delivery(ctx: TxContext, escrow: EscrowKeeper, msg: AckDelivery) -> None:
    """``data/ack_delivery``: the buyer has the key; the escrow pays the seller everything locked."""
    purchase = keeper.read_purchase(ctx.state, msg.purchase)
    if purchase is None:
        raise UNKNOWN_PURCHASE(f"no purchase {msg.purchase.hex()}")
    if ctx.sender != purchase.buyer:
        raise NOT_BUYER(f"{ctx.sender} is not the buyer of purchase {purchase.id.hex()}")
    if not purchase.is_open:
        raise ALREADY_SETTLED(
            f"purchase {purchase.id.hex()} is {purchase.status} since height {purchase.settled}"
        )
    if ctx.env.time_ms >= purchase.deliver_by_ms:
        raise DELIVERY_OVERDUE(
            f"the deadline was {purchase.deliver_by_ms} ms; the block time is {ctx.env.time_ms} ms"
        )

    ctx.events.extend(
        escrow.release(ctx.state, purchase.lock, purchase.seller, purchase.amount, holder=MODULE)
    )
    settled = replace(purchase, status=DELIVERED, key_hash=msg.key_hash, settled=ctx.height)
    keeper.settle_purchase(ctx.state, settled)
    ctx.emit(
        "data.delivered",
        purchase=purchase.id,
        offer=purchase.offer,
        buyer=purchase.buyer,
        seller=purchase.seller,
        asset=purchase.asset,
        amount=purchase.amount,
        key_hash=msg.key_hash,
    )


def refund_overdue(
    state: Overlay, escrow: EscrowKeeper, policy: PolicyKeeper, height: int, now_ms: int
) -> list[Event]:
    """``end_block``: every purchase still open at its deadline (``now_ms >= deliver_by_ms``), in
    deadline then id order: refund the escrow to the buyer, revoke the grant, mark it refunded."""
    events: list[Event] = []
    for purchase_id in keeper.due_until(state, now_ms):
        purchase = keeper.read_purchase(state, purchase_id)
        assert purchase is not None and purchase.is_open, "the due index names only open purchases"
        events.extend(escrow.refund(state, purchase.lock, holder=MODULE))
        events.extend(policy.revoke_issued(state, issuer=MODULE, reference=purchase.id, height=height))
        keeper.settle_purchase(state, replace(purchase, status=REFUNDED, settled=height))
        attributes = (
            ("amount", purchase.amount),
            ("asset", purchase.asset),
            ("buyer", purchase.buyer),
            ("offer", purchase.offer),
            ("purchase", purchase.id),
            ("seller", purchase.seller),
        )
        events.append(Event("data.refunded", attributes))
    return events


# ---------------------------------------------------------------------------------------------------
# Guards and helpers


def _offer(ctx: TxContext, offer_id: bytes) -> OfferRecord:
    record = keeper.read_offer(ctx.state, offer_id)
    if record is None:
        raise UNKNOWN_OFFER(f"no offer {offer_id.hex()}")
    return record


def _access_until(record: OfferRecord, units: int, now_ms: int) -> int | None:
    """The grant's expiry: the end of the paid periods; per item, the access window or none."""
    if record.per == PER_PERIOD:
        assert record.period_ms is not None
        return now_ms + units * record.period_ms
    return None if record.period_ms is None else now_ms + record.period_ms
