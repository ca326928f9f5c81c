"""The jobs module's parameters: defaults, bounds and strict genesis validation.

Set at genesis (``app_state["jobs"] = {"params": {...}}``, every key optional) and changed only by
governance (not yet built). A chain whose genesis names no jobs settings stores no ``jobs/params``
key and runs with :data:`DEFAULTS`. A job copies the windows when it is posted, so a later change
of parameters never changes a posted job.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

MAX_TIME_MS = 10**16 - 1
"""Block times and deadlines are written with 16 digits in the due index (as escrow's)."""
MAX_DURATION_MS = 10**13


@dataclass(frozen=True, slots=True)
class Params:
    attest_window_ms: int = 86_400_000
    """How long after the deadline an attester may still attest a completion (1 day)."""
    dispute_window_ms: int = 86_400_000
    """How long after the attestation the poster (or its owner) may dispute (1 day)."""
    resolve_window_ms: int = 259_200_000
    """How long the arbiter has to resolve a dispute (3 days); unresolved, the bounty is refunded."""
    max_deadline_ms: int = 31_536_000_000
    """How far after the block time a deadline may be (365 days)."""

    def to_cbor(self) -> dict[str, int]:
        return asdict(self)


DEFAULTS = Params()
_BOUNDS: dict[str, tuple[int, int]] = {
    "attest_window_ms": (1, MAX_DURATION_MS),
    "dispute_window_ms": (0, MAX_DURATION_MS),
    "resolve_window_ms": (1, MAX_DURATION_MS),
    "max_deadline_ms": (1, MAX_DURATION_MS),
}


def from_genesis(config: Mapping[str, Any]) -> Params | None:
    """The parameters a genesis section sets, or None when it sets none; ValueError when invalid."""
    if not isinstance(config, Mapping):
        raise ValueError("jobs genesis: the jobs section must be a map")
    for key in config:
        if key != "params":
            raise ValueError(f"jobs genesis: unknown key {key!r} (allowed: ['params'])")
    if "params" not in config:
        return None
    given = config["params"]
    if not isinstance(given, Mapping):
        raise ValueError("jobs genesis: params must be a map")
    values = DEFAULTS.to_cbor()
    for name, value in given.items():
        if name not in _BOUNDS:
            raise ValueError(f"jobs genesis: unknown parameter {name!r} (allowed: {sorted(_BOUNDS)})")
        low, high = _BOUNDS[name]
        if type(value) is not int or not low <= value <= high:
            raise ValueError(f"jobs genesis: params.{name} must be an integer from {low} to {high}")
        values[name] = value
    return Params(**values)


def from_cbor(value: Mapping[str, Any]) -> Params:
    return Params(**{name: value[name] for name in _BOUNDS})
