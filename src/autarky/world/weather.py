"""Weather of a site: temperature, cloud cover, rain and wind, what a weather oracle reports.

Each site has its own smooth cloud process (weather systems of a few days, a per-day bias so some
days are clear and some overcast, and 3-hour structure), a diurnal temperature wave that peaks
mid-afternoon and drops under clouds, and rain when clouds are thick.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from autarky.world.noise import normal, smooth_noise, uniform
from autarky.world.site import DEFAULT_SITE, HOUR_MS, Site, day_of_year, local_day, local_hour

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class Weather:
    """Arrays of shape (S, T) for S sites and T times."""

    temperature_c: Floats
    cloud_cover: Floats  # 0 (clear) to 1 (overcast)
    rain_mm_per_h: Floats
    wind_m_per_s: Floats

    def site(self, index: int) -> Weather:
        """The rows of one site, still 2-D (1, T)."""
        return Weather(
            self.temperature_c[index : index + 1],
            self.cloud_cover[index : index + 1],
            self.rain_mm_per_h[index : index + 1],
            self.wind_m_per_s[index : index + 1],
        )


def weather(seed: int, sites: ArrayLike, times_ms: ArrayLike, site: Site = DEFAULT_SITE) -> Weather:
    """Weather at ``times_ms`` for each site index in ``sites`` (all near ``site``): shape (S, T)."""
    s = np.atleast_1d(np.asarray(sites, dtype=np.int64))
    times = np.asarray(times_ms, dtype=np.int64)
    day = local_day(times, site)
    # Cloudiness: weather systems that last days (knots every 2 days), a per-day bias (some days
    # clear, some grey) and 3-hour structure.
    synoptic = smooth_noise(seed, "weather/synoptic", s, times, 48 * HOUR_MS)
    day_bias = normal(seed, "weather/day-cloud", s.reshape(-1, 1), day.reshape(1, -1))
    fast = smooth_noise(seed, "weather/cloud", s, times, 3 * HOUR_MS)
    cloud = 1.0 / (1.0 + np.exp(-(1.0 * synoptic + 0.7 * day_bias + 0.8 * fast - 0.3)))
    # Temperature: seasonal mean by latitude, diurnal wave peaking at 15:00, cooler under clouds.
    doy, _ = day_of_year(times)
    seasonal = -np.cos(2.0 * np.pi * (doy - 15.0) / 365.25)
    if site.latitude < 0:
        seasonal = -seasonal
    mean_c = 12.0 + 9.0 * seasonal
    hour = local_hour(times, site)
    diurnal = np.cos(2.0 * np.pi * (hour - 15.0) / 24.0)
    amplitude = 6.0 * (1.0 - 0.6 * cloud)
    drift = 2.5 * smooth_noise(seed, "weather/temperature", s, times, 12 * HOUR_MS)
    temperature = mean_c.reshape(1, -1) + amplitude * diurnal.reshape(1, -1) + drift
    # Rain: only under thick cloud; intensity grows with cloud thickness.
    rain_chance = uniform(seed, "weather/rain", s.reshape(-1, 1), (times // HOUR_MS).reshape(1, -1))
    thick = np.clip((cloud - 0.7) / 0.3, 0.0, 1.0)
    rain = np.where(rain_chance < thick, 0.5 + 4.0 * thick * rain_chance, 0.0)
    wind = np.maximum(3.0 + 2.0 * smooth_noise(seed, "weather/wind", s, times, 6 * HOUR_MS), 0.0)
    return Weather(temperature, cloud, rain, wind)
