"""Floats to integers for the ledger: canonical CBOR has no floats, so every quantity that is hashed,
signed or sent in a message is an integer in a stated unit (W, Wh, milli-degrees, basis points)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray


def quantise(values: ArrayLike, unit: float = 1.0) -> NDArray[np.int64]:
    """Round ``values / unit`` to the nearest integer (half to even), as int64."""
    return np.asarray(np.rint(np.asarray(values, dtype=np.float64) / unit)).astype(np.int64)


def to_w(power_w: ArrayLike) -> NDArray[np.int64]:
    """Watts, rounded."""
    return quantise(power_w)


def to_wh(power_w: ArrayLike, step_ms: int) -> NDArray[np.int64]:
    """Energy in Wh of a power held for ``step_ms`` (e.g. a 15-minute interval)."""
    return quantise(np.asarray(power_w, dtype=np.float64) * (step_ms / 3_600_000))


def to_milli(values: ArrayLike) -> NDArray[np.int64]:
    """Thousandths (milli-degrees C, milli-m^3/m^3, mm/s x 1000...)."""
    return quantise(values, 0.001)


def to_basis_points(fractions: ArrayLike) -> NDArray[np.int64]:
    """Fractions in basis points (1 = 0.01 %)."""
    return quantise(fractions, 0.0001)


def as_ints(values: ArrayLike) -> list[int]:
    """A flat list of Python ints, ready for canonical CBOR (which refuses numpy scalars and floats).

    Quantise first: a float array is refused rather than truncated silently."""
    array = np.asarray(values)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"as_ints needs integers (quantise first), got {array.dtype}")
    return [int(v) for v in array.ravel().tolist()]
