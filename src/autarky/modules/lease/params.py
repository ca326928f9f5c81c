"""The lease module's parameters: their defaults, bounds and strict genesis validation.

Set at genesis (``app_state["lease"] = {"params": {...}}``, every key optional) and changed only by
governance (not yet built). A chain whose genesis names no lease settings stores no ``lease/params``
key and runs with :data:`DEFAULTS`. A lease copies the durations it depends on when it is reserved,
so a later change of parameters never changes a running lease.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

MAX_TIME_MS = 10**16 - 1
"""Block times and deadlines are written with 16 digits in the due index (as escrow's)."""
MAX_DURATION_MS = 10**13
"""No duration parameter may exceed this (about 317 years), so sums of them stay far below 2**64."""
MAX_PERIODS_BOUND = 1_000_000


@dataclass(frozen=True, slots=True)
class Params:
    confirm_grace_ms: int = 300_000
    """How long after ``start_ms`` the provider may still confirm the start (capped at the lease's
    length); past it, an unconfirmed reservation is refunded in full."""
    report_window_ms: int = 60_000
    """How long after a period ends its price is paid: the renter's window to report a breach."""
    claim_timeout_ms: int = 3_600_000
    """How long a breach claim may stay open; unresolved, it is dismissed."""
    min_period_ms: int = 1_000
    max_period_ms: int = 31_536_000_000
    max_periods: int = 100_000
    """The most periods an offer may allow in one lease."""
    max_advance_ms: int = 31_536_000_000
    """How far after the block time a reservation may start."""

    def to_cbor(self) -> dict[str, int]:
        return asdict(self)


DEFAULTS = Params()
_BOUNDS: dict[str, tuple[int, int]] = {
    "confirm_grace_ms": (0, MAX_DURATION_MS),
    "report_window_ms": (0, MAX_DURATION_MS),
    "claim_timeout_ms": (1, MAX_DURATION_MS),
    "min_period_ms": (1, MAX_DURATION_MS),
    "max_period_ms": (1, MAX_DURATION_MS),
    "max_periods": (1, MAX_PERIODS_BOUND),
    "max_advance_ms": (0, MAX_DURATION_MS),
}


def from_genesis(config: Mapping[str, Any]) -> Params | None:
    """The parameters a genesis section sets, or None when it sets none; ValueError when invalid."""
    if not isinstance(config, Mapping):
        raise ValueError("lease genesis: the lease section must be a map")
    for key in config:
        if key != "params":
            raise ValueError(f"lease genesis: unknown key {key!r} (allowed: ['params'])")
    if "params" not in config:
        return None
    given = config["params"]
    if not isinstance(given, Mapping):
        raise ValueError("lease genesis: params must be a map")
    values = DEFAULTS.to_cbor()
    for name, value in given.items():
        if name not in _BOUNDS:
            raise ValueError(f"lease genesis: unknown parameter {name!r} (allowed: {sorted(_BOUNDS)})")
        low, high = _BOUNDS[name]
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"lease genesis: params.{name} must be an integer from {low} to {high}")
        values[name] = value
    params = Params(**values)
    if params.min_period_ms > params.max_period_ms:
        raise ValueError("lease genesis: params.min_period_ms is above params.max_period_ms")
    return params


def from_cbor(value: Mapping[str, Any]) -> Params:
    return Params(**{name: value[name] for name in _BOUNDS})
