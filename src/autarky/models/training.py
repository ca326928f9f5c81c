"""Training on generated data, with the training data's Merkle root as its anchor.

``train(name, seed, out_dir)`` generates the data (``autarky.world``), fits the model, measures it on
held-out data (another seed, other machines, another period), and writes three content-addressed
files into ``out_dir``:

* ``<sha256>.model``: the model file (:mod:`autarky.models.modelfile`);
* ``<merkle root>.records.cbor``: the training records, a canonical CBOR list of canonical maps of
  integers; ``training_root(records) = merkle_root([sha256(canonical_encode(r)) for r in records])``
  (``autarky.ledger.merkle``) is what the owner anchors on chain (``provenance/anchor``);
* ``<sha256>.card.json``: the model card, naming the model hash, the data root and the metrics.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from autarky import world
from autarky.crypto.hashing import sha256
from autarky.encoding import canonical_decode, canonical_encode
from autarky.ledger.merkle import merkle_root
from autarky.models import anomaly, battery, forecast, irrigation
from autarky.models.modelfile import ModelCard, ModelFile, save_card, save_model

DATA_SUFFIX = ".records.cbor"  # the name autarky.provenance.explain looks for
NAMES = ("pv-forecaster", "load-forecaster", "anomaly-detector", "irrigation", "battery-lp")
VERSIONS = {
    "pv-forecaster": "1",
    "load-forecaster": "1",
    "anomaly-detector": "1",
    "irrigation": irrigation.VERSION,
    "battery-lp": "1",
}
"""The model file version ``train(name, ...)`` writes: a cached file of another version is stale (its
policy code has changed since), so it is trained again."""
Progress = Callable[[str], None] | None


def record_hash(record: Any) -> bytes:
    return sha256(canonical_encode(record))


def training_root(records: Sequence[Any]) -> bytes:
    """Merkle root over the sha256 of each canonical record: the training-data anchor."""
    return merkle_root([record_hash(record) for record in records])


def save_training_data(records: Sequence[Any], directory: str | Path) -> tuple[Path, bytes]:
    root = training_root(records)
    path = Path(directory) / (root.hex() + DATA_SUFFIX)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(canonical_encode(list(records)))
    return path, root


def load_training_data(path: str | Path) -> list[Any]:
    value = canonical_decode(Path(path).read_bytes())
    if not isinstance(value, list):
        raise ValueError("training data is not a list of records")
    return value


def _ints(values: Any) -> list[int]:
    return [int(v) for v in np.rint(np.asarray(values, dtype=np.float64)).astype(np.int64).ravel().tolist()]


def _daily_records(
    schema: str, times: Any, series: dict[str, Any], scale: dict[str, float], per_day: int = 96
) -> list[Any]:
    """One record per machine and day: {"schema", "machine", "day_start_ms", field: [ints]}."""
    records = []
    days = len(times) // per_day
    machines = next(iter(series.values())).shape[0]
    for machine in range(machines):
        for day in range(days):
            window = slice(day * per_day, (day + 1) * per_day)
            record: dict[str, Any] = {
                "schema": schema,
                "machine": machine,
                "day_start_ms": int(times[day * per_day]),
            }
            for key, array in series.items():
                record[key] = _ints(np.asarray(array)[machine, window] * scale.get(key, 1.0))
            records.append(record)
    return records


@dataclass(frozen=True)
class Trained:
    name: str
    model: ModelFile
    model_path: Path
    model_hash: bytes
    card: ModelCard
    card_path: Path
    card_hash: bytes
    data_path: Path
    data_root: bytes
    records: int


def _mae(pred: Any, truth: Any) -> float:
    return float(np.abs(np.asarray(pred) - np.asarray(truth)).mean())


def evaluate_pv(
    model: ModelFile, seed: int, start_ms: int = 1_719_792_000_000, days: int = 12
) -> dict[str, int]:
    """MAE (W) of the forecaster and of yesterday's persistence on held-out machines and days."""
    forecaster = forecast.PvForecaster(model)
    machines = np.arange(1000, 1020, dtype=np.int64)
    _times, systems, pv = forecast.pv_dataset(seed, machines, start_ms, days)
    model_err, base_err = [], []
    for issue in forecast.issue_times(start_ms, days):
        offset = int((issue - start_ms) // forecast.STEP_MS)
        history, future = pv[:, offset - 96 : offset], pv[:, offset : offset + 96]
        predicted = forecaster.forecast_batch(
            issue, systems.inverter_w, systems.tilt, systems.azimuth, history
        )
        model_err.append(_mae(predicted, future))
        base_err.append(_mae(forecast.yesterday_baseline(history), future))
    return {
        "mae_w": round(float(np.mean(model_err))),
        "baseline_yesterday_mae_w": round(float(np.mean(base_err))),
    }


def evaluate_load(
    model: ModelFile, seed: int, start_ms: int = 1_709_251_200_000, days: int = 12
) -> dict[str, int]:
    forecaster = forecast.LoadForecaster(model)
    machines = np.arange(1000, 1020, dtype=np.int64)
    _times, load = forecast.load_dataset(seed, machines, start_ms, days)
    model_err, base_err = [], []
    for issue in forecast.issue_times(start_ms, days):
        offset = int((issue - start_ms) // forecast.STEP_MS)
        history, future = load[:, offset - 96 : offset], load[:, offset : offset + 96]
        model_err.append(_mae(forecaster.forecast_batch(issue, history), future))
        base_err.append(_mae(forecast.yesterday_baseline(history), future))
    return {
        "mae_w": round(float(np.mean(model_err))),
        "baseline_yesterday_mae_w": round(float(np.mean(base_err))),
    }


def evaluate_anomaly(model: ModelFile, seed: int, machines: int = 60, days: int = 15) -> dict[str, int]:
    m = np.arange(1000, 1000 + machines, dtype=np.int64)
    times = world.interval_times_ms(1_710_000_000_000, hours=24 * days)
    telemetry = world.machine_telemetry(seed, m, times)
    window = anomaly.BASELINE + anomaly.RECENT
    windows = world.fault_windows(seed, m, int(times[window - 1]), int(times[-1]) + 1)
    detector = anomaly.AnomalyDetector(model)
    result = anomaly.evaluate(
        anomaly.scores_over(telemetry) > detector.threshold, times[window - 1 :], windows, m
    )
    return {
        "precision_bp": round(result.precision * 10_000),
        "recall_bp": round(result.recall * 10_000),
        "fault_windows": result.faults,
    }


def battery_days(seed: int, days: int = 3, machines: int = 3) -> list[tuple[Any, Any, int]]:
    """(day, battery params, start) of the evaluation days of the battery policies."""
    out = []
    for day in range(days):
        start = 1_718_834_400_000 + day * 9 * world.DAY_MS
        out.append(
            (
                world.microgrid_day(seed + day, np.arange(machines), start),
                world.battery_params(seed + day, np.arange(machines)),
                start,
            )
        )
    return out


def evaluate_battery(model: ModelFile, seed: int, days: int = 3, machines: int = 3) -> dict[str, int]:
    """Mean daily earnings (price units) of the LP and of RuleBattery, forecasts = yesterday's."""
    lp_total = rule_total = 0.0
    count = 0
    for day, params, start in battery_days(seed, days, machines):
        for k in range(machines):
            spec = battery.BatterySpec.from_world(params, k)
            prices = np.rint(day.price)
            lp = battery.simulate_battery_day(
                battery.BatteryScheduler(model, spec), spec, prices, day.pv_w[k], day.load_w[k], start
            )
            rule = battery.simulate_battery_day(
                battery.RuleBattery(spec), spec, prices, day.pv_w[k], day.load_w[k], start
            )
            lp_total += lp.earnings
            rule_total += rule.earnings
            count += 1
    return {
        "lp_earnings_per_day": round(lp_total / count),
        "rule_earnings_per_day": round(rule_total / count),
    }


_USES = {
    "pv-forecaster": (
        "Forecast a PV inverter's AC power for the next 1-96 quarter-hours to bid energy in the market.",
        {"time_ms": "int", "rated_w": "int", "tilt_deg": "int", "azimuth_deg": "int", "history_w": "96 ints"},
        {"forecast_w": "ints, one per interval"},
        "Trained on generated weather near 48 N; a sunny spell favours yesterday's persistence.",
    ),
    "load-forecaster": (
        "Forecast a household's load for the next 1-96 quarter-hours.",
        {"time_ms": "int", "history_w": "96 ints"},
        {"forecast_w": "ints, one per interval"},
        "Generated European households only; holidays and heat pumps are not modelled.",
    ),
    "anomaly-detector": (
        "Flag bearing wear on machine tools from vibration RMS, kurtosis and temperature.",
        {
            "rms_milli": "99+ ints",
            "kurtosis_milli": "99+ ints",
            "temperature_milli": "99+ ints",
            "load_milli": "99+ ints",
        },
        {"fires": "bool", "score_milli": "int", "threshold_milli": "int"},
        "Needs a day of history; faults already present for a day become the baseline.",
    ),
    "irrigation": (
        "Decide irrigation and whether to buy a weather forecast, from soil moisture sensors.",
        {
            "time_ms": "int",
            "moisture_milli": "ints",
            "field_capacity_milli": "int",
            "wilting_point_milli": "int",
            "root_depth_mm": "int",
            "irrigated_mm_milli": "ints?",
            "rain_mm_milli": "ints?",
            "et_mm_milli": "ints?",
        },
        {"irrigate_mm_milli": "int", "buy_weather": "bool", "sensor_ok": "bool", "reason": "str"},
        "Bucket model with reference (not crop) evapotranspiration; climatology from generated weather; "
        "a blind sensor's soil is reckoned without the rain since it froze.",
    ),
    "battery-lp": (
        "Schedule a home battery behind a meter with PV against day-ahead prices (LP).",
        {"time_ms": "int", "soc_wh": "int", "prices": "ints per kWh", "pv_wh": "ints?", "load_wh": "ints?"},
        {
            "charge_wh": "int",
            "discharge_wh": "int",
            "order": "{side, quantity_wh, limit_price}",
            "replanned": "bool",
        },
        "Linear: no degradation curve beyond a flat wear cost; plans with the forecasts it is given.",
    ),
}


def _fit(name: str, seed: int, progress: Progress) -> tuple[ModelFile, list[Any], dict[str, int], str]:
    if name == "pv-forecaster":
        model, data = forecast.train_pv(seed, progress=progress)
        records = _daily_records("autarky.training.pv/1", data["times"], {"pv_w": data["pv_w"]}, {})
        return model, records, evaluate_pv(model, seed + 1), "world.pv_power"
    if name == "load-forecaster":
        model, data = forecast.train_load(seed, progress=progress)
        records = _daily_records("autarky.training.load/1", data["times"], {"load_w": data["load_w"]}, {})
        return model, records, evaluate_load(model, seed + 1), "world.household_load"
    if name == "anomaly-detector":
        model, data = anomaly.train_anomaly(seed, progress=progress)
        t = data["telemetry"]
        series = {
            "rms_milli": t.vibration_rms,
            "kurtosis_milli": t.kurtosis,
            "temperature_milli": t.temperature_c,
            "load_milli": t.spindle_load,
        }
        records = _daily_records(
            "autarky.training.telemetry/1", data["times"], series, dict.fromkeys(series, 1000.0)
        )
        w = data["windows"]
        records += [
            {"schema": "autarky.training.fault/1", "machine": int(m), "start_ms": int(s), "end_ms": int(e)}
            for m, s, e in zip(w.machine, w.start_ms, w.end_ms, strict=True)
        ]
        return model, records, evaluate_anomaly(model, seed + 1), "world.machine_telemetry"
    if name == "irrigation":
        model, data = irrigation.train_irrigation(seed, progress=progress)
        series = {"et_mm_milli": data["et_mm"][None, :], "rain_mm_milli": data["rain_mm"][None, :]}
        records = _daily_records(
            "autarky.training.weather/1", data["times"], series, dict.fromkeys(series, 1000.0)
        )
        return (
            model,
            records,
            {"mean_et_mm_milli_per_day": round(float(data["et_mm"].sum()) / 60 * 1000)},
            "world.weather",
        )
    if name == "battery-lp":
        model = battery.battery_lp_model()
        if progress is not None:
            progress("battery-lp: evaluating LP and RuleBattery on generated days")
        records = []
        for day, _, start in battery_days(seed):
            records.append(
                {"schema": "autarky.training.day/1", "day_start_ms": start, "price": _ints(day.price)}
            )
            records += _daily_records(
                "autarky.training.household/1", day.times_ms, {"pv_w": day.pv_w, "load_w": day.load_w}, {}
            )
        return model, records, evaluate_battery(model, seed), "world.microgrid_day"
    raise ValueError(f"unknown model {name!r}: one of {', '.join(NAMES)}")


def train(name: str, seed: int, out_dir: str | Path, progress: Progress = None) -> Trained:
    """Train ``name`` on data generated from ``seed``; write model, data and card into ``out_dir``."""
    model, records, metrics, generator = _fit(name, seed, progress)
    assert model.version == VERSIONS[name], f"{name}: version {model.version}, VERSIONS says {VERSIONS[name]}"
    model_path, model_hash = save_model(model, out_dir)
    data_path, root = save_training_data(records, out_dir)
    use, inputs, outputs, limitations = _USES[name]
    card = ModelCard(
        {
            "name": name,
            "version": model.version,
            "kind": model.kind,
            "model_hash": model_hash.hex(),
            "intended_use": use,
            "inputs": inputs,
            "outputs": outputs,
            "training_data": {
                "records": len(records),
                "merkle_root": root.hex(),
                "anchor_id": "",
                "generator": generator,
                "seed": seed,
            },
            "metrics": metrics,
            "limitations": limitations,
        }
    )
    card_path, card_hash = save_card(card, out_dir)
    return Trained(
        name, model, model_path, model_hash, card, card_path, card_hash, data_path, root, len(records)
    )
