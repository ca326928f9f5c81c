"""The factory scenario on real agents: leases, maintenance jobs from the detector, tracked parts."""

from __future__ import annotations

from pathlib import Path

import pytest

from autarky.scenarios import SimConfig
from autarky.scenarios.runner import run


@pytest.fixture(scope="module")
def day(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run("factory", SimConfig(machines=100, hours=24, seed=1, out=tmp_path_factory.mktemp("factory")))


def test_ledger_audit_and_report(day: dict) -> None:
    assert day["conserved"] and day["invariants_ok"] and day["escrow_open_locks"] == 0
    assert day["handler_failures"] == 0 and day["explained"] is True


def test_detector_catches_injected_faults(day: dict) -> None:
    detector = day["detector"]
    assert detector["fault_windows"] > 0 and detector["jobs_posted"] > 0
    assert detector["precision"] >= 0.7 and detector["recall"] >= 0.7
    assert day["decisions_by_policy"]["anomaly-robust-z/1"] >= detector["jobs_posted"]


def test_jobs_leases_and_parts(day: dict) -> None:
    assert day["jobs"]["outcomes"].get("paid", 0) >= 1
    assert day["jobs"]["bounties_paid"] == 2_500 * day["jobs"]["outcomes"]["paid"]
    leases = day["leases"]
    assert leases["reservations"] == 4 * 100  # four six-hour blocks per tool
    assert leases["paid_to_providers"] == 100 * 24 * 40  # every tool's VM, every hour
    parts = day["parts"]
    assert parts["custody_transfers"] == 2 * day["jobs"]["outcomes"]["paid"]  # supplier -> maintainer -> tool
    assert parts["conditions"]["installed"] == day["jobs"]["outcomes"]["paid"]


def test_same_seed_same_state_root(tmp_path: Path) -> None:
    first = run("factory", SimConfig(machines=12, hours=4, seed=5))
    again = run("factory", SimConfig(machines=12, hours=4, seed=5))
    assert first["state_root"] == again["state_root"]
    assert first["conserved"] and first["escrow_open_locks"] == 0
