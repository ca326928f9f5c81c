"""Grid electricity prices of a day-ahead market: morning and evening peaks, a solar dip at noon that
is deeper on sunny days, weekend discount and noise. Prices in cents per kWh (floats); quantise to the
zone's integer price unit before use on the ledger."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from autarky.world.noise import smooth_noise
from autarky.world.site import DEFAULT_SITE, HOUR_MS, Site, is_weekend, local_hour
from autarky.world.solar import clearsky, cloud_transmittance

Floats = NDArray[np.float64]


def grid_price(
    seed: int, zones: ArrayLike, times_ms: ArrayLike, cloud_cover: ArrayLike, site: Site = DEFAULT_SITE
) -> Floats:
    """Price (cents/kWh, >= 1) per zone and time: shape (Z, T). ``cloud_cover`` (T,) or (Z, T) is the
    weather: clear skies mean much solar power in the grid and a deep midday dip."""
    z = np.atleast_1d(np.asarray(zones, dtype=np.int64))
    times = np.asarray(times_ms, dtype=np.int64)
    hour = local_hour(times, site).reshape(1, -1)
    _, sky = clearsky(times, site)
    solar = (sky.ghi / 1000.0).reshape(1, -1) * cloud_transmittance(cloud_cover)
    morning = np.exp(-0.5 * ((hour - 8.0) / 1.5) ** 2)
    evening = np.exp(-0.5 * ((hour - 19.0) / 2.0) ** 2)
    night = np.exp(-0.5 * (((hour + 12.0) % 24.0 - 15.0) / 2.5) ** 2)  # centred on 03:00
    weekend = np.where(is_weekend(times, site), 0.85, 1.0).reshape(1, -1)
    noise = 2.0 * smooth_noise(seed, "price/noise", z, times, HOUR_MS)
    price = (24.0 + 9.0 * morning + 14.0 * evening - 6.0 * night - 20.0 * solar) * weekend + noise
    return np.asarray(np.maximum(price, 1.0))
