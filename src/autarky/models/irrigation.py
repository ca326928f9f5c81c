"""``IrrigationController``: a water balance on soil moisture that decides to irrigate, and decides to
BUY weather data when its own sensors are not enough.

It buys (``buy_weather``) when

* its sensor looks stuck (the last readings identical) or out of range: it cannot see the soil, and
  the weather (rain, evapotranspiration) is the only way left to estimate it; or
* the soil will reach the refill point within the horizon by its own evapotranspiration estimate,
  and it has no rain forecast: whether it rains decides whether to pay for water.

With a forecast (``rain_mm_milli`` and ``et_mm_milli`` for the next hours) it irrigates just the
deficit the rain will not cover. Units: moisture in thousandths (m^3/m^3 x 1000), water in
micrometres (mm x 1000).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from autarky import world
from autarky.models.modelfile import ModelFile
from autarky.models.policy import CborValue, Inputs, optional_ints, require_int, require_ints

STUCK_SAMPLES = 4


class IrrigationController:
    """``irrigation-balance/1``: ``decide({"time_ms", "moisture_milli": [recent hourly readings, oldest
    first], "field_capacity_milli", "wilting_point_milli", "root_depth_mm", "rain_mm_milli"?: [hourly
    forecast], "et_mm_milli"?: [hourly forecast]})`` -> ``{"irrigate_mm_milli": int, "buy_weather":
    bool, "sensor_ok": bool, "reason": str}``."""

    name = "irrigation-balance/1"
    kind = "irrigation"

    def __init__(self, model: ModelFile) -> None:
        self.model = model
        self.model_hash: bytes | None = model.hash
        self.et_profile = model.param("et_profile_mm")  # (24,) mean reference ET by local hour
        self.utc_offset_ms = int(model.meta["utc_offset_ms"])
        self.horizon_h = int(model.meta["horizon_h"])
        self.refill_fraction = model.meta["refill_fraction_bp"] / 10_000

    def _et_climatology(self, time_ms: int) -> float:
        hours = (time_ms + self.utc_offset_ms) // world.HOUR_MS + np.arange(self.horizon_h)
        return float(self.et_profile[hours % 24].sum())

    def decide(self, inputs: Inputs) -> CborValue:
        time_ms = require_int(inputs, "time_ms")
        readings = require_ints(inputs, "moisture_milli", 1)
        capacity = require_int(inputs, "field_capacity_milli") / 1000.0
        wilting = require_int(inputs, "wilting_point_milli") / 1000.0
        depth = float(require_int(inputs, "root_depth_mm"))
        rain = optional_ints(inputs, "rain_mm_milli")
        et = optional_ints(inputs, "et_mm_milli")
        have_forecast = rain is not None and et is not None
        last = readings[-STUCK_SAMPLES:]
        stuck = len(last) == STUCK_SAMPLES and len(set(last)) == 1
        out_of_range = not 0 < readings[-1] < 600
        sensor_ok = not (stuck or out_of_range)
        if not sensor_ok and not have_forecast:
            reason = "sensor stuck" if stuck else "sensor out of range"
            return {"irrigate_mm_milli": 0, "buy_weather": True, "sensor_ok": False, "reason": reason}
        refill = wilting + self.refill_fraction * (capacity - wilting)
        moisture = readings[-1] / 1000.0 if sensor_ok else refill  # blind: assume the refill point
        et_mm = sum(et) / 1000.0 if have_forecast and et is not None else self._et_climatology(time_ms)
        rain_mm = sum(rain) / 1000.0 if have_forecast and rain is not None else 0.0
        projected = moisture + (rain_mm - et_mm) / depth
        if projected >= refill:
            return {
                "irrigate_mm_milli": 0,
                "buy_weather": False,
                "sensor_ok": sensor_ok,
                "reason": "enough water",
            }
        if not have_forecast:
            return {
                "irrigate_mm_milli": 0,
                "buy_weather": True,
                "sensor_ok": sensor_ok,
                "reason": "rain uncertain",
            }
        deficit_mm = (capacity - projected) * depth
        return {
            "irrigate_mm_milli": round(max(deficit_mm, 0.0) * 1000),
            "buy_weather": False,
            "sensor_ok": sensor_ok,
            "reason": "deficit after forecast rain",
        }


def train_irrigation(
    seed: int,
    days: int = 60,
    start_ms: int = 1_714_521_600_000,
    site: world.Site = world.DEFAULT_SITE,
    progress: Callable[[str], None] | None = None,
) -> tuple[ModelFile, dict[str, Any]]:
    """Learn the climatology of reference evapotranspiration by local hour from generated weather:
    what the controller assumes when it has no bought forecast."""
    times = world.interval_times_ms(start_ms, hours=24 * days, step_ms=world.HOUR_MS)
    sky = world.weather(seed, 0, times, site)
    _, clear = world.clearsky(times + world.HOUR_MS // 2, site)
    ghi = clear.ghi * world.cloud_transmittance(sky.cloud_cover[0])
    et = world.reference_et_mm_per_h(sky.temperature_c[0], ghi)
    hour = np.floor(world.local_hour(times, site)).astype(np.int64)
    profile = np.asarray([et[hour == h].mean() for h in range(24)])
    if progress is not None:
        progress(f"irrigation: {days} days of weather, mean ET {et.sum() / days:.2f} mm/day")
    meta = {
        "seed": seed,
        "days": days,
        "start_ms": start_ms,
        "utc_offset_ms": round(site.utc_offset_hours * world.HOUR_MS),
        "horizon_h": 24,
        "refill_fraction_bp": 5000,
    }
    return ModelFile("irrigation", "1", {"et_profile_mm": profile}, meta), {
        "times": times,
        "et_mm": et,
        "rain_mm": sky.rain_mm_per_h[0],
    }
