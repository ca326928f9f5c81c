"""Machine-tool telemetry (vibration RMS, kurtosis, bearing temperature) with injected faults.

Faults are bearing wear: in a fault window the severity ramps from 0 to 1, vibration RMS grows up
to threefold, kurtosis rises (impulsive shocks from a spalled race) and the bearing warms by up to
10 K. The windows are the ground truth a detector is scored against; they are a pure function of
(seed, machine, day), so any time range can be generated on its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from autarky.world.noise import normal, smooth_noise, uniform
from autarky.world.site import DAY_MS, HOUR_MS

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

FAULT_RATE_PER_DAY = 0.05
"""Default chance that a machine starts a bearing fault on a given day."""


@dataclass(frozen=True)
class FaultWindows:
    """Known fault windows (ground truth), one row each: [start_ms, end_ms)."""

    machine: Ints
    start_ms: Ints
    end_ms: Ints

    def __len__(self) -> int:
        return int(self.machine.size)


def _windows_for_days(seed: int, m: Ints, days: Ints, rate: float) -> tuple[NDArray[np.bool_], Ints, Ints]:
    """(started?, start_ms, end_ms) for each (machine, day) pair, broadcast (M, D)."""
    mm = m.reshape(-1, 1)
    dd = days.reshape(1, -1)
    started = uniform(seed, "fault/start", mm, dd) < rate
    start = dd * DAY_MS + (uniform(seed, "fault/when", mm, dd) * DAY_MS).astype(np.int64)
    length = (2 * HOUR_MS + uniform(seed, "fault/length", mm, dd) * 6 * HOUR_MS).astype(np.int64)
    return np.asarray(started), start, np.asarray(start + length, dtype=np.int64)


def fault_windows(
    seed: int, machines: ArrayLike, start_ms: int, end_ms: int, rate: float = FAULT_RATE_PER_DAY
) -> FaultWindows:
    """Fault windows that overlap [start_ms, end_ms) (a window lasts 2-8 hours)."""
    m = np.atleast_1d(np.asarray(machines, dtype=np.int64))
    days = np.arange(start_ms // DAY_MS - 1, (end_ms - 1) // DAY_MS + 1, dtype=np.int64)
    started, start, end = _windows_for_days(seed, m, days, rate)
    overlap = started & (start < end_ms) & (end > start_ms)
    rows, cols = np.nonzero(overlap)
    return FaultWindows(m[rows], start[rows, cols], end[rows, cols])


def fault_severity(
    seed: int, machines: ArrayLike, times_ms: ArrayLike, rate: float = FAULT_RATE_PER_DAY
) -> Floats:
    """Severity in [0, 1] of the bearing fault at each time (0 outside windows): shape (M, T)."""
    m = np.atleast_1d(np.asarray(machines, dtype=np.int64))
    times = np.asarray(times_ms, dtype=np.int64)
    severity = np.zeros((m.size, times.size))
    if times.size == 0:
        return severity
    windows = fault_windows(seed, m, int(times.min()), int(times.max()) + 1, rate)
    row = np.searchsorted(m, windows.machine) if np.all(np.diff(m) > 0) else None
    for index in range(len(windows)):
        r = int(row[index]) if row is not None else int(np.flatnonzero(m == windows.machine[index])[0])
        start, end = windows.start_ms[index], windows.end_ms[index]
        inside = (times >= start) & (times < end)
        ramp = (times - start) / (end - start)
        severity[r] = np.maximum(severity[r], np.where(inside, ramp, 0.0))
    return severity


@dataclass(frozen=True)
class Telemetry:
    """Per-sample features of a machine tool (shape (M, T)) and the true fault severity."""

    vibration_rms: Floats  # mm/s
    kurtosis: Floats  # 3 for Gaussian vibration
    temperature_c: Floats  # bearing housing
    spindle_load: Floats  # 0-1
    severity: Floats  # ground truth, 0 when healthy


def machine_telemetry(
    seed: int, machines: ArrayLike, times_ms: ArrayLike, rate: float = FAULT_RATE_PER_DAY
) -> Telemetry:
    """Telemetry of machine tools at ``times_ms`` (one feature sample per time, e.g. per minute)."""
    m = np.atleast_1d(np.asarray(machines, dtype=np.int64))
    times = np.asarray(times_ms, dtype=np.int64)
    mm = m.reshape(-1, 1)
    tt = times.reshape(1, -1)
    severity = fault_severity(seed, m, times, rate)
    load = np.clip(0.6 + 0.25 * smooth_noise(seed, "tool/load", m, times, HOUR_MS), 0.05, 1.0)
    base_rms = 1.5 + 1.0 * uniform(seed, "tool/rms", mm)
    rms = (
        base_rms
        * (0.7 + 0.5 * load)
        * (1.0 + 2.0 * severity)
        * (1.0 + 0.08 * normal(seed, "tool/rms-n", mm, tt))
    )
    kurtosis = 3.0 + 0.3 * np.abs(normal(seed, "tool/kurt-n", mm, tt)) + 6.0 * severity**1.5
    ambient = 22.0 + 3.0 * smooth_noise(seed, "tool/ambient", m, times, 6 * HOUR_MS)
    temperature = ambient + 15.0 * load + 10.0 * severity + 0.4 * normal(seed, "tool/temp-n", mm, tt)
    return Telemetry(rms, kurtosis, temperature, load, severity)
