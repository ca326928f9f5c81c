"""The runtime benchmark runs (small) and every mode commits every action (no timing asserted)."""

from __future__ import annotations

from autarky.agent.benchmark import run_benchmark


def test_benchmark_runs_every_mode() -> None:
    result = run_benchmark(machines=5, intervals=4)
    assert result["actions"] == 20
    for mode in ("null", "check", "full"):
        assert result[mode]["us_per_action"] > 0
