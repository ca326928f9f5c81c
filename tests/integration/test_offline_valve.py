"""Issue 4's "done when": ``python examples/offline_valve.py`` runs as written; and the proof-checked
directory it relies on (``autarky.verify.directory``) refuses what it cannot stand behind.

The example starts a node, sets up an owner, a pump controller and a valve with grants, fetches
and checks the valve's directory over the API, stops the node, and shows the valve accepting the
granted command and refusing six others offline. Its last line is one JSON object.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from autarky.messaging.directory import key_id
from autarky.messaging.errors import MessageError
from autarky.modules import build_app
from autarky.modules.identity import keeper as identity_keeper
from autarky.modules.policy import messages as policy
from autarky.modules.policy.keeper import new_grant_id
from autarky.verify import ProofBundle, TrustAnchor, VerifyError
from autarky.verify.directory import ProofCheckedDirectory, account_keys
from autarky.web.testing import CHAIN_ID, LiveNode, TestKeys, standard_genesis

ROOT = Path(__file__).resolve().parents[2]
KEYS = TestKeys.create()


def test_the_offline_valve_example_runs_as_written() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "offline_valve.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = done.stdout.strip().splitlines()
    result = json.loads(lines[-1])
    assert result["accepted"] == 1 and result["refused"] == 6
    assert [r["code"] for r in result["refusals"]] == [
        "msg.malformed",
        "msg.key_revoked",
        "msg.grant_expired",
        "msg.grant_revoked",
        "msg.replay",
        "msg.no_grant",
    ]
    assert result["ledger_refused_wider_delegation"] == "policy.widens"
    assert any("node stopped" in line for line in lines) and "ACCEPT" in done.stdout


def test_the_proof_checked_directory(tmp_path: Path) -> None:
    battery, alice = KEYS.battery, KEYS.alice
    with LiveNode(tmp_path / "node", standard_genesis(KEYS)) as live:
        status = live.http.get("/api/v1/status").json()
        anchor = TrustAnchor.of_node(CHAIN_ID, status["node_key"])
        keys = account_keys(battery.did) + account_keys(alice.did)
        first = ProofBundle.from_json(
            live.http.get("/api/v1/proofs", params=[("key", k) for k in keys]).json()
        )
        live.submit(live.transfer(alice, KEYS.bob.did, 1))
        second = ProofBundle.from_json(
            live.http.get("/api/v1/proofs", params=[("key", k) for k in keys]).json()
        )
    assert second.header.height > first.header.height
    authenticator = build_app().authenticator
    directory = ProofCheckedDirectory(anchor, authenticator, max_age_ms=60_000)
    assert directory.add(second) == second.header.height
    assert directory.add(first) == first.header.height  # older: kept, never overwriting newer values
    now = second.header.time_ms + 1_000

    info = directory.key(key_id(battery.did, battery.public_key.raw), now)
    assert info.account == battery.did and info.active and info.actions is None
    for kid, code in (
        (key_id(battery.did, alice.public_key.raw), "msg.unknown_key"),  # not a key of the battery
        (key_id(KEYS.carol.did, KEYS.carol.public_key.raw), "msg.unknown_key"),  # nothing proved about carol
        ("not-a-kid", "msg.unknown_key"),
    ):
        with pytest.raises(MessageError) as refused:
            directory.key(kid, now)
        assert refused.value.code == code, kid
    with pytest.raises(MessageError) as stale:
        directory.key(key_id(battery.did, battery.public_key.raw), second.header.time_ms + 60_001)
    assert stale.value.code == "msg.stale_directory"
    with pytest.raises(MessageError) as unknown_grant:
        directory.authorize(battery.did, "00" * 32, "actuate", "valve-7", now)
    assert unknown_grant.value.code == "msg.unknown_grant"
    assert directory.missing_grants(b"\x01" * 32) == [b"\x01" * 32]

    # Carried as bytes and checked again on the way in; damaged bytes are refused.
    restored = ProofCheckedDirectory.restore(directory.export(), anchor, authenticator, max_age_ms=60_000)
    assert restored.key(info.kid, now) == info
    damaged = bytearray(directory.export())
    damaged[-40] ^= 0x01
    with pytest.raises(VerifyError):
        ProofCheckedDirectory.restore(bytes(damaged), anchor, authenticator)
    other = TrustAnchor(CHAIN_ID, node_keys=(KEYS.bob.public_key.raw,))
    with pytest.raises(VerifyError) as untrusted:
        ProofCheckedDirectory.restore(directory.export(), other, authenticator)
    assert untrusted.value.code == "verify.untrusted_signer"
    assert {key for key, _, _ in first.entries} == {identity_keeper.account_key(battery.did), keys[1]}


def test_grants_over_http(tmp_path: Path) -> None:
    """``GET /api/v1/grants`` lists grants by grantee or grantor with their standing, which follows
    revocation; ``GET /api/v1/grants/{id}`` shows one with its chain; bad input gets typed errors."""
    alice, bob = KEYS.alice, KEYS.bob
    with LiveNode(tmp_path / "node", standard_genesis(KEYS)) as live:
        tx = live.sign(alice, [policy.grant(bob.did, "actuate", "valve-7", max_uses=5)])
        assert live.submit(tx).status_code == 200
        grant_id = new_grant_id(tx.hash, 0).hex()
        listed = live.http.get("/api/v1/grants", params={"grantee": bob.did}).json()
        assert listed["total"] == 1
        (entry,) = listed["grants"]
        assert (entry["id"], entry["capability"], entry["standing"]) == (grant_id, "actuate:valve-7", "valid")
        assert entry["chain"] == [grant_id] and entry["grantor"] == alice.did and entry["max_uses"] == 5
        assert live.http.get("/api/v1/grants", params={"grantor": alice.did}).json()["grants"] == [entry]
        assert live.submit(live.sign(alice, [policy.revoke(bytes.fromhex(grant_id))])).status_code == 200
        one = live.http.get(f"/api/v1/grants/{grant_id}").json()
        assert one["standing"] == "policy.revoked" and one["revoked"] is not None
        for path, params, status, code in (
            ("/api/v1/grants", {}, 400, "api.invalid_request"),
            ("/api/v1/grants", {"grantee": "bob"}, 400, "api.invalid_did"),
            (f"/api/v1/grants/{'ab' * 32}", {}, 404, "api.not_found"),
            ("/api/v1/grants/xyz", {}, 400, "api.invalid_hex"),
        ):
            answer = live.http.get(path, params=params)
            assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), (path, answer.text)


def test_the_trust_guide_refresh_example_runs(tmp_path: Path) -> None:
    """docs/trust.md's ``refresh`` example, run as written against a real node."""
    text = (ROOT / "docs" / "trust.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    example = next(block for block in blocks if "async def refresh" in block)
    namespace: dict[str, Any] = {}
    exec(compile(example, "docs/trust.md", "exec"), namespace)
    battery = KEYS.battery
    with LiveNode(tmp_path / "node", standard_genesis(KEYS)) as live:
        status = live.http.get("/api/v1/status").json()
        anchor = TrustAnchor.of_node(CHAIN_ID, status["node_key"])
        directory = asyncio.run(namespace["refresh"](live.url, anchor, [battery.did]))
        now = live.call(lambda: live.node.header.time_ms)
    assert directory.key(key_id(battery.did, battery.public_key.raw), now).account == battery.did
