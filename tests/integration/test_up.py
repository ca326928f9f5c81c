"""``autarky up``, the main job, as a subprocess: a timed run prints one JSON summary and stops cleanly.

The fleet of machine agents submits real transactions through the HTTP API for 20 seconds; the
summary must show transactions committed by at least five machines, actions the agents' pre-check
refused before signing (with the guardrails' ``bank.*`` codes), decision records all anchored, and
a state root that replaying the demo ledger from genesis reproduces. While a demo runs,
``autarky decisions explain`` walks one of its transactions back to the model and its training
data with every check ok.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
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

    # The agents' pre-check refuses what the guardrails would refuse, before signing, with the
    # bank's codes; what the ledger itself refused (if anything) is counted apart.
    assert summary["refused_before_signing"] >= 1
    assert sum(summary["refusals_by_code"].values()) == summary["refused_before_signing"]
    assert all(code.startswith("bank.") for code in summary["refusals_by_code"]), summary["refusals_by_code"]
    assert sum(summary["failures_by_code"].values()) == summary["transactions_failed"]
    assert summary["refused_before_signing"] == sum(m["refused_before_signing"] for m in machines)

    # Every decision is recorded, and anchored on chain by the time the demo stops.
    assert summary["decisions_recorded"] >= 10
    assert summary["decisions_anchored"] == summary["decisions_recorded"]
    assert (workspace / "decisions.sqlite").is_file()
    assert {"pv-forecaster", "load-forecaster", "battery-lp", "irrigation"} <= summary["models"].keys()
    for model in summary["models"].values():
        assert (workspace / "models" / f"{model['hash']}.model").is_file()

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


def test_decisions_explain_walks_a_demo_transaction_back_to_its_model(tmp_path: Path) -> None:
    """While the demo runs: take a transaction a model decided from the dashboard's feed, once its
    record is anchored, and explain it with the CLI's defaults (the workspace in ./.autarky/demo)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTARKY_")}
    log = tmp_path / "up.log"
    with log.open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "autarky.cli",
                "up",
                "--duration",
                "150",
                "--json",
                "--port",
                "0",
                "--seed",
                "3",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
        )
    try:
        url = _wait_for(lambda: _dashboard_url(log.read_text()), 60, "the dashboard URL", log)
        tx = _wait_for(lambda: _anchored_model_decision(url), 90, "an anchored model decision", log)
        result = _run(tmp_path, "--node", url, "decisions", "explain", tx, "--json", timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr
        document = json.loads(result.stdout)
        assert document["ok"] is True
        checks = {check["name"]: check["ok"] for check in document["checks"]}
        for name in ("record.found", "tx.committed", "record.hash", "record.inputs", "record.chain"):
            assert checks[name] is True, document["checks"]
        for name in ("batch.anchored", "batch.proof", "batch.head", "model.registered", "model.file"):
            assert checks[name] is True, document["checks"]
        for name in ("model.card", "training.anchors", "training.data"):
            assert checks[name] is True, document["checks"]
        assert all(ok is True for ok in checks.values()), document["checks"]
        human = _run(tmp_path, "--node", url, "decisions", "explain", tx, timeout=60)
        assert human.returncode == 0 and "all checks ok" in human.stdout, human.stdout + human.stderr
        page = httpx.get(f"{url}/agents/decisions/{tx}", timeout=10)
        assert page.status_code == 200 and 'data-verdict="ok"' in page.text
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, log.read_text()
    assert "stopped cleanly" in log.read_text()


def _dashboard_url(text: str) -> str | None:
    found = re.search(r"dashboard (http://127\.0\.0\.1:\d+)/", text)
    return None if found is None else found.group(1)


def _anchored_model_decision(url: str) -> str | None:
    try:
        feed = httpx.get(f"{url}/agents/feed", timeout=5).json()
    except httpx.HTTPError:
        return None
    for machine in feed.get("machines", []):
        for record in machine["decisions"]:
            if record["model"] and record["tx"] and record["seq"] < machine["anchored_records"]:
                return str(record["tx"])
    return None


def _wait_for(probe: Any, seconds: float, what: str, log: Path) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {seconds} s\n{log.read_text()}")
