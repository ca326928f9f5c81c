"""The farm scenario on real agents: weather data bought through the data module, decisions again."""

from __future__ import annotations

import pytest

from autarky.scenarios import SimConfig
from autarky.scenarios.runner import run


@pytest.fixture(scope="module")
def day() -> dict:
    return run("farm", SimConfig(machines=60, hours=24, seed=1))


def test_ledger_audit(day: dict) -> None:
    assert day["conserved"] and day["invariants_ok"] and day["escrow_open_locks"] == 0
    assert day["handler_failures"] == 0 and day["explained"] is True


def test_weather_bought_delivered_and_used(day: dict) -> None:
    data = day["weather_data"]
    assert data["purchases"] > 0
    assert data["delivered_and_acknowledged"] == data["purchases"] and data["refunded"] == 0
    assert data["paid_to_stations"] == 30 * data["purchases"]
    assert data["decisions_with_forecast"] == data["purchases"]  # every key opened, decided again
    assert set(data["buy_reasons"]) <= {"sensor stuck", "rain uncertain", "sensor out of range"}
    assert day["decisions_by_policy"]["irrigation-balance/1"] >= data["purchases"]


def test_water_compared_with_the_rule(day: dict) -> None:
    water = day["water"]
    assert water["controller_mm"] > 0 and water["rule_baseline_mm"] > 0
    assert day["sensors"]["stuck_sensor_hours"] > 0


def test_same_seed_same_state_root() -> None:
    first = run("farm", SimConfig(machines=15, hours=5, seed=4))
    again = run("farm", SimConfig(machines=15, hours=5, seed=4))
    assert first["state_root"] == again["state_root"]
    assert first["conserved"] and first["escrow_open_locks"] == 0
