"""The oracle's records as frozen values, their stored form, and the pure rules over them.

Three records (README.md, "State"): a :class:`Feed` (its configuration and its current round), a
:class:`Round` (one round's reports and outcome) and a :class:`FinalValue` (the latest final value
of a feed, what consumers read). Each has ``to_cbor`` (the canonical map stored in state) and a
strict ``from_cbor`` that refuses anything malformed with :class:`ValueError`, so a light client can
decode a value it proved without trusting the node that served it.

The rules consumers and the ledger share live here too: :func:`lower_median` (the final value of a
round), :func:`is_fresh` (the heartbeat) and :meth:`Round.is_stale` (a round open too long).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.ledger.tx import MAX_U64

MAX_FEED_CHARS = 128
RESERVED_LAST_SEGMENT = "rounds"
"""A feed name may not end in ``/rounds`` (or be ``rounds``): the API's ``/feeds/{feed}/rounds`` stays
unambiguous."""
MAX_DECIMALS = 18
MAX_DESCRIPTION_BYTES = 256
MAX_HEARTBEAT_MS = 366 * 24 * 3600 * 1000
"""The longest heartbeat (and round) a feed may have: one leap year."""
MIN_VALUE = -(2**63)
MAX_VALUE = 2**63 - 1

OPEN = "open"
FINAL = "final"
STALE = "stale"
ABANDONED = "abandoned"
ROUND_STATUSES = (OPEN, FINAL, STALE, ABANDONED)

_SEGMENT = r"[a-z0-9][a-z0-9._-]*"
_FEED = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")


def is_feed_name(value: object) -> bool:
    """1 to 128 characters of ``/``-separated segments ``[a-z0-9][a-z0-9._-]*``, not ending in ``rounds``."""
    return (
        type(value) is str
        and len(value) <= MAX_FEED_CHARS
        and _FEED.fullmatch(value) is not None
        and value.rsplit("/", 1)[-1] != RESERVED_LAST_SEGMENT
    )


def is_value(value: object) -> bool:
    """A report's value: a signed 64-bit integer (a bool is not one)."""
    return type(value) is int and MIN_VALUE <= value <= MAX_VALUE


def lower_median(values: Sequence[int]) -> int:
    """The median of a non-empty list of integers; of an even count, the lower of the middle two.

    Always one of the values, so always within ``[min, max]`` of them; no division, no rounding.
    """
    assert values, "the median of no reports"
    ordered = sorted(values)
    return ordered[(len(ordered) - 1) // 2]


def is_fresh(final: FinalValue, heartbeat_ms: int, now_ms: int) -> bool:
    """A final value is fresh while ``now_ms < time_ms + heartbeat_ms``: from the instant its age
    reaches the heartbeat it is stale (like an expiry: valid while time < expires)."""
    return now_ms < final.time_ms + heartbeat_ms


@dataclass(frozen=True, slots=True)
class FinalValue:
    """The latest final value of a feed: the median of round ``round``, final at block time ``time_ms``.

    ``value`` is an integer in the feed's units scaled by ``10**decimals`` (a grid price of 0.2150
    aut/kWh with 4 decimals is 2150).
    """

    feed: str
    value: int
    round: int
    time_ms: int

    def to_cbor(self) -> dict[str, Any]:
        return {"feed": self.feed, "value": self.value, "round": self.round, "time_ms": self.time_ms}

    @classmethod
    def from_cbor(cls, data: object) -> FinalValue:
        fields = _fields(data, ("feed", "round", "time_ms", "value"), "final value")
        final = cls(
            feed=_feed(fields["feed"]),
            value=_value(fields["value"], "value"),
            round=_round_number(fields["round"]),
            time_ms=_u64(fields["time_ms"], "time_ms"),
        )
        return final


@dataclass(frozen=True, slots=True)
class Feed:
    """A feed's configuration and where its rounds stand.

    ``round`` is the feed's current round: the one open (a :class:`Round` with status ``open`` is
    stored for it) or, when none is, the next to open, with the first report that names it.
    """

    name: str
    owner: str
    reporters: tuple[str, ...]
    """Sorted, distinct did:keys."""
    quorum: int
    heartbeat_ms: int
    round_ms: int
    decimals: int
    description: str
    created: int
    """The height of the block that created it."""
    round: int

    def to_cbor(self) -> dict[str, Any]:
        return {
            "feed": self.name,
            "owner": self.owner,
            "reporters": list(self.reporters),
            "quorum": self.quorum,
            "heartbeat_ms": self.heartbeat_ms,
            "round_ms": self.round_ms,
            "decimals": self.decimals,
            "description": self.description,
            "created": self.created,
            "round": self.round,
        }

    @classmethod
    def from_cbor(cls, data: object) -> Feed:
        names = ("created", "decimals", "description", "feed", "heartbeat_ms", "owner", "quorum")
        fields = _fields(data, (*names, "reporters", "round", "round_ms"), "feed")
        reporters = fields["reporters"]
        if type(reporters) is not list or not reporters or not all(is_did_key(r) for r in reporters):
            raise ValueError("feed: reporters must be a non-empty list of did:keys")
        if reporters != sorted(set(reporters)):
            raise ValueError("feed: reporters must be sorted and distinct")
        owner = fields["owner"]
        if not is_did_key(owner):
            raise ValueError("feed: owner must be a did:key")
        quorum = _u64(fields["quorum"], "quorum")
        if not 1 <= quorum <= len(reporters):
            raise ValueError("feed: quorum must be from 1 to the number of reporters")
        heartbeat_ms = _u64(fields["heartbeat_ms"], "heartbeat_ms")
        round_ms = _u64(fields["round_ms"], "round_ms")
        if not 1 <= round_ms <= heartbeat_ms <= MAX_HEARTBEAT_MS:
            raise ValueError("feed: need 1 <= round_ms <= heartbeat_ms <= the largest heartbeat")
        decimals = _u64(fields["decimals"], "decimals")
        if decimals > MAX_DECIMALS:
            raise ValueError(f"feed: decimals must be from 0 to {MAX_DECIMALS}")
        description = fields["description"]
        if type(description) is not str or len(description.encode("utf-8")) > MAX_DESCRIPTION_BYTES:
            raise ValueError(f"feed: description must be text of at most {MAX_DESCRIPTION_BYTES} bytes")
        return cls(
            name=_feed(fields["feed"]),
            owner=owner,
            reporters=tuple(reporters),
            quorum=quorum,
            heartbeat_ms=heartbeat_ms,
            round_ms=round_ms,
            decimals=decimals,
            description=description,
            created=_u64(fields["created"], "created"),
            round=_round_number(fields["round"]),
        )


@dataclass(frozen=True, slots=True)
class Round:
    """One round of a feed: the reports it received and how it ended.

    ``status`` is ``open`` (taking reports), ``final`` (``value`` is the lower median of the
    reports, at block time ``closed_ms``), ``stale`` (open ``round_ms`` without reaching the quorum)
    or ``abandoned`` (the owner changed the reporters while it was open). ``quorum`` is the feed's
    quorum when the round opened (a change of reporters abandons the open round, so it holds for
    the whole round).
    """

    feed: str
    round: int
    status: str
    quorum: int
    opened_ms: int
    """Block time of the round's first report."""
    deadline_ms: int
    """``opened_ms + round_ms``: from this block time on the open round is stale."""
    closed_ms: int | None
    reports: tuple[tuple[str, int], ...]
    """``(reporter, value)``, sorted by reporter, each reporter once."""
    value: int | None

    def is_stale(self, now_ms: int) -> bool:
        """An open round is stale from block time ``deadline_ms`` on: it takes no more reports."""
        return self.status == OPEN and now_ms >= self.deadline_ms

    def reporter_values(self) -> list[int]:
        return [value for _, value in self.reports]

    def has_reported(self, reporter: str) -> bool:
        return any(name == reporter for name, _ in self.reports)

    def to_cbor(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "round": self.round,
            "status": self.status,
            "quorum": self.quorum,
            "opened_ms": self.opened_ms,
            "deadline_ms": self.deadline_ms,
            "closed_ms": self.closed_ms,
            "reports": [[reporter, value] for reporter, value in self.reports],
            "value": self.value,
        }

    @classmethod
    def from_cbor(cls, data: object) -> Round:
        names = ("closed_ms", "deadline_ms", "feed", "opened_ms", "quorum", "reports", "round", "status")
        fields = _fields(data, (*names, "value"), "round")
        status = fields["status"]
        if status not in ROUND_STATUSES:
            raise ValueError(f"round: status must be one of {ROUND_STATUSES}")
        reports = fields["reports"]
        if type(reports) is not list or not all(
            type(pair) is list and len(pair) == 2 and is_did_key(pair[0]) and is_value(pair[1])
            for pair in reports
        ):
            raise ValueError("round: reports must be a list of [did:key, value]")
        reporters = [pair[0] for pair in reports]
        if not reports or reporters != sorted(set(reporters)):
            raise ValueError("round: reports must be non-empty, sorted by reporter, one per reporter")
        opened_ms = _u64(fields["opened_ms"], "opened_ms")
        deadline_ms = _u64(fields["deadline_ms"], "deadline_ms")
        if deadline_ms <= opened_ms:
            raise ValueError("round: deadline_ms must be after opened_ms")
        closed_ms = fields["closed_ms"]
        value = fields["value"]
        if (status == OPEN) != (closed_ms is None):
            raise ValueError("round: closed_ms is None exactly while the round is open")
        if closed_ms is not None:
            _u64(closed_ms, "closed_ms")
        if (status == FINAL) != (value is not None):
            raise ValueError("round: value is set exactly when the round is final")
        if value is not None:
            _value(value, "value")
        return cls(
            feed=_feed(fields["feed"]),
            round=_round_number(fields["round"]),
            status=status,
            quorum=_u64(fields["quorum"], "quorum"),
            opened_ms=opened_ms,
            deadline_ms=deadline_ms,
            closed_ms=closed_ms,
            reports=tuple((pair[0], pair[1]) for pair in reports),
            value=value,
        )


@dataclass(frozen=True, slots=True)
class Budget:
    """A feed's reward budget: ``remaining`` of ``asset`` locked in escrow (lock ``lock``, held by
    the oracle module), paying ``reward`` to each reporter of every final round until it runs out,
    is withdrawn by its ``payer``, or reaches ``expires_ms``."""

    feed: str
    lock: bytes
    payer: str
    asset: str
    reward: int
    remaining: int
    """What the escrow lock still holds (equal to the lock's amount, an invariant)."""
    expires_ms: int
    paid_rounds: int

    def to_cbor(self) -> dict[str, Any]:
        return {
            "feed": self.feed,
            "lock": self.lock,
            "payer": self.payer,
            "asset": self.asset,
            "reward": self.reward,
            "remaining": self.remaining,
            "expires_ms": self.expires_ms,
            "paid_rounds": self.paid_rounds,
        }

    @classmethod
    def from_cbor(cls, data: object) -> Budget:
        names = ("asset", "expires_ms", "feed", "lock", "paid_rounds", "payer", "remaining", "reward")
        fields = _fields(data, names, "budget")
        lock, payer, asset = fields["lock"], fields["payer"], fields["asset"]
        if type(lock) is not bytes or len(lock) != 32:
            raise ValueError("budget: lock must be a 32-byte lock id")
        if not is_did_key(payer):
            raise ValueError("budget: payer must be a did:key")
        if type(asset) is not str or not asset:
            raise ValueError("budget: asset must be an asset name")
        reward = _u64(fields["reward"], "reward")
        remaining = _u64(fields["remaining"], "remaining")
        if reward < 1 or remaining < 1:
            raise ValueError("budget: reward and remaining are at least 1")
        return cls(
            feed=_feed(fields["feed"]),
            lock=lock,
            payer=payer,
            asset=asset,
            reward=reward,
            remaining=remaining,
            expires_ms=_u64(fields["expires_ms"], "expires_ms"),
            paid_rounds=_u64(fields["paid_rounds"], "paid_rounds"),
        )


# ---------------------------------------------------------------------------------------------------
# Strict decoding helpers


def _fields(data: object, names: tuple[str, ...], what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping) or sorted(data) != sorted(names):
        raise ValueError(f"{what}: expected a map with exactly the fields {sorted(names)}")
    return data


def _u64(value: object, name: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_U64:
        raise ValueError(f"{name} must be an integer from 0 to 2**64-1")
    return value


def _round_number(value: object) -> int:
    if type(value) is not int or not 1 <= value <= MAX_U64:
        raise ValueError("round must be an integer from 1 to 2**64-1")
    return value


def _value(value: object, name: str) -> int:
    if not is_value(value):
        raise ValueError(f"{name} must be a signed 64-bit integer")
    assert type(value) is int
    return value


def _feed(value: object) -> str:
    if not is_feed_name(value):
        raise ValueError("feed must be a valid feed name")
    assert type(value) is str
    return value
