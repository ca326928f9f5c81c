"""The stored records of the lease module: offers, leases and breach claims (frozen dataclasses).

Each record is stored as one canonical CBOR map (``to_cbor``) under its key (keeper.py); the
field list is the README's. ``from_cbor`` rebuilds the record and raises ValueError (KeyError and
TypeError included) on a value that is not one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from autarky.modules.lease.messages import ServiceLevel

RESERVED = "reserved"
ACTIVE = "active"
CLOSED = "closed"
STATUSES = (RESERVED, ACTIVE, CLOSED)

COMPLETED = "completed"
"""Every period ran to its end (some may have been refunded for a breach)."""
ENDED = "ended"
"""The renter ended the lease early; the periods that had not started were refunded."""
CANCELLED = "cancelled"
"""The renter ended the reservation before the provider confirmed it: refunded in full."""
UNCONFIRMED = "unconfirmed"
"""The provider did not confirm the start in time: refunded in full."""
OUTCOMES = (COMPLETED, ENDED, CANCELLED, UNCONFIRMED)


@dataclass(frozen=True, slots=True)
class OfferRecord:
    id: bytes
    provider: str
    resource_kind: str
    resource: str
    price_per_period: int
    asset: str
    period_ms: int
    min_periods: int
    max_periods: int
    service_level: ServiceLevel
    monitor: str | None
    created: int
    """The height of the block that stored the offer."""
    withdrawn: int | None
    """The height of the block that withdrew it, or None."""

    def to_cbor(self) -> dict[str, Any]:
        value = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "id"}
        value["service_level"] = dict(self.service_level)
        return value

    @classmethod
    def from_cbor(cls, offer_id: bytes, value: Mapping[str, Any]) -> OfferRecord:
        try:
            names = [f.name for f in fields(cls) if f.name != "id"]
            if sorted(value) != sorted(names):
                raise ValueError(f"offer fields {sorted(value)}")
            items = {name: value[name] for name in names}
            items["service_level"] = tuple(sorted(dict(value["service_level"]).items()))
            return cls(id=offer_id, **items)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not an offer record: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Claim:
    """A renter's breach claim: periods ``first .. first + periods - 1`` missed ``metric``."""

    first: int
    periods: int
    metric: str
    evidence: bytes
    filed_ms: int
    deadline_ms: int
    """Unresolved at this block time, the claim is dismissed."""

    def to_cbor(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @classmethod
    def from_cbor(cls, value: Mapping[str, Any]) -> Claim:
        return cls(**{f.name: value[f.name] for f in fields(cls)})


@dataclass(frozen=True, slots=True)
class LeaseRecord:
    id: bytes
    offer: bytes
    provider: str
    renter: str
    monitor: str | None
    resource_kind: str
    resource: str
    service_level: ServiceLevel
    asset: str
    price_per_period: int
    period_ms: int
    start_ms: int
    booked: int
    """The periods reserved (and paid into escrow)."""
    periods: int
    """The periods the lease runs: ``booked``, or fewer after an early end (0 when cancelled)."""
    lock: bytes
    """The escrow lock holding ``price_per_period * booked``, less what is paid and refunded."""
    status: str
    outcome: str | None
    confirmed_ms: int | None
    ended_ms: int | None
    settled: int
    """Periods ``0 .. settled - 1`` are paid to the provider or refunded to the renter."""
    paid: int
    refunded: int
    breached: int
    """How many periods were refunded because a breach claim was upheld."""
    claim: Claim | None
    confirm_by_ms: int
    report_window_ms: int
    claim_timeout_ms: int
    settle_by_ms: int
    """Everything is settled by the first block at this time; the escrow lock expires 1 ms later."""
    due_ms: int | None
    """When end_block next has something to do for this lease (None once closed)."""
    created: int

    # -- the schedule, in block time --------------------------------------------------------------

    def period_start(self, index: int) -> int:
        return self.start_ms + index * self.period_ms

    def period_end(self, index: int) -> int:
        return self.start_ms + (index + 1) * self.period_ms

    @property
    def end_ms(self) -> int:
        """When the last period ends (earlier after an early end)."""
        return self.start_ms + self.periods * self.period_ms

    @property
    def total(self) -> int:
        return self.price_per_period * self.booked

    @property
    def remaining(self) -> int:
        """What escrow still holds for this lease."""
        return self.total - self.paid - self.refunded

    def started(self, now_ms: int) -> int:
        """How many of the lease's periods have started at ``now_ms``."""
        if now_ms < self.start_ms:
            return 0
        return min(self.periods, (now_ms - self.start_ms) // self.period_ms + 1)

    def to_cbor(self) -> dict[str, Any]:
        value = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "id"}
        value["service_level"] = dict(self.service_level)
        value["claim"] = None if self.claim is None else self.claim.to_cbor()
        return value

    @classmethod
    def from_cbor(cls, lease_id: bytes, value: Mapping[str, Any]) -> LeaseRecord:
        try:
            names = [f.name for f in fields(cls) if f.name != "id"]
            if sorted(value) != sorted(names):
                raise ValueError(f"lease fields {sorted(value)}")
            items = {name: value[name] for name in names}
            items["service_level"] = tuple(sorted(dict(value["service_level"]).items()))
            claim = value["claim"]
            items["claim"] = None if claim is None else Claim.from_cbor(claim)
            return cls(id=lease_id, **items)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a lease record: {exc}") from exc
