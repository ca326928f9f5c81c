"""``autarky identity attest`` and friends as a person runs them: subprocesses against a real node.

One walk-through: a calibration lab attests a sensor's calibration, the resolved DID document shows
it (and the sensor's services), the attestation is checked from state proofs, the signed claim saved
to a file checks offline, the lab revokes it, and the refusals answer with their codes and exit
statuses (1 for a refused transaction, 2 for a usage problem before anything is sent).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli import RunningNode, autarky, autarky_json

from autarky.crypto.did import public_key_from_did
from autarky.modules.identity.attestations import check_attestation

pytestmark = pytest.mark.slow

PASSWORD = "correct horse battery staple"


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "password.txt").write_text(PASSWORD + "\n", encoding="utf-8")
    return tmp_path


def test_attest_resolve_check_and_revoke(workdir: Path) -> None:
    init = autarky_json(workdir, "init", "--chain-id", "attest-test", "--insecure-demo")
    owner = init["owner"]["did"]
    node = RunningNode(workdir)
    try:
        remote = ("--node", node.url)
        lab = autarky_json(workdir, "identity", "new", "lab", "--password-file", "password.txt")
        sensor = autarky_json(workdir, "identity", "new", "sensor", "--insecure-demo")
        for funded in ("lab", "sensor"):  # both pay fees
            autarky_json(
                workdir, *remote, "wallet", "send", "--from", "owner", "--to", funded, "--amount", "1000"
            )
        autarky_json(
            workdir, *remote, "identity", "register", "sensor", "--owner", "owner", "--kind", "thermometer",
        )  # fmt: skip
        unlock = ("--password-file", "password.txt")

        # -- services: the owner sets one on the machine, the machine itself another ------------------
        autarky_json(
            workdir, *remote, "identity", "service", "set", "sensor", "telemetry", "--type", "MQTTBroker",
            "--endpoint", "mqtts://broker.site-3.example:8883", "--by-owner", "owner",
        )  # fmt: skip
        autarky_json(
            workdir, *remote, "identity", "service", "set", "sensor", "home", "--type", "LinkedDomains",
            "--endpoint", "https://acme.example/t1",
        )  # fmt: skip
        removed = autarky_json(workdir, *remote, "identity", "service", "remove", "sensor", "home")
        assert removed["status"] == "committed" and removed["service_id"] == "home"

        # -- attest ------------------------------------------------------------------------------------
        attested = autarky_json(
            workdir, *remote, "identity", "attest", "lab", "sensor", "--schema", "calibration/v1",
            "--field", "standard=ISO-17025", "--field", "error_ppm:=120", "--field", "serial=0042",
            "--valid-from", "2026-01-15", "--valid-until", "2099-01-15T12:00:00+01:00",
            "--save", "claim.cbor", *unlock,
        )  # fmt: skip
        attestation = attested["id"]
        assert attested["status"] == "committed" and len(attestation) == 64
        assert attested["issuer"] == lab["did"] and attested["subject"] == sensor["did"]
        assert attested["fields"] == {"standard": "ISO-17025", "error_ppm": 120, "serial": "0042"}
        assert attested["valid_from_ms"] == 1_768_435_200_000  # 2026-01-15T00:00:00Z
        assert attested["valid_until_ms"] == 4_072_158_000_000  # 2099-01-15T11:00:00Z

        # The saved signed claim checks offline against the lab's key (an unregistered did:key).
        saved = (workdir / "claim.cbor").read_bytes()
        assert saved.hex() == attested["signed_claim"]
        lab_keys = (public_key_from_did(lab["did"]),)
        assert check_attestation(saved, lab_keys, 1_800_000_000_000).valid
        assert check_attestation(saved, lab_keys, 1_700_000_000_000).reason == "not_yet_valid"

        # -- resolve: services and attestations in the DID document --------------------------------------
        document = autarky_json(workdir, *remote, "identity", "resolve", "sensor")
        assert document["id"] == sensor["did"] and document["controller"] == owner
        assert document["service"] == [
            {
                "id": f"{sensor['did']}#telemetry",
                "type": "MQTTBroker",
                "serviceEndpoint": "mqtts://broker.site-3.example:8883",
            }
        ]
        (listed,) = document["autarky"]["attestations"]
        assert listed["id"] == attestation and listed["issuer"] == lab["did"]
        assert listed["valid"] is True and listed["verdict"] == "valid" and listed["revoked"] is None
        human = autarky(workdir, *remote, "identity", "resolve", "sensor")
        assert "telemetry" in human.stdout and "calibration/v1" in human.stdout
        assert "mqtts://broker.site-3.example:8883" in human.stdout

        # -- the attestation checked from state proofs ------------------------------------------------------
        status = autarky_json(workdir, *remote, "node", "status")
        checked = autarky_json(
            workdir, *remote, "identity", "attestation", attestation, "--node-key", status["node_key"]
        )
        assert checked["verdict"]["valid"] is True and checked["proved_against"]["pinned"] is True
        assert checked["attestation"]["fields"]["error_ppm"] == 120
        later = autarky_json(workdir, *remote, "identity", "attestation", attestation, "--at", "2100-01-01")
        assert later["verdict"]["reason"] == "expired" and later["node_verdict"]["reason"] == "expired"
        wrong_node = autarky_json(
            workdir, *remote, "identity", "attestation", attestation, "--node-key", sensor["did"], expect=1
        )
        assert wrong_node["error"]["code"] == "client.bad_proof"

        # -- refusals ---------------------------------------------------------------------------------------
        again = autarky_json(
            workdir, *remote, "identity", "attest", "lab", "sensor", "--schema", "calibration/v1",
            "--field", "standard=ISO-17025", "--field", "error_ppm:=120", "--field", "serial=0042",
            "--valid-from", "2026-01-15", "--valid-until", "2099-01-15T12:00:00+01:00", *unlock, expect=1,
        )  # fmt: skip
        assert again["error"]["code"] == "identity.attestation_exists"
        expired = autarky_json(
            workdir, *remote, "identity", "attest", "lab", "sensor", "--schema", "calibration/v1",
            "--valid-from", "2020-01-01", "--valid-until", "2020-02-01", *unlock, expect=1,
        )  # fmt: skip
        assert expired["error"]["code"] == "identity.claim_expired"
        bad_window = autarky_json(
            workdir, *remote, "identity", "attest", "lab", "sensor", "--schema", "calibration/v1",
            "--valid-from", "2030-01-01", "--valid-until", "2029-01-01", *unlock, expect=2,
        )  # fmt: skip
        assert bad_window["error"]["code"] == "identity.invalid_field"
        bad_field = autarky(
            workdir, *remote, "identity", "attest", "lab", "sensor", "--schema", "calibration/v1",
            "--field", "error_ppm:=1.5", "--valid-until", "2099-01-01", *unlock, expect=2,
        )  # fmt: skip
        assert "not an integer" in bad_field.stderr
        bad_date = autarky(
            workdir, *remote, "identity", "attest", "lab", "sensor", "--schema", "calibration/v1",
            "--valid-until", "next tuesday", *unlock, expect=2,
        )  # fmt: skip
        assert "--valid-until" in bad_date.stderr
        not_issuer = autarky_json(
            workdir, *remote, "identity", "revoke-attestation", "owner", attestation, expect=1
        )
        assert not_issuer["error"]["code"] == "identity.not_authorised"
        too_many = [
            autarky(
                workdir, *remote, "identity", "service", "set", "sensor", f"s{index}", "--type", "T",
                "--endpoint", f"https://x.example/{index}", expect=None,
            ).returncode
            for index in range(8)
        ]  # fmt: skip
        assert too_many == [0] * 7 + [1]

        # -- revoke ----------------------------------------------------------------------------------------
        revoked = autarky_json(
            workdir, *remote, "identity", "revoke-attestation", "lab", attestation, *unlock
        )
        assert revoked["status"] == "committed"
        document = autarky_json(workdir, *remote, "identity", "resolve", sensor["did"])
        (listed,) = document["autarky"]["attestations"]
        assert listed["revoked"] == revoked["height"] and listed["verdict"] == "revoked"
        checked = autarky_json(workdir, *remote, "identity", "attestation", attestation)
        assert checked["verdict"]["reason"] == "revoked" and checked["proved_against"]["pinned"] is False
        twice = autarky_json(
            workdir, *remote, "identity", "revoke-attestation", "lab", attestation, *unlock, expect=1
        )
        assert twice["error"]["code"] == "identity.attestation_revoked"
        assert json.loads(json.dumps(document))  # plain JSON all the way
    finally:
        code, stderr = node.stop()
        assert code == 0, stderr


def test_attest_commands_have_help(workdir: Path) -> None:
    for command in (
        ("identity", "attest"),
        ("identity", "revoke-attestation"),
        ("identity", "attestation"),
        ("identity", "service", "set"),
        ("identity", "service", "remove"),
        ("identity", "resolve"),
    ):
        result = autarky(workdir, *command, "--help")
        assert "Example" in result.stdout, command
