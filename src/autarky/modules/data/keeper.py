"""The data module's state: the only functions that read or write keys under ``data/``.

State keys (values are canonical CBOR; ids and their hex are lower case)::

    data/params                              {"delivery_window_ms": int, "max_units": int} (only when
                                             genesis sets them; absent means the defaults)
    data/offer/<offer id hex>                the offer record (records.OfferRecord)
    data/by_seller/<seller did>/<offer hex>  the offer's name: a seller's offers
    data/purchase/<purchase id hex>          the purchase record (records.PurchaseRecord)
    data/by_buyer/<buyer did>/<purchase hex> the offer id hex: a buyer's purchases
    data/sold/<seller did>/<purchase hex>    the offer id hex: a seller's sales
    data/by_offer/<offer hex>/<purchase hex> the buyer's did: an offer's purchases
    data/due/<deliver_by_ms, 16 digits>/<purchase hex>
                                             the buyer's did: an open purchase, by its deadline

``end_block`` walks ``data/due/`` in key order, which is deadline order, and stops at the first
deadline still in the future: it reads only what is due. Offers and purchases are never deleted (a
withdrawn offer and a settled purchase stay, so an audit can name them); a due entry is deleted when
its purchase is settled.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from autarky.crypto.hashing import sha256
from autarky.encoding import canonical_encode, decode_trusted
from autarky.ledger.state import Overlay, StateReader, get_obj
from autarky.modules.data.records import OfferRecord, PurchaseRecord

PARAMS_KEY = "data/params"
OFFER_PREFIX = "data/offer/"
BY_SELLER_PREFIX = "data/by_seller/"
PURCHASE_PREFIX = "data/purchase/"
BY_BUYER_PREFIX = "data/by_buyer/"
SOLD_PREFIX = "data/sold/"
BY_OFFER_PREFIX = "data/by_offer/"
DUE_PREFIX = "data/due/"
DUE_DIGITS = 16
"""Deadlines are written with 16 decimal digits (block times in ms up to year 318857)."""
MAX_DUE_MS = 10**DUE_DIGITS - 1

OFFER_ID_TAG = "autarky/data/offer-id"
PURCHASE_ID_TAG = "autarky/data/purchase-id"


@dataclass(frozen=True, slots=True)
class Params:
    delivery_window_ms: int
    """How long after a purchase the buyer has to acknowledge the key's delivery."""
    max_units: int
    """The most periods or items one purchase may buy."""

    def to_cbor(self) -> dict[str, int]:
        return {"delivery_window_ms": self.delivery_window_ms, "max_units": self.max_units}


DEFAULT_PARAMS = Params(delivery_window_ms=3_600_000, max_units=10_000)
MAX_DELIVERY_WINDOW_MS = 30 * 24 * 3600 * 1000
MAX_UNITS_LIMIT = 1_000_000


def new_offer_id(tx_hash: bytes, message_index: int) -> bytes:
    """``sha256(canonical_cbor(["autarky/data/offer-id", tx_hash, message_index]))``."""
    return sha256(canonical_encode([OFFER_ID_TAG, tx_hash, message_index]))


def new_purchase_id(tx_hash: bytes, message_index: int) -> bytes:
    """``sha256(canonical_cbor(["autarky/data/purchase-id", tx_hash, message_index]))``."""
    return sha256(canonical_encode([PURCHASE_ID_TAG, tx_hash, message_index]))


def offer_key(offer_id: bytes) -> str:
    return OFFER_PREFIX + offer_id.hex()


def purchase_key(purchase_id: bytes) -> str:
    return PURCHASE_PREFIX + purchase_id.hex()


def by_seller_key(seller: str, offer_id: bytes) -> str:
    return f"{BY_SELLER_PREFIX}{seller}/{offer_id.hex()}"


def by_buyer_key(buyer: str, purchase_id: bytes) -> str:
    return f"{BY_BUYER_PREFIX}{buyer}/{purchase_id.hex()}"


def sold_key(seller: str, purchase_id: bytes) -> str:
    return f"{SOLD_PREFIX}{seller}/{purchase_id.hex()}"


def by_offer_key(offer_id: bytes, purchase_id: bytes) -> str:
    return f"{BY_OFFER_PREFIX}{offer_id.hex()}/{purchase_id.hex()}"


def due_key(deliver_by_ms: int, purchase_id: bytes) -> str:
    assert 0 <= deliver_by_ms <= MAX_DUE_MS, deliver_by_ms
    return f"{DUE_PREFIX}{deliver_by_ms:0{DUE_DIGITS}d}/{purchase_id.hex()}"


# ---------------------------------------------------------------------------------------------------
# Parameters


def validate_params(config: Mapping[str, Any]) -> Params:
    """The parameters of a genesis ``params`` map (every key optional); ``ValueError`` otherwise."""
    if not isinstance(config, Mapping):
        raise ValueError("data genesis: params must be a map")
    allowed = ("delivery_window_ms", "max_units")
    for name in config:
        if name not in allowed:
            raise ValueError(f"data genesis: params has an unknown key {name!r} (allowed: {list(allowed)})")
    window = config.get("delivery_window_ms", DEFAULT_PARAMS.delivery_window_ms)
    units = config.get("max_units", DEFAULT_PARAMS.max_units)
    if type(window) is not int or not 1_000 <= window <= MAX_DELIVERY_WINDOW_MS:
        raise ValueError(
            "data genesis: params.delivery_window_ms must be from 1000 to "
            f"{MAX_DELIVERY_WINDOW_MS}, not {window!r}"
        )
    if type(units) is not int or not 1 <= units <= MAX_UNITS_LIMIT:
        raise ValueError(f"data genesis: params.max_units must be from 1 to {MAX_UNITS_LIMIT}, not {units!r}")
    return Params(window, units)


def params(state: StateReader) -> Params:
    value = get_obj(state, PARAMS_KEY)
    if value is None:
        return DEFAULT_PARAMS
    return Params(value["delivery_window_ms"], value["max_units"])


def set_params(state: Overlay, value: Params) -> None:
    state.set_obj(PARAMS_KEY, value.to_cbor())


# ---------------------------------------------------------------------------------------------------
# Reads


def read_offer(state: StateReader, offer_id: bytes) -> OfferRecord | None:
    value = get_obj(state, offer_key(offer_id))
    return None if value is None else OfferRecord.from_cbor(value)


def read_purchase(state: StateReader, purchase_id: bytes) -> PurchaseRecord | None:
    value = get_obj(state, purchase_key(purchase_id))
    return None if value is None else PurchaseRecord.from_cbor(value)


def _ids_under(state: StateReader, prefix: str) -> list[bytes]:
    return [bytes.fromhex(key[len(prefix) :]) for key, _ in state.iter_prefix(prefix)]


def offers_of_seller(state: StateReader, seller: str) -> list[bytes]:
    """Ids of every offer ``seller`` made (withdrawn ones too), in id order."""
    return _ids_under(state, f"{BY_SELLER_PREFIX}{seller}/")


def purchases_of_buyer(state: StateReader, buyer: str) -> list[bytes]:
    return _ids_under(state, f"{BY_BUYER_PREFIX}{buyer}/")


def sales_of_seller(state: StateReader, seller: str) -> list[bytes]:
    return _ids_under(state, f"{SOLD_PREFIX}{seller}/")


def purchases_of_offer(state: StateReader, offer_id: bytes) -> list[bytes]:
    return _ids_under(state, f"{BY_OFFER_PREFIX}{offer_id.hex()}/")


def iter_offers(state: StateReader) -> Iterator[OfferRecord]:
    """Every offer, in id order."""
    for _, raw in state.iter_prefix(OFFER_PREFIX):
        yield OfferRecord.from_cbor(decode_trusted(raw))


def due_until(state: StateReader, now_ms: int) -> list[bytes]:
    """Ids of the open purchases whose deadline is at or before ``now_ms``, earliest deadline first.

    Keys sort by deadline (fixed width), so the walk stops at the first one still in the future.
    """
    due: list[bytes] = []
    for key, _ in state.iter_prefix(DUE_PREFIX):
        deadline, purchase_hex = key[len(DUE_PREFIX) :].split("/")
        if int(deadline) > now_ms:
            break
        due.append(bytes.fromhex(purchase_hex))
    return due


def iter_raw(state: StateReader, prefix: str) -> Iterator[tuple[str, Any]]:
    """(the key after ``prefix``, decoded value) for every key under ``prefix`` (for invariants)."""
    for key, raw in state.iter_prefix(prefix):
        yield key[len(prefix) :], decode_trusted(raw)


# ---------------------------------------------------------------------------------------------------
# Writes


def create_offer(state: Overlay, record: OfferRecord) -> None:
    assert state.get(offer_key(record.id)) is None, f"offer {record.id.hex()} exists"
    state.set_obj(offer_key(record.id), record.to_cbor())
    state.set_obj(by_seller_key(record.seller, record.id), record.name)


def write_offer(state: Overlay, record: OfferRecord) -> None:
    """Store a changed offer (withdrawn, or one more sale). Its indexed fields never change."""
    assert state.get(offer_key(record.id)) is not None, f"no offer {record.id.hex()}"
    state.set_obj(offer_key(record.id), record.to_cbor())


def create_purchase(state: Overlay, record: PurchaseRecord) -> None:
    assert state.get(purchase_key(record.id)) is None, f"purchase {record.id.hex()} exists"
    assert record.is_open
    state.set_obj(purchase_key(record.id), record.to_cbor())
    state.set_obj(by_buyer_key(record.buyer, record.id), record.offer.hex())
    state.set_obj(sold_key(record.seller, record.id), record.offer.hex())
    state.set_obj(by_offer_key(record.offer, record.id), record.buyer)
    state.set_obj(due_key(record.deliver_by_ms, record.id), record.buyer)


def settle_purchase(state: Overlay, record: PurchaseRecord) -> None:
    """Store a purchase that was open and is now delivered or refunded, and drop its due entry."""
    assert not record.is_open and record.settled is not None
    previous = read_purchase(state, record.id)
    assert previous is not None and previous.is_open, f"purchase {record.id.hex()} was not open"
    state.set_obj(purchase_key(record.id), record.to_cbor())
    state.delete(due_key(previous.deliver_by_ms, record.id))
