"""``autarky bench cluster`` as a subprocess, with small numbers: a local cluster of 3 nats-servers
(replicas 3) and 3 node processes, driven through the HTTP API.

* throughput mode: the JSON has the figures the issue names (``transfers_per_s``,
  ``embedded_transfers_per_s``, ``ratio``, ``p99_final_ms``) and the audit finds nothing lost,
  nothing applied twice, supply conserved and equal state roots. Timings are printed, never asserted
  (the machine is noisy; the figures live in docs/benchmarks.md);
* ``--fault kill-node``: the node cutting blocks is SIGKILLed while transfers are offered and started
  again; it must catch up, and every acknowledged transfer must be on every node exactly once.

The other fault modes (kill-server, restart-all, pause-server) take the same path through the
bench; run them with ``autarky bench cluster --fault MODE``. Each run leaves its cluster in the
test's temporary directory; a bench that is killed on timeout has its servers and nodes killed by
the pids in ``cluster.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

TIMEOUT_S = 150
AUDIT_KEYS = ("acknowledged", "lost", "applied_twice", "conserved", "roots_equal")


def _kill_leftovers(base: Path) -> None:
    """Kill the servers and nodes a bench killed on timeout could not stop (pids from cluster.json)."""
    try:
        document = json.loads((base / "cluster" / "cluster.json").read_text())
    except (OSError, ValueError):
        return
    for entry in [*document.get("nodes", []), *document.get("servers", [])]:
        pid = entry.get("pid")
        if isinstance(pid, int):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)


def _bench(base: Path, *args: str) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTARKY_")}
    command = [sys.executable, "-m", "autarky.cli", "bench", "cluster", "--json", "--dir", str(base), *args]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True
    )
    try:
        stdout, stderr = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.kill()
        stdout, stderr = process.communicate()
        raise AssertionError(
            f"bench cluster {args} did not finish in {TIMEOUT_S} s\n{stderr[-3000:]}"
        ) from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        _kill_leftovers(base)
    assert process.returncode == 0, f"exit {process.returncode}\n{stderr[-3000:]}\n{stdout[-2000:]}"
    lines = stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must be one JSON object, got {len(lines)} lines"
    assert "[bench cluster" in stderr, "progress lines go to stderr"
    report: dict[str, Any] = json.loads(lines[0])
    return report


def _assert_audit(report: dict[str, Any]) -> None:
    details = {key: report.get(key) for key in (*AUDIT_KEYS, "failed", "rejected_codes", "per_node")}
    assert report["lost"] == 0, details
    assert report["applied_twice"] == 0, details
    assert report["conserved"] is True, details
    assert report["roots_equal"] is True, details
    assert report["balances_match"] is True, details
    assert report["failed"] == 0, details
    assert report["unacknowledged"] == 0 and report["rejected"] == 0, details
    assert report["unreachable_nodes"] == []
    assert report["ok"] is True
    assert len(set(report["heights"])) == 1, report["heights"]


def test_throughput_mode_reports_the_issue_figures(tmp_path: Path) -> None:
    report = _bench(
        tmp_path, "--nodes", "3", "--transfers", "2000", "--accounts", "200", "--latency-seconds", "1"
    )
    print(
        "bench cluster:",
        {
            key: report[key]
            for key in ("transfers_per_s", "embedded_transfers_per_s", "ratio", "p99_final_ms")
        },
    )
    for key in (
        "transfers_per_s",
        "final_transfers_per_s",
        "embedded_transfers_per_s",
        "ratio",
        "p99_final_ms",
    ):
        assert isinstance(report[key], int | float) and report[key] > 0, key
    assert report["ratio"] == pytest.approx(
        report["transfers_per_s"] / report["embedded_transfers_per_s"], rel=0.01
    )
    assert (report["nodes"], report["servers"], report["fault"], report["transfers"]) == (3, 3, None, 2000)
    assert report["elapsed_s"] > 0
    # At least 200 transfers offered in the latency phase, every 10th a probe timed to finality.
    assert report["latency_transfers"] >= 200
    assert report["latency_samples"] >= report["latency_transfers"] // 10
    assert report["latency_not_final"] == 0
    assert report["final_transfers_per_s"] <= report["transfers_per_s"] * 1.001
    # CPU while the latency phase offered its transfers: the three nodes and servers are counted,
    # and the machine's busy cores are its CPU seconds over the phase's wall time.
    cpu = report["latency_cpu_s"]
    assert len(cpu["nodes"]) == 3 and len(cpu["nats_servers"]) == 3
    assert all(seconds > 0 for seconds in cpu["nodes"]), cpu
    assert cpu["busy_cores"] == pytest.approx(cpu["machine_busy"] / cpu["wall_s"], rel=0.05, abs=0.05)
    assert 0 < cpu["busy_cores"] <= cpu["cores"] + 0.1
    assert report["embedded"]["failed"] == 0
    # Every transfer of both phases and the markers were acknowledged and audited on every node.
    assert report["acknowledged"] >= 2000 + 200
    _assert_audit(report)


def test_killed_node_catches_up_and_nothing_is_lost_or_applied_twice(tmp_path: Path) -> None:
    report = _bench(
        tmp_path, "--fault", "kill-node", "--transfers", "2000", "--rate", "200", "--accounts", "200"
    )
    print("bench cluster kill-node:", {key: report[key] for key in (*AUDIT_KEYS, "retries", "elapsed_s")})
    assert (report["fault"], report["transfers"], report["nodes"]) == ("kill-node", 2000, 3)
    events = [event["event"] for event in report["fault_events"]]
    assert any(event.startswith("SIGKILL node") for event in events), events
    assert any(event.endswith("ready") for event in events), events
    assert report["retries"] > 0, "the killed node's clients must have retried elsewhere"
    assert report["acknowledged"] == 2000 + 1  # the transfers and the marker
    _assert_audit(report)
