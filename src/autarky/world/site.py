"""Where a simulated world is, and its clock: sites, days, local time."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000
INTERVAL_MS = 900_000  # the market's 15-minute interval


@dataclass(frozen=True)
class Site:
    """A place: latitude and longitude in degrees (north, east positive), its UTC offset in hours."""

    latitude: float = 48.0
    longitude: float = 7.85
    utc_offset_hours: float = 1.0
    name: str = "freiburg"


DEFAULT_SITE = Site()


def interval_times_ms(start_ms: int, hours: float = 24.0, step_ms: int = INTERVAL_MS) -> NDArray[np.int64]:
    """Start times of the intervals of ``hours`` hours from ``start_ms`` (96 for a day of 15 minutes)."""
    count = round(hours * HOUR_MS / step_ms)
    return start_ms + step_ms * np.arange(count, dtype=np.int64)


def local_hour(times_ms: ArrayLike, site: Site = DEFAULT_SITE) -> NDArray[np.float64]:
    """Local clock hour in [0, 24) as a float."""
    local = np.asarray(times_ms, dtype=np.int64) + round(site.utc_offset_hours * HOUR_MS)
    return (local % DAY_MS).astype(np.float64) / HOUR_MS


def local_day(times_ms: ArrayLike, site: Site = DEFAULT_SITE) -> NDArray[np.int64]:
    """Local day number since 1970-01-01."""
    local = np.asarray(times_ms, dtype=np.int64) + round(site.utc_offset_hours * HOUR_MS)
    return local // DAY_MS


def is_weekend(times_ms: ArrayLike, site: Site = DEFAULT_SITE) -> NDArray[np.bool_]:
    """Saturday or Sunday, local time (1970-01-01 was a Thursday)."""
    weekday = (local_day(times_ms, site) + 3) % 7  # 0 = Monday
    return np.asarray(weekday >= 5)


def day_of_year(times_ms: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """(day of year starting at 1, UTC hour) of each time: the inputs of the Spencer series."""
    times = np.asarray(times_ms, dtype=np.int64)
    days = times // DAY_MS
    year = _civil_year(days)
    doy = (days - _days_from_civil(year) + 1).astype(np.float64)
    hour = (times - days * DAY_MS).astype(np.float64) / HOUR_MS
    return doy, hour


def days_in_year(times_ms: ArrayLike) -> NDArray[np.float64]:
    """365 or 366 for the UTC year of each time."""
    year = _civil_year(np.asarray(times_ms, dtype=np.int64) // DAY_MS)
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    return np.where(leap, 366.0, 365.0)


def _civil_year(days: NDArray[np.int64]) -> NDArray[np.int64]:
    """Gregorian year of a day number since the epoch (Howard Hinnant's algorithm), vectorised."""
    z = days + 719_468
    era = z // 146_097
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy_march = doe - (365 * yoe + yoe // 4 - yoe // 100)
    month_index = (5 * doy_march + 2) // 153
    year = yoe + era * 400
    return np.asarray(np.where(month_index >= 10, year + 1, year))


def _days_from_civil(year: NDArray[np.int64]) -> NDArray[np.int64]:
    """Days since the epoch of January 1 of ``year``."""
    y = year - 1  # January counts as a month of the previous March-based year
    era = y // 400
    yoe = y - era * 400
    doe = yoe * 365 + yoe // 4 - yoe // 100 + 306  # 306 days from March 1 to January 1
    return np.asarray(era * 146_097 + doe - 719_468)
