"""The ``autarky`` command as a person uses it: a subprocess, a real node, a temporary directory.

One walk-through (init → node start → identities → payments → guardrails → rotation → stop → replay
→ snapshot) checks that the commands work together; the smaller tests pin the error contract
(exit 2 for usage and configuration problems, 1 for refused operations, one JSON object with --json)
and that every command's --help works.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from autarky.cli.main import app

pytestmark = pytest.mark.slow

COMMAND_TIMEOUT_S = 60
NODE_START_TIMEOUT_S = 30
NODE_STOP_TIMEOUT_S = 20
PASSWORD = "correct horse battery staple"


def _env() -> dict[str, str]:
    """The caller's environment without any AUTARKY_* setting that could change what is tested."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("AUTARKY_")}
    env["COLUMNS"] = "200"
    return env


def autarky(cwd: Path, *args: str, expect: int | None = 0) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "-m", "autarky.cli", *args],
        cwd=cwd,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    if expect is not None:
        assert result.returncode == expect, (
            f"autarky {' '.join(args)} exited {result.returncode}, expected {expect}\n"
            f"stdout: {result.stdout}\nstderr: {result.stderr}"
        )
    return result


def autarky_json(cwd: Path, *args: str, expect: int = 0) -> dict[str, Any]:
    result = autarky(cwd, *args, "--json", expect=expect)
    document = json.loads(result.stdout)  # exactly one JSON document on stdout, nothing else
    assert isinstance(document, dict)
    return document


class RunningNode:
    """``autarky node start --port 0`` in the background; stopped with SIGTERM (killed if it hangs)."""

    def __init__(self, cwd: Path, *args: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "autarky.cli", "node", "start", "--port", "0", *args],
            cwd=cwd,
            env=_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            stdin=subprocess.DEVNULL,
        )
        self.url = self._read_url()

    def _read_url(self) -> str:
        assert self.process.stdout is not None
        deadline = time.monotonic() + NODE_START_TIMEOUT_S
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line:
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"node exited early: {self.process.stderr.read() if self.process.stderr else ''}"
                    )
                continue
            match = re.match(r"^API (http://\S+)$", line.strip())
            if match:
                return match.group(1)
        raise AssertionError("node did not print its API address in time")

    def stop(self) -> tuple[int, str]:
        """SIGTERM, wait; the exit code and stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            _, stderr = self.process.communicate(timeout=NODE_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.process.kill()
            _, stderr = self.process.communicate(timeout=NODE_STOP_TIMEOUT_S)
        return self.process.returncode, stderr


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "password.txt").write_text(PASSWORD + "\n", encoding="utf-8")
    return tmp_path


@pytest.fixture
def node_process() -> Iterator[list[RunningNode]]:
    """Collects the nodes a test starts and makes sure each one is stopped."""
    nodes: list[RunningNode] = []
    try:
        yield nodes
    finally:
        for node in nodes:
            node.stop()


def test_walkthrough_from_init_to_snapshot(workdir: Path, node_process: list[RunningNode]) -> None:
    # -- init: config, owner identity, funded genesis, data dir --------------------------------
    init = autarky_json(workdir, "init", "--chain-id", "cli-test", "--insecure-demo")
    owner = init["owner"]["did"]
    assert init["chain_id"] == "cli-test" and init["config_written"] is True
    assert (workdir / "autarky.toml").exists() and (workdir / ".autarky/keys/owner.json").exists()
    assert init["owner"]["balance"] == {"aut": 1_000_000_000}

    node = RunningNode(workdir)
    node_process.append(node)
    remote = ("--node", node.url)

    # -- identities ---------------------------------------------------------------------------
    pump = autarky_json(workdir, "identity", "new", "pump", "--password-file", "password.txt")
    assert pump["protection"] == "password"
    keystore = json.loads((workdir / ".autarky/keys/pump.json").read_text())
    assert keystore["crypto"]["kdf"] == "argon2id"
    shop = autarky_json(workdir, "identity", "new", "shop", "--insecure-demo")

    registered = autarky_json(
        workdir,
        *remote,
        "identity",
        "register",
        "pump",
        "--owner",
        "owner",
        "--kind",
        "water-pump",
        "--maker",
        "Grundfos",
        "--capability",
        "pump",
        "--meta",
        "site=field-3",
        "--serial",
        "SN-1",
        "--password-file",
        "password.txt",
    )
    assert registered["status"] == "committed" and registered["did"] == pump["did"]
    shown = autarky_json(workdir, *remote, "identity", "show", "pump")
    record = shown["ledger"]["identity"]
    assert record["kind"] == "water-pump" and record["owner"] == owner
    assert record["metadata"] == {"site": "field-3"} and record["capabilities"] == ["pump"]

    # -- payments -------------------------------------------------------------------------------
    autarky_json(workdir, *remote, "wallet", "send", "--from", "owner", "--to", "pump", "--amount", "1000")
    assert autarky_json(workdir, *remote, "wallet", "balance", "pump")["balances"] == {"aut": 1000}
    assert autarky_json(workdir, *remote, "wallet", "balance", shop["did"])["balances"] == {}

    # -- escrow: lock for two beneficiaries, list, release part, refund the rest -----------------
    locked = autarky_json(
        workdir,
        *remote,
        "escrow",
        "lock",
        "--from",
        "owner",
        "--to",
        "pump",
        "--to",
        "shop",
        "--amount",
        "300",
        "--expires-in",
        "2h",
        "--purpose",
        "pump service",
    )
    lock_id = locked["lock"]
    listed = autarky_json(workdir, *remote, "escrow", "locks", "owner")
    assert [item["id"] for item in listed["locks"]] == [lock_id] and listed["total"] == {"aut": 300}
    named = autarky_json(workdir, *remote, "escrow", "locks", "shop", "--beneficiary")
    assert [item["id"] for item in named["locks"]] == [lock_id]
    autarky_json(
        workdir,
        *remote,
        "escrow",
        "release",
        "--from",
        "owner",
        "--lock",
        lock_id,
        "--to",
        "shop",
        "--amount",
        "120",
    )
    refused = autarky(workdir, *remote, "escrow", "refund", "--from", "owner", "--lock", lock_id, expect=1)
    assert "escrow.not_authorized" in refused.stderr
    autarky_json(workdir, *remote, "escrow", "refund", "--from", "shop", "--lock", lock_id)
    assert autarky_json(workdir, *remote, "escrow", "locks", "owner")["locks"] == []
    # 120 released to the shop, less the fee of 1 it paid to refund the rest
    assert autarky_json(workdir, *remote, "wallet", "balance", "shop")["balances"] == {"aut": 119}

    # -- guardrails and refusals with their codes -----------------------------------------------
    autarky(
        workdir,
        *remote,
        "wallet",
        "guardrails",
        "set",
        "pump",
        "--owner",
        "owner",
        "--per-tx",
        "100",
        "--per-window",
        "150",
        "--window-blocks",
        "100000",
        "--allow",
        "shop",
    )
    guard = autarky_json(workdir, *remote, "wallet", "guardrails", "pump")
    assert guard["guardrails"]["limits"]["aut"] == {"per_tx": 100, "per_window": 150, "cosign_above": None}
    assert guard["guardrails"]["allowlist"] == [shop["did"]]

    pump_send = ("wallet", "send", "--from", "pump", "--to", "shop", "--password-file", "password.txt")
    refused = autarky_json(workdir, *remote, *pump_send, "--amount", "120", expect=1)
    assert refused["error"]["code"] == "bank.per_tx_cap"
    refused_hash = refused["error"]["tx_hash"]
    human = autarky(workdir, *remote, *pump_send, "--amount", "120", expect=1)
    assert "bank.per_tx_cap" in human.stderr and len(human.stderr.strip().splitlines()) == 1
    assert human.stdout == ""
    sent = autarky_json(workdir, *remote, *pump_send, "--amount", "90")
    window = autarky_json(workdir, *remote, *pump_send, "--amount", "90", expect=1)
    assert window["error"]["code"] == "bank.window_limit"
    elsewhere = autarky_json(
        workdir,
        *remote,
        "wallet",
        "send",
        "--from",
        "pump",
        "--to",
        "owner",
        "--amount",
        "1",
        "--password-file",
        "password.txt",
        expect=1,
    )
    assert elsewhere["error"]["code"] == "bank.counterparty_not_allowed"

    # -- transactions --------------------------------------------------------------------------
    failed_tx = autarky_json(workdir, *remote, "tx", "show", refused_hash)
    assert failed_tx["receipt"]["code"] == "bank.per_tx_cap" and failed_tx["tx"]["sender"] == pump["did"]
    ok_tx = autarky_json(workdir, *remote, "tx", "show", sent["tx_hash"])
    assert ok_tx["receipt"]["ok"] is True and ok_tx["height"] == sent["height"]
    missing = autarky_json(workdir, *remote, "tx", "show", "ab" * 32, expect=1)
    assert missing["error"]["code"] == "api.not_found"

    # -- audit: who did what -------------------------------------------------------------------------
    refused = autarky_json(workdir, *remote, "audit", "--machine", "pump", "--refused")["entries"]
    assert [(e["sender"], e["action"], e["code"]) for e in refused][-1] == (
        pump["did"],
        "bank/send",
        "bank.per_tx_cap",
    )
    registered = autarky_json(workdir, *remote, "audit", "--action", "identity/", "--limit", "200")["entries"]
    assert registered and all(
        e["action"].startswith("identity/") and e["sender"] == owner for e in registered
    )
    assert pump["did"] in {party for e in registered for party in e["parties"]}
    assert "no matching actions" in autarky(workdir, *remote, "audit", "--grant", "ab" * 32).stdout
    assert autarky(workdir, *remote, "audit", "--refused", "--accepted", expect=2).returncode == 2

    # -- rotation: the DID stays, the key changes, the old keystore is kept ----------------------
    rotated = autarky_json(workdir, *remote, "identity", "rotate", "pump", "--password-file", "password.txt")
    assert rotated["did"] == pump["did"]
    assert (workdir / rotated["backup"]).exists()
    after = autarky_json(workdir, *remote, "identity", "show", "pump")
    assert after["local"]["key_did"] == rotated["new_key_did"] != pump["did"]
    autarky(workdir, *remote, "wallet", "guardrails", "set", "pump", "--owner", "owner", "--clear")
    autarky(workdir, *remote, *pump_send, "--amount", "5")  # the new key signs for the same account
    by_owner = autarky_json(
        workdir,
        *remote,
        "identity",
        "rotate",
        "pump",
        "--by-owner",
        "owner",
        "--password-file",
        "password.txt",
    )
    assert by_owner["did"] == pump["did"]
    autarky(workdir, *remote, *pump_send, "--amount", "5")

    # -- owner's kill-switch ---------------------------------------------------------------------
    autarky(workdir, *remote, "wallet", "freeze", "pump", "--owner", "owner")
    frozen = autarky_json(workdir, *remote, *pump_send, "--amount", "5", expect=1)
    assert frozen["error"]["code"] == "bank.account_frozen"
    autarky(workdir, *remote, "wallet", "unfreeze", "pump", "--owner", "owner")
    autarky(workdir, *remote, "wallet", "sweep", "pump", "--owner", "owner")
    assert autarky_json(workdir, *remote, "wallet", "balance", "pump")["balances"] == {}

    document = autarky_json(workdir, *remote, "identity", "resolve", "pump")
    assert document["id"] == pump["did"] and document["controller"] == owner

    status = autarky_json(workdir, *remote, "node", "status")
    assert status["running"] is True and status["chain_id"] == "cli-test" and status["height"] > 0

    # -- stop cleanly ------------------------------------------------------------------------------
    code, stderr = node.stop()
    assert code == 0, stderr
    assert "stopped cleanly" in stderr
    offline = autarky_json(workdir, *remote, "node", "status")
    assert offline["running"] is False and offline["height"] >= status["height"]
    unreachable = autarky(workdir, *remote, "wallet", "balance", "pump", expect=2)
    assert "no node answers" in unreachable.stderr

    # -- replay from genesis equals the stored state ------------------------------------------------
    replay = autarky_json(workdir, "node", "replay")
    assert replay["equal"] is True, replay
    assert replay["state_root"] == offline["state_root"] and replay["height"] == offline["height"]
    assert replay["blocks_replayed"] == offline["height"]

    # -- snapshot export / import gives the same state root ---------------------------------------
    exported = autarky_json(workdir, "node", "snapshot", "export", "ledger.snap")
    assert exported["state_root"] == offline["state_root"] and exported["height"] == offline["height"]
    imported = autarky_json(workdir, "node", "snapshot", "import", "ledger.snap", "--data-dir", "restored")
    assert imported["state_root"] == offline["state_root"]
    restored = autarky_json(workdir, "node", "status", "--data-dir", "restored")
    assert restored["state_root"] == offline["state_root"] and restored["running"] is False
    again = autarky(workdir, "node", "snapshot", "import", "ledger.snap", "--data-dir", "restored", expect=2)
    assert "already holds a ledger" in again.stderr

    # A node started from the snapshot serves the same state and keeps going.
    restarted = RunningNode(workdir, "--data-dir", "restored")
    node_process.append(restarted)
    balance = autarky_json(workdir, "--node", restarted.url, "wallet", "balance", "owner")
    assert balance["balances"]["aut"] > 0
    autarky(
        workdir, "--node", restarted.url, "wallet", "send", "--from", "owner", "--to", "shop", "--amount", "3"
    )
    code, stderr = restarted.stop()
    assert code == 0, stderr


def test_tampered_snapshot_is_refused_before_anything_is_written(workdir: Path) -> None:
    autarky(workdir, "init", "--insecure-demo")
    autarky(workdir, "node", "snapshot", "export", "ledger.snap")
    raw = bytearray((workdir / "ledger.snap").read_bytes())
    raw[-3] ^= 0x01  # inside the last state value
    (workdir / "tampered.snap").write_bytes(bytes(raw))
    result = autarky(
        workdir, "node", "snapshot", "import", "tampered.snap", "--data-dir", "restored", expect=2
    )
    assert "state" in result.stderr or "canonical" in result.stderr
    assert not (workdir / "restored").exists()


# -- the error contract ---------------------------------------------------------------------------------


def test_bad_config_is_exit_2_with_a_clear_message(tmp_path: Path) -> None:
    (tmp_path / "autarky.toml").write_text('[api]\nport = "eighty"\n', encoding="utf-8")
    result = autarky(tmp_path, "node", "status", expect=2)
    assert "api.port" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1

    (tmp_path / "autarky.toml").write_text("[api\nport = 1\n", encoding="utf-8")
    result = autarky(tmp_path, "node", "replay", expect=2)
    assert "not valid TOML" in result.stderr

    (tmp_path / "autarky.toml").write_text("[nodes]\ndata_dir = 'x'\n", encoding="utf-8")
    as_json = autarky_json(tmp_path, "node", "replay", expect=2)
    assert as_json["error"]["code"] == "cli.config" and "nodes" in as_json["error"]["message"]

    result = autarky(tmp_path, "--config", "missing.toml", "node", "status", expect=2)
    assert "missing.toml does not exist" in result.stderr


def test_usage_problems_are_exit_2(tmp_path: Path) -> None:
    result = autarky(tmp_path, "wallet", "balance", "nobody", expect=2)
    assert "no identity named 'nobody'" in result.stderr
    result = autarky(tmp_path, "wallet", "balance", "did:key:zNotAKey", expect=2)
    assert "not an Ed25519 did:key" in result.stderr
    result = autarky(tmp_path, "tx", "show", "xyz", expect=2)
    assert "64 hex characters" in result.stderr
    result = autarky(tmp_path, "node", "replay", expect=2)
    assert "no ledger" in result.stderr
    result = autarky(tmp_path, "identity", "new", "x", expect=2)  # no terminal to ask for a password
    assert "--password-file" in result.stderr
    result = autarky(
        tmp_path, "wallet", "send", "--from", "a", expect=2
    )  # a missing option: click's own check
    assert "--to" in result.stderr


def test_init_refuses_to_initialise_twice(tmp_path: Path) -> None:
    autarky(tmp_path, "init", "--insecure-demo")
    result = autarky(tmp_path, "init", "--insecure-demo", expect=2)
    assert "already holds a ledger" in result.stderr


# -- help -----------------------------------------------------------------------------------------------


def _subcommands(command: Any) -> dict[str, Any]:
    """A group's commands through click's interface (the root group loads its groups lazily)."""
    if not hasattr(command, "list_commands"):
        return {}
    ctx = typer.Context(command)
    return {name: command.get_command(ctx, name) for name in command.list_commands(ctx)}


def _command_paths() -> list[list[str]]:
    import typer.main

    root = typer.main.get_command(app)
    paths: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        paths.append(path)
        for name, sub in _subcommands(command).items():
            walk(sub, [*path, name])

    walk(root, [])
    return paths


COMMAND_PATHS = _command_paths()


def test_every_command_is_covered() -> None:
    names = {" ".join(path) for path in COMMAND_PATHS}
    expected = {
        "init",
        "up",
        "node start",
        "node status",
        "node replay",
        "node snapshot export",
        "node snapshot import",
        "identity new",
        "identity show",
        "identity register",
        "identity rotate",
        "identity resolve",
        "wallet balance",
        "wallet send",
        "wallet guardrails show",
        "wallet guardrails set",
        "wallet freeze",
        "wallet unfreeze",
        "wallet sweep",
        "tx show",
        "audit",
        "mqtt bridge",
        "mqtt map",
        "escrow lock",
        "escrow release",
        "escrow refund",
        "escrow locks",
        "agent run",
    }
    assert expected <= names, expected - names


@pytest.mark.parametrize("path", COMMAND_PATHS, ids=lambda path: " ".join(path) or "autarky")
def test_help_of_every_command(path: list[str]) -> None:
    result = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    # rich turns ":name:" into an emoji: "did:key:z6Mk" in a help text came out as "did🔑z6Mk".
    emoji = [char for char in result.output if ord(char) >= 0x1F000]
    assert not emoji, f"autarky {' '.join(path)} --help shows {emoji}: write the text without ':name:'"
    if path and not _subcommands(_leaf(path)):
        assert "Example:" in result.output, f"autarky {' '.join(path)} --help has no example"


def _leaf(path: list[str]) -> Any:
    import typer.main

    command: Any = typer.main.get_command(app)
    for name in path:
        command = _subcommands(command)[name]
    return command


@pytest.mark.parametrize("args", [["--help"], ["wallet", "guardrails", "set", "--help"], ["up", "--help"]])
def test_help_as_a_subprocess(tmp_path: Path, args: list[str]) -> None:
    result = autarky(tmp_path, *args)
    assert "Usage:" in result.stdout
