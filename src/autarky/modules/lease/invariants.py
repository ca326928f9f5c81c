"""What must hold in the lease state after every block. Run by tests; each broken rule is one line.

1. Every offer and lease record is well formed and stored under its own id; the offer index
   (``offers_of``) and the records agree both ways.
2. A lease's numbers add up: ``0 <= settled <= periods <= booked``, ``paid`` and ``refunded`` are
   whole periods and ``paid + refunded == price * (settled + booked - periods)``, so what escrow
   still holds for it is ``price * (periods - settled)``. A reservation has settled nothing; a closed
   lease has settled every period and has an outcome; only a running lease has a claim, and the
   claim covers unsettled periods of the lease.
3. Escrow agrees: an open lease has a live lock held by ``lease``, paid by its renter, in its asset,
   holding exactly what the lease expects; a closed lease's lock is gone (released or refunded);
   no lock held by ``lease`` is orphaned (every one belongs to an open lease).
4. The indexes agree with the records both ways: ``by_account`` (renter and provider of every
   lease), ``slot`` (exactly the open leases, holding their end), ``due`` (exactly the open leases, at
   ``schedule.next_due``).
5. The open slots of a resource never overlap.

The checks report what they find rather than assert, so a corrupted state gives a readable list.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from autarky.ledger.state import StateReader
from autarky.modules.lease import keeper, schedule
from autarky.modules.lease.expected import EscrowKeeper
from autarky.modules.lease.handlers import HOLDER
from autarky.modules.lease.records import (
    ACTIVE,
    CLOSED,
    OUTCOMES,
    RESERVED,
    STATUSES,
    LeaseRecord,
    OfferRecord,
)

_Record = TypeVar("_Record", OfferRecord, LeaseRecord)


def check_invariants(state: StateReader, escrow: EscrowKeeper) -> list[str]:
    problems: list[str] = []
    offers = _records(state, keeper.OFFER_PREFIX, OfferRecord.from_cbor, "offer", problems)
    leases = _records(state, keeper.LEASE_PREFIX, LeaseRecord.from_cbor, "lease", problems)
    problems.extend(_offer_index_problems(state, offers))
    for lease in leases.values():
        problems.extend(_number_problems(lease))
        problems.extend(_escrow_problems(state, escrow, lease))
    problems.extend(_orphan_problems(state, escrow, leases))
    problems.extend(_index_problems(state, leases))
    problems.extend(_overlap_problems(leases))
    return problems


def _records(
    state: StateReader,
    prefix: str,
    decode: Callable[[bytes, Any], _Record],
    name: str,
    problems: list[str],
) -> dict[bytes, _Record]:
    records: dict[bytes, _Record] = {}
    for id_hex, value in keeper.iter_raw(state, prefix):
        try:
            record = decode(bytes.fromhex(id_hex), value)
        except ValueError as exc:
            problems.append(f"{name} {id_hex}: malformed record: {exc}")
            continue
        records[bytes.fromhex(id_hex)] = record
    return records


def _offer_index_problems(state: StateReader, offers: dict[bytes, OfferRecord]) -> list[str]:
    expected = {keeper.offers_of_key(o.provider, o.id): o.resource for o in offers.values()}
    found = {
        keeper.OFFERS_OF_PREFIX + rest: value
        for rest, value in keeper.iter_raw(state, keeper.OFFERS_OF_PREFIX)
    }
    return _compare("offer index", expected, found)


def _number_problems(lease: LeaseRecord) -> list[str]:
    name = f"lease {lease.id.hex()}"
    problems: list[str] = []
    price = lease.price_per_period
    if lease.status not in STATUSES:
        return [f"{name}: unknown status {lease.status!r}"]
    if not (lease.booked >= 1 and 0 <= lease.settled <= lease.periods <= lease.booked):
        problems.append(f"{name}: settled {lease.settled}, periods {lease.periods}, booked {lease.booked}")
    if lease.paid % price or lease.refunded % price:
        problems.append(f"{name}: paid {lease.paid} or refunded {lease.refunded} is not whole periods")
    if lease.paid + lease.refunded != price * (lease.settled + lease.booked - lease.periods):
        problems.append(
            f"{name}: paid {lease.paid} + refunded {lease.refunded} do not match the settled periods"
        )
    if lease.breached > lease.settled:
        problems.append(f"{name}: {lease.breached} breached periods of {lease.settled} settled")
    if lease.status == RESERVED and (lease.settled or lease.paid or lease.confirmed_ms is not None):
        problems.append(f"{name}: a reservation that has settled or been confirmed")
    if (lease.status == CLOSED) != (lease.outcome is not None) or (
        lease.outcome is not None and lease.outcome not in OUTCOMES
    ):
        problems.append(f"{name}: status {lease.status} with outcome {lease.outcome!r}")
    if lease.status == CLOSED and lease.settled != lease.periods:
        problems.append(f"{name}: closed with {lease.periods - lease.settled} periods unsettled")
    claim = lease.claim
    if claim is not None and (
        lease.status != ACTIVE
        or claim.periods < 1
        or claim.first < lease.settled
        or claim.first + claim.periods > lease.periods
    ):
        problems.append(
            f"{name}: claim {claim.first}+{claim.periods} on a {lease.status} lease settled to "
            f"{lease.settled}"
        )
    if lease.status != CLOSED and schedule.next_due(lease) != lease.due_ms:
        problems.append(f"{name}: due at {lease.due_ms}, its schedule says {schedule.next_due(lease)}")
    if lease.status == CLOSED and lease.due_ms is not None:
        problems.append(f"{name}: closed but due at {lease.due_ms}")
    return problems


def _escrow_problems(state: StateReader, escrow: EscrowKeeper, lease: LeaseRecord) -> list[str]:
    name = f"lease {lease.id.hex()}"
    lock = escrow.get(state, lease.lock)
    if lease.status == CLOSED:
        return [] if lock is None else [f"{name}: closed, but its lock still holds {lock.amount}"]
    if lock is None:
        return [f"{name}: open, but its lock {lease.lock.hex()} is gone"]
    if (lock.holder, lock.payer, lock.asset) != (HOLDER, lease.renter, lease.asset):
        return [f"{name}: its lock is held by {lock.holder}, paid by {lock.payer} in {lock.asset}"]
    if lock.amount != lease.remaining:
        return [f"{name}: expects {lease.remaining} in escrow, its lock holds {lock.amount}"]
    return []


def _orphan_problems(state: StateReader, escrow: EscrowKeeper, leases: dict[bytes, LeaseRecord]) -> list[str]:
    open_locks = {lease.lock for lease in leases.values() if lease.status != CLOSED}
    return [
        f"lock {lock.id.hex()} held by lease is no open lease's"
        for lock in escrow.locks_held_by(state, HOLDER)
        if lock.id not in open_locks
    ]


def _index_problems(state: StateReader, leases: dict[bytes, LeaseRecord]) -> list[str]:
    by_account: dict[str, object] = {}
    slots: dict[str, object] = {}
    due: dict[str, object] = {}
    for lease in leases.values():
        by_account[keeper.by_account_key(lease.renter, lease.id)] = keeper.RENTER
        by_account[keeper.by_account_key(lease.provider, lease.id)] = keeper.PROVIDER
        if lease.status != CLOSED:
            slots[keeper.slot_key(lease)] = lease.end_ms
            if lease.due_ms is not None:
                due[keeper.due_key(lease.due_ms, lease.id)] = True
    problems: list[str] = []
    for prefix, expected, name in (
        (keeper.BY_ACCOUNT_PREFIX, by_account, "account index"),
        (keeper.SLOT_PREFIX, slots, "slot"),
        (keeper.DUE_PREFIX, due, "due index"),
    ):
        found = {prefix + rest: value for rest, value in keeper.iter_raw(state, prefix)}
        problems.extend(_compare(name, expected, found))
    return problems


def _overlap_problems(leases: dict[bytes, LeaseRecord]) -> list[str]:
    by_resource: dict[tuple[str, str], list[LeaseRecord]] = {}
    for lease in leases.values():
        if lease.status != CLOSED:
            by_resource.setdefault((lease.provider, lease.resource), []).append(lease)
    problems: list[str] = []
    for (provider, resource), open_leases in by_resource.items():
        ordered = sorted(open_leases, key=lambda lease: (lease.start_ms, lease.id))
        for first, second in itertools.pairwise(ordered):
            if second.start_ms < first.end_ms:
                problems.append(
                    f"leases {first.id.hex()} and {second.id.hex()} overlap on {provider} {resource!r}"
                )
    return problems


def _compare(name: str, expected: Mapping[str, object], found: Mapping[str, object]) -> list[str]:
    problems: list[str] = []
    for key, value in found.items():
        if key not in expected:
            problems.append(f"{name} entry {key} names no record")
        elif value != expected[key]:
            problems.append(f"{name} entry {key} holds {value!r}, expected {expected[key]!r}")
    for key in expected:
        if key not in found:
            problems.append(f"{name} entry {key} is missing")
    return problems
