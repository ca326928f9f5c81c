"""Forecasters of PV output and household load: ridge regressions per horizon bucket, trained on
generated days, predicting the next 1-96 intervals from the last 96.

Both take ``history_w`` (the machine's last 96 interval powers, oldest first, ints) and the start time
of the first interval to predict; both have a batched path (``forecast_batch``) for all machines at
once, and both are judged against the naive baseline of the trade: yesterday at the same time.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from autarky import world
from autarky.models.modelfile import ModelFile
from autarky.models.policy import CborValue, InputError, Inputs, require_int, require_ints

Floats = NDArray[np.float64]

HISTORY = 96
HORIZON = 96
STEP_MS = world.INTERVAL_MS
BUCKET_EDGES = (4, 16, 48, 96)  # horizons 1-4, 5-16, 17-48, 49-96 intervals ahead
RIDGE = 1e-3


def horizon_buckets() -> NDArray[np.int64]:
    """Bucket index of each horizon 1..96 (index 0 = one interval ahead)."""
    steps = np.arange(1, HORIZON + 1)
    return np.searchsorted(np.asarray(BUCKET_EDGES), steps).astype(np.int64)


def fit_ridge(features: Floats, target: Floats, buckets: NDArray[np.int64], count: int) -> Floats:
    """Least squares with a small ridge, one weight vector per bucket: (count, n_features)."""
    weights = np.zeros((count, features.shape[-1]))
    for bucket in range(count):
        rows = buckets == bucket
        x, y = features[rows], target[rows]
        gram = x.T @ x + RIDGE * len(y) * np.eye(x.shape[1])
        weights[bucket] = np.linalg.solve(gram, x.T @ y)
    return weights


@functools.lru_cache(maxsize=64)
def _clear_sky(start_ms: int, count: int, latitude: float, longitude: float) -> tuple[Any, Any]:
    """Sun position and clear sky at ``count`` interval midpoints from ``start_ms`` (shared by all)."""
    times = start_ms + STEP_MS // 2 + STEP_MS * np.arange(count, dtype=np.int64)
    return world.clearsky(times, world.Site(latitude, longitude))


def _site_of(model: ModelFile) -> tuple[float, float]:
    return model.meta["latitude_milli"] / 1000.0, model.meta["longitude_milli"] / 1000.0


def _unpack(inputs: Inputs) -> tuple[int, Floats, int]:
    time_ms = require_int(inputs, "time_ms")
    history = np.asarray(require_ints(inputs, "history_w", HISTORY)[-HISTORY:], dtype=np.float64)
    horizon = inputs.get("horizon", HORIZON)
    if type(horizon) is not int or not 1 <= horizon <= HORIZON:
        raise InputError(f"horizon must be an int in 1..{HORIZON}")
    return time_ms, history, horizon


class PvForecaster:
    """PV power of the next intervals: the panel's own clear-sky output x a predicted clearness.

    The machine knows its installation (rated power, tilt, azimuth), so its clear-sky output is
    computed exactly; what is forecast is the clearness (actual / clear-sky), from the last hour,
    yesterday's mean and whether the target is still today.

    ``decide({"time_ms", "rated_w", "tilt_deg", "azimuth_deg", "history_w": [96 ints], "horizon"?})``
    -> ``{"forecast_w": [ints]}``.
    """

    name = "pv-forecast/1"
    kind = "pv-forecaster"

    def __init__(self, model: ModelFile) -> None:
        self.model = model
        self.model_hash: bytes | None = model.hash
        self.weights = model.param("weights")
        self.latitude, self.longitude = _site_of(model)

    def clear_output(self, start_ms: int, count: int, tilt: Floats, azimuth: Floats) -> Floats:
        """Clear-sky plane-of-array irradiance / 1000 for each machine (M, count)."""
        times = start_ms + STEP_MS // 2 + STEP_MS * np.arange(count, dtype=np.int64)
        position, sky = _clear_sky(start_ms, count, self.latitude, self.longitude)
        return world.plane_of_array(position, sky, tilt, azimuth) / 1000.0 if times.size else np.zeros((0, 0))

    @staticmethod
    def features(clear_hist: Floats, clear_next: Floats, history_norm: Floats, today: Floats) -> Floats:
        """Features (M, H, 6): clear-sky output (M, T) times clearness terms; histories normalised by
        rated power (M, 96); ``today`` (H,) is 1 where the target is on the issue's local day."""
        eps = 0.02
        recent_clear = clear_hist[:, -4:].sum(axis=1)
        daily = history_norm.sum(axis=1) / (clear_hist.sum(axis=1) + eps)
        recent = np.where(recent_clear > 0.2, history_norm[:, -4:].sum(axis=1) / (recent_clear + eps), daily)
        horizons = (np.arange(1, clear_next.shape[1] + 1) / HORIZON).reshape(1, -1)
        day = today.reshape(1, -1)
        return np.stack(
            [
                clear_next,
                clear_next * daily[:, None],
                clear_next * recent[:, None],
                clear_next * recent[:, None] * day,
                clear_next * daily[:, None] * day,
                clear_next * recent[:, None] * horizons,
            ],
            axis=-1,
        )

    def _today(self, time_ms: int, horizon: int) -> Floats:
        offset = round(self.longitude / 15.0) * world.HOUR_MS  # local solar day, near enough
        targets = time_ms + STEP_MS * np.arange(horizon, dtype=np.int64) + offset
        return np.asarray(targets // world.DAY_MS == (time_ms + offset) // world.DAY_MS, dtype=np.float64)

    def forecast_batch(
        self,
        time_ms: int,
        rated_w: Floats,
        tilt_deg: Floats,
        azimuth_deg: Floats,
        history_w: Floats,
        horizon: int = HORIZON,
    ) -> Floats:
        """Forecast (M, horizon) in W for M machines at once."""
        rated = np.maximum(np.asarray(rated_w, dtype=np.float64), 1.0).reshape(-1, 1)
        clear = self.clear_output(time_ms - HISTORY * STEP_MS, HISTORY + horizon, tilt_deg, azimuth_deg)
        x = self.features(
            clear[:, :HISTORY],
            clear[:, HISTORY:],
            np.asarray(history_w, dtype=np.float64) / rated,
            self._today(time_ms, horizon),
        )
        normalised = np.einsum("mhf,hf->mh", x, self.weights[horizon_buckets()[:horizon]])
        return np.asarray(np.clip(normalised, 0.0, 1.1) * rated)

    def decide(self, inputs: Inputs) -> CborValue:
        time_ms, history, horizon = _unpack(inputs)
        one = np.ones(1)
        forecast = self.forecast_batch(
            time_ms,
            one * require_int(inputs, "rated_w"),
            one * require_int(inputs, "tilt_deg"),
            one * require_int(inputs, "azimuth_deg"),
            history[None, :],
            horizon,
        )[0]
        return {"forecast_w": [int(v) for v in np.rint(forecast).astype(np.int64).tolist()]}


class LoadForecaster:
    """Household load of the next intervals: a learned daily profile (weekday/weekend) scaled to the
    household's level, blended with yesterday and the last hour.

    ``decide({"time_ms", "history_w": [96 ints], "horizon"?})`` -> ``{"forecast_w": [ints]}``.
    """

    name = "load-forecast/1"
    kind = "load-forecaster"

    def __init__(self, model: ModelFile) -> None:
        self.model = model
        self.model_hash: bytes | None = model.hash
        self.weights = model.param("weights")
        self.profile = model.param("profile")  # (2, 96): weekday / weekend, by local quarter-hour
        self.utc_offset_ms = int(model.meta["utc_offset_ms"])

    def _profile_at(self, start_ms: int, count: int) -> Floats:
        times = start_ms + STEP_MS * np.arange(count, dtype=np.int64)
        local = times + self.utc_offset_ms
        slot = (local % world.DAY_MS) // STEP_MS
        weekend = ((local // world.DAY_MS + 3) % 7 >= 5).astype(np.int64)
        return np.asarray(self.profile[weekend, slot])

    def features(self, prof_hist: Floats, prof_next: Floats, history: Floats) -> Floats:
        level = history.mean(axis=1) / max(float(prof_hist.mean()), 1e-9)
        recent = history[:, -4:].mean(axis=1)
        horizon = prof_next.size
        yesterday = history[:, :horizon]
        ones = np.ones((history.shape[0], horizon))
        return np.stack(
            [
                prof_next[None, :] * level[:, None],
                yesterday,
                recent[:, None] * ones,
                history.mean(axis=1)[:, None] * ones,
            ],
            axis=-1,
        )

    def forecast_batch(self, time_ms: int, history_w: Floats, horizon: int = HORIZON) -> Floats:
        prof = self._profile_at(time_ms - HISTORY * STEP_MS, HISTORY + horizon)
        x = self.features(prof[:HISTORY], prof[HISTORY:], np.asarray(history_w, dtype=np.float64))
        return np.asarray(
            np.maximum(np.einsum("mhf,hf->mh", x, self.weights[horizon_buckets()[:horizon]]), 0.0)
        )

    def decide(self, inputs: Inputs) -> CborValue:
        time_ms, history, horizon = _unpack(inputs)
        forecast = self.forecast_batch(time_ms, history[None, :], horizon)[0]
        return {"forecast_w": [int(v) for v in np.rint(forecast).astype(np.int64).tolist()]}


def yesterday_baseline(history_w: Floats, horizon: int = HORIZON) -> Floats:
    """The naive forecast: the same interval yesterday."""
    return np.asarray(np.asarray(history_w, dtype=np.float64)[:, :horizon])


# --- training --------------------------------------------------------------------------------------


def issue_times(start_ms: int, days: int, every_hours: int = 4) -> list[int]:
    """Forecast issue times: every ``every_hours`` from the second day (the first is history)."""
    first = start_ms + world.DAY_MS
    count = (days - 2) * 24 // every_hours
    return [first + k * every_hours * world.HOUR_MS for k in range(count)]


def _windows(series: Floats, offset: int) -> tuple[Floats, Floats]:
    """(history (M, 96), future (M, 96)) of a (M, T) series around index ``offset``."""
    return series[:, offset - HISTORY : offset], series[:, offset : offset + HORIZON]


def pv_dataset(
    seed: int, machines: NDArray[np.int64], start_ms: int, days: int, site: world.Site = world.DEFAULT_SITE
) -> tuple[NDArray[np.int64], world.PvSystems, Floats]:
    """(times (T,), the machines' PV systems, pv_w (M, T)) for training or evaluation."""
    times = world.interval_times_ms(start_ms, hours=24 * days)
    sky = world.weather(seed, 0, times, site)
    pv = world.pv_power(seed, machines, times, sky.cloud_cover, sky.temperature_c, site)
    return times, world.pv_systems(seed, machines), np.rint(pv)


def train_pv(
    seed: int,
    machines: int = 30,
    days: int = 60,
    start_ms: int = 1_711_929_600_000,  # 2024-04-01 UTC
    site: world.Site = world.DEFAULT_SITE,
    progress: Callable[[str], None] | None = None,
) -> tuple[ModelFile, dict[str, Any]]:
    """Fit a PvForecaster on generated days; returns the model and what it was trained on."""
    m = np.arange(machines, dtype=np.int64)
    times, systems, pv = pv_dataset(seed, m, start_ms, days, site)
    rated = systems.inverter_w
    meta = {
        "latitude_milli": round(site.latitude * 1000),
        "longitude_milli": round(site.longitude * 1000),
        "seed": seed,
        "machines": machines,
        "days": days,
        "start_ms": start_ms,
    }
    shell = ModelFile("pv-forecaster", "1", {"weights": np.zeros((len(BUCKET_EDGES), 6))}, meta)
    probe = PvForecaster(shell)
    xs, ys, bs = [], [], []
    for index, issue in enumerate(issue_times(start_ms, days)):
        offset = int((issue - start_ms) // STEP_MS)
        history, future = _windows(pv, offset)
        clear = probe.clear_output(
            issue - HISTORY * STEP_MS, HISTORY + HORIZON, systems.tilt, systems.azimuth
        )
        x = probe.features(
            clear[:, :HISTORY], clear[:, HISTORY:], history / rated[:, None], probe._today(issue, HORIZON)
        )
        xs.append(x.reshape(-1, x.shape[-1]))
        ys.append((future / rated[:, None]).reshape(-1))
        bs.append(np.tile(horizon_buckets(), machines))
        if progress is not None and index % 100 == 0:
            progress(f"pv-forecaster: issue time {index + 1}")
    weights = fit_ridge(np.concatenate(xs), np.concatenate(ys), np.concatenate(bs), len(BUCKET_EDGES))
    return ModelFile("pv-forecaster", "1", {"weights": weights}, meta), {"times": times, "pv_w": pv}


def load_dataset(
    seed: int, machines: NDArray[np.int64], start_ms: int, days: int, site: world.Site = world.DEFAULT_SITE
) -> tuple[NDArray[np.int64], Floats]:
    times = world.interval_times_ms(start_ms, hours=24 * days)
    return times, np.rint(world.household_load(seed, machines, times, site))


def train_load(
    seed: int,
    machines: int = 40,
    days: int = 28,
    start_ms: int = 1_704_067_200_000,  # 2024-01-01 UTC
    site: world.Site = world.DEFAULT_SITE,
    progress: Callable[[str], None] | None = None,
) -> tuple[ModelFile, dict[str, Any]]:
    m = np.arange(machines, dtype=np.int64)
    times, load = load_dataset(seed, m, start_ms, days, site)
    utc_offset_ms = round(site.utc_offset_hours * world.HOUR_MS)
    local = times + utc_offset_ms
    slot = (local % world.DAY_MS) // STEP_MS
    weekend = ((local // world.DAY_MS + 3) % 7 >= 5).astype(np.int64)
    profile = np.zeros((2, HISTORY))
    mean_load = load.mean(axis=0)
    for kind in (0, 1):
        for s in range(HISTORY):
            rows = (weekend == kind) & (slot == s)
            profile[kind, s] = mean_load[rows].mean() if rows.any() else mean_load.mean()
    profile /= profile.mean()
    meta = {
        "utc_offset_ms": utc_offset_ms,
        "seed": seed,
        "machines": machines,
        "days": days,
        "start_ms": start_ms,
    }
    shell = LoadForecaster(
        ModelFile("load-forecaster", "1", {"weights": np.zeros((4, 4)), "profile": profile}, meta)
    )
    xs, ys, bs = [], [], []
    for index, issue in enumerate(issue_times(start_ms, days)):
        offset = int((issue - start_ms) // STEP_MS)
        history, future = _windows(load, offset)
        prof = shell._profile_at(issue - HISTORY * STEP_MS, HISTORY + HORIZON)
        x = shell.features(prof[:HISTORY], prof[HISTORY:], history)
        xs.append(x.reshape(-1, x.shape[-1]))
        ys.append(future.reshape(-1))
        bs.append(np.tile(horizon_buckets(), machines))
        if progress is not None and index % 100 == 0:
            progress(f"load-forecaster: issue time {index + 1}")
    weights = fit_ridge(np.concatenate(xs), np.concatenate(ys), np.concatenate(bs), len(BUCKET_EDGES))
    model = ModelFile("load-forecaster", "1", {"weights": weights, "profile": profile}, meta)
    return model, {"times": times, "load_w": load}
