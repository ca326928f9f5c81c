"""docs/simulation.md: its Python examples (running the microgrid, adding a scenario) run as written."""

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
