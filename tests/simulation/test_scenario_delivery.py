"""The delivery scenario on real agents: charger slots by lease, routing data by the data module."""

from __future__ import annotations

import pytest

from autarky.scenarios import SimConfig
from autarky.scenarios.runner import run


@pytest.fixture(scope="module")
def day() -> dict:
    return run("delivery", SimConfig(machines=50, hours=24, seed=1))


def test_ledger_audit(day: dict) -> None:
    assert day["conserved"] and day["invariants_ok"] and day["escrow_open_locks"] == 0
    assert day["handler_failures"] == 0


def test_tasks_energy_and_charging(day: dict) -> None:
    tasks, energy, charging = day["tasks"], day["energy_wh"], day["charging"]
    assert tasks["requested"] > 0 and tasks["done"] >= 0.9 * tasks["requested"]
    assert energy["driven"] > 0 and energy["charged"] > 0
    assert charging["sessions"] > 0
    # Every slot is paid (15 aut) or refunded: paid + refunded is a whole number of slots.
    assert (charging["paid_to_operators"] + charging["refunded_to_robots"]) % 15 == 0
    assert charging["paid_to_operators"] > 0
    assert day["decisions_by_policy"]["charge-when-low/1"] >= charging["sessions"]


def test_routing_data(day: dict) -> None:
    routing = day["routing_data"]
    assert routing["purchases"] > 0
    assert routing["delivered_and_acknowledged"] == routing["purchases"] == routing["hours_with_routing"]
    assert routing["paid_to_routing"] == 25 * routing["purchases"]


def test_same_seed_same_state_root() -> None:
    first = run("delivery", SimConfig(machines=10, hours=12, seed=3))
    again = run("delivery", SimConfig(machines=10, hours=12, seed=3))
    assert first["state_root"] == again["state_root"]
    assert first["conserved"] and first["escrow_open_locks"] == 0
