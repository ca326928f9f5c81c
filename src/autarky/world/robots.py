"""Delivery robots: delivery tasks, route lengths, energy use and charging needs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from autarky.world.noise import uniform
from autarky.world.site import DAY_MS, DEFAULT_SITE, HOUR_MS, Site, local_day

Floats = NDArray[np.float64]
Ints = NDArray[np.int64]

ROBOT_CAPACITY_WH = 1500.0
ROBOT_SPEED_M_PER_S = 1.6


@dataclass(frozen=True)
class DeliveryTasks:
    """Delivery tasks, one row each, sorted by robot then request time."""

    robot: Ints
    request_ms: Ints
    distance_m: Floats  # planned route length (out and back)
    payload_kg: Floats
    detour_factor: Floats  # how much longer the route is without live routing data (>= 1)

    def __len__(self) -> int:
        return int(self.robot.size)


def delivery_tasks(
    seed: int, robots: ArrayLike, start_ms: int, days: int, per_day: int = 12, site: Site = DEFAULT_SITE
) -> DeliveryTasks:
    """``per_day`` requests per robot and day between 08:00 and 20:00 local time, routes of 0.5-6 km,
    payloads of 1-20 kg; without routing data a route is 5-40 % longer (road works, closures)."""
    r = np.atleast_1d(np.asarray(robots, dtype=np.int64))
    first = int(local_day(np.asarray([start_ms]), site)[0])
    day = first + np.arange(days, dtype=np.int64)
    slot = np.arange(per_day, dtype=np.int64)
    rr, dd, ss = np.meshgrid(r, day, slot, indexing="ij")
    midnight = dd * DAY_MS - round(site.utc_offset_hours * HOUR_MS)
    hour = 8.0 + 12.0 * (ss + uniform(seed, "robot/when", rr, dd, ss)) / per_day
    request = (midnight + (hour * HOUR_MS).astype(np.int64)).ravel()
    return DeliveryTasks(
        robot=rr.ravel(),
        request_ms=request,
        distance_m=(500.0 + 5500.0 * uniform(seed, "robot/distance", rr, dd, ss) ** 1.3).ravel(),
        payload_kg=(1.0 + 19.0 * uniform(seed, "robot/payload", rr, dd, ss)).ravel(),
        detour_factor=(1.05 + 0.35 * uniform(seed, "robot/detour", rr, dd, ss)).ravel(),
    )


def robot_energy_wh(distance_m: ArrayLike, payload_kg: ArrayLike, temperature_c: ArrayLike = 15.0) -> Floats:
    """Energy to drive ``distance_m`` with ``payload_kg`` aboard: 25 Wh/km empty plus 1 Wh/km per kg,
    and up to 30 % more in the cold (battery chemistry and heating)."""
    km = np.asarray(distance_m, dtype=np.float64) / 1000.0
    per_km = 25.0 + 1.0 * np.asarray(payload_kg, dtype=np.float64)
    cold = 1.0 + 0.3 * np.clip((10.0 - np.asarray(temperature_c, dtype=np.float64)) / 20.0, 0.0, 1.0)
    return np.asarray(km * per_km * cold)


def travel_ms(distance_m: ArrayLike) -> Ints:
    """Driving time of a route at the robots' cruising speed."""
    return np.asarray(np.asarray(distance_m, dtype=np.float64) / ROBOT_SPEED_M_PER_S * 1000.0).astype(
        np.int64
    )
