"""``autarky cluster up`` and ``cluster status`` as a person uses them: subprocesses, real nats-servers.

One run: ``cluster up --nodes 3 --dir D --json`` starts 3 nats-servers and 3 node processes and prints
one JSON object with every address and pid; signed transfers from the genesis-funded faucet go to
node 0; all three nodes must reach the same height and state root, with a quorum certificate at or
above the last transfer's block; ``cluster status --json`` must agree; then SIGINT to ``cluster up``
must stop every process it started (checked by pid) and exit 0. And ``node start`` on the nats
engine refuses a server without ``sync_interval: always`` with one clear line.
"""

from __future__ import annotations

import asyncio
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from autarky.crypto.keys import SigningKey
from autarky.crypto.keystore import load_keystore
from autarky.engines.nats_server import LocalCluster
from autarky.node.genesis import dev_genesis
from autarky.node.node import init_data_dir
from autarky.web.client import AutarkyClient

pytestmark = pytest.mark.slow

START_TIMEOUT_S = 60
STOP_TIMEOUT_S = 40
CONVERGE_TIMEOUT_S = 20
TRANSFERS = 5


def _env(state_dir: Path) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTARKY_")}
    env["XDG_STATE_HOME"] = str(state_dir)  # where `cluster up` records its directory
    env["COLUMNS"] = "200"
    return env


def _alive(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie, exited but not yet reaped, counts as gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return False
    return fields[0] != "Z"


def _read_json_line(process: subprocess.Popen[str], timeout_s: float, stderr_path: Path) -> dict[str, Any]:
    assert process.stdout is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if line.strip():
                document = json.loads(line)
                assert isinstance(document, dict)
                return document
        if process.poll() is not None:
            break
    raise AssertionError(f"cluster up printed no JSON in {timeout_s} s:\n{stderr_path.read_text()}")


@pytest.fixture
def cluster_up(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], Path, Path, dict[str, str]]]:
    """``autarky cluster up --nodes 3 --dir tmp/cluster --json`` in the background; never leaked."""
    directory = tmp_path / "cluster"
    env = _env(tmp_path / "state")
    stderr_path = tmp_path / "cluster-up.stderr"
    with stderr_path.open("w") as stderr:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "autarky.cli",
                "cluster",
                "up",
                "--nodes",
                "3",
                "--dir",
                str(directory),
                "--json",
            ],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=stderr,
            stdin=subprocess.DEVNULL,
            text=True,
        )
    try:
        yield process, directory, stderr_path, env
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        description = directory / "cluster.json"
        if description.exists():  # whatever is still recorded as running is killed, never left behind
            document = json.loads(description.read_text())
            for entry in document["nodes"] + document["servers"]:
                if entry.get("pid") and _alive(entry["pid"]):
                    os.kill(entry["pid"], signal.SIGKILL)
        if process.stdout is not None:
            process.stdout.close()


async def _transfers(api_url: str, faucet: SigningKey, to: str) -> int:
    """Send TRANSFERS committed transfers to ``to`` through one node; the last block's height."""
    height = 0
    async with AutarkyClient(api_url) as client:
        for amount in range(1, TRANSFERS + 1):
            result = await client.send(faucet, to=to, asset="aut", amount=amount)
            assert result.committed and result.ok, result
            assert result.height is not None
            height = max(height, result.height)
    return height


def _statuses(api_urls: list[str]) -> list[dict[str, Any]]:
    with httpx.Client(timeout=5) as client:
        return [client.get(f"{url}/api/v1/status").raise_for_status().json() for url in api_urls]


def _wait_agreement(api_urls: list[str], height: int) -> list[dict[str, Any]]:
    """All nodes at one height >= ``height``, one state root, and final at or above ``height``."""
    deadline = time.monotonic() + CONVERGE_TIMEOUT_S
    last: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        last = _statuses(api_urls)
        same = len({(status["height"], status["state_root"]) for status in last}) == 1
        if same and last[0]["height"] >= height and all(s["final_height"] >= height for s in last):
            return last
        time.sleep(0.1)
    raise AssertionError(f"the nodes did not agree at height >= {height}: {last}")


def _cluster_status(cwd: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    result = subprocess.run(
        [sys.executable, "-m", "autarky.cli", "cluster", "status", *args, "--json"],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode in (0, 1), result.stderr
    document = json.loads(result.stdout)  # exactly one JSON object on stdout
    assert isinstance(document, dict)
    return document


def test_cluster_up_replicates_transfers_and_stops_every_process(
    tmp_path: Path, cluster_up: tuple[subprocess.Popen[str], Path, Path, dict[str, str]]
) -> None:
    process, directory, stderr_path, env = cluster_up
    up = _read_json_line(process, START_TIMEOUT_S, stderr_path)

    assert up["status"] == "running" and up["chain_id"] == "autarky-local"
    assert len(up["nodes"]) == 3 and len(up["servers"]) == 3 and up["replicas"] == 3
    api_urls = [node["api_url"] for node in up["nodes"]]
    pids = [entry["pid"] for entry in up["nodes"] + up["servers"]]
    assert all(isinstance(pid, int) and _alive(pid) for pid in pids), pids
    assert json.loads((directory / "cluster.json").read_text())["nodes"][0]["pid"] == pids[0]
    for node in up["nodes"]:  # the node logs go to a file in its data directory
        assert Path(node["log_path"]).parent == Path(node["data_dir"])
        assert Path(node["log_path"]).is_file()

    # Signed transfers from the faucet (funded in the genesis) through node 0 only.
    faucet = load_keystore(up["faucet"]["keystore"])
    assert faucet.did == up["faucet"]["did"]
    recipient = SigningKey.generate().did
    height = asyncio.run(_transfers(api_urls[0], faucet, recipient))

    # Every node executed every block: same height, same state root, final at or above the transfers.
    agreed = _wait_agreement(api_urls, height)
    assert all(status["fault"] is None and status["validators"] == 3 for status in agreed)
    expected = sum(range(1, TRANSFERS + 1))
    with httpx.Client(timeout=5) as client:
        for url in api_urls:
            balances = client.get(f"{url}/api/v1/accounts/{recipient}/balances").raise_for_status().json()
            assert balances["balances"] == {"aut": expected}, url

    # `cluster status --json` sees the same; without --dir it finds the last `cluster up`.
    for args in (("--dir", str(directory)), ()):
        for _ in range(5):  # a heartbeat block may land between two nodes' answers: ask again
            report = _cluster_status(tmp_path, env, *args)
            if report["converged"]:
                break
        assert report["dir"] == str(directory.resolve())
        assert report["healthy"] is True and report["converged"] is True, report
        assert [node["api_url"] for node in report["nodes"]] == api_urls
        for node in report["nodes"]:
            assert node["height"] >= height and node["final_height"] >= height
            assert node["engine"]["connected"] is True
            assert node["nats_server"]["healthy"] is True
        assert [server["healthy"] for server in report["servers"]] == [True, True, True]

    # Ctrl-C: every process `cluster up` started is gone, and it says so.
    process.send_signal(signal.SIGINT)
    assert process.wait(STOP_TIMEOUT_S) == 0, stderr_path.read_text()
    deadline = time.monotonic() + 5
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in pids if _alive(pid)], stderr_path.read_text()
    stderr = stderr_path.read_text()
    assert "stopped: 3 nodes and 3 nats-servers have all exited" in stderr
    assert process.stdout is not None and process.stdout.read() == ""  # one JSON object, nothing more
    recorded = json.loads((directory / "cluster.json").read_text())
    assert all(entry["pid"] is None for entry in recorded["nodes"] + recorded["servers"])


def test_cluster_status_without_a_cluster_is_a_usage_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "autarky.cli", "cluster", "status", "--dir", str(tmp_path / "none")],
        cwd=tmp_path,
        env=_env(tmp_path / "state"),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )
    assert result.returncode == 2
    assert "holds no cluster" in result.stderr


def test_node_start_refuses_a_server_without_sync_always(tmp_path: Path) -> None:
    """``node start`` with engine nats checks every server first and names what to change."""
    cluster = LocalCluster.create(tmp_path / "nats", 1, sync_always=False)
    try:
        asyncio.run(cluster.start())
        key = SigningKey.generate()
        genesis = dev_genesis("lax-chain", time_ms=0, allocations=[], validators=[key.public_key.raw])
        init_data_dir(tmp_path / "node", genesis, key)
        config = tmp_path / "autarky.toml"
        config.write_text(
            f'[node]\ndata_dir = "{tmp_path / "node"}"\nengine = "nats"\n\n'
            f'[nats]\nservers = ["{cluster.urls[0]}"]\nmonitor_urls = ["{cluster.monitor_urls[0]}"]\n'
            "replicas = 1\n\n[api]\nport = 0\n",
            encoding="utf-8",
        )
        result = subprocess.run(
            [sys.executable, "-m", "autarky.cli", "--config", str(config), "node", "start"],
            cwd=tmp_path,
            env=_env(tmp_path / "state"),
            capture_output=True,
            text=True,
            timeout=60,
            stdin=subprocess.DEVNULL,
        )
    finally:
        cluster.stop()
    assert result.returncode == 1, result.stderr
    assert "nats-server requirements not met" in result.stderr
    assert "sync_interval: always" in result.stderr
    assert "Traceback" not in result.stderr
