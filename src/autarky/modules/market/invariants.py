"""What must hold in the market state after every block. Run by tests; each broken rule is one line.

1. Every order record is well formed, stored under its own id, in its book with its side; no fill
   beyond its quantity, no delivery beyond its fill; a filled bid's limit is at least the clearing
   price and a filled ask's at most it.
2. The market's records and escrow's locks agree: every order whose status still holds money
   (open: what it escrowed; cleared: a bid ``price * fill``, an ask ``fill * penalty_per_unit``) has
   a live lock held by ``market``, paid by its owner, in its zone's asset, with exactly that
   amount; every other order's lock is closed; and no open lock held by ``market`` and paid by an
   order owner belongs to none of its orders.
3. The open index counts exactly the open orders of each book.
4. Clearing records add up: the bids' fills and the asks' fills each sum to the volume; a settled
   book's deliveries, payments and penalties balance between buyers and sellers (value conserved);
   exactly the books waiting for settlement are in the settling index.
"""

from __future__ import annotations

from typing import Any

from autarky.ledger.state import StateReader
from autarky.modules.market import keeper
from autarky.modules.market.expected import EscrowKeeper
from autarky.modules.market.keeper import (
    CLEARED,
    CLEARING_STATUSES,
    OPEN,
    ORDER_STATUSES,
    SETTLED,
    SETTLING,
    ClearingRecord,
    OrderRecord,
)


def check_invariants(state: StateReader, escrow: EscrowKeeper) -> list[str]:
    problems: list[str] = []
    orders: dict[bytes, OrderRecord] = {}
    for id_hex, value in keeper.iter_orders(state):
        try:
            record = OrderRecord.from_cbor(value)
        except (TypeError, ValueError) as exc:
            problems.append(f"order {id_hex}: malformed record: {exc}")
            continue
        if record.id.hex() != id_hex:
            problems.append(f"order {id_hex}: the record holds id {record.id.hex()}")
            continue
        orders[record.id] = record
    clearings: dict[tuple[str, int], ClearingRecord] = {}
    for rest, value in keeper.iter_raw(state, keeper.CLEARING_PREFIX):
        record_c = ClearingRecord.from_cbor(value)
        if keeper.clearing_key(record_c.zone, record_c.interval) != keeper.CLEARING_PREFIX + rest:
            problems.append(f"clearing {rest}: stored under another key")
        clearings[record_c.zone, record_c.interval] = record_c

    for record in orders.values():
        problems.extend(_order_problems(state, record, clearings))
    problems.extend(_escrow_problems(state, escrow, orders, clearings))
    problems.extend(_open_index_problems(state, orders))
    problems.extend(_clearing_problems(state, orders, clearings))
    return problems


def _order_problems(
    state: StateReader, record: OrderRecord, clearings: dict[tuple[str, int], ClearingRecord]
) -> list[str]:
    name = f"order {record.id.hex()}"
    problems: list[str] = []
    if record.side not in ("bid", "ask") or record.status not in ORDER_STATUSES:
        problems.append(f"{name}: side {record.side!r} or status {record.status!r} unknown")
    side = state.get(keeper.book_prefix(record.zone, record.interval) + record.id.hex())
    if side is None:
        problems.append(f"{name}: not in its book")
    if not 0 <= record.fill <= record.quantity or not 0 <= record.delivered <= record.fill:
        problems.append(f"{name}: fill {record.fill}, delivered {record.delivered} of {record.quantity}")
    if record.status in (CLEARED, SETTLED):
        clearing = clearings.get((record.zone, record.interval))
        if clearing is None or clearing.price is None:
            problems.append(f"{name}: {record.status} without a clearing price")
        elif record.side == "bid" and record.limit_price < clearing.price:
            problems.append(f"{name}: a bid at {record.limit_price} filled at {clearing.price}")
        elif record.side == "ask" and record.limit_price > clearing.price:
            problems.append(f"{name}: an ask at {record.limit_price} filled at {clearing.price}")
    elif record.fill != 0:
        problems.append(f"{name}: {record.status} with fill {record.fill}")
    return problems


def _price_of(record: OrderRecord, clearings: dict[tuple[str, int], ClearingRecord]) -> int | None:
    clearing = clearings.get((record.zone, record.interval))
    return None if clearing is None else clearing.price


def _escrow_problems(
    state: StateReader,
    escrow: EscrowKeeper,
    orders: dict[bytes, OrderRecord],
    clearings: dict[tuple[str, int], ClearingRecord],
) -> list[str]:
    problems: list[str] = []
    live_locks: dict[bytes, bytes] = {}  # lock id -> order id
    owners: dict[str, None] = {}
    for record in orders.values():
        owners.setdefault(record.owner, None)
        name = f"order {record.id.hex()}"
        if record.status == CLEARED and _price_of(record, clearings) is None:
            continue  # reported by _order_problems
        expected = record.expected_lock_amount(_price_of(record, clearings))
        lock = None if record.lock is None else escrow.get(state, record.lock)
        if expected == 0:
            if lock is not None:
                problems.append(f"{name}: {record.status}, yet its lock holds {lock.amount}")
            continue
        if lock is None:
            problems.append(f"{name}: {record.status} expects {expected} in escrow, its lock is closed")
            continue
        zone = keeper.zone(state, record.zone)
        if (
            lock.holder != keeper.HOLDER
            or lock.payer != record.owner
            or zone is None
            or lock.asset != zone.asset
            or lock.amount != expected
        ):
            asset = None if zone is None else zone.asset
            problems.append(
                f"{name}: expects {expected} {asset} held by market from {record.owner}; the lock holds "
                f"{lock.amount} {lock.asset} held by {lock.holder} from {lock.payer}"
            )
        live_locks[lock.id] = record.id
    for owner in owners:
        for lock in escrow.locks_of(state, owner):
            if lock.holder == keeper.HOLDER and lock.id not in live_locks:
                problems.append(f"lock {lock.id.hex()} held by market for {owner} belongs to no order")
    return problems


def _open_index_problems(state: StateReader, orders: dict[bytes, OrderRecord]) -> list[str]:
    problems: list[str] = []
    expected: dict[str, int] = {}
    for record in orders.values():
        if record.status == OPEN:
            key = keeper.open_key(record.interval, record.zone)
            expected[key] = expected.get(key, 0) + 1
    found = {keeper.OPEN_PREFIX + rest: value for rest, value in keeper.iter_raw(state, keeper.OPEN_PREFIX)}
    for key, count in found.items():
        if expected.get(key) != count:
            problems.append(f"{key} counts {count} open orders, there are {expected.get(key, 0)}")
    for key in expected:
        if key not in found:
            problems.append(f"{key} is missing ({expected[key]} open orders)")
    return problems


def _clearing_problems(
    state: StateReader, orders: dict[bytes, OrderRecord], clearings: dict[tuple[str, int], ClearingRecord]
) -> list[str]:
    problems: list[str] = []
    sums: dict[tuple[str, int], dict[str, int]] = {}
    for record in orders.values():
        if record.status not in (CLEARED, SETTLED):
            continue
        total = sums.setdefault((record.zone, record.interval), {})
        for field, amount in (
            ("fill", record.fill),
            ("delivered", record.delivered),
            ("paid", record.paid),
            ("penalty", record.penalty),
        ):
            total[f"{record.side}_{field}"] = total.get(f"{record.side}_{field}", 0) + amount
    settling = {keeper.SETTLING_PREFIX + rest for rest, _ in keeper.iter_raw(state, keeper.SETTLING_PREFIX)}
    for (zone, interval), clearing in clearings.items():
        name = f"clearing {zone}/{interval}"
        if clearing.status not in CLEARING_STATUSES:
            problems.append(f"{name}: unknown status {clearing.status!r}")
        total = sums.get((zone, interval), {})
        problems.extend(_balance(name, clearing, total))
        in_index = keeper.settling_key(interval, zone) in settling
        if in_index != (clearing.status == SETTLING):
            problems.append(f"{name}: {clearing.status}, {'in' if in_index else 'not in'} the settling index")
    for key in sorted(settling):
        interval_text, _, zone = key[len(keeper.SETTLING_PREFIX) :].partition("/")
        if (zone, int(interval_text)) not in clearings:
            problems.append(f"{key} names no clearing")
    return problems


def _balance(name: str, clearing: ClearingRecord, total: dict[str, Any]) -> list[str]:
    problems: list[str] = []
    if total.get("bid_fill", 0) != clearing.volume or total.get("ask_fill", 0) != clearing.volume:
        problems.append(
            f"{name}: volume {clearing.volume}, bids filled {total.get('bid_fill', 0)}, "
            f"asks filled {total.get('ask_fill', 0)}"
        )
    if clearing.status != SETTLED:
        return problems
    for field, recorded in (("delivered", clearing.delivered), ("paid", None), ("penalty", clearing.penalty)):
        bids, asks = total.get(f"bid_{field}", 0), total.get(f"ask_{field}", 0)
        if bids != asks or (recorded is not None and bids != recorded):
            problems.append(f"{name}: {field} of bids {bids}, of asks {asks}, recorded {recorded}")
    assert clearing.price is not None
    if total.get("ask_paid", 0) != clearing.price * clearing.delivered:
        problems.append(f"{name}: sellers received {total.get('ask_paid', 0)} for {clearing.delivered} units")
    return problems
