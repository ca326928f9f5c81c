"""docs/simulation.md: its Python examples (running the microgrid, adding a scenario) run as written,
the scenarios its commands run exist, and the farm's table holds what the run produces."""

from __future__ import annotations

import re
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "simulation.md"


def _blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", DOC.read_text(), re.S)


def test_python_example_runs() -> None:
    example = next(b for b in _blocks() if 'run("microgrid"' in b)
    exec(compile(example, str(DOC), "exec"), {})


def test_adding_a_scenario_example_runs() -> None:
    """The agent-based scenario of "Adding a scenario": registered, run, conserving, recording."""
    example = next(b for b in _blocks() if "@scenario" in b)
    namespace: dict[str, object] = {}
    exec(compile(example, str(DOC), "exec"), namespace)
    metrics = namespace["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["tips"] == 60 and metrics["transactions_committed"] >= 60
    assert metrics["prechecks_refused"] == {} and metrics["refusals"] == {}


def test_every_scenario_the_doc_runs_exists() -> None:
    from autarky.scenarios import get

    named = set(re.findall(r"^autarky sim run ([a-z-]+)", DOC.read_text(), re.M))  # the commands shown
    assert {"microgrid", "factory", "farm", "delivery"} <= named
    for name in named:
        assert get(name).name == name


def _row(section: str, label: str) -> list[str]:
    line = next(line for line in section.splitlines() if line.startswith(f"| {label}"))
    return [cell.strip() for cell in line.strip("|").split("|")][1:]


def test_farm_figures_are_what_the_run_produces() -> None:
    """ "The farm": the 24-hour columns of its table (100 fields, seed 1) and the state root."""
    from autarky.scenarios import SimConfig
    from autarky.scenarios.runner import run

    text = DOC.read_text()
    farm = text[text.index("## The farm") : text.index("## Delivery")]
    day = run("farm", SimConfig(machines=100, hours=24, seed=1))
    water, bought = day["water"], day["weather_data"]
    figures = {
        "water used": [water["controller_mm"], water["rule_baseline_mm"]],
        "drained below roots": [water["drained_mm"]["controller"], water["drained_mm"]["rule_baseline"]],
        "soil water at the end": list(water["soil_water_end_mm"].values()),
        "crop-stress field-hours": list(day["stress_hours"].values()),
        "hours below refill point": list(day["below_refill_hours"].values()),
    }
    for label, (controller, rule) in figures.items():
        assert _row(farm, label)[:2] == [f"{controller:,g}", f"{rule:,g}"], label
    assert _row(farm, "weather bought")[0] == f"{bought['purchases']} ({bought['paid_to_stations']:,})"
    assert f"`state_root` {day['state_root'][:8]}..." in farm
