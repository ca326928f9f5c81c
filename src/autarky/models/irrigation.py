"""``IrrigationController``: a water balance on soil moisture that decides to irrigate, and decides to
BUY weather data when it cannot tell without it.

The soil is *due* when its projected moisture falls below the refill point (``refill_fraction_bp``
of the available water) within the lead (``lead_h``, 6 h): projected with the climatology of
reference evapotranspiration (ET) when it holds no forecast, with the forecast's hourly rain and ET
when it does. Not due: nothing to do. Due without a forecast: it buys one (whether it rains decides
whether to pay for water). Due with a forecast: it irrigates what the forecast says is needed, the
water that keeps the projected moisture at or above the target (``target_fraction_bp``, a little
above the refill point so that sensor noise does not make it buy and irrigate every few hours) over
the horizon (``horizon_h``, 24 h), rain included, and never more than the soil can hold now (field
capacity minus the moisture: more would drain away). Rain forecast before the soil is due: no
irrigation ("rain will cover it").

A stuck sensor (the last readings identical) or one out of range cannot see the soil: the moisture
is reckoned from the last reading it trusts, plus the water its valve applied since
(``irrigated_mm_milli``, one value per reading), minus the climatology of ET since, rain left out (the
estimate errs dry). When that estimate is due it buys with the reason "sensor stuck" (or "sensor out
of range").

Version 1 of the model filled the soil to field capacity *plus* the horizon's ET at once as soon as
the 24-hour projection dipped below the refill point (over capacity: it drained away), assumed a
blind sensor's soil at the refill point every time it decided (and irrigated half the available
water again and again), and bought a forecast every time its sensor was stuck. Units: moisture in
thousandths (m^3/m^3 x 1000), water in micrometres (mm x 1000).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from autarky import world
from autarky.models.modelfile import ModelFile
from autarky.models.policy import (
    CborValue,
    InputError,
    Inputs,
    optional_ints,
    require_int,
    require_ints,
)

STUCK_SAMPLES = 4
"""This many identical readings in a row: the sensor is stuck."""
SENSOR_RANGE_MILLI = (0, 600)
"""A reading outside (exclusive) is out of range."""
VERSION = "2"
"""The model file's version: 2 is the rule above (see the module docstring for what 1 did)."""


class IrrigationController:
    """``irrigation-balance/1``: ``decide({"time_ms", "moisture_milli": [recent hourly readings, oldest
    first, the last at time_ms], "field_capacity_milli", "wilting_point_milli", "root_depth_mm",
    "irrigated_mm_milli"?: [water applied in the hour before each reading], "rain_mm_milli"?: [hourly
    forecast from time_ms], "et_mm_milli"?: [hourly forecast]})`` -> ``{"irrigate_mm_milli": int,
    "buy_weather": bool, "sensor_ok": bool, "reason": str}``."""

    name = "irrigation-balance/1"
    kind = "irrigation"

    def __init__(self, model: ModelFile) -> None:
        self.model = model
        self.model_hash: bytes | None = model.hash
        self.et_profile = model.param("et_profile_mm")  # (24,) mean reference ET by local hour
        self.utc_offset_ms = int(model.meta["utc_offset_ms"])
        self.horizon_h = int(model.meta["horizon_h"])
        self.lead_h = int(model.meta["lead_h"])
        self.refill_fraction = model.meta["refill_fraction_bp"] / 10_000
        self.target_fraction = model.meta["target_fraction_bp"] / 10_000

    def _et_climatology(self, from_ms: int, hours: int) -> np.ndarray:
        """Mean reference ET (mm) of each of ``hours`` hours from ``from_ms``."""
        local = (from_ms + self.utc_offset_ms) // world.HOUR_MS + np.arange(hours)
        return np.asarray(self.et_profile[local % 24], dtype=np.float64)

    def decide(self, inputs: Inputs) -> CborValue:
        time_ms = require_int(inputs, "time_ms")
        readings = require_ints(inputs, "moisture_milli", 1)
        capacity = require_int(inputs, "field_capacity_milli") / 1000.0
        wilting = require_int(inputs, "wilting_point_milli") / 1000.0
        depth = float(require_int(inputs, "root_depth_mm"))
        irrigated = optional_ints(inputs, "irrigated_mm_milli")
        rain = optional_ints(inputs, "rain_mm_milli")
        et = optional_ints(inputs, "et_mm_milli")
        if irrigated is not None and len(irrigated) != len(readings):
            raise InputError("input 'irrigated_mm_milli' must hold one value per reading")
        last = readings[-STUCK_SAMPLES:]
        stuck = len(last) == STUCK_SAMPLES and len(set(last)) == 1
        out_of_range = not _in_range(readings[-1])
        sensor_ok = not (stuck or out_of_range)

        def answer(irrigate_mm: float, buy: bool, reason: str) -> CborValue:
            return {
                "irrigate_mm_milli": round(irrigate_mm * 1000),
                "buy_weather": buy,
                "sensor_ok": sensor_ok,
                "reason": reason,
            }

        refill = wilting + self.refill_fraction * (capacity - wilting)
        if sensor_ok:
            moisture = readings[-1] / 1000.0
            buy_reason = "rain uncertain"
        else:
            moisture = self._reckoned(time_ms, readings, irrigated, stuck, refill, capacity, wilting, depth)
            buy_reason = "sensor stuck" if stuck else "sensor out of range"
        if not rain or not et:  # no forecast: the climatology says whether the soil is due
            climatology = self._et_climatology(time_ms, self.lead_h)
            if _projection(moisture, capacity, depth, np.zeros(self.lead_h), climatology).min() >= refill:
                return answer(0.0, False, "enough water")
            return answer(0.0, True, buy_reason)
        hours = min(self.horizon_h, len(rain), len(et))
        rain_mm = np.asarray(rain[:hours], dtype=np.float64) / 1000.0
        et_mm = np.asarray(et[:hours], dtype=np.float64) / 1000.0
        projected = _projection(moisture, capacity, depth, rain_mm, et_mm)
        if projected[: self.lead_h].min() >= refill:
            without_rain = _projection(moisture, capacity, depth, np.zeros(hours), et_mm)
            if without_rain[: self.lead_h].min() < refill:
                return answer(0.0, False, "rain will cover it")
            return answer(0.0, False, "enough water")
        target = wilting + self.target_fraction * (capacity - wilting)
        need_mm = (target - float(projected.min())) * depth
        room_mm = max(capacity - moisture, 0.0) * depth
        return answer(min(need_mm, room_mm), False, "deficit after forecast rain")

    def _reckoned(
        self,
        time_ms: int,
        readings: list[int],
        irrigated: list[int] | None,
        stuck: bool,
        refill: float,
        capacity: float,
        wilting: float,
        depth: float,
    ) -> float:
        """The moisture now, reckoned from the last reading the controller trusts (the first of the
        identical run if stuck, the last in range otherwise; if none, the refill point at the oldest
        reading): plus the water applied since, minus the climatology of ET since, no rain."""
        n = len(readings)
        if stuck:
            trusted = n - 1
            while trusted > 0 and readings[trusted - 1] == readings[-1]:
                trusted -= 1
        else:
            trusted = n - 1
            while trusted >= 0 and not _in_range(readings[trusted]):
                trusted -= 1
        if trusted >= 0:
            moisture = readings[trusted] / 1000.0
        else:
            moisture, trusted = refill, 0
        hours = n - 1 - trusted
        applied = np.asarray(irrigated[trusted + 1 :] if irrigated is not None else [0] * hours) / 1000.0
        et_mm = self._et_climatology(time_ms - hours * world.HOUR_MS, hours)
        for water, loss in zip(applied, et_mm, strict=True):
            moisture = min(max(moisture + (water - loss) / depth, wilting), capacity)
        return moisture


def _in_range(reading: int) -> bool:
    low, high = SENSOR_RANGE_MILLI
    return low < reading < high


def _projection(
    moisture: float, capacity: float, depth: float, rain_mm: np.ndarray, et_mm: np.ndarray
) -> np.ndarray:
    """Moisture at the end of each hour: a bucket that gains the rain, loses the ET, and drains what
    exceeds field capacity."""
    out = np.empty(len(et_mm))
    for hour, (wet, loss) in enumerate(zip(rain_mm, et_mm, strict=True)):
        moisture = min(moisture + (wet - loss) / depth, capacity)
        out[hour] = moisture
    return out


def train_irrigation(
    seed: int,
    days: int = 60,
    start_ms: int = 1_714_521_600_000,
    site: world.Site = world.DEFAULT_SITE,
    progress: Callable[[str], None] | None = None,
) -> tuple[ModelFile, dict[str, Any]]:
    """Learn the climatology of reference evapotranspiration by local hour from generated weather:
    what the controller assumes when it has no bought forecast, and since a stuck sensor froze."""
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
        "lead_h": 6,
        "refill_fraction_bp": 5000,
        "target_fraction_bp": 6000,
    }
    return ModelFile("irrigation", VERSION, {"et_profile_mm": profile}, meta), {
        "times": times,
        "et_mm": et,
        "rain_mm": sky.rain_mm_per_h[0],
    }
