"""Predictive maintenance: ``AnomalyDetector`` on machine-tool telemetry.

Each feature (vibration RMS normalised by spindle load, kurtosis, bearing temperature above what the
load explains) is compared with the machine's own recent baseline as a robust z-score,
``(median of the last few samples - median of the baseline) / (1.4826 MAD of the baseline)`` (with a
floor per feature so a quiet baseline does not turn ambient drift into alarms); the
score is the largest positive z. An alarm fires when the score exceeds the threshold chosen on
training data (the smallest threshold whose alarm-episode precision on training faults reaches the
target). Values arrive as integers in thousandths (mm/s x 1000, kurtosis x 1000, milli-degrees C,
load x 1000).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from autarky import world
from autarky.models.modelfile import ModelFile
from autarky.models.policy import CborValue, InputError, Inputs

Floats = NDArray[np.float64]
FEATURES = ("rms_milli", "kurtosis_milli", "temperature_milli", "load_milli")
BASELINE = 96  # samples of the machine's recent past (a day of 15-minute samples)
RECENT = 3  # samples of the present


def derived_features(rms: Floats, kurtosis: Floats, temperature: Floats, load: Floats) -> Floats:
    """(..., 3) features with the load's effect removed: RMS per load factor, kurtosis, and
    temperature minus 15 K per unit load."""
    return np.stack([rms / (0.7 + 0.5 * load), kurtosis, temperature - 15.0 * load], axis=-1)


def score_windows(windows: Floats) -> Floats:
    """Scores of (M, BASELINE + RECENT, 3) feature windows, vectorised: (M,)."""
    baseline = windows[:, :-RECENT]
    recent = np.median(windows[:, -RECENT:], axis=1)
    centre = np.median(baseline, axis=1)
    spread = 1.4826 * np.median(np.abs(baseline - centre[:, None, :]), axis=1)
    # Floors: a very quiet baseline must not turn ambient drift into alarms.
    floor = np.stack(
        [0.05 * np.abs(centre[:, 0]), np.full(centre.shape[0], 0.15), np.full(centre.shape[0], 1.5)], axis=1
    )
    spread = np.maximum(spread, floor) + 1e-9
    z = (recent - centre) / spread
    return np.asarray(np.max(z, axis=1))


class AnomalyDetector:
    """``anomaly-robust-z/1``: ``decide({"rms_milli": [ints], "kurtosis_milli": [...],
    "temperature_milli": [...], "load_milli": [...]})`` with at least ``BASELINE + RECENT`` samples
    each, oldest first -> ``{"fires": bool, "score_milli": int, "threshold_milli": int}``."""

    name = "anomaly-robust-z/1"
    kind = "anomaly-detector"

    def __init__(self, model: ModelFile) -> None:
        self.model = model
        self.model_hash: bytes | None = model.hash
        self.threshold = float(model.param("threshold")[0])

    def score_batch(self, rms: Floats, kurtosis: Floats, temperature: Floats, load: Floats) -> Floats:
        """Scores of the last sample of (M, W) telemetry windows (floats in natural units)."""
        features = derived_features(rms, kurtosis, temperature, load)
        return score_windows(features[:, -(BASELINE + RECENT) :])

    def decide(self, inputs: Inputs) -> CborValue:
        columns = []
        for key in FEATURES:
            value = inputs.get(key)
            if not isinstance(value, list | tuple) or len(value) < BASELINE + RECENT:
                raise InputError(f"input {key!r} must be a list of at least {BASELINE + RECENT} ints")
            columns.append(np.asarray(value[-(BASELINE + RECENT) :], dtype=np.float64) / 1000.0)
        score = float(self.score_batch(*(c[None, :] for c in columns))[0])
        return {
            "fires": bool(score > self.threshold),
            "score_milli": round(score * 1000),
            "threshold_milli": round(self.threshold * 1000),
        }


@dataclass(frozen=True)
class Detection:
    precision: float  # alarm episodes that overlap a fault window / all alarm episodes
    recall: float  # fault windows with at least one alarm / all fault windows
    episodes: int
    faults: int


def alarm_episodes(fires: NDArray[np.bool_]) -> list[tuple[int, int, int]]:
    """(machine, first index, last index) of each run of consecutive alarms."""
    episodes: list[tuple[int, int, int]] = []
    for machine in range(fires.shape[0]):
        row = fires[machine].astype(np.int8)
        edges = np.diff(np.concatenate([[0], row, [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
        episodes.extend((machine, int(s), int(e)) for s, e in zip(starts, ends, strict=True))
    return episodes


def evaluate(
    fires: NDArray[np.bool_],
    times_ms: NDArray[np.int64],
    windows: world.FaultWindows,
    machines: NDArray[np.int64],
) -> Detection:
    """Event-level precision and recall of alarms against known fault windows."""
    row_of = {int(m): k for k, m in enumerate(machines)}
    episodes = alarm_episodes(fires)
    hit_windows: set[int] = set()
    true_episodes = 0
    for machine, first, last in episodes:
        begin, end = times_ms[first], times_ms[last]
        matched = False
        for index in np.flatnonzero(windows.machine == machines[machine]):
            # an alarm up to 2 hours after the window still counts: the fault was real
            if begin < windows.end_ms[index] + 2 * world.HOUR_MS and end >= windows.start_ms[index]:
                matched = True
                hit_windows.add(int(index))
        true_episodes += matched
    counted = [k for k in range(len(windows)) if int(windows.machine[k]) in row_of]
    precision = true_episodes / len(episodes) if episodes else 1.0
    recall = len(hit_windows) / len(counted) if counted else 1.0
    return Detection(precision, recall, len(episodes), len(counted))


def scores_over(telemetry: world.Telemetry) -> Floats:
    """Score of every sample after the first window, for every machine: (M, T - window + 1)."""
    window = BASELINE + RECENT
    features = derived_features(
        telemetry.vibration_rms, telemetry.kurtosis, telemetry.temperature_c, telemetry.spindle_load
    )
    m, t, _f = features.shape
    scores = np.zeros((m, t - window + 1))
    for end in range(window, t + 1):
        scores[:, end - window] = score_windows(features[:, end - window : end])
    return scores


def train_anomaly(
    seed: int,
    machines: int = 60,
    days: int = 20,
    start_ms: int = 1_704_067_200_000,
    target_precision: float = 0.9,
    progress: Callable[[str], None] | None = None,
) -> tuple[ModelFile, dict[str, Any]]:
    """Choose the threshold on generated telemetry with injected faults."""
    m = np.arange(machines, dtype=np.int64)
    times = world.interval_times_ms(start_ms, hours=24 * days)
    telemetry = world.machine_telemetry(seed, m, times)
    windows = world.fault_windows(seed, m, int(times[BASELINE + RECENT - 1]), int(times[-1]) + 1)
    scores = scores_over(telemetry)
    scored_times = times[BASELINE + RECENT - 1 :]
    chosen, detection = 10.0, Detection(0.0, 0.0, 0, len(windows))
    for threshold in np.arange(3.0, 15.01, 0.5):
        result = evaluate(scores > threshold, scored_times, windows, m)
        if progress is not None:
            progress(
                f"anomaly-detector: threshold {threshold:.1f} "
                f"precision {result.precision:.2f} recall {result.recall:.2f}"
            )
        if result.precision >= target_precision:
            chosen, detection = float(threshold), result
            break
    meta = {
        "seed": seed,
        "machines": machines,
        "days": days,
        "start_ms": start_ms,
        "baseline_samples": BASELINE,
        "recent_samples": RECENT,
        "train_precision_bp": round(detection.precision * 10_000),
        "train_recall_bp": round(detection.recall * 10_000),
    }
    model = ModelFile("anomaly-detector", "1", {"threshold": np.asarray([chosen])}, meta)
    return model, {"times": times, "telemetry": telemetry, "windows": windows}
