"""The market's state: the only functions that read or write keys under ``market/``.

State keys (values are canonical CBOR; ``<interval>`` is written with 16 digits, so keys sort by
time; ids are lower-case hex)::

    market/params                                  Params (absent: DEFAULT_PARAMS and DEFAULT_ZONE)
    market/zone/<zone>                             Zone
    market/order/<id>                              OrderRecord
    market/book/<zone>/<interval>/<id>             "bid" | "ask": every order placed for the book
    market/open/<interval>/<zone>                  int: open orders waiting for clearing (> 0)
    market/clearing/<zone>/<interval>              ClearingRecord: the price history
    market/settling/<interval>/<zone>              {"deadline_ms", "sellers"}: a book that traded and
                                                   waits for settlement
    market/delivered/<interval>/<account>          int: units of the account's metered export
                                                   already credited to its asks of that interval

``end_block`` walks ``market/open/`` from the start and stops at the first interval that has not
begun, so clearing reads only what is due; ``market/settling/`` holds only the books that traded
and are waiting for meter readings (a few intervals per zone).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from typing import Any

from autarky.crypto.hashing import sha256
from autarky.encoding import canonical_encode, canonical_key_order
from autarky.ledger.state import Overlay, StateReader, get_obj, get_record

PARAMS_KEY = "market/params"
ZONE_PREFIX = "market/zone/"
ORDER_PREFIX = "market/order/"
BOOK_PREFIX = "market/book/"
OPEN_PREFIX = "market/open/"
CLEARING_PREFIX = "market/clearing/"
SETTLING_PREFIX = "market/settling/"
DELIVERED_PREFIX = "market/delivered/"

ORDER_ID_TAG = "autarky/market/order-id"
HOLDER = "market"
"""The escrow holder name of every lock the market opens."""

ZONE_NAME = re.compile(r"[a-z0-9][a-z0-9._-]{0,31}")

# Order statuses.
OPEN = "open"
CANCELLED = "cancelled"
UNFILLED = "unfilled"
CLEARED = "cleared"
SETTLED = "settled"
ORDER_STATUSES = (OPEN, CANCELLED, UNFILLED, CLEARED, SETTLED)

# Clearing statuses.
NO_TRADE = "no_trade"
SETTLING = "settling"
CLEARING_STATUSES = (NO_TRADE, SETTLING, SETTLED)


def is_zone_name(value: object) -> bool:
    return type(value) is str and ZONE_NAME.fullmatch(value) is not None


def new_order_id(tx_hash: bytes, message_index: int) -> bytes:
    """``sha256(canonical_cbor(["autarky/market/order-id", tx_hash, message_index]))``."""
    return sha256(canonical_encode([ORDER_ID_TAG, tx_hash, message_index]))


def interval_text(interval: int) -> str:
    return f"{interval:016d}"


# ---------------------------------------------------------------------------------------------------
# Records


def shallow_fields(record: OrderRecord | ClearingRecord) -> dict[str, Any]:
    """A record's fields by name, in canonical key order (so encoding does not reorder them). Every
    field is an int, str, bytes, bool or None, so this equals ``dataclasses.asdict`` (which copies
    deeply, at several times the cost: orders are written twice per placement)."""
    return {name: getattr(record, name) for name in canonical_key_order(record.__slots__)}


@dataclass(frozen=True, slots=True)
class Params:
    max_orders_per_interval: int
    max_intervals_ahead: int
    settlement_delay_ms: int


@dataclass(frozen=True, slots=True)
class Zone:
    name: str
    asset: str
    unit: str
    price_cap_feed: str | None
    penalty_per_unit: int


@dataclass(frozen=True, slots=True)
class OrderRecord:
    id: bytes
    owner: str
    side: str
    """"bid" or "ask"."""
    zone: str
    interval: int
    quantity: int
    limit_price: int
    height: int
    """The height of the block the order was placed in (ranking: earlier first)."""
    lock: bytes | None
    """The escrow lock: the bid's payment, or the ask's collateral (None when it needs none)."""
    escrowed: int
    """What was locked: ``quantity * limit_price`` for a bid, ``quantity * penalty_per_unit`` for an ask."""
    penalty_per_unit: int
    """An ask's collateral rate, fixed when it was placed (0 for a bid)."""
    status: str
    fill: int
    delivered: int
    paid: int
    """A bid: what it paid sellers. An ask: what buyers paid it."""
    penalty: int
    """A bid: penalties it received. An ask: penalties it paid from its collateral."""

    def to_cbor(self) -> dict[str, Any]:
        return shallow_fields(self)

    @classmethod
    def from_cbor(cls, value: Any) -> OrderRecord:
        return cls(**value)

    def expected_lock_amount(self, price: int | None) -> int:
        """What must remain in the order's escrow lock in its status (0: the lock is closed)."""
        if self.status == OPEN:
            return self.escrowed
        if self.status == CLEARED:
            assert price is not None
            return price * self.fill if self.side == "bid" else self.fill * self.penalty_per_unit
        return 0


@dataclass(frozen=True, slots=True)
class ClearingRecord:
    zone: str
    interval: int
    price: int | None
    volume: int
    bids: int
    """Open bids that took part."""
    asks: int
    """Open asks that took part (asks above the cap included)."""
    cap: int | None
    cap_stale: bool
    """True when the zone has a price-cap feed but it had no fresh value: cleared without a cap."""
    height: int
    time_ms: int
    deadline_ms: int
    status: str
    delivered: int
    penalty: int
    settled_height: int | None

    def to_cbor(self) -> dict[str, Any]:
        return shallow_fields(self)

    @classmethod
    def from_cbor(cls, value: Any) -> ClearingRecord:
        return cls(**value)


DEFAULT_PARAMS = Params(max_orders_per_interval=1000, max_intervals_ahead=672, settlement_delay_ms=3_600_000)
DEFAULT_ZONE = Zone(name="main", asset="aut", unit="wh", price_cap_feed=None, penalty_per_unit=0)
"""A chain whose genesis has no market settings stores no ``market/`` key at genesis (so its state
root is that of a chain without the module) and runs with these: one zone ``main``."""


# ---------------------------------------------------------------------------------------------------
# Keys


def zone_key(zone: str) -> str:
    return ZONE_PREFIX + zone


def order_key(order_id: bytes) -> str:
    return ORDER_PREFIX + order_id.hex()


def book_prefix(zone: str, interval: int) -> str:
    return f"{BOOK_PREFIX}{zone}/{interval_text(interval)}/"


def open_key(interval: int, zone: str) -> str:
    return f"{OPEN_PREFIX}{interval_text(interval)}/{zone}"


def clearing_key(zone: str, interval: int) -> str:
    return f"{CLEARING_PREFIX}{zone}/{interval_text(interval)}"


def settling_key(interval: int, zone: str) -> str:
    return f"{SETTLING_PREFIX}{interval_text(interval)}/{zone}"


def delivered_key(interval: int, account: str) -> str:
    return f"{DELIVERED_PREFIX}{interval_text(interval)}/{account}"


def _interval_and_name(rest: str) -> tuple[int, str]:
    interval, _, name = rest.partition("/")
    return int(interval), name


# ---------------------------------------------------------------------------------------------------
# Reads


def _params(value: Any) -> Params:
    return Params(**value)


def _zone(value: Any) -> Zone:
    return Zone(**value)


def params(state: StateReader) -> Params:
    found = get_record(state, PARAMS_KEY, _params)
    return DEFAULT_PARAMS if found is None else found


def zone(state: StateReader, name: str) -> Zone | None:
    if state.get(PARAMS_KEY) is None:
        return DEFAULT_ZONE if name == DEFAULT_ZONE.name else None
    return get_record(state, zone_key(name), _zone) if is_zone_name(name) else None


def zones(state: StateReader) -> list[Zone]:
    if get_obj(state, PARAMS_KEY) is None:
        return [DEFAULT_ZONE]
    return [Zone(**get_obj(state, key)) for key, _ in state.iter_prefix(ZONE_PREFIX)]


def order(state: StateReader, order_id: bytes) -> OrderRecord | None:
    value = get_obj(state, order_key(order_id))
    return None if value is None else OrderRecord.from_cbor(value)


def book(state: StateReader, zone_name: str, interval: int) -> list[OrderRecord]:
    """Every order placed for the book (any status), in id order."""
    prefix = book_prefix(zone_name, interval)
    records = []
    for key, _ in state.iter_prefix(prefix):
        record = order(state, bytes.fromhex(key[len(prefix) :]))
        assert record is not None, f"book entry {key} names no order"
        records.append(record)
    return records


def open_count(state: StateReader, interval: int, zone_name: str) -> int:
    value = get_obj(state, open_key(interval, zone_name))
    return 0 if value is None else int(value)


def due_books(state: StateReader, interval_now: int) -> Iterator[tuple[int, str]]:
    """(interval, zone) of every book with open orders whose interval has begun (``<= interval_now``),
    in interval then zone order. Stops at the first later interval."""
    for key, _ in state.iter_prefix(OPEN_PREFIX):
        interval, zone_name = _interval_and_name(key[len(OPEN_PREFIX) :])
        if interval > interval_now:
            return
        yield interval, zone_name


def clearing(state: StateReader, zone_name: str, interval: int) -> ClearingRecord | None:
    value = get_obj(state, clearing_key(zone_name, interval))
    return None if value is None else ClearingRecord.from_cbor(value)


def clearings(state: StateReader, zone_name: str, first: int, last: int) -> Iterator[ClearingRecord]:
    """The clearing records of ``zone_name`` for intervals ``first .. last``, oldest first."""
    prefix = f"{CLEARING_PREFIX}{zone_name}/"
    for key, _ in state.iter_prefix(prefix):
        interval = int(key[len(prefix) :])
        if interval > last:
            return
        if interval >= first:
            record = clearing(state, zone_name, interval)
            assert record is not None
            yield record


def settling(state: StateReader) -> list[tuple[int, str, int, list[str]]]:
    """(interval, zone, deadline_ms, sellers) of every book waiting for settlement, in interval then
    zone order."""
    found = []
    for key, _ in state.iter_prefix(SETTLING_PREFIX):
        interval, zone_name = _interval_and_name(key[len(SETTLING_PREFIX) :])
        value = get_obj(state, key)
        found.append((interval, zone_name, int(value["deadline_ms"]), list(value["sellers"])))
    return found


def delivered(state: StateReader, interval: int, account: str) -> int:
    value = get_obj(state, delivered_key(interval, account))
    return 0 if value is None else int(value)


def iter_orders(state: StateReader) -> Iterator[tuple[str, Any]]:
    """(id hex, stored value) of every order record (for invariants)."""
    for key, _ in state.iter_prefix(ORDER_PREFIX):
        yield key[len(ORDER_PREFIX) :], get_obj(state, key)


def iter_raw(state: StateReader, prefix: str) -> Iterator[tuple[str, Any]]:
    """(key after ``prefix``, stored value) of every key under one prefix (for invariants)."""
    for key, _ in state.iter_prefix(prefix):
        yield key[len(prefix) :], get_obj(state, key)


# ---------------------------------------------------------------------------------------------------
# Writes


def set_params(state: Overlay, value: Params) -> None:
    state.set_obj(PARAMS_KEY, asdict(value))


def set_zone(state: Overlay, value: Zone) -> None:
    state.set_obj(zone_key(value.name), asdict(value))


def create_order(state: Overlay, record: OrderRecord) -> None:
    """Store a new open order, its book entry, and count it in the open index."""
    assert state.get(order_key(record.id)) is None, f"order {record.id.hex()} exists"
    assert record.status == OPEN
    state.set_obj(order_key(record.id), record.to_cbor())
    state.set_obj(book_prefix(record.zone, record.interval) + record.id.hex(), record.side)
    _count_open(state, record.interval, record.zone, +1)


def cancel_order(state: Overlay, record: OrderRecord) -> OrderRecord:
    assert record.status == OPEN
    cancelled = replace(record, status=CANCELLED)
    state.set_obj(order_key(record.id), cancelled.to_cbor())
    _count_open(state, record.interval, record.zone, -1)
    return cancelled


def update_order(state: Overlay, record: OrderRecord) -> None:
    """Write a cleared or settled order (the open index is cleared per book by :func:`close_book`)."""
    assert record.status != OPEN and state.get(order_key(record.id)) is not None
    state.set_obj(order_key(record.id), record.to_cbor())


def close_book(state: Overlay, interval: int, zone_name: str) -> None:
    """The book has been cleared: it leaves the open index."""
    state.delete(open_key(interval, zone_name))


def _count_open(state: Overlay, interval: int, zone_name: str, change: int) -> None:
    count = open_count(state, interval, zone_name) + change
    assert count >= 0
    if count == 0:
        state.delete(open_key(interval, zone_name))
    else:
        state.set_obj(open_key(interval, zone_name), count)


def set_clearing(state: Overlay, record: ClearingRecord, sellers: list[str]) -> None:
    """Store a clearing record; a book that waits for settlement (``settling``) is indexed with its
    deadline and its sellers (the accounts whose readings settlement waits for), any other is not."""
    state.set_obj(clearing_key(record.zone, record.interval), record.to_cbor())
    if record.status == SETTLING:
        value = {"deadline_ms": record.deadline_ms, "sellers": sellers}
        state.set_obj(settling_key(record.interval, record.zone), value)
    else:
        assert not sellers
        state.delete(settling_key(record.interval, record.zone))


def set_delivered(state: Overlay, interval: int, account: str, units: int) -> None:
    assert units > 0
    state.set_obj(delivered_key(interval, account), units)
