"""The simulated physical world: seeded, vectorised numpy generators (no ledger, no I/O, no clock).

Every generator is a pure function of ``seed``, machine (or site, field, robot) indices and an array
of UTC times in milliseconds, and returns float arrays of shape (machines, times). Random numbers are
addressed by their coordinates (:mod:`autarky.world.noise`), so machine 7's day is the same whether
it is generated alone or with 10,000 others, in one call or hour by hour. Generate a whole day for all
machines in one call; quantise (:mod:`autarky.world.quantise`) before anything goes on the ledger.

Time and place (``site``): ``Site(latitude, longitude, utc_offset_hours)``, ``DEFAULT_SITE``,
``interval_times_ms(start_ms, hours=24, step_ms=INTERVAL_MS)``, ``local_hour``, ``local_day``,
``is_weekend``, ``day_of_year``; constants ``MINUTE_MS``, ``HOUR_MS``, ``DAY_MS``, ``INTERVAL_MS``.

Sun and PV (``solar``): ``solar_position(times_ms, latitude, longitude) -> SolarPosition`` (NOAA /
Spencer), ``declination``, ``equation_of_time``, ``extraterrestrial_irradiance``, ``air_mass``
(Kasten-Young), ``clearsky_haurwitz(zenith)``, ``clearsky(times_ms, site) -> (SolarPosition, ClearSky)``,
``cloud_transmittance(cloud_cover)``, ``pv_systems(seed, machines) -> PvSystems``,
``plane_of_array``, ``pv_power(seed, machines, times_ms, cloud_cover, temperature_c, site) -> W (M, T)``.

Weather (``weather``): ``weather(seed, sites, times_ms, site) -> Weather`` with ``temperature_c``,
``cloud_cover`` (0-1), ``rain_mm_per_h``, ``wind_m_per_s`` of shape (S, T): what a weather oracle reports.

Energy (``energy``): ``household_load(seed, machines, times_ms, site) -> W (M, T)``;
``ev_sessions(seed, machines, start_ms, days, site) -> EvSessions`` (arrival, departure, energy,
max power) and ``ev_uncontrolled_power(sessions, machines, times_ms, step_ms)``;
``battery_params(seed, machines) -> BatteryParams``, ``battery_step(params, soc_wh, power_w, step_ms)
-> BatteryStep`` (power and state-of-charge limits, charge and discharge efficiency).

Machine tools (``machinery``): ``machine_telemetry(seed, machines, times_ms, rate) -> Telemetry``
(vibration RMS, kurtosis, temperature, load, true severity), ``fault_windows(seed, machines, start_ms,
end_ms, rate) -> FaultWindows`` (the ground truth), ``fault_severity``.

Farms (``farm``): ``soil_params(seed, fields)``, ``reference_et_mm_per_h(temperature_c, ghi)``,
``soil_step(params, moisture, rain_mm, irrigation_mm, reference_et_mm)`` (``soil_flows``, same arguments,
-> SoilFlows: also the ET, drainage and runoff), ``soil_sensor(seed, fields, times_ms, moisture,
fault_rate_per_day) -> SensorReadings`` (with stuck-sensor ground truth).

Delivery robots (``robots``): ``delivery_tasks(seed, robots, start_ms, days, per_day, site) ->
DeliveryTasks``, ``robot_energy_wh(distance_m, payload_kg, temperature_c)``, ``travel_ms``,
``ROBOT_CAPACITY_WH``.

Prices (``prices``): ``grid_price(seed, zones, times_ms, cloud_cover, site) -> cents/kWh (Z, T)``:
day-ahead shape with peaks at 08:00 and 19:00, a solar dip at noon deeper under clear skies.

Bundles: ``microgrid_day(seed, machines, start_ms, hours, step_ms, site) -> MicrogridDay`` (weather of
the site, its grid price, PV and household load of every machine). Integers for the ledger (``quantise``):
``quantise(values, unit)``, ``to_w``, ``to_wh(power_w, step_ms)``, ``to_milli``, ``to_basis_points``,
``as_ints``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from autarky.world.energy import (
    BatteryParams,
    BatteryStep,
    EvSessions,
    battery_params,
    battery_step,
    ev_sessions,
    ev_uncontrolled_power,
    household_load,
)
from autarky.world.farm import (
    SensorReadings,
    SoilFlows,
    SoilParams,
    reference_et_mm_per_h,
    soil_flows,
    soil_params,
    soil_sensor,
    soil_step,
)
from autarky.world.machinery import FaultWindows, Telemetry, fault_severity, fault_windows, machine_telemetry
from autarky.world.prices import grid_price
from autarky.world.quantise import as_ints, quantise, to_basis_points, to_milli, to_w, to_wh
from autarky.world.robots import ROBOT_CAPACITY_WH, DeliveryTasks, delivery_tasks, robot_energy_wh, travel_ms
from autarky.world.site import (
    DAY_MS,
    DEFAULT_SITE,
    HOUR_MS,
    INTERVAL_MS,
    MINUTE_MS,
    Site,
    day_of_year,
    interval_times_ms,
    is_weekend,
    local_day,
    local_hour,
)
from autarky.world.solar import (
    ClearSky,
    PvSystems,
    SolarPosition,
    air_mass,
    clearsky,
    clearsky_haurwitz,
    cloud_transmittance,
    declination,
    equation_of_time,
    extraterrestrial_irradiance,
    plane_of_array,
    pv_power,
    pv_systems,
    solar_position,
)
from autarky.world.weather import Weather, weather


@dataclass(frozen=True)
class MicrogridDay:
    times_ms: NDArray[np.int64]  # (T,) interval starts
    weather: Weather  # of the site, (1, T)
    price: NDArray[np.float64]  # (T,) grid price, cents/kWh
    pv_w: NDArray[np.float64]  # (M, T) AC power of each machine's inverter
    load_w: NDArray[np.float64]  # (M, T) household load


def microgrid_day(
    seed: int,
    machines: ArrayLike,
    start_ms: int,
    hours: float = 24.0,
    step_ms: int = INTERVAL_MS,
    site: Site = DEFAULT_SITE,
) -> MicrogridDay:
    """Weather, PV output and load of every machine in one neighbourhood (one weather site, 0)."""
    times = interval_times_ms(start_ms, hours, step_ms)
    sky = weather(seed, 0, times, site)
    pv = pv_power(seed, machines, times, sky.cloud_cover, sky.temperature_c, site)
    load = household_load(seed, machines, times, site)
    price = grid_price(seed, 0, times, sky.cloud_cover, site)[0]
    return MicrogridDay(times, sky, price, pv, load)


__all__ = [
    "DAY_MS",
    "DEFAULT_SITE",
    "HOUR_MS",
    "INTERVAL_MS",
    "MINUTE_MS",
    "ROBOT_CAPACITY_WH",
    "BatteryParams",
    "BatteryStep",
    "ClearSky",
    "DeliveryTasks",
    "EvSessions",
    "FaultWindows",
    "MicrogridDay",
    "PvSystems",
    "SensorReadings",
    "Site",
    "SoilFlows",
    "SoilParams",
    "SolarPosition",
    "Telemetry",
    "Weather",
    "air_mass",
    "as_ints",
    "battery_params",
    "battery_step",
    "clearsky",
    "clearsky_haurwitz",
    "cloud_transmittance",
    "day_of_year",
    "declination",
    "delivery_tasks",
    "equation_of_time",
    "ev_sessions",
    "ev_uncontrolled_power",
    "extraterrestrial_irradiance",
    "fault_severity",
    "fault_windows",
    "grid_price",
    "household_load",
    "interval_times_ms",
    "is_weekend",
    "local_day",
    "local_hour",
    "machine_telemetry",
    "microgrid_day",
    "plane_of_array",
    "pv_power",
    "pv_systems",
    "quantise",
    "reference_et_mm_per_h",
    "robot_energy_wh",
    "soil_flows",
    "soil_params",
    "soil_sensor",
    "soil_step",
    "solar_position",
    "to_basis_points",
    "to_milli",
    "to_w",
    "to_wh",
    "travel_ms",
    "weather",
]
