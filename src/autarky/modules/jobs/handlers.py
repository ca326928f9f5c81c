"""One handler per jobs message, and end_block's settlement of what is due.

Each handler is a ladder of guard clauses in the order of precedence of ``errors.py`` (the parser
has already run the message-only checks), then the writes and the events::

    post:     invalid_deadline, no_owner, then escrow's lock codes
    cancel:   unknown_job, not_poster, not_open
    accept:   unknown_job, not_open, deadline_passed, conflicting_role
    complete: unknown_job, not_provider, not_accepted, deadline_passed
    attest:   unknown_job, not_attester, not_completed, attest_too_late, evidence_mismatch
    dispute:  unknown_job, not_poster, not_attested, dispute_too_late
    resolve:  unknown_job, not_arbiter, not_disputed, resolve_too_late, invalid_amount

The bounty moves only when a job closes (:func:`close`): all of it to the provider, all of it back
to the poster, or the arbiter's split.
"""

from __future__ import annotations

from dataclasses import replace

from autarky.ledger.block import AttrValue, Event
from autarky.ledger.router import TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.modules.jobs import keeper
from autarky.modules.jobs.errors import (
    ATTEST_TOO_LATE,
    CONFLICTING_ROLE,
    DEADLINE_PASSED,
    DISPUTE_TOO_LATE,
    EVIDENCE_MISMATCH,
    INVALID_AMOUNT,
    INVALID_DEADLINE,
    NO_OWNER,
    NOT_ACCEPTED,
    NOT_ARBITER,
    NOT_ATTESTED,
    NOT_ATTESTER,
    NOT_COMPLETED,
    NOT_DISPUTED,
    NOT_OPEN,
    NOT_POSTER,
    NOT_PROVIDER,
    RESOLVE_TOO_LATE,
    UNKNOWN_JOB,
)
from autarky.modules.jobs.expected import EscrowKeeper, IdentityKeeper
from autarky.modules.jobs.messages import (
    OWNER,
    POSTER,
    Accept,
    Attest,
    Cancel,
    Complete,
    Dispute,
    Post,
    Resolve,
)
from autarky.modules.jobs.params import MAX_TIME_MS, Params
from autarky.modules.jobs.records import (
    ACCEPTED,
    ARBITRATED,
    ATTESTED,
    CANCELLED,
    CLOSED,
    COMPLETED,
    DISPUTED,
    EXPIRED,
    OPEN,
    PAID,
    REFUNDED_ON_DISPUTE,
    UNATTESTED,
    UNRESOLVED,
    JobRecord,
    next_due,
)

HOLDER = "jobs"
"""The holder name of the module's escrow locks: only this module releases or refunds them."""


def post(
    ctx: TxContext, escrow: EscrowKeeper, identity: IdentityKeeper, params: Params, msg: Post, job_id: bytes
) -> None:
    """``jobs/post``: the sender (a machine) posts a job and pays the bounty into escrow."""
    now = ctx.env.time_ms
    if not now < msg.deadline_ms <= now + params.max_deadline_ms:
        raise INVALID_DEADLINE(
            f"deadline_ms must be after {now} and at most {params.max_deadline_ms} ms later"
        )
    settle_by = (
        msg.deadline_ms + params.attest_window_ms + params.dispute_window_ms + params.resolve_window_ms
    )
    if settle_by + 1 > MAX_TIME_MS:
        raise INVALID_DEADLINE("the job would close beyond the 16-digit time horizon")
    if OWNER in msg.attesters and identity.owner_of(ctx.state, ctx.sender) is None:
        raise NO_OWNER(f'attesters name "owner" but {ctx.sender} has no registered owner')

    lock = escrow.lock(
        ctx,
        asset=msg.asset,
        amount=msg.bounty,
        holder=HOLDER,
        expires_ms=settle_by + 1,
        purpose=f"jobs/{job_id.hex()[:32]}",
    )
    job = JobRecord(
        id=job_id,
        poster=ctx.sender,
        kind=msg.kind,
        description=msg.description,
        bounty=msg.bounty,
        asset=msg.asset,
        deadline_ms=msg.deadline_ms,
        attesters=msg.attesters,
        arbiter=msg.arbiter,
        lock=lock,
        status=OPEN,
        outcome=None,
        provider=None,
        accepted_ms=None,
        evidence=None,
        completed_ms=None,
        attested_by=None,
        attested_ms=None,
        disputed_by=None,
        disputed_ms=None,
        paid=0,
        refunded=0,
        attest_window_ms=params.attest_window_ms,
        dispute_window_ms=params.dispute_window_ms,
        resolve_window_ms=params.resolve_window_ms,
        due_ms=msg.deadline_ms,
        posted_ms=now,
        created=ctx.height,
    )
    assert job.settle_by_ms == settle_by
    keeper.create_job(ctx.state, job)
    ctx.emit(
        "jobs.posted",
        job=job_id,
        poster=ctx.sender,
        kind=msg.kind,
        bounty=msg.bounty,
        asset=msg.asset,
        deadline_ms=msg.deadline_ms,
        lock=lock,
    )


def cancel(ctx: TxContext, escrow: EscrowKeeper, identity: IdentityKeeper, msg: Cancel) -> None:
    """``jobs/cancel``: the poster (or its owner) withdraws a job nobody accepted; refunded."""
    job = _job(ctx, msg.job)
    _require_poster_side(ctx, identity, job)
    if job.status != OPEN:
        raise NOT_OPEN(f"job {job.id.hex()} is {job.status}")
    ctx.emit("jobs.cancelled", job=job.id, by=ctx.sender)
    ctx.events.extend(close(ctx.state, escrow, job, CANCELLED, 0))


def accept(ctx: TxContext, identity: IdentityKeeper, msg: Accept) -> None:
    """``jobs/accept``: the sender takes the job on."""
    job = _job(ctx, msg.job)
    if job.status != OPEN:
        raise NOT_OPEN(f"job {job.id.hex()} is {job.status}")
    if ctx.env.time_ms >= job.deadline_ms:
        raise DEADLINE_PASSED(f"job {job.id.hex()} was due by {job.deadline_ms}")
    if _conflicts(ctx.state, identity, job, ctx.sender):
        raise CONFLICTING_ROLE(
            "the provider may not be the poster, its owner-attester, arbiter or an attester"
        )
    _update(ctx.state, job, replace(job, status=ACCEPTED, provider=ctx.sender, accepted_ms=ctx.env.time_ms))
    ctx.emit("jobs.accepted", job=job.id, provider=ctx.sender)


def complete(ctx: TxContext, msg: Complete) -> None:
    """``jobs/complete``: the provider says the work is done, with the hash of its evidence."""
    job = _job(ctx, msg.job)
    if job.provider != ctx.sender:
        raise NOT_PROVIDER(f"{ctx.sender} is not the provider of job {job.id.hex()}")
    if job.status != ACCEPTED:
        raise NOT_ACCEPTED(f"job {job.id.hex()} is {job.status}")
    if ctx.env.time_ms >= job.deadline_ms:
        raise DEADLINE_PASSED(f"job {job.id.hex()} was due by {job.deadline_ms}")
    completed = replace(job, status=COMPLETED, evidence=msg.evidence, completed_ms=ctx.env.time_ms)
    _update(ctx.state, job, completed)
    ctx.emit("jobs.completed", job=job.id, provider=ctx.sender, evidence=msg.evidence)


def attest(ctx: TxContext, identity: IdentityKeeper, msg: Attest) -> None:
    """``jobs/attest``: an allowed attester confirms the completion; the dispute window opens."""
    job = _job(ctx, msg.job)
    if not may_attest(ctx.state, identity, job, ctx.sender):
        raise NOT_ATTESTER(f"{ctx.sender} may not attest job {job.id.hex()}")
    if job.status != COMPLETED:
        raise NOT_COMPLETED(f"job {job.id.hex()} is {job.status}")
    if ctx.env.time_ms >= job.attest_by_ms:
        raise ATTEST_TOO_LATE(f"job {job.id.hex()} could be attested until {job.attest_by_ms}")
    if msg.evidence != job.evidence:
        raise EVIDENCE_MISMATCH("the attested evidence hash is not the one the provider gave")
    attested = replace(job, status=ATTESTED, attested_by=ctx.sender, attested_ms=ctx.env.time_ms)
    _update(ctx.state, job, attested)
    ctx.emit(
        "jobs.attested",
        job=job.id,
        by=ctx.sender,
        evidence=msg.evidence,
        pay_at_ms=ctx.env.time_ms + job.dispute_window_ms,
    )


def dispute(ctx: TxContext, escrow: EscrowKeeper, identity: IdentityKeeper, msg: Dispute) -> None:
    """``jobs/dispute``: the poster (or its owner) contests an attested completion in the window."""
    job = _job(ctx, msg.job)
    _require_poster_side(ctx, identity, job)
    if job.status != ATTESTED:
        raise NOT_ATTESTED(f"job {job.id.hex()} is {job.status}")
    assert job.attested_ms is not None
    if ctx.env.time_ms >= job.attested_ms + job.dispute_window_ms:
        raise DISPUTE_TOO_LATE(f"the dispute window closed at {job.attested_ms + job.dispute_window_ms}")
    ctx.emit("jobs.disputed", job=job.id, by=ctx.sender, arbiter=job.arbiter)
    disputed = replace(job, disputed_by=ctx.sender, disputed_ms=ctx.env.time_ms)
    if job.arbiter is None:
        ctx.events.extend(close(ctx.state, escrow, disputed, REFUNDED_ON_DISPUTE, 0))
    else:
        _update(ctx.state, job, replace(disputed, status=DISPUTED))


def resolve(ctx: TxContext, escrow: EscrowKeeper, msg: Resolve) -> None:
    """``jobs/resolve``: the arbiter pays ``provider_amount`` to the provider, the rest back."""
    job = _job(ctx, msg.job)
    if job.arbiter != ctx.sender:
        raise NOT_ARBITER(f"the arbiter of job {job.id.hex()} is {job.arbiter}")
    if job.status != DISPUTED:
        raise NOT_DISPUTED(f"job {job.id.hex()} is {job.status}")
    assert job.disputed_ms is not None
    if ctx.env.time_ms >= job.disputed_ms + job.resolve_window_ms:
        raise RESOLVE_TOO_LATE(
            f"the dispute had to be resolved before {job.disputed_ms + job.resolve_window_ms}"
        )
    if not 0 <= msg.provider_amount <= job.bounty:
        raise INVALID_AMOUNT(f"provider_amount must be from 0 to the bounty {job.bounty}")
    ctx.emit(
        "jobs.resolved",
        job=job.id,
        arbiter=ctx.sender,
        provider_amount=msg.provider_amount,
        poster_amount=job.bounty - msg.provider_amount,
    )
    ctx.events.extend(close(ctx.state, escrow, job, ARBITRATED, msg.provider_amount))


def settle_due(state: Overlay, escrow: EscrowKeeper, now_ms: int) -> list[Event]:
    """end_block: close every job whose time ran out at ``now_ms`` (in due time, then id order)."""
    events: list[Event] = []
    for job_id in keeper.due(state, now_ms):
        job = keeper.read_job(state, job_id)
        assert job is not None and job.due_ms is not None and job.due_ms <= now_ms
        if job.status in (OPEN, ACCEPTED):
            events.extend(close(state, escrow, job, EXPIRED, 0))
        elif job.status == COMPLETED:
            events.extend(close(state, escrow, job, UNATTESTED, 0))
        elif job.status == ATTESTED:
            events.extend(close(state, escrow, job, PAID, job.bounty))
        else:
            assert job.status == DISPUTED, job.status
            events.extend(close(state, escrow, job, UNRESOLVED, 0))
    return events


def close(
    state: Overlay,
    escrow: EscrowKeeper,
    job: JobRecord,
    outcome: str,
    to_provider: int,
) -> list[Event]:
    """Close ``job``: pay ``to_provider`` of the bounty to the provider and refund the rest."""
    assert job.status != CLOSED and 0 <= to_provider <= job.bounty
    assert to_provider == 0 or job.provider is not None
    refund = job.bounty - to_provider
    closed = replace(job, status=CLOSED, outcome=outcome, paid=to_provider, refunded=refund)
    _update(state, job, closed)
    attributes: dict[str, AttrValue] = {
        "job": job.id,
        "outcome": outcome,
        "paid": to_provider,
        "refunded": refund,
    }
    events = [Event("jobs.closed", tuple(sorted(attributes.items())))]
    if to_provider:
        assert job.provider is not None
        events.extend(escrow.release(state, job.lock, job.provider, to_provider, holder=HOLDER))
    if refund:
        events.extend(escrow.refund(state, job.lock, refund, holder=HOLDER))
    return events


# ---------------------------------------------------------------------------------------------------
# Roles


def may_attest(state: StateReader, identity: IdentityKeeper, job: JobRecord, account: str) -> bool:
    """Whether ``account`` is an allowed attester of ``job`` (never its provider)."""
    if account == job.provider:
        return False
    if account in job.attesters:
        return True
    if POSTER in job.attesters and account == job.poster:
        return True
    return OWNER in job.attesters and account == identity.owner_of(state, job.poster)


def _conflicts(state: StateReader, identity: IdentityKeeper, job: JobRecord, account: str) -> bool:
    if account in (job.poster, job.arbiter) or account in job.attesters:
        return True
    return OWNER in job.attesters and account == identity.owner_of(state, job.poster)


def _require_poster_side(ctx: TxContext, identity: IdentityKeeper, job: JobRecord) -> None:
    if ctx.sender != job.poster and ctx.sender != identity.owner_of(ctx.state, job.poster):
        raise NOT_POSTER(f"{ctx.sender} is neither the poster of job {job.id.hex()} nor its owner")


def _job(ctx: TxContext, job_id: bytes) -> JobRecord:
    job = keeper.read_job(ctx.state, job_id)
    if job is None:
        raise UNKNOWN_JOB(f"no job {job_id.hex()}")
    return job


def _update(state: Overlay, before: JobRecord, after: JobRecord) -> None:
    keeper.update_job(state, before, replace(after, due_ms=next_due(after)))
