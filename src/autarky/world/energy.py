"""Households, electric-vehicle sessions and battery physics."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from autarky.world.noise import normal, smooth_noise, uniform
from autarky.world.site import DAY_MS, DEFAULT_SITE, HOUR_MS, Site, is_weekend, local_day, local_hour

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]


def _bump(hour: Floats, centre: Floats | float, width: float) -> Floats:
    """A Gaussian bump in local hours, wrapping at midnight."""
    distance = (hour - centre + 12.0) % 24.0 - 12.0
    return np.asarray(np.exp(-0.5 * (distance / width) ** 2))


def household_load(seed: int, machines: ArrayLike, times_ms: ArrayLike, site: Site = DEFAULT_SITE) -> Floats:
    """Electrical load (W) of each household at each time: shape (M, T).

    A base load (fridge, standby: 120-350 W), a morning peak near 07:00 on weekdays (09:00 at
    weekends), a midday bump at weekends, an evening peak near 19:00, and appliance noise. Averages
    about 8-12 kWh a day, a European household.
    """
    m = np.atleast_1d(np.asarray(machines, dtype=np.int64)).reshape(-1, 1)
    times = np.asarray(times_ms, dtype=np.int64)
    hour = local_hour(times, site).reshape(1, -1)
    weekend = is_weekend(times, site).reshape(1, -1)
    base = 120.0 + 230.0 * uniform(seed, "load/base", m)
    scale = 0.7 + 0.6 * uniform(seed, "load/scale", m)
    morning_centre = np.where(weekend, 9.0, 7.0) + 0.6 * normal(seed, "load/morning", m)
    evening_centre = 19.0 + 0.8 * normal(seed, "load/evening", m)
    morning = 700.0 * _bump(hour, morning_centre, 0.9)
    evening = 1100.0 * _bump(hour, evening_centre, 1.6)
    midday = np.where(weekend, 500.0, 120.0) * _bump(hour, 13.0, 1.5)
    wiggle = 1.0 + 0.25 * smooth_noise(seed, "load/wiggle", m.ravel(), times, HOUR_MS)
    return np.asarray(np.maximum(base + scale * (morning + evening + midday) * wiggle, 50.0))


@dataclass(frozen=True)
class EvSessions:
    """Charging sessions, one row each (arrays of equal length), sorted by machine then arrival."""

    machine: Ints
    arrival_ms: Ints
    departure_ms: Ints
    energy_wh: Floats  # energy the car wants before departure
    max_power_w: Floats

    def __len__(self) -> int:
        return int(self.machine.size)


def ev_sessions(
    seed: int, machines: ArrayLike, start_ms: int, days: int, site: Site = DEFAULT_SITE
) -> EvSessions:
    """Home-charger sessions: on 75 % of days the car arrives near 18:00 (+-1.5 h) and leaves near
    07:30 the next morning (+-1 h), wanting 4-30 kWh at 7.4 or 11 kW."""
    m = np.atleast_1d(np.asarray(machines, dtype=np.int64))
    first_day = int(local_day(np.asarray([start_ms]), site)[0])
    day = first_day + np.arange(days, dtype=np.int64)
    mm, dd = np.meshgrid(m, day, indexing="ij")
    present = uniform(seed, "ev/present", mm, dd) < 0.75
    offset_ms = round(site.utc_offset_hours * HOUR_MS)
    midnight = dd * DAY_MS - offset_ms
    arrival_h = np.clip(18.0 + 1.5 * normal(seed, "ev/arrival", mm, dd), 14.0, 23.5)
    departure_h = np.clip(31.5 + 1.0 * normal(seed, "ev/departure", mm, dd), 29.0, 34.0)
    energy = 4000.0 + 26000.0 * uniform(seed, "ev/energy", mm, dd) ** 1.5
    power = np.where(uniform(seed, "ev/power", mm) < 0.6, 11000.0, 7400.0)
    keep = present.ravel()
    return EvSessions(
        machine=mm.ravel()[keep],
        arrival_ms=(midnight + (arrival_h * HOUR_MS).astype(np.int64)).ravel()[keep],
        departure_ms=(midnight + (departure_h * HOUR_MS).astype(np.int64)).ravel()[keep],
        energy_wh=energy.ravel()[keep],
        max_power_w=power.ravel()[keep],
    )


def ev_uncontrolled_power(
    sessions: EvSessions, machines: ArrayLike, times_ms: ArrayLike, step_ms: int
) -> Floats:
    """Power (W) drawn per interval when each car charges at full power from arrival until full:
    shape (M, T) for the interval starts ``times_ms`` of length ``step_ms``."""
    m = np.atleast_1d(np.asarray(machines, dtype=np.int64))
    times = np.asarray(times_ms, dtype=np.int64)
    row = np.searchsorted(m, sessions.machine)
    valid = (row < m.size) & (m[np.minimum(row, m.size - 1)] == sessions.machine)
    power = np.zeros((m.size, times.size))
    charge_ms = np.minimum(
        sessions.energy_wh / sessions.max_power_w * HOUR_MS, sessions.departure_ms - sessions.arrival_ms
    )
    end_ms = sessions.arrival_ms + charge_ms.astype(np.int64)
    for index in np.flatnonzero(valid):
        overlap = np.minimum(times + step_ms, end_ms[index]) - np.maximum(times, sessions.arrival_ms[index])
        power[row[index]] += sessions.max_power_w[index] * np.clip(overlap, 0, step_ms) / step_ms
    return power


@dataclass(frozen=True)
class BatteryParams:
    """Per-battery parameters (arrays of shape (M,))."""

    capacity_wh: Floats
    max_charge_w: Floats
    max_discharge_w: Floats
    charge_efficiency: Floats  # fraction of grid energy stored
    discharge_efficiency: Floats  # fraction of stored energy delivered
    soc_min_wh: Floats
    soc_max_wh: Floats

    @property
    def round_trip_efficiency(self) -> Floats:
        return np.asarray(self.charge_efficiency * self.discharge_efficiency)


def battery_params(seed: int, machines: ArrayLike) -> BatteryParams:
    """Home batteries: 5-15 kWh, C/2 power, 88-94 % round trip, 10-95 % usable state of charge."""
    m = np.atleast_1d(np.asarray(machines, dtype=np.int64))
    capacity = 5000.0 + 10000.0 * uniform(seed, "battery/capacity", m)
    one_way = np.sqrt(0.88 + 0.06 * uniform(seed, "battery/efficiency", m))
    return BatteryParams(
        capacity_wh=capacity,
        max_charge_w=capacity / 2.0,
        max_discharge_w=capacity / 2.0,
        charge_efficiency=one_way,
        discharge_efficiency=one_way,
        soc_min_wh=0.10 * capacity,
        soc_max_wh=0.95 * capacity,
    )


@dataclass(frozen=True)
class BatteryStep:
    soc_wh: Floats  # state of charge after the step
    power_w: Floats  # power actually exchanged at the terminals (+ charge, - discharge)


def battery_step(params: BatteryParams, soc_wh: ArrayLike, power_w: ArrayLike, step_ms: int) -> BatteryStep:
    """Apply a requested terminal power for one step: clip to power limits and to the state of charge
    window, charge with ``charge_efficiency`` losses, discharge with ``discharge_efficiency`` losses."""
    soc = np.asarray(soc_wh, dtype=np.float64)
    hours = step_ms / HOUR_MS
    requested = np.clip(np.asarray(power_w, dtype=np.float64), -params.max_discharge_w, params.max_charge_w)
    room_w = (params.soc_max_wh - soc) / (params.charge_efficiency * hours)
    available_w = (soc - params.soc_min_wh) * params.discharge_efficiency / hours
    power = np.where(
        requested >= 0.0,
        np.minimum(requested, np.maximum(room_w, 0.0)),
        -np.minimum(-requested, np.maximum(available_w, 0.0)),
    )
    stored = (
        np.where(power >= 0.0, power * params.charge_efficiency, power / params.discharge_efficiency) * hours
    )
    return BatteryStep(soc + stored, power)
