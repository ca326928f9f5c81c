"""What must hold in the jobs state after every block. Run by tests; each broken rule is one line.

1. Every job record is well formed and stored under its own id, in a known status.
2. The record's fields follow its status: an open job has no provider; an accepted one has a
   provider; a completed one also evidence; an attested one also an attester; a disputed one also
   a disputer and an arbiter. The provider is never the poster, the arbiter or a named attester.
3. The money adds up: an open job has paid and refunded nothing; a closed job has an outcome and
   ``paid + refunded == bounty`` (all to the provider for "paid", all back for a refund outcome).
4. Escrow agrees: an open job has a live lock held by ``jobs``, paid by the poster, in its asset,
   holding the whole bounty; a closed job's lock is gone; no lock held by ``jobs`` is orphaned.
5. The indexes agree with the records both ways: ``by_account`` (poster, named attesters, arbiter,
   provider), ``by_status`` and ``due`` (exactly the open jobs, at ``records.next_due``).

The checks report what they find rather than assert, so a corrupted state gives a readable list.
"""

from __future__ import annotations

from collections.abc import Mapping

from autarky.ledger.state import StateReader
from autarky.modules.jobs import keeper
from autarky.modules.jobs.expected import EscrowKeeper
from autarky.modules.jobs.handlers import HOLDER
from autarky.modules.jobs.records import (
    ACCEPTED,
    ARBITRATED,
    ATTESTED,
    CLOSED,
    COMPLETED,
    DISPUTED,
    OUTCOMES,
    PAID,
    STATUSES,
    JobRecord,
    next_due,
)


def check_invariants(state: StateReader, escrow: EscrowKeeper) -> list[str]:
    problems: list[str] = []
    jobs: dict[bytes, JobRecord] = {}
    for id_hex, value in keeper.iter_raw(state, keeper.JOB_PREFIX):
        try:
            assert isinstance(value, Mapping)
            job = JobRecord.from_cbor(bytes.fromhex(id_hex), value)
        except (ValueError, AssertionError) as exc:
            problems.append(f"job {id_hex}: malformed record: {exc}")
            continue
        jobs[job.id] = job
    for job in jobs.values():
        problems.extend(_record_problems(job))
        problems.extend(_escrow_problems(state, escrow, job))
    problems.extend(_orphan_problems(state, escrow, jobs))
    problems.extend(_index_problems(state, jobs))
    return problems


def _record_problems(job: JobRecord) -> list[str]:
    name = f"job {job.id.hex()}"
    if job.status not in STATUSES:
        return [f"{name}: unknown status {job.status!r}"]
    problems: list[str] = []
    stage = STATUSES.index(job.status)
    if job.status != CLOSED:
        needs = {
            "provider": stage >= STATUSES.index(ACCEPTED),
            "evidence": stage >= STATUSES.index(COMPLETED),
            "attested_by": stage >= STATUSES.index(ATTESTED),
            "disputed_by": job.status == DISPUTED,
        }
        for field, required in needs.items():
            if (getattr(job, field) is not None) != required:
                problems.append(f"{name}: {job.status} with {field} {getattr(job, field)!r}")
        if job.status == DISPUTED and job.arbiter is None:
            problems.append(f"{name}: disputed without an arbiter")
        if job.outcome is not None or job.paid or job.refunded:
            problems.append(
                f"{name}: {job.status} but outcome {job.outcome}, paid {job.paid}, refunded {job.refunded}"
            )
        if job.due_ms != next_due(job):
            problems.append(f"{name}: due at {job.due_ms}, its status says {next_due(job)}")
    else:
        if job.outcome not in OUTCOMES or job.due_ms is not None:
            problems.append(f"{name}: closed with outcome {job.outcome!r}, due {job.due_ms}")
        if job.paid + job.refunded != job.bounty or job.paid < 0 or job.refunded < 0:
            problems.append(
                f"{name}: paid {job.paid} + refunded {job.refunded} is not the bounty {job.bounty}"
            )
        if (job.outcome == PAID) != (job.paid == job.bounty and job.outcome != ARBITRATED):
            problems.append(f"{name}: outcome {job.outcome} with {job.paid} paid")
        if job.paid and job.provider is None:
            problems.append(f"{name}: paid {job.paid} without a provider")
    if job.provider is not None and (
        job.provider in (job.poster, job.arbiter) or job.provider in job.attesters
    ):
        problems.append(f"{name}: the provider {job.provider} also has another role")
    return problems


def _escrow_problems(state: StateReader, escrow: EscrowKeeper, job: JobRecord) -> list[str]:
    name = f"job {job.id.hex()}"
    lock = escrow.get(state, job.lock)
    if job.status == CLOSED:
        return [] if lock is None else [f"{name}: closed, but its lock still holds {lock.amount}"]
    if lock is None:
        return [f"{name}: {job.status}, but its lock {job.lock.hex()} is gone"]
    if (lock.holder, lock.payer, lock.asset, lock.amount) != (HOLDER, job.poster, job.asset, job.bounty):
        return [f"{name}: its lock is {lock.holder}/{lock.payer}/{lock.asset}/{lock.amount}"]
    return []


def _orphan_problems(state: StateReader, escrow: EscrowKeeper, jobs: dict[bytes, JobRecord]) -> list[str]:
    open_locks = {job.lock for job in jobs.values() if job.status != CLOSED}
    return [
        f"lock {lock.id.hex()} held by jobs is no open job's"
        for lock in escrow.locks_held_by(state, HOLDER)
        if lock.id not in open_locks
    ]


def _index_problems(state: StateReader, jobs: dict[bytes, JobRecord]) -> list[str]:
    expected: dict[str, object] = {}
    for job in jobs.values():
        for account, role in keeper.roles(job).items():
            expected[keeper.by_account_key(account, job.id)] = role
        expected[keeper.by_status_key(job.status, job.id)] = True
        if job.due_ms is not None:
            expected[keeper.due_key(job.due_ms, job.id)] = True
    found: dict[str, object] = {}
    for prefix in (keeper.BY_ACCOUNT_PREFIX, keeper.BY_STATUS_PREFIX, keeper.DUE_PREFIX):
        for rest, value in keeper.iter_raw(state, prefix):
            found[prefix + rest] = value
    problems: list[str] = []
    for key, value in found.items():
        if key not in expected:
            problems.append(f"index entry {key} names no job")
        elif value != expected[key]:
            problems.append(f"index entry {key} holds {value!r}, expected {expected[key]!r}")
    problems.extend(f"index entry {key} is missing" for key in expected if key not in found)
    return problems
