"""``autarky agent run FILE.py``: one machine per process against a real node.

Two processes run ``examples/energy_buyer.py`` at once (the file ``docs/agents.md`` shows, copied to
a temporary folder): the battery pays the solar inverter and the solar inverter pays the battery,
each signing with its own key from a password-protected keys folder. The battery's owner caps its
payments at 500 aut, so the node's pre-check refuses the battery's surge payment of 600 aut: it is
reported, with the reason, and never signed. The battery stops on SIGTERM, the inverter at
``--duration``; both stop cleanly with every decision record anchored on chain (``decisions verify``
agrees). The failures before a machine starts exit 2 with one line: no node, an unknown identity, a
wrong password, no file, no machine in it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from autarky.cli.keyring import KeyRing, Protection
from autarky.modules.bank import messages as bank
from autarky.provenance import DecisionStore
from autarky.web.testing import LiveNode, TestKeys

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "energy_buyer.py"
PASSWORD = "agent run test password"
CAP = {
    "window_blocks": 1000,
    "limits": {"aut": {"per_tx": 500, "per_window": None, "cosign_above": None}},
    "allowlist": None,
}
TIMEOUT_S = 60


def _env() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTARKY_")}
    env["COLUMNS"] = "200"
    return env


@pytest.fixture
def workdir(tmp_path: Path, test_keys: TestKeys) -> Path:
    """A folder with the agent file, a password file and a keys folder holding battery and solar."""
    (tmp_path / "password.txt").write_text(PASSWORD + "\n", encoding="utf-8")
    (tmp_path / "wrong.txt").write_text("not the password\n", encoding="utf-8")
    shutil.copy(EXAMPLE, tmp_path / "energy_buyer.py")
    keys = KeyRing(tmp_path / "keys")
    keys.create("battery", test_keys.battery, Protection("password", password=PASSWORD))
    keys.create("solar", test_keys.solar, Protection("password", password=PASSWORD))
    return tmp_path


def agent_args(workdir: Path, name: str, url: str, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "autarky.cli",
        "--keys-dir",
        str(workdir / "keys"),
        "agent",
        "run",
        str(workdir / "energy_buyer.py"),
        "--from",
        name,
        "--password-file",
        str(workdir / "password.txt"),
        "--node",
        url,
        "--json",
        *args,
    ]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    """The agent processes a test starts; any still running at the end is killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
            process.communicate(timeout=10)


def spawn(processes: list[subprocess.Popen[str]], workdir: Path, args: list[str]) -> subprocess.Popen[str]:
    process = subprocess.Popen(
        args,
        cwd=workdir,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    processes.append(process)
    return process


def wait_until(condition: Callable[[], bool], processes: list[subprocess.Popen[str]]) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while time.monotonic() < deadline:
        if condition():
            return
        for process in processes:
            if process.poll() is not None:
                _, stderr = process.communicate()
                raise AssertionError(f"an agent exited early ({process.returncode}): {stderr}")
        time.sleep(0.1)
    raise AssertionError("the machines did not act in time")


def finish(process: subprocess.Popen[str]) -> tuple[dict[str, Any], str]:
    stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    assert process.returncode == 0, stderr
    summary = json.loads(stdout)  # exactly one JSON object on stdout, progress on stderr
    assert isinstance(summary, dict)
    return summary, stderr


def test_two_machines_in_two_processes(
    start_node: Callable[..., LiveNode],
    test_keys: TestKeys,
    workdir: Path,
    processes: list[subprocess.Popen[str]],
) -> None:
    live = start_node()
    battery, solar = test_keys.battery, test_keys.solar
    capped = live.submit(live.sign(test_keys.alice, [bank.set_guardrails(battery.did, CAP)]))
    assert capped.json()["receipt"]["code"] == "ok", capped.text

    battery_run = spawn(
        processes, workdir, agent_args(workdir, "battery", live.url, "--set", f"pay_to={solar.did}")
    )
    solar_run = spawn(
        processes,
        workdir,
        agent_args(workdir, "solar", live.url, "--set", f"pay_to={battery.did}", "--duration", "8s"),
    )
    # Readings 300, 450, 2400, 350 Wh at 250 aut/kWh: 75, 112, 600 (over the cap), 87 aut. Five
    # battery transactions (four payments and an anchor of four decisions) mean the surge is past.
    wait_until(lambda: live.sequence(battery.did) >= 5, processes)
    battery_run.send_signal(signal.SIGTERM)
    battery_summary, battery_log = finish(battery_run)
    solar_summary, solar_log = finish(solar_run)

    # The battery: the surge refused by the pre-check, explained, never signed or submitted.
    assert battery_summary["stopped_by"] == "SIGTERM"
    assert battery_summary["name"] == "battery" and battery_summary["definition"] == "energy-buyer"
    assert battery_summary["did"] == battery.did
    assert battery_summary["refused"]["bank.per_tx_cap"] >= 1 and set(battery_summary["refused"]) == {
        "bank.per_tx_cap"
    }
    assert (
        "refused by the pre-check: bank.per_tx_cap: this payment of 600 aut to did:key:" in battery_log
        and "exceeds the per-transaction cap of 500 aut set by the owner's guardrails" in battery_log
        and "600 aut left unpaid (bank.per_tx_cap); 600 aut unpaid so far" in battery_log
    )
    assert battery_summary["failed"] == {} and battery_summary["handler_failures"] == 0
    assert battery_summary["submitted"] == battery_summary["committed"] >= 5
    assert live.sequence(battery.did) == battery_summary["submitted"]  # nothing else reached the node
    refused_on_chain = live.http.get("/api/v1/audit", params={"machine": battery.did, "ok": "false"})
    assert refused_on_chain.json()["entries"] == []
    # "received 75 aut from …": the inverter's payments, seen as events of the node's stream
    assert f"aut from {solar.did}" in battery_log

    # The inverter: no cap, every payment committed; stopped by --duration.
    assert solar_summary["stopped_by"] == "duration" and solar_summary["refused"] == {}
    assert solar_summary["submitted"] == solar_summary["committed"] == live.sequence(solar.did) >= 4
    assert "transaction " in solar_log and "committed (bank/send)" in solar_log

    # Both stopped cleanly with every decision anchored: the store, the node and verify agree.
    for summary, log, name, key in (
        (battery_summary, battery_log, "battery", battery),
        (solar_summary, solar_log, "solar", solar),
    ):
        assert f"stopped ({summary['stopped_by']}) cleanly" in log
        assert summary["pending"] == 0 and summary["anchored"] == summary["decisions"] >= 4
        store = workdir / ".autarky" / "agents" / f"{name}.decisions.sqlite"
        assert Path(summary["store"]) == Path(".autarky/agents") / f"{name}.decisions.sqlite"
        with DecisionStore(store) as decisions:
            assert decisions.count(key.did) == decisions.anchored_count(key.did) == summary["decisions"]
        head = live.http.get(f"/api/v1/provenance/decisions/{key.did}").json()["head"]
        assert head["count"] == summary["decisions"]
    verify = subprocess.run(
        [
            sys.executable,
            "-m",
            "autarky.cli",
            "decisions",
            "verify",
            "--machine",
            battery.did,
            "--store",
            str(workdir / ".autarky/agents/battery.decisions.sqlite"),
            "--node",
            live.url,
            "--json",
        ],
        cwd=workdir,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert verify.returncode == 0, verify.stderr
    assert json.loads(verify.stdout)["ok"] is True


def run_agent(workdir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "autarky.cli", "--keys-dir", str(workdir / "keys"), "agent", "run", *args],
        cwd=workdir,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def test_failures_before_the_machine_starts(workdir: Path) -> None:
    """Each exits 2 with one line on stderr (and one JSON error on stdout with --json); no node
    is needed to find any of them but the last, so nothing could have been submitted."""
    (workdir / "empty.py").write_text("from autarky.agent import Machine\n", encoding="utf-8")
    password = ("--password-file", str(workdir / "password.txt"))
    cases = [
        (
            ["missing.py", "--from", "battery", *password],
            "agent.file_not_found",
            "no agent file at missing.py",
        ),
        (["empty.py", "--from", "battery", *password], "agent.no_machine", "empty.py defines no machine"),
        (
            ["energy_buyer.py", "--from", "nobody", *password],
            "cli.unknown_identity",
            "no identity named 'nobody'",
        ),
        (
            ["energy_buyer.py", "--from", "battery", "--password-file", str(workdir / "wrong.txt")],
            "cli.wrong_secret",
            "password",
        ),
        (
            ["energy_buyer.py", "--from", "battery", "--set", "pay_to"],
            "cli.usage",
            "--set 'pay_to' is not KEY=VALUE",
        ),
        (
            ["energy_buyer.py", "--from", "battery", *password, "--node", "http://127.0.0.1:9"],
            "cli.node_unreachable",
            "no node answers at http://127.0.0.1:9",
        ),
    ]
    for args, code, message in cases:
        result = run_agent(workdir, *args, "--json")
        assert result.returncode == 2, (args, result.stderr)
        assert json.loads(result.stdout)["error"]["code"] == code, (args, result.stdout)
        errors = [line for line in result.stderr.splitlines() if line.strip()]
        assert len(errors) == 1 and errors[0].startswith("error: ") and message in errors[0], (args, errors)
    assert not (workdir / ".autarky").exists()  # no decision store was even opened
