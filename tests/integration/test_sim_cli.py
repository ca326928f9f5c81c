"""``autarky sim run`` and ``autarky sim list`` as subprocesses, with ``--json``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path


def _autarky(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autarky.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_sim_run_json(tmp_path: Path) -> None:
    done = _autarky(
        "sim", "run", "microgrid", "--machines", "20", "--hours", "3", "--seed", "2", "--json", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    for key in (
        "wall_s",
        "transactions_committed",
        "trades",
        "decisions_recorded",
        "conserved",
        "state_root",
    ):
        assert key in metrics, key
    assert metrics["conserved"] is True and metrics["transactions_committed"] > 0
    folder = tmp_path / "sim-microgrid-2"
    assert (folder / "report.html").is_file() and (folder / "metrics.json").is_file()
    assert (folder / "decisions.sqlite").is_file()


def test_sim_list_and_unknown_scenario(tmp_path: Path) -> None:
    listed = _autarky("sim", "list", "--json", cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "microgrid" in json.loads(listed.stdout)["scenarios"]
    unknown = _autarky("sim", "run", "nowhere", "--no-progress", cwd=tmp_path)
    assert unknown.returncode == 2 and "unknown scenario" in unknown.stderr


def test_sim_run_refuses_unknown_and_malformed_parameters(tmp_path: Path) -> None:
    unknown = _autarky("sim", "run", "microgrid", "--param", "colour=red", "--no-progress", cwd=tmp_path)
    assert unknown.returncode == 2 and "no parameter colour" in unknown.stderr
    malformed = _autarky(
        "sim", "run", "microgrid", "--param", "battery_policy", "--no-progress", cwd=tmp_path
    )
    assert malformed.returncode == 2 and "NAME=VALUE" in malformed.stderr
    bad = _autarky(
        "sim", "run", "microgrid", "--param", "battery_policy=greedy", "--no-progress", cwd=tmp_path
    )
    assert bad.returncode == 2 and "battery_policy" in bad.stderr
    assert not (tmp_path / "sim-microgrid-1").exists()
