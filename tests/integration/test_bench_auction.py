"""``autarky bench auction`` as a subprocess, with a small book: one JSON object on stdout with the
figures P5 names (``clear_ms``, ``matches_reference``) and the reference's, consistent with each
other; the same seed draws the same book. Timings are printed, never asserted against the target
here (the machine is noisy); docs/market.md holds the measured figures.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

pytestmark = pytest.mark.slow

TIMEOUT_S = 180


def bench(*args: str) -> dict[str, Any]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTARKY_")}
    result = subprocess.run(
        [sys.executable, "-m", "autarky.cli", "bench", "auction", "--json", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)  # exactly one JSON document on stdout
    assert isinstance(report, dict)
    print(json.dumps(report))
    return report


def test_bench_auction_matches_the_lp_reference() -> None:
    report = bench("--orders", "2000", "--seed", "7", "--runs", "3")
    for field in ("orders", "clear_ms", "lp_ms", "matches_reference", "price", "volume"):
        assert field in report, field
    assert report["orders"] == 2000 == report["bids"] + report["asks"]
    assert report["matches_reference"] is True
    assert report["price"] == report["reference_price"] and report["volume"] == report["reference_volume"] > 0
    assert 50 <= report["price"] <= 150 and 0 < report["filled_orders"] <= 2000
    assert report["clear_ms"] > 0 and report["lp_ms"] > 0 and len(report["clear_ms_runs"]) == 3
    assert report["clear_ms"] == sorted(report["clear_ms_runs"])[1]
    assert report["meets_target"] == (report["clear_ms"] < report["clear_ms_target"] == 100)

    again = bench("--orders", "2000", "--seed", "7", "--runs", "1")
    assert (again["price"], again["volume"], again["filled_orders"]) == (
        report["price"],
        report["volume"],
        report["filled_orders"],
    )


def test_bench_auction_refuses_bad_arguments() -> None:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTARKY_")}
    result = subprocess.run(
        [sys.executable, "-m", "autarky.cli", "bench", "auction", "--orders", "0"],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2 and "--orders" in result.stderr
