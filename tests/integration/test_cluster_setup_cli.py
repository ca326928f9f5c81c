"""docs/cluster.md as commands: two machines (two directories) make their node keys, one writes the
genesis naming both as validators, the other initialises from it, and both run `autarky node start`
on the nats engine against a real 3-server JetStream cluster; they reach the same state root and
certify blocks. Every process started here is stopped in a ``finally``.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_cli import _env, autarky, autarky_json  # the same subprocess helpers

from autarky.engines.nats_server import LocalCluster, free_port

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def _status(port: int) -> dict[str, Any] | None:
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/api/v1/status", timeout=2)
    except httpx.HTTPError:
        return None
    return answer.json() if answer.status_code == 200 else None


def test_two_machines_from_node_keys_to_certified_blocks(tmp_path: Path) -> None:
    cluster = LocalCluster.create(tmp_path / "nats", 3)
    processes: list[subprocess.Popen[bytes]] = []
    logs: list[Any] = []
    try:
        asyncio.run(cluster.start())
        machines = [tmp_path / "plant-a", tmp_path / "plant-b"]
        keys = []
        for machine in machines:
            machine.mkdir()
            keys.append(autarky_json(machine, "node", "key", "--json")["public_key"])
        nats_options = []
        for url in cluster.urls:
            nats_options += ["--nats-server", url]
        for url in cluster.monitor_urls:
            nats_options += ["--nats-monitor", url]
        ports = [free_port(), free_port()]
        a, b = machines
        autarky(
            a, "init", "--chain-id", "plant-7", "--insecure-demo", "--port", str(ports[0]),
            "--validator", keys[0], "--validator", keys[1], *nats_options,
        )  # fmt: skip
        genesis = json.loads((a / ".autarky/node/genesis.json").read_text())
        assert sorted(genesis["app_state"]["validators"]["validators"]) == sorted(keys)
        autarky(
            b, "init", "--insecure-demo", "--port", str(ports[1]),
            "--genesis", str(a / ".autarky/node/genesis.json"), *nats_options,
        )  # fmt: skip
        # Each machine kept the key it made before the genesis was written.
        for machine, key in zip(machines, keys, strict=True):
            assert autarky_json(machine, "node", "key", "--json")["public_key"] == key
            assert 'engine = "nats"' in (machine / "autarky.toml").read_text()
        for machine in machines:
            log = (machine / "node.log").open("wb")
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    [sys.executable, "-m", "autarky.cli", "node", "start"],
                    cwd=machine,
                    env=_env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                )
            )
        deadline = time.monotonic() + 60
        statuses: list[dict[str, Any] | None] = [None, None]
        while time.monotonic() < deadline:
            statuses = [_status(port) for port in ports]
            if all(s is not None and s["final_height"] >= 3 for s in statuses):
                break
            time.sleep(0.5)
        assert all(s is not None for s in statuses), [
            (machine / "node.log").read_text()[-2000:] for machine in machines
        ]
        height = min(s["final_height"] for s in statuses if s is not None)
        assert height >= 3, statuses
        blocks = [httpx.get(f"http://127.0.0.1:{port}/api/v1/blocks/{height}").json() for port in ports]
        assert blocks[0]["header"] == blocks[1]["header"]
        assert blocks[0]["final"] and blocks[0]["certificate"]["block_hash"] == blocks[0]["header"]["hash"]
        assert all(s is not None and s["validator"] and s["fault"] is None for s in statuses)
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        for log in logs:
            log.close()
        cluster.stop()
