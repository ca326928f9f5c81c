"""The physical site behind the ``autarky up`` demo: a miniature of a generated microgrid day.

The demo chain's delivery interval lasts 20 s (``DEMO_INTERVAL_MS``); each one stands for a
15-minute interval of a generated world (:mod:`autarky.world`: sun, clouds, PV output, household
load, grid price, weather, soil), so a "day" of 96 intervals passes in 32 minutes. The site
starts at 08:00 local time on its second generated day (the forecasters need the last 96
intervals as history) and wraps around after three days.

The machines' models work in the world's units (W, Wh, cents/kWh); what they put on the ledger is
scaled down by :data:`SCALE` (one demo Wh stands for 25 Wh) and priced in demo units (one demo
unit per 10 cents/kWh), so that the escrows fit the small guardrails the operator set.
Everything is seeded: the same seed gives the same site.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from autarky import world

Floats = NDArray[np.float64]

DEMO_INTERVAL_MS = 20_000
WORLD_START_MS = 1_719_792_000_000  # 2024-07-01 00:00 UTC: a summer week near Freiburg
WORLD_DAYS = 3
PER_DAY = 96
START_INTERVAL = PER_DAY + 28  # 08:00 local (UTC+1) on the second day
SCALE = 25
"""One Wh on the demo ledger stands for this many Wh of the generated site."""
CENTS_PER_UNIT = 10
SITE_SEED = 2024

# Which generated household each machine is (index into the world's machine arrays).
PV_INDEX = 0
HOUSEHOLDS = {"household-a": 1, "household-b": 2}
BATTERY_INDEX = 3
FIELD_INDEX = 0


@dataclass(frozen=True)
class SiteWorld:
    """Three generated days of the site, interval by interval (15 minutes)."""

    times_ms: NDArray[np.int64]  # (T,)
    pv_w: Floats  # (M, T)
    load_w: Floats  # (M, T)
    price_cents: Floats  # (T,)
    temperature_c: Floats  # (T,)
    rain_mm_h: Floats  # (T,)
    systems: world.PvSystems
    battery: world.BatteryParams

    @property
    def length(self) -> int:
        return int(self.times_ms.size)


@functools.lru_cache(maxsize=4)
def site_world(seed: int = SITE_SEED) -> SiteWorld:
    machines = np.arange(4)
    day = world.microgrid_day(seed, machines, WORLD_START_MS, hours=24.0 * WORLD_DAYS)
    return SiteWorld(
        times_ms=day.times_ms,
        pv_w=day.pv_w,
        load_w=day.load_w,
        price_cents=day.price,
        temperature_c=day.weather.temperature_c[0],
        rain_mm_h=day.weather.rain_mm_per_h[0],
        systems=world.pv_systems(seed, machines),
        battery=world.battery_params(seed, machines),
    )


class SiteClock:
    """Maps the demo chain's intervals to the generated world's intervals.

    ``origin`` is the demo interval that is :data:`START_INTERVAL` of the world (08:00 on day 2);
    later intervals wrap around within days 2 and 3, so 96 intervals of history always exist."""

    def __init__(self, origin: int, interval_ms: int = DEMO_INTERVAL_MS, seed: int = SITE_SEED) -> None:
        self.origin = origin
        self.interval_ms = interval_ms
        self.world = site_world(seed)

    def index(self, interval: int) -> int:
        span = self.world.length - PER_DAY
        return PER_DAY + (START_INTERVAL - PER_DAY + interval - self.origin) % span

    def world_ms(self, interval: int) -> int:
        return int(self.world.times_ms[self.index(interval)])

    def local_time(self, interval: int) -> str:
        minutes = (self.index(interval) % PER_DAY) * 15
        return f"{minutes // 60:02d}:{minutes % 60:02d}"

    def history(self, series: Floats, interval: int) -> list[int]:
        """The last 96 values (W, ints) before ``interval``, oldest first."""
        i = self.index(interval)
        return [int(v) for v in np.rint(series[i - PER_DAY : i])]

    def ahead(self, series: Floats, interval: int, count: int = PER_DAY) -> list[int]:
        i = self.index(interval)
        values = np.concatenate([series, series[PER_DAY:]])[i : i + count]
        return [int(v) for v in np.rint(values)]

    def actual(self, series: Floats, interval: int) -> float:
        return float(series[self.index(interval)])


def demo_wh(power_w: float) -> int:
    """A power over one 15-minute world interval as demo Wh (scaled down by :data:`SCALE`)."""
    return max(0, round(power_w / 4 / SCALE))


def demo_price(cents_per_kwh: float) -> int:
    """A grid price in demo units (at least 1)."""
    return max(1, round(cents_per_kwh / CENTS_PER_UNIT))
