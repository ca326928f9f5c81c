"""autarky.world: physics against published values, addressable randomness, conservation in the
battery, ground truth of injected faults."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from autarky import world
from autarky.world.noise import normal, smooth_noise, uniform


def ms(text: str) -> int:
    return int(dt.datetime.fromisoformat(text).timestamp() * 1000)


SUMMER_DAY = ms("2024-06-20T00:00:00+01:00")
WINTER_DAY = ms("2024-01-10T00:00:00+01:00")


# --- the sun ------------------------------------------------------------------------------------


def test_solar_position_matches_nrel_spa_example() -> None:
    # Reda & Andreas (2008), NREL SPA, table A5.1: 2003-10-17 12:30:30 at -7 h, Golden CO.
    position = world.solar_position([ms("2003-10-17T12:30:30-07:00")], 39.742476, -105.1786)
    assert position.zenith[0] == pytest.approx(50.11162, abs=0.3)
    assert position.azimuth[0] == pytest.approx(194.34024, abs=0.3)


@pytest.mark.parametrize(
    ("when", "declination"),
    [
        ("2024-06-20T20:51:00+00:00", 23.44),
        ("2024-12-21T09:20:00+00:00", -23.44),
        ("2024-03-20T03:06:00+00:00", 0.0),
    ],
)
def test_declination_at_solstices_and_equinox(when: str, declination: float) -> None:
    # Spencer's series fitted one year; over the leap cycle it stays within about half a degree.
    assert world.declination([ms(when)])[0] == pytest.approx(declination, abs=0.6)


@pytest.mark.parametrize(
    ("day", "minutes"), [("2024-02-11", -14.2), ("2024-11-03", 16.4), ("2024-04-15", 0.0)]
)
def test_equation_of_time_extremes(day: str, minutes: float) -> None:
    assert world.equation_of_time([ms(day + "T12:00:00+00:00")])[0] == pytest.approx(minutes, abs=0.4)


def test_sun_is_overhead_of_the_equator_at_equinox_noon_and_down_at_midnight() -> None:
    noon, midnight = ms("2024-03-20T12:07:00+00:00"), ms("2024-03-20T00:07:00+00:00")
    position = world.solar_position([noon, midnight], 0.0, 0.0)
    assert position.zenith[0] < 1.0
    assert position.zenith[1] > 179.0


def test_air_mass_kasten_young_table() -> None:
    assert world.air_mass([0.0, 60.0, 90.0]) == pytest.approx([1.0, 1.994, 37.92], abs=0.01)


def test_haurwitz_clear_sky() -> None:
    ghi = world.clearsky_haurwitz([0.0, 60.0, 90.0, 120.0])
    assert ghi[0] == pytest.approx(1098.0 * np.exp(-0.057), rel=1e-9)  # 1037.2 W/m^2 at the zenith
    assert ghi[1] == pytest.approx(489.9, abs=0.1)
    assert ghi[2] == 0.0 and ghi[3] == 0.0


def test_extraterrestrial_irradiance_perihelion_and_aphelion() -> None:
    january, july = world.extraterrestrial_irradiance(
        [ms("2024-01-03T12:00:00+00:00"), ms("2024-07-05T12:00:00+00:00")]
    )
    assert january == pytest.approx(1361 * 1.0335, rel=0.002)
    assert july == pytest.approx(1361 * 0.9666, rel=0.002)


def test_clear_sky_components_are_consistent() -> None:
    times = world.interval_times_ms(SUMMER_DAY)
    position, sky = world.clearsky(times)
    cos_z = np.cos(np.radians(position.zenith))
    assert np.all(sky.dhi >= 0.0)
    assert np.allclose(sky.dni * np.maximum(cos_z, 0.0) + sky.dhi, sky.ghi)
    # Noon at 48 N in June: about 900 W/m^2 on the ground.
    assert 850.0 < sky.ghi.max() < 1000.0


def test_pv_clear_summer_day_yield_and_night() -> None:
    times = world.interval_times_ms(SUMMER_DAY)
    machines = np.arange(50)
    pv = world.pv_power(1, machines, times, np.zeros(times.size), np.full(times.size, 20.0))
    systems = world.pv_systems(1, machines)
    kwh_per_kwp = pv.sum(axis=1) * 0.25 / 1000.0 / systems.kwp
    assert np.all((kwh_per_kwp > 5.0) & (kwh_per_kwp < 8.5))  # a clear June day in Germany
    assert np.all(pv <= systems.inverter_w[:, None] + 1e-9)
    night = world.local_hour(times) < 3.0
    assert np.all(pv[:, night] == 0.0)
    cloudy = world.pv_power(1, machines, times, np.ones(times.size), np.full(times.size, 20.0))
    assert cloudy.sum() < 0.35 * pv.sum()
    winter_times = world.interval_times_ms(WINTER_DAY)
    winter = world.pv_power(1, machines, winter_times, np.zeros(times.size), np.full(times.size, 0.0))
    assert winter.sum() < 0.5 * pv.sum()


# --- addressable randomness ---------------------------------------------------------------------


def test_noise_is_addressed_by_coordinates() -> None:
    assert uniform(5, "x", [7])[0] == uniform(5, "x", np.arange(10))[7]
    assert uniform(5, "x", [7])[0] != uniform(6, "x", [7])[0]
    assert uniform(5, "x", [7])[0] != uniform(5, "y", [7])[0]
    values = normal(3, "n", np.arange(200_000))
    assert abs(values.mean()) < 0.01 and abs(values.std() - 1.0) < 0.01
    u = uniform(3, "u", np.arange(200_000))
    assert u.min() >= 0.0 and u.max() < 1.0


def test_a_machine_day_is_the_same_alone_in_a_batch_or_in_halves() -> None:
    times = world.interval_times_ms(SUMMER_DAY)
    alone = world.household_load(9, [7], times)
    batch = world.household_load(9, np.arange(100), times)
    halves = np.concatenate(
        [world.household_load(9, [7], times[:48]), world.household_load(9, [7], times[48:])], axis=1
    )
    assert np.array_equal(alone[0], batch[7])
    assert np.array_equal(alone, halves)
    noise = smooth_noise(1, "s", [0, 1], times, world.HOUR_MS)
    assert np.array_equal(noise[:, 10:20], smooth_noise(1, "s", [0, 1], times[10:20], world.HOUR_MS))


def test_microgrid_day_is_deterministic_and_shaped() -> None:
    one = world.microgrid_day(4, np.arange(30), SUMMER_DAY)
    two = world.microgrid_day(4, np.arange(30), SUMMER_DAY)
    assert one.pv_w.shape == one.load_w.shape == (30, 96)
    assert np.array_equal(one.pv_w, two.pv_w) and np.array_equal(one.load_w, two.load_w)
    assert not np.array_equal(one.pv_w, world.microgrid_day(5, np.arange(30), SUMMER_DAY).pv_w)


# --- weather, households, EVs --------------------------------------------------------------------


def test_weather_ranges() -> None:
    times = world.interval_times_ms(SUMMER_DAY, hours=24 * 30)
    sky = world.weather(2, np.arange(5), times)
    assert sky.cloud_cover.min() >= 0.0 and sky.cloud_cover.max() <= 1.0
    assert np.all(sky.rain_mm_per_h[sky.cloud_cover < 0.7] == 0.0)
    assert 0.0 < (sky.rain_mm_per_h > 0).mean() < 0.3
    assert 5.0 < sky.temperature_c.mean() < 30.0
    clear_days = (sky.cloud_cover.reshape(5, 30, 96).mean(axis=2) < 0.3).sum()
    overcast_days = (sky.cloud_cover.reshape(5, 30, 96).mean(axis=2) > 0.7).sum()
    assert clear_days > 5 and overcast_days > 5


def test_household_load_daily_energy_and_evening_peak() -> None:
    times = world.interval_times_ms(WINTER_DAY)
    load = world.household_load(1, np.arange(200), times)
    kwh = load.sum(axis=1) * 0.25 / 1000.0
    assert 5.0 < kwh.mean() < 15.0
    hour = world.local_hour(times)
    evening = load[:, (hour >= 18) & (hour < 21)].mean()
    night = load[:, (hour >= 2) & (hour < 5)].mean()
    assert evening > 2.5 * night


def test_ev_sessions_and_uncontrolled_charging_energy() -> None:
    machines = np.arange(100)
    sessions = world.ev_sessions(3, machines, WINTER_DAY, days=1)
    assert 55 < len(sessions) < 95
    assert np.all(sessions.departure_ms > sessions.arrival_ms)
    times = world.interval_times_ms(WINTER_DAY, hours=48)
    power = world.ev_uncontrolled_power(sessions, machines, times, world.INTERVAL_MS)
    delivered_wh = power.sum() * 0.25
    assert delivered_wh == pytest.approx(sessions.energy_wh.sum(), rel=0.01)


# --- battery -------------------------------------------------------------------------------------


def test_battery_step_limits_and_losses() -> None:
    params = world.battery_params(1, np.arange(3))
    soc = params.soc_min_wh.copy()
    step = world.battery_step(params, soc, np.full(3, 1000.0), world.HOUR_MS)
    assert np.allclose(step.soc_wh - soc, 1000.0 * params.charge_efficiency)
    huge = world.battery_step(params, soc, np.full(3, 1e9), world.HOUR_MS)
    assert np.allclose(huge.power_w, params.max_charge_w)
    empty = world.battery_step(params, soc, np.full(3, -1000.0), world.HOUR_MS)
    assert np.allclose(empty.power_w, 0.0) and np.allclose(empty.soc_wh, soc)
    # A full cycle returns the round-trip efficiency.
    full = world.battery_step(params, soc, params.max_charge_w, world.HOUR_MS)
    back = world.battery_step(params, full.soc_wh, -params.max_discharge_w, world.HOUR_MS)
    energy_in = full.power_w
    energy_out = -back.power_w
    assert np.allclose(back.soc_wh, soc)
    assert np.allclose(energy_out / energy_in, params.round_trip_efficiency)
    assert np.all((params.round_trip_efficiency > 0.87) & (params.round_trip_efficiency < 0.95))


# --- machine tools ---------------------------------------------------------------------------------


def test_fault_windows_are_ground_truth_of_the_telemetry() -> None:
    machines = np.arange(100)
    times = world.interval_times_ms(WINTER_DAY, hours=24 * 10, step_ms=world.MINUTE_MS * 5)
    telemetry = world.machine_telemetry(8, machines, times, rate=0.05)
    windows = world.fault_windows(8, machines, int(times[0]), int(times[-1]) + 1, rate=0.05)
    assert 20 < len(windows) < 90
    inside = np.zeros(telemetry.severity.shape, dtype=bool)
    for machine, start, end in zip(windows.machine, windows.start_ms, windows.end_ms, strict=True):
        inside[machine] |= (times >= start) & (times < end)
    assert np.all(telemetry.severity[~inside] == 0.0)
    assert np.all(telemetry.severity[inside] >= 0.0) and telemetry.severity.max() > 0.95
    late = telemetry.severity > 0.5
    assert telemetry.vibration_rms[late].mean() > 1.8 * telemetry.vibration_rms[~inside].mean()
    assert telemetry.kurtosis[late].mean() > telemetry.kurtosis[~inside].mean() + 2.0


# --- farms and robots -------------------------------------------------------------------------------


def test_soil_dries_without_water_and_wets_with_rain() -> None:
    params = world.soil_params(1, np.arange(4))
    moisture = params.field_capacity.copy()
    for _ in range(24 * 10):
        moisture = world.soil_step(params, moisture, 0.0, 0.0, 0.25)
    assert np.all(moisture < params.field_capacity - 0.05)
    assert np.all(moisture > params.wilting_point * 0.5)
    wet = world.soil_step(params, moisture, 30.0, 0.0, 0.0)
    assert np.all(wet > moisture)
    flooded = world.soil_step(params, params.field_capacity, 500.0, 0.0, 0.0)
    assert np.all(flooded < params.field_capacity * 1.5)


def test_reference_et_of_a_summer_day() -> None:
    times = world.interval_times_ms(SUMMER_DAY, step_ms=world.HOUR_MS)
    _, sky = world.clearsky(times)
    et_day = world.reference_et_mm_per_h(np.full(times.size, 25.0), sky.ghi).sum()
    assert 4.0 < et_day < 8.0  # mm on a clear 25 C June day (FAO-56 range)


def test_stuck_soil_sensors_are_flagged_and_flat() -> None:
    times = world.interval_times_ms(WINTER_DAY, hours=24 * 10)
    moisture = np.linspace(0.3, 0.2, times.size)[None, :].repeat(50, axis=0)
    readings = world.soil_sensor(2, np.arange(50), times, moisture, fault_rate_per_day=0.1)
    assert 0.02 < readings.faulty.mean() < 0.25
    rows, cols = np.nonzero(readings.faulty)
    assert np.all(readings.value[rows, cols] == readings.value[rows, cols - 1])
    healthy = ~readings.faulty
    assert np.abs(readings.value[healthy] - moisture[healthy]).max() < 0.06


def test_delivery_tasks_and_robot_energy() -> None:
    tasks = world.delivery_tasks(1, np.arange(10), WINTER_DAY, days=2, per_day=12)
    assert len(tasks) == 240
    hours = world.local_hour(tasks.request_ms)
    assert np.all((hours >= 8.0) & (hours < 20.0))
    assert np.all(tasks.detour_factor >= 1.0)
    assert world.robot_energy_wh([4000.0], [10.0], 15.0)[0] == pytest.approx(140.0)
    assert world.robot_energy_wh([4000.0], [10.0], -10.0)[0] == pytest.approx(182.0)
    assert world.travel_ms([1600.0])[0] == 1_000_000


# --- integers for the ledger -------------------------------------------------------------------------


def test_quantise_helpers() -> None:
    assert world.as_ints(world.to_wh([1000.0, 333.0], world.INTERVAL_MS)) == [250, 83]
    assert world.as_ints(world.to_milli([21.2345])) == [21234]
    assert world.as_ints(world.to_basis_points([0.125])) == [1250]
    assert all(type(v) is int for v in world.as_ints(world.to_w([1.6, 2.5])))
    with pytest.raises(TypeError):
        world.as_ints(np.array([1.5]))
