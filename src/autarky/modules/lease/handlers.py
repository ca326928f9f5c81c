"""One handler per lease message, and end_block's settlement of what is due.

Each handler is a ladder of guard clauses in the order of precedence of ``errors.py`` (the parser
has already run the message-only checks), then the writes and the events::

    offer:          (parser only)
    withdraw_offer: unknown_offer, not_provider, offer_withdrawn
    reserve:        unknown_offer, offer_withdrawn, self_lease, periods_out_of_range, invalid_start,
                    slot_taken, then escrow's lock codes
    confirm_start:  unknown_lease, not_provider, not_reserved, confirm_too_late
    end:            unknown_lease, not_renter, closed, nothing_to_end
    report_breach:  unknown_lease, not_renter, not_active, claim_open, unknown_metric, invalid_claim,
                    claim_too_late
    ack_breach:     unknown_lease, not_provider, not_active, no_claim
    judge_breach:   unknown_lease, not_monitor, not_active, no_claim

The life of a lease (what is paid and refunded when) is :mod:`.schedule`, pure; :func:`apply`
stores a step and moves its money through escrow.
"""

from __future__ import annotations

from dataclasses import replace

from autarky.ledger.block import Event
from autarky.ledger.router import TxContext
from autarky.ledger.state import Overlay
from autarky.modules.lease import keeper, schedule
from autarky.modules.lease.errors import (
    CLAIM_OPEN,
    CLAIM_TOO_LATE,
    CLOSED,
    CONFIRM_TOO_LATE,
    INVALID_CLAIM,
    INVALID_START,
    NO_CLAIM,
    NOT_ACTIVE,
    NOT_MONITOR,
    NOT_PROVIDER,
    NOT_RENTER,
    NOT_RESERVED,
    NOTHING_TO_END,
    OFFER_WITHDRAWN,
    PERIODS_OUT_OF_RANGE,
    SELF_LEASE,
    SLOT_TAKEN,
    UNKNOWN_LEASE,
    UNKNOWN_METRIC,
    UNKNOWN_OFFER,
)
from autarky.modules.lease.expected import EscrowKeeper
from autarky.modules.lease.messages import (
    AckBreach,
    ConfirmStart,
    End,
    JudgeBreach,
    Offer,
    ReportBreach,
    Reserve,
    WithdrawOffer,
)
from autarky.modules.lease.params import MAX_TIME_MS, Params
from autarky.modules.lease.records import ACTIVE, RESERVED, Claim, LeaseRecord, OfferRecord
from autarky.modules.lease.records import CLOSED as CLOSED_STATUS

HOLDER = "lease"
"""The holder name of the module's escrow locks: only this module releases or refunds them."""


def offer(ctx: TxContext, msg: Offer, offer_id: bytes) -> None:
    """``lease/offer``: the sender offers a resource by the period."""
    record = OfferRecord(
        id=offer_id,
        provider=ctx.sender,
        resource_kind=msg.resource_kind,
        resource=msg.resource,
        price_per_period=msg.price_per_period,
        asset=msg.asset,
        period_ms=msg.period_ms,
        min_periods=msg.min_periods,
        max_periods=msg.max_periods,
        service_level=msg.service_level,
        monitor=msg.monitor,
        created=ctx.height,
        withdrawn=None,
    )
    assert keeper.read_offer(ctx.state, offer_id) is None
    keeper.save_offer(ctx.state, record)
    ctx.emit(
        "lease.offered",
        offer=offer_id,
        provider=ctx.sender,
        resource_kind=msg.resource_kind,
        resource=msg.resource,
        price_per_period=msg.price_per_period,
        asset=msg.asset,
        period_ms=msg.period_ms,
    )


def withdraw_offer(ctx: TxContext, msg: WithdrawOffer) -> None:
    """``lease/withdraw_offer``: no new reservations; running leases go on."""
    record = _offer(ctx, msg.offer)
    if record.provider != ctx.sender:
        raise NOT_PROVIDER(f"{ctx.sender} is not the provider of offer {msg.offer.hex()}")
    if record.withdrawn is not None:
        raise OFFER_WITHDRAWN(f"offer {msg.offer.hex()} was withdrawn at height {record.withdrawn}")
    keeper.save_offer(ctx.state, replace(record, withdrawn=ctx.height))
    ctx.emit("lease.offer_withdrawn", offer=msg.offer, provider=ctx.sender)


def reserve(ctx: TxContext, escrow: EscrowKeeper, params: Params, msg: Reserve, lease_id: bytes) -> None:
    """``lease/reserve``: the sender books ``periods`` periods from ``start_ms`` and pays into escrow."""
    record = _offer(ctx, msg.offer)
    if record.withdrawn is not None:
        raise OFFER_WITHDRAWN(f"offer {msg.offer.hex()} was withdrawn at height {record.withdrawn}")
    if ctx.sender in (record.provider, record.monitor):
        raise SELF_LEASE("the renter may not be the offer's provider or its monitor")
    if not record.min_periods <= msg.periods <= record.max_periods:
        raise PERIODS_OUT_OF_RANGE(
            f"periods {msg.periods} is outside {record.min_periods}..{record.max_periods}"
        )
    now = ctx.env.time_ms
    if not now <= msg.start_ms <= now + params.max_advance_ms:
        raise INVALID_START(
            f"start_ms must be from the block time {now} to {params.max_advance_ms} ms after it"
        )
    duration = msg.periods * record.period_ms
    end_ms = msg.start_ms + duration
    settle_by = end_ms + params.report_window_ms + params.claim_timeout_ms
    if settle_by + 1 > MAX_TIME_MS:
        raise INVALID_START("the lease would end beyond the 16-digit time horizon")
    taken = keeper.overlapping(ctx.state, record.provider, record.resource, msg.start_ms, end_ms)
    if taken is not None:
        raise SLOT_TAKEN(f"lease {taken.hex()} holds {record.resource!r} during part of that time")

    lock = escrow.lock(
        ctx,
        asset=record.asset,
        amount=record.price_per_period * msg.periods,
        holder=HOLDER,
        expires_ms=settle_by + 1,
        purpose=f"lease/{lease_id.hex()[:32]}",
        beneficiaries=(record.provider,),
    )
    lease = LeaseRecord(
        id=lease_id,
        offer=record.id,
        provider=record.provider,
        renter=ctx.sender,
        monitor=record.monitor,
        resource_kind=record.resource_kind,
        resource=record.resource,
        service_level=record.service_level,
        asset=record.asset,
        price_per_period=record.price_per_period,
        period_ms=record.period_ms,
        start_ms=msg.start_ms,
        booked=msg.periods,
        periods=msg.periods,
        lock=lock,
        status=RESERVED,
        outcome=None,
        confirmed_ms=None,
        ended_ms=None,
        settled=0,
        paid=0,
        refunded=0,
        breached=0,
        claim=None,
        confirm_by_ms=msg.start_ms + min(params.confirm_grace_ms, duration),
        report_window_ms=params.report_window_ms,
        claim_timeout_ms=params.claim_timeout_ms,
        settle_by_ms=settle_by,
        due_ms=None,
        created=ctx.height,
    )
    lease = replace(lease, due_ms=schedule.next_due(lease))
    keeper.create_lease(ctx.state, lease)
    ctx.emit(
        "lease.reserved",
        lease=lease_id,
        offer=record.id,
        provider=record.provider,
        renter=ctx.sender,
        start_ms=msg.start_ms,
        periods=msg.periods,
        amount=lease.total,
        lock=lock,
    )


def confirm_start(ctx: TxContext, escrow: EscrowKeeper, msg: ConfirmStart) -> None:
    """``lease/confirm_start``: the provider confirms the resource is (or will be) available."""
    lease = _lease(ctx, msg.lease)
    _require_provider(ctx, lease)
    if lease.status != RESERVED:
        raise NOT_RESERVED(f"lease {lease.id.hex()} is {lease.status}")
    if ctx.env.time_ms >= lease.confirm_by_ms:
        raise CONFIRM_TOO_LATE(f"the start had to be confirmed before {lease.confirm_by_ms}")
    ctx.events.extend(apply(ctx.state, escrow, lease, schedule.confirm(lease, ctx.env.time_ms)))


def end(ctx: TxContext, escrow: EscrowKeeper, msg: End) -> None:
    """``lease/end``: the renter ends the lease; the periods that have not started are refunded."""
    lease = _lease(ctx, msg.lease)
    if lease.renter != ctx.sender:
        raise NOT_RENTER(f"{ctx.sender} is not the renter of lease {lease.id.hex()}")
    if lease.status == CLOSED_STATUS:
        raise CLOSED(f"lease {lease.id.hex()} is closed ({lease.outcome})")
    if lease.status == ACTIVE and lease.started(ctx.env.time_ms) == lease.periods:
        raise NOTHING_TO_END(f"all {lease.periods} periods of lease {lease.id.hex()} have started")
    ctx.events.extend(apply(ctx.state, escrow, lease, schedule.end_early(lease, ctx.env.time_ms)))


def report_breach(ctx: TxContext, msg: ReportBreach) -> None:
    """``lease/report_breach``: the renter claims that some periods missed the service level."""
    lease = _lease(ctx, msg.lease)
    if lease.renter != ctx.sender:
        raise NOT_RENTER(f"{ctx.sender} is not the renter of lease {lease.id.hex()}")
    _require_active(lease)
    if lease.claim is not None:
        raise CLAIM_OPEN(
            f"a claim on periods from {lease.claim.first} is open until {lease.claim.deadline_ms}"
        )
    if msg.metric not in dict(lease.service_level):
        raise UNKNOWN_METRIC(f"the offer promises no {msg.metric[:40]!r}")
    now = ctx.env.time_ms
    last = msg.first_period + msg.periods
    if msg.first_period < lease.settled or msg.periods < 1 or last > lease.started(now):
        raise INVALID_CLAIM(
            f"claim periods {lease.settled}..{lease.started(now) - 1} (unsettled and started), at least one"
        )
    if lease.period_end(msg.first_period) + lease.report_window_ms <= now:
        raise CLAIM_TOO_LATE(
            f"period {msg.first_period} could be reported until its end plus {lease.report_window_ms} ms"
        )

    claim = Claim(
        first=msg.first_period,
        periods=msg.periods,
        metric=msg.metric,
        evidence=msg.evidence,
        filed_ms=now,
        deadline_ms=now + lease.claim_timeout_ms,
    )
    claimed = schedule.file_claim(lease, claim)
    _store(ctx.state, lease, claimed)
    ctx.emit(
        "lease.breach_reported",
        lease=lease.id,
        renter=ctx.sender,
        first_period=msg.first_period,
        periods=msg.periods,
        metric=msg.metric,
        evidence=msg.evidence,
        deadline_ms=claim.deadline_ms,
    )


def ack_breach(ctx: TxContext, escrow: EscrowKeeper, msg: AckBreach) -> None:
    """``lease/ack_breach``: the provider concedes the open claim; it is upheld."""
    lease = _lease(ctx, msg.lease)
    _require_provider(ctx, lease)
    _require_active(lease)
    _require_claim(lease)
    ctx.events.extend(apply(ctx.state, escrow, lease, schedule.uphold(lease, ctx.sender)))


def judge_breach(ctx: TxContext, escrow: EscrowKeeper, msg: JudgeBreach) -> None:
    """``lease/judge_breach``: the offer's monitor upholds or rejects the open claim."""
    lease = _lease(ctx, msg.lease)
    if lease.monitor is None or lease.monitor != ctx.sender:
        raise NOT_MONITOR(f"the monitor of lease {lease.id.hex()} is {lease.monitor}")
    _require_active(lease)
    _require_claim(lease)
    step = schedule.uphold(lease, ctx.sender) if msg.upheld else schedule.dismiss(lease, ctx.sender)
    ctx.events.extend(apply(ctx.state, escrow, lease, step))


def settle_due(state: Overlay, escrow: EscrowKeeper, now_ms: int) -> list[Event]:
    """end_block: every lease with work due at ``now_ms`` (in due time, then id order)."""
    events: list[Event] = []
    for lease_id in keeper.due(state, now_ms):
        lease = keeper.read_lease(state, lease_id)
        assert lease is not None and lease.due_ms is not None and lease.due_ms <= now_ms
        events.extend(apply(state, escrow, lease, schedule.advance(lease, now_ms)))
    return events


def apply(state: Overlay, escrow: EscrowKeeper, before: LeaseRecord, step: schedule.Step) -> list[Event]:
    """Store the step's record (with its next due time) and move its money; return the events."""
    after = _store(state, before, step.record)
    events = list(step.events)
    if step.pay:
        events.extend(escrow.release(state, after.lock, after.provider, step.pay, holder=HOLDER))
    if step.refund:
        events.extend(escrow.refund(state, after.lock, step.refund, holder=HOLDER))
    return events


# ---------------------------------------------------------------------------------------------------
# Guards


def _store(state: Overlay, before: LeaseRecord, after: LeaseRecord) -> LeaseRecord:
    after = replace(after, due_ms=schedule.next_due(after))
    assert after.due_ms is None or after.due_ms <= after.settle_by_ms, (after.due_ms, after.settle_by_ms)
    keeper.update_lease(state, before, after)
    return after


def _offer(ctx: TxContext, offer_id: bytes) -> OfferRecord:
    record = keeper.read_offer(ctx.state, offer_id)
    if record is None:
        raise UNKNOWN_OFFER(f"no offer {offer_id.hex()}")
    return record


def _lease(ctx: TxContext, lease_id: bytes) -> LeaseRecord:
    record = keeper.read_lease(ctx.state, lease_id)
    if record is None:
        raise UNKNOWN_LEASE(f"no lease {lease_id.hex()}")
    return record


def _require_provider(ctx: TxContext, lease: LeaseRecord) -> None:
    if lease.provider != ctx.sender:
        raise NOT_PROVIDER(f"{ctx.sender} is not the provider of lease {lease.id.hex()}")


def _require_active(lease: LeaseRecord) -> None:
    if lease.status != ACTIVE:
        raise NOT_ACTIVE(f"lease {lease.id.hex()} is {lease.status}")


def _require_claim(lease: LeaseRecord) -> None:
    if lease.claim is None:
        raise NO_CLAIM(f"lease {lease.id.hex()} has no open breach claim")
