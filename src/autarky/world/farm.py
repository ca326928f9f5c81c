"""Fields: soil moisture (a bucket water balance), evapotranspiration, and soil sensors that fail.

Moisture is volumetric water content (m^3/m^3) of the root zone. It is a state driven by rain,
irrigation and evapotranspiration, so it is stepped (``soil_step``; ``soil_flows`` also gives the
step's ET, drainage and runoff), vectorised over fields.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from autarky.world.noise import normal, uniform
from autarky.world.site import HOUR_MS

Floats = NDArray[np.float64]


@dataclass(frozen=True)
class SoilParams:
    """Per-field parameters (arrays of shape (M,))."""

    root_depth_mm: Floats  # depth of the root zone
    field_capacity: Floats  # moisture above which water drains
    wilting_point: Floats  # moisture below which the crop is stressed beyond recovery
    crop_coefficient: Floats  # Kc: crop ET / reference ET


def soil_params(seed: int, fields: ArrayLike) -> SoilParams:
    f = np.atleast_1d(np.asarray(fields, dtype=np.int64))
    return SoilParams(
        root_depth_mm=300.0 + 300.0 * uniform(seed, "soil/depth", f),
        field_capacity=0.30 + 0.08 * uniform(seed, "soil/fc", f),
        wilting_point=0.10 + 0.05 * uniform(seed, "soil/wp", f),
        crop_coefficient=0.8 + 0.4 * uniform(seed, "soil/kc", f),
    )


def reference_et_mm_per_h(temperature_c: ArrayLike, ghi_w_m2: ArrayLike) -> Floats:
    """Hourly reference evapotranspiration (mm/h), a radiation-temperature (Hargreaves-like) model.

    Hargreaves: 0.0023 (T + 17.8) sqrt(dT) Ra per day, Ra the extraterrestrial radiation in mm of
    water (1 mm = 2.45 MJ/m^2). Here per hour, with Ra taken as the hour's ground irradiance / 0.7 and
    a fixed 12 K daily range: about 5-6 mm on a clear 25 C June day at 48 N.
    """
    t = np.asarray(temperature_c, dtype=np.float64)
    radiation_mm = np.asarray(ghi_w_m2, dtype=np.float64) * 3600.0 / 2.45e6
    return np.asarray(np.maximum(0.0023 * (t + 17.8) * np.sqrt(12.0) * radiation_mm / 0.7, 0.0))


@dataclass(frozen=True)
class SoilFlows:
    """One step of the water balance of every field (arrays of shape (M,), water in mm)."""

    moisture: Floats  # after the step
    et_mm: Floats  # taken by the crop
    drained_mm: Floats  # drained below the root zone (what exceeded field capacity)
    runoff_mm: Floats  # ran off the surface (what exceeded saturation)


def soil_flows(
    params: SoilParams,
    moisture: ArrayLike,
    rain_mm: ArrayLike,
    irrigation_mm: ArrayLike,
    reference_et_mm: ArrayLike,
) -> SoilFlows:
    """One step: add rain and irrigation, remove crop ET (reduced as the soil dries), drain 70 % of
    what exceeds field capacity per step, and run off what exceeds saturation."""
    theta = np.asarray(moisture, dtype=np.float64)
    water_mm = theta * params.root_depth_mm
    dryness = np.clip(
        (theta - params.wilting_point) / (0.6 * (params.field_capacity - params.wilting_point)), 0.0, 1.0
    )
    et = params.crop_coefficient * np.asarray(reference_et_mm, dtype=np.float64) * dryness
    water_mm = water_mm + np.asarray(rain_mm) + np.asarray(irrigation_mm) - et
    capacity_mm = params.field_capacity * params.root_depth_mm
    kept_mm = np.where(water_mm > capacity_mm, capacity_mm + 0.3 * (water_mm - capacity_mm), water_mm)
    drained = water_mm - kept_mm
    water_mm = kept_mm
    saturated_mm = (params.field_capacity + 0.12) * params.root_depth_mm  # the rest runs off
    runoff = np.maximum(water_mm - saturated_mm, 0.0)
    water_mm = np.minimum(water_mm, saturated_mm)
    return SoilFlows(
        np.asarray(np.maximum(water_mm / params.root_depth_mm, 0.02)),
        np.asarray(et),
        np.asarray(drained),
        np.asarray(runoff),
    )


def soil_step(
    params: SoilParams,
    moisture: ArrayLike,
    rain_mm: ArrayLike,
    irrigation_mm: ArrayLike,
    reference_et_mm: ArrayLike,
) -> Floats:
    """Moisture after one step of :func:`soil_flows`."""
    return soil_flows(params, moisture, rain_mm, irrigation_mm, reference_et_mm).moisture


@dataclass(frozen=True)
class SensorReadings:
    value: Floats  # what the sensor reports
    faulty: NDArray[np.bool_]  # ground truth: the reading is stuck or drifting


def soil_sensor(
    seed: int, fields: ArrayLike, times_ms: ArrayLike, moisture: ArrayLike, fault_rate_per_day: float = 0.1
) -> SensorReadings:
    """Sensor readings of true ``moisture`` (M, T): noise of 0.01, and on a ``fault_rate_per_day``
    share of days a sensor is stuck at the day's first reading (a common capacitive-probe failure)."""
    f = np.atleast_1d(np.asarray(fields, dtype=np.int64)).reshape(-1, 1)
    times = np.asarray(times_ms, dtype=np.int64).reshape(1, -1)
    truth = np.asarray(moisture, dtype=np.float64)
    day = times // (24 * HOUR_MS)
    stuck = uniform(seed, "sensor/stuck", f, day) < fault_rate_per_day
    noisy = truth + 0.01 * normal(seed, "sensor/noise", f, times)
    same_day_as_previous = np.concatenate([[False], day[0, 1:] == day[0, :-1]]).reshape(1, -1)
    faulty = np.asarray(stuck & same_day_as_previous)
    value = noisy.copy()
    for column in range(1, value.shape[1]):  # forward-fill stuck readings, all fields at once
        value[:, column] = np.where(faulty[:, column], value[:, column - 1], value[:, column])
    return SensorReadings(value, faulty)
