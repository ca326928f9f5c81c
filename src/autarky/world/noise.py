"""Counter-based random numbers: a value is a pure function of (seed, stream, machine, index).

A stateful generator would make machine 7's weather depend on how many machines were generated
with it, or a day's values depend on whether it was generated in one call or hour by hour. Hashing
the coordinates (SplitMix64 finaliser, vectorised on ``uint64`` arrays, whose arithmetic wraps) makes
every number addressable: the same coordinates give the same number in any batch, window or order.
"""

from __future__ import annotations

import zlib

import numpy as np
from numpy.typing import ArrayLike, NDArray

Floats = NDArray[np.float64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MUL_1 = np.uint64(0xBF58476D1CE4E5B9)
_MUL_2 = np.uint64(0x94D049BB133111EB)
_TWO_POW_MINUS_53 = 2.0**-53


def stream_id(name: str) -> int:
    """A stable integer for a named stream ("cloud", "load", ...)."""
    return zlib.crc32(name.encode("utf-8"))


def _mix(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _MUL_1
    z = (z ^ (z >> np.uint64(27))) * _MUL_2
    return z ^ (z >> np.uint64(31))


def _u64(value: ArrayLike) -> NDArray[np.uint64]:
    return np.atleast_1d(np.asarray(value, dtype=np.int64)).astype(np.uint64)


def hash64(seed: int, stream: str, *coordinates: ArrayLike) -> NDArray[np.uint64]:
    """64-bit hash of (seed, stream, coordinates...), broadcast over the coordinate arrays."""
    with np.errstate(over="ignore"):  # multiplication modulo 2**64 is the point
        h = _mix(_u64(seed) ^ _u64(stream_id(stream)))
        for coordinate in coordinates:
            h = _mix(h ^ _u64(coordinate))
    return np.asarray(h, dtype=np.uint64)


def uniform(seed: int, stream: str, *coordinates: ArrayLike) -> Floats:
    """Uniform numbers in [0, 1) addressed by their coordinates."""
    return (hash64(seed, stream, *coordinates) >> np.uint64(11)).astype(np.float64) * _TWO_POW_MINUS_53


def normal(seed: int, stream: str, *coordinates: ArrayLike) -> Floats:
    """Standard normal numbers addressed by their coordinates (Box-Muller on two hashed uniforms)."""
    u1 = uniform(seed, stream + "/n1", *coordinates)
    u2 = uniform(seed, stream + "/n2", *coordinates)
    return np.sqrt(-2.0 * np.log1p(-u1)) * np.cos(2.0 * np.pi * u2)


def smooth_noise(seed: int, stream: str, key: ArrayLike, times_ms: ArrayLike, period_ms: int) -> Floats:
    """Smooth noise over time (about standard normal at knots), one series per ``key``.

    Normal values at knots every ``period_ms`` are joined by a smoothstep, so the series is continuous
    and depends only on the absolute time, never on the window asked for. ``key`` has shape (M,) and
    ``times_ms`` shape (T,); the result has shape (M, T).
    """
    keys = np.asarray(key, dtype=np.int64).reshape(-1, 1)
    times = np.asarray(times_ms, dtype=np.int64).reshape(1, -1)
    knot = times // period_ms
    fraction = (times - knot * period_ms).astype(np.float64) / period_ms
    weight = fraction * fraction * (3.0 - 2.0 * fraction)
    left = normal(seed, stream, keys, knot)
    right = normal(seed, stream, keys, knot + 1)
    return left + (right - left) * weight
