"""The life of a lease as pure functions of its record and the block time (no state, no escrow).

Time is divided into the lease's periods: period ``k`` runs ``[start + k*period, start + (k+1)*period)``.
Periods are **settled** in order (``record.settled`` counts them): each is either paid to the
provider or refunded to the renter, always by whole periods, so every amount is a multiple of
``price_per_period`` and ``paid + refunded + remaining == price_per_period * booked`` exactly.

* A period is **paid** at the first block at or after its end plus ``report_window_ms`` (the
  renter's window to report a breach), unless an open breach claim covers it or an earlier period.
* A **breach claim** covers periods ``first .. first + n - 1`` (all started, none settled). While it
  is open, payment stops at ``first``. Upheld (by the provider's acknowledgement or the monitor's
  judgement), the periods before ``first`` are paid and the claimed ones refunded; rejected by the
  monitor, or unresolved by its deadline, it is dismissed and payment resumes.
* **Confirmation** by the provider turns a reservation into a running lease; periods that already
  ended unserved are refunded. Without it by ``confirm_by_ms`` everything is refunded.
* An **early end** by the renter refunds every period that has not started; the period in progress
  is owed in full (a slot is sold by the period).

Each function returns a :class:`Step`: the new record, what escrow must pay to the provider and
refund to the renter, and the module's events. ``keeper``/``handlers`` apply it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from autarky.ledger.block import Event
from autarky.modules.lease.records import (
    ACTIVE,
    CANCELLED,
    CLOSED,
    COMPLETED,
    ENDED,
    RESERVED,
    UNCONFIRMED,
    Claim,
    LeaseRecord,
)


@dataclass(frozen=True, slots=True)
class Step:
    record: LeaseRecord
    pay: int
    """To release from escrow to the provider."""
    refund: int
    """To refund from escrow to the renter."""
    events: tuple[Event, ...]


def _event(event_type: str, **attributes: Any) -> Event:
    return Event(event_type, tuple(sorted(attributes.items())))


def next_due(record: LeaseRecord) -> int | None:
    """The block time at which end_block next has work for this lease; None once it is closed."""
    if record.status == CLOSED:
        return None
    if record.status == RESERVED:
        return record.confirm_by_ms
    candidates: list[int] = []
    limit = record.periods
    if record.claim is not None:
        candidates.append(record.claim.deadline_ms)
        limit = record.claim.first
    if record.settled < limit:
        candidates.append(record.period_end(record.settled) + record.report_window_ms)
    assert candidates, f"an active lease {record.id.hex()} with nothing left to do"
    return min(candidates)


def payable(record: LeaseRecord, now_ms: int) -> int:
    """How many periods from ``settled`` on are due for payment at ``now_ms``.

    Period ``k`` is due when ``period_end(k) + report_window_ms <= now``, i.e. ``k < m`` with
    ``m = (now - report_window_ms - start) // period`` (floor division: a period whose window has
    not fully passed is not due); payment never passes an open claim's first period.
    """
    limit = record.periods if record.claim is None else record.claim.first
    elapsed = now_ms - record.report_window_ms - record.start_ms
    if elapsed < 0:
        return 0
    return max(0, min(limit, elapsed // record.period_ms) - record.settled)


def advance(record: LeaseRecord, now_ms: int) -> Step:
    """What end_block does for a lease that is due at ``now_ms``."""
    if record.status == RESERVED:
        assert now_ms >= record.confirm_by_ms
        refund = record.remaining
        closed = replace(
            record, periods=0, refunded=record.refunded + refund, status=CLOSED, outcome=UNCONFIRMED
        )
        return Step(
            closed, 0, refund, (_refunded(closed, record.booked, refund, UNCONFIRMED), _closed(closed))
        )

    assert record.status == ACTIVE, record.status
    events: list[Event] = []
    if record.claim is not None and now_ms >= record.claim.deadline_ms:
        record = replace(record, claim=None)
        events.append(_event("lease.breach_dismissed", lease=record.id, by=None, reason="timeout"))
    due = payable(record, now_ms)
    pay = due * record.price_per_period
    if due:
        record = replace(record, settled=record.settled + due, paid=record.paid + pay)
        events.append(_paid(record, due, pay))
    record, closing = _close_if_settled(record)
    return Step(record, pay, 0, (*events, *closing))


def confirm(record: LeaseRecord, now_ms: int) -> Step:
    """The provider confirms the start at ``now_ms`` (before ``confirm_by_ms``)."""
    assert record.status == RESERVED and now_ms < record.confirm_by_ms
    ended = 0 if now_ms < record.start_ms else (now_ms - record.start_ms) // record.period_ms
    late = min(ended, record.periods)
    assert late < record.periods, "confirm_by_ms is never after the lease's end"
    refund = late * record.price_per_period
    active = replace(
        record, status=ACTIVE, confirmed_ms=now_ms, settled=late, refunded=record.refunded + refund
    )
    events = [_event("lease.confirmed", lease=record.id, provider=record.provider, late_periods=late)]
    if late:
        events.append(_refunded(active, late, refund, "late_start"))
    return Step(active, 0, refund, tuple(events))


def end_early(record: LeaseRecord, now_ms: int) -> Step:
    """The renter ends the lease at ``now_ms``: the periods that have not started are refunded."""
    if record.status == RESERVED:
        refund = record.remaining
        closed = replace(
            record,
            periods=0,
            refunded=record.refunded + refund,
            status=CLOSED,
            outcome=CANCELLED,
            ended_ms=now_ms,
        )
        return Step(closed, 0, refund, (_refunded(closed, record.booked, refund, CANCELLED), _closed(closed)))

    assert record.status == ACTIVE
    started = record.started(now_ms)
    assert started < record.periods, "the handler refuses an end when every period has started"
    unused = record.periods - started
    refund = unused * record.price_per_period
    shortened = replace(record, periods=started, refunded=record.refunded + refund, ended_ms=now_ms)
    assert record.claim is None or record.claim.first + record.claim.periods <= started
    shortened, closing = _close_if_settled(shortened)
    return Step(shortened, 0, refund, (_refunded(shortened, unused, refund, ENDED), *closing))


def file_claim(record: LeaseRecord, claim: Claim) -> LeaseRecord:
    assert record.status == ACTIVE and record.claim is None
    assert record.settled <= claim.first and claim.first + claim.periods <= record.periods
    return replace(record, claim=claim)


def uphold(record: LeaseRecord, by: str) -> Step:
    """The open claim is upheld: the periods before it are paid, the claimed ones refunded."""
    claim = record.claim
    assert record.status == ACTIVE and claim is not None
    before = claim.first - record.settled
    pay = before * record.price_per_period
    refund = claim.periods * record.price_per_period
    record = replace(
        record,
        claim=None,
        settled=claim.first + claim.periods,
        paid=record.paid + pay,
        refunded=record.refunded + refund,
        breached=record.breached + claim.periods,
    )
    events = [
        _event("lease.breach_upheld", lease=record.id, by=by, periods=claim.periods, metric=claim.metric)
    ]
    if before:
        events.append(_paid(record, before, pay))
    events.append(_refunded(record, claim.periods, refund, "breach"))
    record, closing = _close_if_settled(record)
    return Step(record, pay, refund, (*events, *closing))


def dismiss(record: LeaseRecord, by: str) -> Step:
    """The monitor rejects the open claim; payment resumes."""
    assert record.status == ACTIVE and record.claim is not None
    dismissed = replace(record, claim=None)
    return Step(
        dismissed, 0, 0, (_event("lease.breach_dismissed", lease=record.id, by=by, reason="rejected"),)
    )


# ---------------------------------------------------------------------------------------------------


def _close_if_settled(record: LeaseRecord) -> tuple[LeaseRecord, tuple[Event, ...]]:
    if record.status != ACTIVE or record.settled < record.periods:
        return record, ()
    assert record.settled == record.periods and record.claim is None
    closed = replace(record, status=CLOSED, outcome=COMPLETED if record.ended_ms is None else ENDED)
    return closed, (_closed(closed),)


def _paid(record: LeaseRecord, periods: int, amount: int) -> Event:
    return _event(
        "lease.paid",
        lease=record.id,
        provider=record.provider,
        periods=periods,
        amount=amount,
        settled=record.settled,
    )


def _refunded(record: LeaseRecord, periods: int, amount: int, reason: str) -> Event:
    return _event(
        "lease.refunded", lease=record.id, renter=record.renter, periods=periods, amount=amount, reason=reason
    )


def _closed(record: LeaseRecord) -> Event:
    return _event(
        "lease.closed", lease=record.id, outcome=record.outcome, paid=record.paid, refunded=record.refunded
    )
