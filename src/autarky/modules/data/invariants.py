"""What must hold in the data state after every block. Run by tests; each broken rule is one line.

1. Every offer and purchase record is well formed (``from_cbor``) and stored under its own id.
2. Every purchase names an existing offer and agrees with it (seller, asset, unit price times
   units); an offer's ``sold`` equals the number of its purchases.
3. The indexes (``by_seller``, ``by_buyer``, ``sold``, ``by_offer``, ``due``) and the records agree
   both ways; exactly the open purchases have a due entry, under their deadline.
4. Escrow agrees: an open purchase has a live lock held by ``data``, paid by the buyer, in the
   offer's asset, naming the seller, with exactly the purchase's amount; a settled purchase's lock
   is closed; no lock held by ``data`` that names a seller belongs to no open purchase.
5. Policy agrees: every purchase's grant exists, from the seller to the buyer, ``read`` on
   ``data/<offer>``, expiring at ``access_until_ms``; a refunded purchase's grant is revoked.
6. Settled purchases have a settlement height; only delivered ones have a key hash.

The checks report what they find rather than assert, so a corrupted state gives a readable list.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from autarky.ledger.state import StateReader
from autarky.modules.data import keeper
from autarky.modules.data.expected import EscrowKeeper, PolicyKeeper
from autarky.modules.data.handlers import MODULE
from autarky.modules.data.records import (
    DELIVERED,
    READ_ACTION,
    REFUNDED,
    OfferRecord,
    PurchaseRecord,
    resource_of,
)

R = TypeVar("R", OfferRecord, PurchaseRecord)


def check_invariants(state: StateReader, escrow: EscrowKeeper, policy: PolicyKeeper) -> list[str]:
    problems: list[str] = []
    offers = _load(state, keeper.OFFER_PREFIX, OfferRecord.from_cbor, "offer", problems)
    purchases = _load(state, keeper.PURCHASE_PREFIX, PurchaseRecord.from_cbor, "purchase", problems)
    sold: dict[bytes, int] = {}
    for purchase in purchases.values():
        sold[purchase.offer] = sold.get(purchase.offer, 0) + 1
        problems.extend(_purchase_problems(purchase, offers.get(purchase.offer)))
        problems.extend(_escrow_problems(state, escrow, purchase))
        problems.extend(_grant_problems(state, policy, purchase))
    for offer in offers.values():
        if offer.sold != sold.get(offer.id, 0):
            problems.append(
                f"offer {offer.id.hex()}: sold {offer.sold}, it has {sold.get(offer.id, 0)} purchases"
            )
    problems.extend(_index_problems(state, offers, purchases))
    problems.extend(_orphan_lock_problems(state, escrow, offers, purchases))
    return problems


def _load(
    state: StateReader, prefix: str, decode: Callable[[Any], R], what: str, problems: list[str]
) -> dict[bytes, R]:
    records: dict[bytes, R] = {}
    for id_hex, value in keeper.iter_raw(state, prefix):
        try:
            record = decode(value)
        except ValueError as exc:
            problems.append(f"{what} {id_hex}: malformed record: {exc}")
            continue
        if record.id.hex() != id_hex:
            problems.append(f"{what} {id_hex}: the record holds id {record.id.hex()}")
            continue
        records[record.id] = record
    return records


def _purchase_problems(purchase: PurchaseRecord, offer: OfferRecord | None) -> list[str]:
    name = f"purchase {purchase.id.hex()}"
    if offer is None:
        return [f"{name}: its offer {purchase.offer.hex()} does not exist"]
    problems: list[str] = []
    if purchase.seller != offer.seller or purchase.asset != offer.asset:
        problems.append(f"{name}: seller or asset differs from its offer's")
    if purchase.amount != offer.price * purchase.units or purchase.units < 1:
        problems.append(f"{name}: amount {purchase.amount} is not {offer.price} x {purchase.units}")
    if purchase.buyer == purchase.seller:
        problems.append(f"{name}: bought by its own seller")
    if purchase.is_open == (purchase.settled is not None):
        problems.append(f"{name}: {purchase.status} with settlement height {purchase.settled}")
    if (purchase.status == DELIVERED) != (purchase.key_hash is not None):
        problems.append(f"{name}: {purchase.status} with key hash {purchase.key_hash!r}")
    return problems


def _escrow_problems(state: StateReader, escrow: EscrowKeeper, purchase: PurchaseRecord) -> list[str]:
    name = f"purchase {purchase.id.hex()}"
    lock = escrow.get(state, purchase.lock)
    if not purchase.is_open:
        return [] if lock is None else [f"{name}: {purchase.status}, but its lock is still open"]
    if lock is None:
        return [f"{name}: open, but its escrow lock {purchase.lock.hex()} is closed"]
    if lock.holder != MODULE or lock.payer != purchase.buyer or lock.asset != purchase.asset:
        return [f"{name}: its lock is held by {lock.holder}, paid by {lock.payer} in {lock.asset}"]
    if lock.amount != purchase.amount:
        return [f"{name}: its lock holds {lock.amount}, the purchase {purchase.amount}"]
    if lock.beneficiaries != (purchase.seller,):
        return [f"{name}: its lock names {list(lock.beneficiaries)}, not the seller"]
    return []


def _grant_problems(state: StateReader, policy: PolicyKeeper, purchase: PurchaseRecord) -> list[str]:
    name = f"purchase {purchase.id.hex()}"
    grant = policy.grant(state, purchase.grant)
    if grant is None:
        return [f"{name}: its grant {purchase.grant.hex()} does not exist"]
    expected = (
        purchase.seller,
        purchase.buyer,
        READ_ACTION,
        resource_of(purchase.offer),
        purchase.access_until_ms,
    )
    found = (grant.grantor, grant.grantee, grant.action, grant.resource, grant.expires_ms)
    if found != expected:
        return [f"{name}: its grant is {found}, expected {expected}"]
    if purchase.status == REFUNDED and grant.revoked is None:
        return [f"{name}: refunded, but its grant is not revoked"]
    return []


def _index_problems(
    state: StateReader, offers: dict[bytes, OfferRecord], purchases: dict[bytes, PurchaseRecord]
) -> list[str]:
    expected: dict[str, object] = {}
    for offer in offers.values():
        expected[keeper.by_seller_key(offer.seller, offer.id)] = offer.name
    for purchase in purchases.values():
        expected[keeper.by_buyer_key(purchase.buyer, purchase.id)] = purchase.offer.hex()
        expected[keeper.sold_key(purchase.seller, purchase.id)] = purchase.offer.hex()
        expected[keeper.by_offer_key(purchase.offer, purchase.id)] = purchase.buyer
        if purchase.is_open:
            expected[keeper.due_key(purchase.deliver_by_ms, purchase.id)] = purchase.buyer
    found: dict[str, object] = {}
    for prefix in (
        keeper.BY_SELLER_PREFIX,
        keeper.BY_BUYER_PREFIX,
        keeper.SOLD_PREFIX,
        keeper.BY_OFFER_PREFIX,
        keeper.DUE_PREFIX,
    ):
        for rest, value in keeper.iter_raw(state, prefix):
            found[prefix + rest] = value
    problems: list[str] = []
    for key, value in found.items():
        if key not in expected:
            problems.append(f"index entry {key} names no record (or a settled purchase)")
        elif value != expected[key]:
            problems.append(f"index entry {key} holds {value!r}, expected {expected[key]!r}")
    for key in expected:
        if key not in found:
            problems.append(f"index entry {key} is missing")
    return problems


def _orphan_lock_problems(
    state: StateReader,
    escrow: EscrowKeeper,
    offers: dict[bytes, OfferRecord],
    purchases: dict[bytes, PurchaseRecord],
) -> list[str]:
    open_locks = {purchase.lock for purchase in purchases.values() if purchase.is_open}
    sellers = sorted({offer.seller for offer in offers.values()})
    problems: list[str] = []
    for seller in sellers:
        for lock in escrow.locks_for(state, seller):
            if lock.holder == MODULE and lock.id not in open_locks:
                problems.append(
                    f"escrow lock {lock.id.hex()} held by data names {seller} and no open purchase"
                )
    return problems
