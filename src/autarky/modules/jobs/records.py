"""The job record, its statuses and outcomes, and when end_block next has work for it.

A job moves ``open -> accepted -> completed -> attested -> closed`` (or ``-> disputed -> closed``
with an arbiter), and closes early when it is cancelled or a time runs out::

    status     what happens at its due time (end_block)          due at
    open       refunded, outcome "expired"                        deadline_ms
    accepted   refunded, outcome "expired"                        deadline_ms
    completed  refunded, outcome "unattested"                     deadline_ms + attest_window_ms
    attested   paid to the provider, outcome "paid"               attested_ms + dispute_window_ms
    disputed   refunded, outcome "unresolved"                     disputed_ms + resolve_window_ms

Every time is a block time; each window is copied from the parameters when the job is posted.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

OPEN = "open"
ACCEPTED = "accepted"
COMPLETED = "completed"
ATTESTED = "attested"
DISPUTED = "disputed"
CLOSED = "closed"
STATUSES = (OPEN, ACCEPTED, COMPLETED, ATTESTED, DISPUTED, CLOSED)

PAID = "paid"
"""Attested, undisputed through the dispute window: the bounty went to the provider."""
CANCELLED = "cancelled"
"""The poster (or its owner) cancelled it while it was open: refunded."""
EXPIRED = "expired"
"""Not completed by the deadline: refunded."""
UNATTESTED = "unattested"
"""Completed, but no allowed attester attested it in time: refunded."""
REFUNDED_ON_DISPUTE = "disputed"
"""Disputed, and the job names no arbiter: refunded."""
ARBITRATED = "arbitrated"
"""The arbiter split the bounty between the provider and the poster."""
UNRESOLVED = "unresolved"
"""Disputed, and the arbiter did not decide in time: refunded."""
OUTCOMES = (PAID, CANCELLED, EXPIRED, UNATTESTED, REFUNDED_ON_DISPUTE, ARBITRATED, UNRESOLVED)


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: bytes
    poster: str
    kind: str
    description: str
    bounty: int
    asset: str
    deadline_ms: int
    attesters: tuple[str, ...]
    arbiter: str | None
    lock: bytes
    """The escrow lock holding the bounty until the job closes."""
    status: str
    outcome: str | None
    provider: str | None
    accepted_ms: int | None
    evidence: bytes | None
    completed_ms: int | None
    attested_by: str | None
    attested_ms: int | None
    disputed_by: str | None
    disputed_ms: int | None
    paid: int
    """What the provider received (the bounty, an arbiter's share, or 0)."""
    refunded: int
    """What went back to the poster."""
    attest_window_ms: int
    dispute_window_ms: int
    resolve_window_ms: int
    due_ms: int | None
    posted_ms: int
    created: int

    @property
    def attest_by_ms(self) -> int:
        return self.deadline_ms + self.attest_window_ms

    @property
    def settle_by_ms(self) -> int:
        """Every job is closed by the first block at this time; its escrow lock expires 1 ms later."""
        return self.deadline_ms + self.attest_window_ms + self.dispute_window_ms + self.resolve_window_ms

    def to_cbor(self) -> dict[str, Any]:
        value = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "id"}
        value["attesters"] = list(self.attesters)
        return value

    @classmethod
    def from_cbor(cls, job_id: bytes, value: Mapping[str, Any]) -> JobRecord:
        try:
            names = [f.name for f in fields(cls) if f.name != "id"]
            if sorted(value) != sorted(names):
                raise ValueError(f"job fields {sorted(value)}")
            items = {name: value[name] for name in names}
            items["attesters"] = tuple(value["attesters"])
            return cls(id=job_id, **items)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not a job record: {exc}") from exc


def next_due(job: JobRecord) -> int | None:
    """When end_block next has work for ``job`` (see the module docstring); None once closed."""
    if job.status in (OPEN, ACCEPTED):
        return job.deadline_ms
    if job.status == COMPLETED:
        return job.attest_by_ms
    if job.status == ATTESTED:
        assert job.attested_ms is not None
        return job.attested_ms + job.dispute_window_ms
    if job.status == DISPUTED:
        assert job.disputed_ms is not None
        return job.disputed_ms + job.resolve_window_ms
    assert job.status == CLOSED, job.status
    return None
