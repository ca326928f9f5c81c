"""``autarky sim run factory|farm|delivery --json`` as subprocesses, small and short."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(("name", "key"), [("factory", "detector"), ("farm", "water"), ("delivery", "tasks")])
def test_sim_run_scenario_json(tmp_path: Path, name: str, key: str) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "autarky.cli",
            "sim",
            "run",
            name,
            "--machines",
            "12",
            "--hours",
            "4",
            "--seed",
            "2",
            "--json",
            "--no-progress",
            "--out",
            str(tmp_path / name),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    for required in (
        "wall_s",
        "transactions_committed",
        "decisions_recorded",
        "conserved",
        "state_root",
        key,
    ):
        assert required in metrics, required
    assert metrics["conserved"] is True and metrics["escrow_open_locks"] == 0
    assert metrics["machines"] == 12 and metrics["hours"] == 4 and metrics["seed"] == 2
    assert (tmp_path / name / "report.html").is_file() and (tmp_path / name / "metrics.json").is_file()
