"""The market's end of block: clear the books whose interval has begun, settle the ones delivered.

1. **Clearing.** Every book (zone, interval k) with open orders and ``k * L <= block time`` (L the
   metering interval) is cleared with :func:`auction.clear`, oldest interval first, then by zone
   name. A zone with a price-cap feed reads ``oracle.fresh`` at the block time: asks above a fresh
   value do not take part and the price is at most that value; without a fresh value the book is
   cleared with no cap (``cap_stale``). Each order's escrow is cut to what it may still owe: a bid
   keeps ``price * fill`` and gets the rest back, an ask keeps ``fill * penalty_per_unit`` of its
   collateral; unfilled orders get everything back.
2. **Settlement.** A book that traded settles in the first block where the interval has ended
   (``block time >= (k+1) * L``) and metering says every seller's export readings are complete for
   k, or at the latest at its deadline ``(k+1) * L + settlement_delay_ms``. Each ask is credited
   ``min(fill, what is left of its owner's metered export in k)`` (asks of one owner, over all zones,
   take from the same metered export, in settlement then ask-ranking order); then
   :func:`settlement.settle` says who pays whom, and the escrow carries it out. Every lock of the
   book is closed afterwards.
"""

from __future__ import annotations

from dataclasses import replace

from autarky.ledger.block import AttrValue, Event
from autarky.ledger.router import BlockEnv
from autarky.ledger.state import Overlay
from autarky.modules.market import keeper
from autarky.modules.market.auction import Order, ask_rank, bid_rank, clear
from autarky.modules.market.expected import EscrowKeeper, MeteringKeeper, OracleKeeper
from autarky.modules.market.keeper import (
    CLEARED,
    HOLDER,
    NO_TRADE,
    OPEN,
    SETTLED,
    SETTLING,
    UNFILLED,
    ClearingRecord,
    OrderRecord,
    Zone,
)
from autarky.modules.market.settlement import Transfer, settle

EXPORT = "export"


def _event(event_type: str, **attributes: AttrValue) -> Event:
    return Event(event_type, tuple(sorted(attributes.items())))


def _as_order(record: OrderRecord) -> Order:
    return Order(record.id, record.limit_price, record.quantity, record.height)


def run(
    state: Overlay,
    env: BlockEnv,
    escrow: EscrowKeeper,
    metering: MeteringKeeper,
    oracle: OracleKeeper | None,
) -> list[Event]:
    interval_ms = metering.interval_ms(state)
    events: list[Event] = []
    # Materialise the due list first: clearing deletes the open-index keys being walked.
    for interval, zone_name in list(keeper.due_books(state, env.time_ms // interval_ms)):
        events.extend(clear_book(state, env, escrow, oracle, interval_ms, interval, zone_name))
    for interval, zone_name, deadline_ms, sellers in keeper.settling(state):
        if env.time_ms >= deadline_ms or _delivered(state, env, metering, interval_ms, interval, sellers):
            events.extend(settle_book(state, env, escrow, metering, interval, zone_name))
    return events


def _delivered(
    state: Overlay,
    env: BlockEnv,
    metering: MeteringKeeper,
    interval_ms: int,
    interval: int,
    sellers: list[str],
) -> bool:
    if env.time_ms < (interval + 1) * interval_ms:
        return False
    return all(metering.readings_complete(state, seller, EXPORT, interval) for seller in sellers)


# ---------------------------------------------------------------------------------------------------
# Clearing


def _cap(state: Overlay, env: BlockEnv, zone: Zone, oracle: OracleKeeper | None) -> tuple[int | None, bool]:
    """(cap, stale): the fresh value of the zone's cap feed, or (None, True) when it has none."""
    if zone.price_cap_feed is None:
        return None, False
    assert oracle is not None, "genesis refuses a cap feed on a chain without an oracle"
    final = oracle.fresh(state, zone.price_cap_feed, env.time_ms)
    return (None, True) if final is None else (final.value, False)


def clear_book(
    state: Overlay,
    env: BlockEnv,
    escrow: EscrowKeeper,
    oracle: OracleKeeper | None,
    interval_ms: int,
    interval: int,
    zone_name: str,
) -> list[Event]:
    zone = keeper.zone(state, zone_name)
    assert zone is not None, f"orders for an unknown zone {zone_name}"
    records = [record for record in keeper.book(state, zone_name, interval) if record.status == OPEN]
    bids = [_as_order(record) for record in records if record.side == "bid"]
    asks = [_as_order(record) for record in records if record.side == "ask"]
    cap, stale = _cap(state, env, zone, oracle)
    result = clear(bids, asks, cap)
    price = result.price

    events: list[Event] = []
    for record in records:
        fill = result.fills.get(record.id, 0)
        cleared = replace(record, status=CLEARED if fill > 0 else UNFILLED, fill=fill)
        keep = cleared.expected_lock_amount(price)
        if record.lock is not None and keep < record.escrowed:
            events.extend(escrow.refund(state, record.lock, record.escrowed - keep, holder=HOLDER))
        keeper.update_order(state, cleared)
        events.append(
            _event(
                "market.filled", order=record.id, owner=record.owner, side=record.side, fill=fill, price=price
            )
        )

    params = keeper.params(state)
    clearing = ClearingRecord(
        zone=zone_name,
        interval=interval,
        price=price,
        volume=result.volume,
        bids=len(bids),
        asks=len(asks),
        cap=cap,
        cap_stale=stale,
        height=env.height,
        time_ms=env.time_ms,
        deadline_ms=(interval + 1) * interval_ms + params.settlement_delay_ms,
        status=SETTLING if result.volume > 0 else NO_TRADE,
        delivered=0,
        penalty=0,
        settled_height=None,
    )
    owners = {record.id: record.owner for record in records}
    sellers: dict[str, None] = {}  # insertion-ordered: the sellers in ask ranking
    for ask in sorted(asks, key=ask_rank):
        if ask.id in result.fills:
            sellers.setdefault(owners[ask.id], None)
    keeper.set_clearing(state, clearing, list(sellers))
    keeper.close_book(state, interval, zone_name)
    events.append(
        _event(
            "market.cleared",
            zone=zone_name,
            interval=interval,
            price=price,
            volume=result.volume,
            bids=len(bids),
            asks=len(asks),
            cap=cap,
            cap_stale=stale,
        )
    )
    return events


# ---------------------------------------------------------------------------------------------------
# Settlement


def settle_book(
    state: Overlay,
    env: BlockEnv,
    escrow: EscrowKeeper,
    metering: MeteringKeeper,
    interval: int,
    zone_name: str,
) -> list[Event]:
    clearing = keeper.clearing(state, zone_name, interval)
    assert clearing is not None and clearing.status == SETTLING and clearing.price is not None
    price = clearing.price
    records = [record for record in keeper.book(state, zone_name, interval) if record.status == CLEARED]
    bids = sorted(
        (record for record in records if record.side == "bid"), key=lambda r: bid_rank(_as_order(r))
    )
    asks = sorted(
        (record for record in records if record.side == "ask"), key=lambda r: ask_rank(_as_order(r))
    )

    credited = _credit_deliveries(state, metering, interval, asks)
    outcome = settle(
        price,
        [(record.id, record.fill) for record in bids],
        [(record.id, record.fill, credited[record.id], record.penalty_per_unit) for record in asks],
    )
    by_id = {record.id: record for record in records}
    events: list[Event] = []
    events.extend(_carry_out(state, escrow, outcome.payments, by_id))
    events.extend(_carry_out(state, escrow, outcome.penalties, by_id))
    for bid, result in zip(bids, outcome.bids, strict=True):
        if result.refund > 0:
            assert bid.lock is not None
            events.extend(escrow.refund(state, bid.lock, result.refund, holder=HOLDER))
        settled = replace(
            bid, status=SETTLED, delivered=result.delivered, paid=result.paid, penalty=result.penalty_received
        )
        events.append(_settled_order_event(settled))
        keeper.update_order(state, settled)
    for ask, ask_result in zip(asks, outcome.asks, strict=True):
        if ask_result.collateral_refund > 0:
            assert ask.lock is not None
            events.extend(escrow.refund(state, ask.lock, ask_result.collateral_refund, holder=HOLDER))
        settled = replace(
            ask,
            status=SETTLED,
            delivered=ask_result.delivered,
            paid=ask_result.received,
            penalty=ask_result.penalty,
        )
        events.append(_settled_order_event(settled))
        keeper.update_order(state, settled)
    for record in records:
        assert record.lock is None or escrow.get(state, record.lock) is None, "a settled order's lock is open"

    done = replace(
        clearing,
        status=SETTLED,
        delivered=outcome.delivered,
        penalty=outcome.penalty,
        settled_height=env.height,
    )
    keeper.set_clearing(state, done, [])
    events.append(
        _event(
            "market.settled",
            zone=zone_name,
            interval=interval,
            price=price,
            volume=clearing.volume,
            delivered=outcome.delivered,
            penalty=outcome.penalty,
        )
    )
    return events


def _credit_deliveries(
    state: Overlay, metering: MeteringKeeper, interval: int, asks: list[OrderRecord]
) -> dict[bytes, int]:
    """Units credited to each ask: its owner's metered export in ``interval``, less what earlier
    settlements already credited to that owner, handed out in ask ranking."""
    left: dict[str, int] = {}
    used: dict[str, int] = {}
    credited: dict[bytes, int] = {}
    for ask in asks:
        if ask.owner not in left:
            used[ask.owner] = keeper.delivered(state, interval, ask.owner)
            exported = metering.energy(state, ask.owner, EXPORT, interval)
            left[ask.owner] = max(0, exported - used[ask.owner])
        units = min(ask.fill, left[ask.owner])
        left[ask.owner] -= units
        used[ask.owner] += units
        credited[ask.id] = units
    for owner, units in used.items():
        if units > 0:
            keeper.set_delivered(state, interval, owner, units)
    return credited


def _carry_out(
    state: Overlay, escrow: EscrowKeeper, transfers: tuple[Transfer, ...], by_id: dict[bytes, OrderRecord]
) -> list[Event]:
    events: list[Event] = []
    for transfer in transfers:
        source = by_id[transfer.source]
        assert source.lock is not None
        events.extend(
            escrow.release(state, source.lock, by_id[transfer.target].owner, transfer.amount, holder=HOLDER)
        )
    return events


def _settled_order_event(record: OrderRecord) -> Event:
    return _event(
        "market.delivered",
        order=record.id,
        owner=record.owner,
        side=record.side,
        fill=record.fill,
        delivered=record.delivered,
        paid=record.paid,
        penalty=record.penalty,
    )
