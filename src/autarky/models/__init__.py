"""Embedded decision models: policies, their content-addressed model files and cards, training.

Policies (all speak :class:`DecisionPolicy`: ``name``, ``model_hash``, ``decide(inputs) -> output``,
inputs and outputs canonical-CBOR values of integers):

* :class:`PvForecaster`, :class:`LoadForecaster` (``forecast``): next 1-96 intervals, batched
  ``forecast_batch`` for all machines at once;
* :class:`BatteryScheduler` (LP, re-plans at most every ``replan_every_ms``), :func:`plan_batch`
  (or :func:`start_plan_batch` in worker processes, collected by :class:`PendingPlans`),
  :class:`RuleBattery` baseline, :func:`simulate_battery_day` (``battery``);
* :class:`AnomalyDetector` (``anomaly``), with ``score_batch``;
* :class:`IrrigationController` (``irrigation``): irrigates, and buys weather data when its sensors
  are not enough.

Files (``modelfile``): :class:`ModelFile`, :func:`save_model`, :func:`load_model` (hash checked),
:class:`ModelCard`, :func:`save_card`, :func:`load_card`; training (``training``): :func:`train`,
:func:`training_root` (the Merkle root a training-data anchor carries), :func:`load_training_data`.
:func:`load_policy` builds the policy a model file describes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from autarky.models.anomaly import AnomalyDetector
from autarky.models.battery import (
    BatteryScheduler,
    BatterySpec,
    PendingPlans,
    Plan,
    RuleBattery,
    battery_lp_model,
    plan_batch,
    simulate_battery_day,
    start_plan_batch,
)
from autarky.models.forecast import LoadForecaster, PvForecaster
from autarky.models.irrigation import IrrigationController
from autarky.models.modelfile import (
    ModelCard,
    ModelFile,
    ModelFileError,
    ModelIntegrityError,
    card_for,
    decode_model,
    load_card,
    load_model,
    save_card,
    save_model,
)
from autarky.models.policy import CborValue, DecisionPolicy, InputError
from autarky.models.training import NAMES, Trained, load_training_data, train, training_root

_POLICIES: dict[str, Any] = {
    "pv-forecaster": PvForecaster,
    "load-forecaster": LoadForecaster,
    "anomaly-detector": AnomalyDetector,
    "irrigation": IrrigationController,
}


def load_policy(path: str | Path, battery: BatterySpec | None = None) -> DecisionPolicy:
    """The policy of a model file (its hash checked against the file name); a battery-lp model also
    needs the battery it schedules."""
    model = load_model(path)
    if model.kind == "battery-lp":
        if battery is None:
            raise ValueError("a battery-lp model needs the BatterySpec of the battery it schedules")
        return BatteryScheduler(model, battery)
    if model.kind not in _POLICIES:
        raise ModelFileError(f"no policy for model kind {model.kind!r}")
    policy: DecisionPolicy = _POLICIES[model.kind](model)
    return policy


__all__ = [
    "NAMES",
    "AnomalyDetector",
    "BatteryScheduler",
    "BatterySpec",
    "CborValue",
    "DecisionPolicy",
    "InputError",
    "IrrigationController",
    "LoadForecaster",
    "ModelCard",
    "ModelFile",
    "ModelFileError",
    "ModelIntegrityError",
    "PendingPlans",
    "Plan",
    "PvForecaster",
    "RuleBattery",
    "Trained",
    "battery_lp_model",
    "card_for",
    "decode_model",
    "load_card",
    "load_model",
    "load_policy",
    "load_training_data",
    "plan_batch",
    "save_card",
    "save_model",
    "simulate_battery_day",
    "start_plan_batch",
    "train",
    "training_root",
]
