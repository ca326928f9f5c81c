"""The sun: position (NOAA / Spencer 1971 series), clear-sky irradiance (Haurwitz), PV output.

Accuracy: Spencer's series put the sun within about 0.2 degrees of NREL's SPA for present-day dates,
ample for energy simulation. Irradiance in W/m^2, angles in degrees, power in W.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from autarky.world.noise import uniform
from autarky.world.site import DEFAULT_SITE, Site, day_of_year, days_in_year

Floats = NDArray[np.float64]

SOLAR_CONSTANT = 1361.0  # W/m^2 (Kopp & Lean 2011)


@dataclass(frozen=True)
class SolarPosition:
    zenith: Floats  # degrees from vertical
    azimuth: Floats  # degrees clockwise from north
    declination: Floats  # degrees
    equation_of_time: Floats  # minutes


def _fractional_year(times_ms: ArrayLike) -> Floats:
    doy, hour = day_of_year(times_ms)
    return np.asarray(2.0 * np.pi / days_in_year(times_ms) * (doy - 1.0 + (hour - 12.0) / 24.0))


def equation_of_time(times_ms: ArrayLike) -> Floats:
    """Apparent minus mean solar time in minutes (Spencer 1971, as used by NOAA)."""
    g = _fractional_year(times_ms)
    return np.asarray(
        229.18
        * (
            0.000075
            + 0.001868 * np.cos(g)
            - 0.032077 * np.sin(g)
            - 0.014615 * np.cos(2 * g)
            - 0.040849 * np.sin(2 * g)
        )
    )


def declination(times_ms: ArrayLike) -> Floats:
    """Solar declination in degrees (Spencer 1971)."""
    g = _fractional_year(times_ms)
    radians = (
        0.006918
        - 0.399912 * np.cos(g)
        + 0.070257 * np.sin(g)
        - 0.006758 * np.cos(2 * g)
        + 0.000907 * np.sin(2 * g)
        - 0.002697 * np.cos(3 * g)
        + 0.00148 * np.sin(3 * g)
    )
    return np.asarray(np.degrees(radians))


def solar_position(times_ms: ArrayLike, latitude: float, longitude: float) -> SolarPosition:
    """Zenith and azimuth of the sun at UTC ``times_ms`` seen from (latitude, longitude)."""
    _, hour = day_of_year(times_ms)
    eot = equation_of_time(times_ms)
    decl = declination(times_ms)
    true_solar_minutes = hour * 60.0 + eot + 4.0 * longitude
    hour_angle = np.radians(true_solar_minutes / 4.0 - 180.0)
    lat = np.radians(latitude)
    dec = np.radians(decl)
    cos_zenith = np.sin(lat) * np.sin(dec) + np.cos(lat) * np.cos(dec) * np.cos(hour_angle)
    zenith = np.arccos(np.clip(cos_zenith, -1.0, 1.0))
    # Azimuth from north, clockwise: atan2 of the east and north components of the sun vector.
    east = -np.cos(dec) * np.sin(hour_angle)
    north = np.cos(lat) * np.sin(dec) - np.sin(lat) * np.cos(dec) * np.cos(hour_angle)
    azimuth = np.degrees(np.arctan2(east, north)) % 360.0
    return SolarPosition(np.degrees(zenith), azimuth, decl, eot)


def extraterrestrial_irradiance(times_ms: ArrayLike) -> Floats:
    """Normal irradiance above the atmosphere (Spencer's Earth-Sun distance factor)."""
    g = _fractional_year(times_ms)
    factor = (
        1.000110
        + 0.034221 * np.cos(g)
        + 0.001280 * np.sin(g)
        + 0.000719 * np.cos(2 * g)
        + 0.000077 * np.sin(2 * g)
    )
    return np.asarray(SOLAR_CONSTANT * factor)


def air_mass(zenith: ArrayLike) -> Floats:
    """Relative optical air mass (Kasten & Young 1989); NaN-free: capped below the horizon."""
    z = np.minimum(np.asarray(zenith, dtype=np.float64), 90.0)
    return np.asarray(1.0 / (np.cos(np.radians(z)) + 0.50572 * (96.07995 - z) ** -1.6364))


def clearsky_haurwitz(zenith: ArrayLike) -> Floats:
    """Clear-sky global horizontal irradiance: 1098 cos z exp(-0.057 / cos z) (Haurwitz 1945)."""
    cos_z = np.cos(np.radians(np.asarray(zenith, dtype=np.float64)))
    safe = np.where(cos_z > 0.0, cos_z, 1.0)
    return np.asarray(np.where(cos_z > 0.0, 1098.0 * cos_z * np.exp(-0.057 / safe), 0.0))


@dataclass(frozen=True)
class ClearSky:
    ghi: Floats  # global horizontal
    dni: Floats  # direct normal
    dhi: Floats  # diffuse horizontal


def clearsky(times_ms: ArrayLike, site: Site = DEFAULT_SITE) -> tuple[SolarPosition, ClearSky]:
    """Sun position and clear-sky irradiance: Haurwitz GHI, Meinel DNI, DHI as the remainder."""
    position = solar_position(times_ms, site.latitude, site.longitude)
    ghi = clearsky_haurwitz(position.zenith)
    up = position.zenith < 90.0
    dni = np.where(
        up, extraterrestrial_irradiance(times_ms) * 0.7 ** (air_mass(position.zenith) ** 0.678), 0.0
    )
    cos_z = np.cos(np.radians(position.zenith))
    dni = np.minimum(dni, np.where(cos_z > 0.01, ghi / np.maximum(cos_z, 0.01), 0.0))
    dhi = np.maximum(ghi - dni * np.maximum(cos_z, 0.0), 0.0)
    return position, ClearSky(ghi, dni, dhi)


def cloud_transmittance(cloud_cover: ArrayLike) -> Floats:
    """Fraction of clear-sky GHI reaching the ground under ``cloud_cover`` in [0, 1] (Kasten-Czeplak)."""
    c = np.clip(np.asarray(cloud_cover, dtype=np.float64), 0.0, 1.0)
    return np.asarray(1.0 - 0.75 * c**3.4)


@dataclass(frozen=True)
class PvSystems:
    """Per-machine PV system parameters (arrays of shape (M,))."""

    kwp: Floats  # DC peak power, kW
    tilt: Floats  # degrees from horizontal
    azimuth: Floats  # degrees clockwise from north (180 = south)
    inverter_w: Floats  # AC rating
    gamma: Floats  # power temperature coefficient per K (negative)


def pv_systems(seed: int, machines: ArrayLike) -> PvSystems:
    """Seeded per-machine systems: 3-10 kWp, tilt 15-40, facing south +-40 degrees, inverter 0.9 kWp."""
    m = np.atleast_1d(np.asarray(machines, dtype=np.int64))
    kwp = 3.0 + 7.0 * uniform(seed, "pv/kwp", m)
    return PvSystems(
        kwp=kwp,
        tilt=15.0 + 25.0 * uniform(seed, "pv/tilt", m),
        azimuth=140.0 + 80.0 * uniform(seed, "pv/azimuth", m),
        inverter_w=900.0 * kwp,
        gamma=-0.0045 + 0.001 * uniform(seed, "pv/gamma", m),
    )


def plane_of_array(
    position: SolarPosition, sky: ClearSky, tilt: ArrayLike, azimuth: ArrayLike, albedo: float = 0.2
) -> Floats:
    """Irradiance on tilted panels (isotropic sky): shape (M, T) for tilt/azimuth (M,) and times (T,)."""
    tilt_r = np.radians(np.asarray(tilt, dtype=np.float64)).reshape(-1, 1)
    az_r = np.radians(np.asarray(azimuth, dtype=np.float64)).reshape(-1, 1)
    zen_r = np.radians(position.zenith).reshape(1, -1)
    sun_az_r = np.radians(position.azimuth).reshape(1, -1)
    cos_aoi = np.cos(zen_r) * np.cos(tilt_r) + np.sin(zen_r) * np.sin(tilt_r) * np.cos(sun_az_r - az_r)
    beam = sky.dni.reshape(1, -1) * np.maximum(cos_aoi, 0.0)
    diffuse = sky.dhi.reshape(1, -1) * (1.0 + np.cos(tilt_r)) / 2.0
    ground = sky.ghi.reshape(1, -1) * albedo * (1.0 - np.cos(tilt_r)) / 2.0
    return np.asarray(beam + diffuse + ground)


def pv_power(
    seed: int,
    machines: ArrayLike,
    times_ms: ArrayLike,
    cloud_cover: ArrayLike,
    temperature_c: ArrayLike,
    site: Site = DEFAULT_SITE,
) -> Floats:
    """AC power (W) of each machine's PV inverter at each time: shape (M, T).

    ``cloud_cover`` and ``temperature_c`` are the site's weather, shape (T,) or (M, T). Cell
    temperature follows the NOCT model (45 C at 800 W/m^2), output derates by ``gamma`` per K above
    25 C, the inverter converts at 96 % and clips at its rating; each machine has its own +-5 %
    soiling/shading factor.
    """
    m = np.atleast_1d(np.asarray(machines, dtype=np.int64))
    systems = pv_systems(seed, m)
    position, sky = clearsky(times_ms, site)
    poa_clear = plane_of_array(position, sky, systems.tilt, systems.azimuth)
    poa = poa_clear * np.broadcast_to(cloud_transmittance(cloud_cover), poa_clear.shape)
    cell_c = np.asarray(temperature_c, dtype=np.float64) + (45.0 - 20.0) / 800.0 * poa
    derate = 1.0 + systems.gamma.reshape(-1, 1) * (cell_c - 25.0)
    local = 0.95 + 0.10 * uniform(seed, "pv/local", m).reshape(-1, 1)
    dc_w = systems.kwp.reshape(-1, 1) * poa * derate * local  # kWp x W/m^2 / (1000 W/m^2) x 1000 W/kW
    ac_w = np.minimum(dc_w * 0.96, systems.inverter_w.reshape(-1, 1))
    return np.asarray(np.maximum(ac_w, 0.0))
