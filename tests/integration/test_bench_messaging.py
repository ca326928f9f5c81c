"""``autarky bench messaging`` as a subprocess, with small numbers: two agent processes round-tripping
signed messages through a local nats-server that the benchmark starts and stops itself.

The JSON must carry the figures the issue names (``messages_per_s``, ``p99_rtt_ms``) and the
baseline, every request and reply must have been verified, none refused, and no nats-server or
agent process may outlive the command. Timings are printed, never asserted: the machine is noisy,
and the measured figures live in docs/messaging.md.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

TIMEOUT_S = 180
MESSAGES = 400


def _processes_with_environment(marker: bytes) -> list[str]:
    """Command lines of live processes whose environment holds ``marker`` (the test's own TMPDIR)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if marker not in (entry / "environ").read_bytes().split(b"\x00"):
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\x00", b" ").decode(errors="replace")
        except OSError:  # gone meanwhile, or not ours to read
            continue
        found.append(command)
    return found


def test_bench_messaging_prints_sane_figures_and_leaves_no_process(tmp_path: Path) -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTARKY_")}
    env["TMPDIR"] = str(tmp_path)  # the benchmark's temporary folder, and a mark on its processes
    command = [
        sys.executable,
        "-m",
        "autarky.cli",
        "bench",
        "messaging",
        "--json",
        "--messages",
        str(MESSAGES),
        "--concurrency",
        "8",
        "--latency-round-trips",
        "20",
    ]
    result = subprocess.run(
        command,
        env=env,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=TIMEOUT_S,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    print(json.dumps(report, indent=2))

    assert report["ok"] is True
    assert report["messages"] == report["round_trips"] == MESSAGES
    assert report["requests_verified"] == report["replies_verified"] == MESSAGES
    assert report["refused"] == {"requester": {}, "responder": {}}
    assert report["concurrency"] == 8
    for field in ("messages_per_s", "round_trips_per_s", "verify_per_s_single_core", "ratio", "elapsed_s"):
        assert isinstance(report[field], int | float) and report[field] > 0, field
    assert report["messages_per_s"] == pytest.approx(2 * report["round_trips_per_s"], rel=0.01)
    assert report["ratio"] == pytest.approx(
        report["messages_per_s"] / report["verify_per_s_single_core"], abs=0.01
    )
    assert 0 < report["p50_rtt_ms"] <= report["p99_rtt_ms"] <= report["max_rtt_ms"]
    assert 0 < report["single_p50_rtt_ms"] <= report["single_p99_rtt_ms"]
    assert report["targets"] == {"messages_per_s": 5000}
    assert report["agents"]["processes"] == 2

    # every process the command started (nats-server, the responder agent) inherited TMPDIR: none is left
    assert _processes_with_environment(f"TMPDIR={tmp_path}".encode()) == []
    assert list(tmp_path.iterdir()) == []  # the temporary folder (config, store, log) is gone too
