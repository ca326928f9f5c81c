"""``autarky up``, the main job, as a subprocess: a timed run prints one JSON summary and stops cleanly.

The fleet submits real transactions through the HTTP API for 20 seconds; the summary must show
transactions committed by at least five machines, refusals by the machines' guardrails (with
``bank.*`` codes), and a state root that replaying the demo ledger from genesis reproduces.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

RUN_SECONDS = 20
TIMEOUT_S = RUN_SECONDS + 90


def _run(cwd: Path, *args: str, timeout: float = TIMEOUT_S) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTARKY_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "autarky.cli", *args],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(f"autarky {' '.join(args)} did not finish in {timeout} s\n{stderr}") from None
    finally:
        if process.poll() is None:
            process.kill()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def _up(cwd: Path, workspace: Path, seconds: float) -> dict[str, Any]:
    result = _run(
        cwd,
        "up",
        "--duration",
        str(seconds),
        "--json",
        "--port",
        "0",
        "--data-dir",
        str(workspace),
        "--seed",
        "7",
    )
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # one JSON object and nothing else on stdout
    assert isinstance(summary, dict)
    assert "stopped cleanly" in result.stderr  # progress and logs go to stderr
    return summary


def test_up_runs_a_fleet_and_reports_json(tmp_path: Path) -> None:
    workspace = tmp_path / "demo"
    summary = _up(tmp_path, workspace, RUN_SECONDS)

    assert re.fullmatch(r"[0-9a-f]{64}", summary["state_root"])
    assert summary["chain_id"] == "autarky-demo"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/", summary["dashboard_url"])
    assert summary["blocks"] > 0 and summary["height"] >= summary["blocks"]

    machines = summary["machines"]
    assert len(machines) >= 6
    active = [machine["name"] for machine in machines if machine["committed"] > 0]
    assert len(active) >= 5, machines
    assert summary["transactions_committed"] >= 20
    assert (
        summary["transactions_committed"]
        == sum(m["committed"] for m in machines) + summary["operator"]["committed"]
    )

    # Guardrails refuse some transactions, and the refusals carry the bank's codes.
    assert summary["transactions_failed"] >= 1
    assert sum(summary["failures_by_code"].values()) == summary["transactions_failed"]
    assert all(code.startswith("bank.") for code in summary["failures_by_code"]), summary["failures_by_code"]

    # The demo keys are stored in clear inside the workspace, as the output says.
    keystore = json.loads((workspace / "keys" / "car.json").read_text())
    assert keystore["crypto"]["kdf"] == "none"

    # Replaying the demo ledger from genesis gives the same state root.
    replay = _run(tmp_path, "node", "replay", "--json", "--data-dir", str(workspace / "node"))
    assert replay.returncode == 0, replay.stdout + replay.stderr
    report = json.loads(replay.stdout)
    assert report["equal"] is True and report["state_root"] == summary["state_root"]

    # A second run reuses the workspace: same chain, machines already registered, height continues.
    again = _up(tmp_path, workspace, 3)
    assert again["height"] > summary["height"]
    assert {m["did"] for m in again["machines"]} == {m["did"] for m in machines}


def test_fresh_refuses_a_folder_that_is_not_a_demo_workspace(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "thesis.txt").write_text("do not delete", encoding="utf-8")
    result = _run(
        tmp_path, "up", "--fresh", "--duration", "1", "--port", "0", "--data-dir", str(precious), timeout=60
    )
    assert result.returncode == 2
    assert "not an Autarky demo workspace" in result.stderr
    assert (precious / "thesis.txt").exists()
