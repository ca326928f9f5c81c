"""Attestations and services over the HTTP API, against a real node (no mocks).

Every test talks to 127.0.0.1:<port>: raw HTTP with httpx for the routes and their error shape, and
the typed ``AutarkyClient`` (over the same socket) for its methods and for ``verify_attestation``,
which recomputes a verdict from the two state proofs instead of trusting the node.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Coroutine
from typing import Any, TypeVar

import httpx
import pytest

from autarky.crypto.keys import SigningKey
from autarky.modules.identity import messages as m
from autarky.modules.identity.claims import Claim, make_claim, sign_claim
from autarky.web.client import (
    AttestationAnswer,
    AutarkyClient,
    ClientError,
    StateProof,
    verify_attestation,
    verify_proof,
)
from autarky.web.testing import LiveNode, TestKeys

T = TypeVar("T")
FAR_FUTURE_MS = 4_102_444_800_000  # 2100-01-01
BEFORE_ANY_BLOCK_MS = 1_000_000_000_000  # 2001


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body["error"]) == {"code", "message"}, body
    return str(body["error"]["code"])


def claim_about(
    issuer: SigningKey,
    subject: SigningKey,
    *,
    label: str,
    valid_from_ms: int = 0,
    valid_until_ms: int = FAR_FUTURE_MS,
) -> Claim:
    return make_claim(
        issuer.did,
        subject.did,
        "calibration/v1",
        {"label": label, "error_ppm": 120},
        valid_from_ms,
        valid_until_ms,
    )


def anchor(live: LiveNode, issuer: SigningKey, claim: Claim) -> bytes:
    response = live.submit(live.sign(issuer, [m.attest(sign_claim(issuer, claim))]))
    assert response.status_code == 200, response.text
    assert response.json()["receipt"]["code"] == "ok", response.json()["receipt"]
    return claim.id


def node_key(live: LiveNode) -> str:
    return str(live.http.get("/api/v1/status").json()["node_key"])


def fetch(live: LiveNode, attestation: bytes, at_ms: int | None = None) -> AttestationAnswer:
    async def get() -> AttestationAnswer:
        async with AutarkyClient(live.url) as client:
            return await client.attestation(attestation, at_ms=at_ms)

    return run(get())


# -- one attestation --------------------------------------------------------------------------------


def test_an_attestation_with_its_verdict_and_proofs(live_node: LiveNode, test_keys: TestKeys) -> None:
    claim = claim_about(test_keys.alice, test_keys.battery, label="one")
    attestation = anchor(live_node, test_keys.alice, claim)

    response = live_node.http.get(f"/api/v1/attestations/{attestation.hex()}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["id"] == attestation.hex()
    record = body["attestation"]
    assert record["issuer"] == test_keys.alice.did and record["subject"] == test_keys.battery.did
    assert record["schema"] == "calibration/v1" and record["fields"] == {"label": "one", "error_ppm": 120}
    assert record["claim_cbor"] == claim.encode().hex() and record["revoked"] is None
    assert record["key"] == test_keys.alice.public_key.raw.hex()
    assert body["verdict"] == {"valid": True, "reason": "valid", "detail": f"valid until {FAR_FUTURE_MS} ms"}
    # The proofs: the record under identity/att/<id>, the issuer's (registered) account record.
    assert body["proof"]["key"] == f"identity/att/{attestation.hex()}"
    assert body["issuer_proof"]["key"] == f"identity/acct/{test_keys.alice.did}"
    assert body["issuer_proof"]["value"] is not None
    trusted = node_key(live_node)
    for name in ("proof", "issuer_proof"):
        assert verify_proof(StateProof.from_json(body[name]), trusted, live_node.chain_id)

    answer = fetch(live_node, attestation)
    assert answer.claim == claim and answer.verdict.valid
    assert verify_attestation(answer, trusted, answer.checked_at_ms, live_node.chain_id).valid


def test_an_unregistered_issuer_is_proved_absent(live_node: LiveNode, test_keys: TestKeys) -> None:
    attestation = anchor(live_node, test_keys.bob, claim_about(test_keys.bob, test_keys.solar, label="bob"))
    answer = fetch(live_node, attestation)
    assert answer.issuer_proof.value is None  # an exclusion proof: bob's did:key is its only key
    assert verify_attestation(answer, node_key(live_node), answer.checked_at_ms).valid


def test_at_ms_checks_validity_at_another_time(live_node: LiveNode, test_keys: TestKeys) -> None:
    claim = claim_about(
        test_keys.alice,
        test_keys.solar,
        label="window",
        valid_from_ms=2_000_000_000_000,
        valid_until_ms=FAR_FUTURE_MS,
    )
    attestation = anchor(live_node, test_keys.alice, claim)
    trusted = node_key(live_node)
    for at_ms, reason in (
        (BEFORE_ANY_BLOCK_MS, "not_yet_valid"),
        (2_000_000_000_000, "valid"),
        (FAR_FUTURE_MS, "expired"),
    ):
        body = live_node.http.get(f"/api/v1/attestations/{attestation.hex()}", params={"at_ms": at_ms}).json()
        assert body["verdict"]["reason"] == reason and body["checked_at_ms"] == at_ms
        assert verify_attestation(fetch(live_node, attestation, at_ms), trusted, at_ms).reason == reason


def test_verify_attestation_refuses_what_the_proofs_do_not_show(
    live_node: LiveNode, test_keys: TestKeys
) -> None:
    attestation = anchor(
        live_node, test_keys.alice, claim_about(test_keys.alice, test_keys.battery, label="proofs")
    )
    answer = fetch(live_node, attestation)
    trusted = node_key(live_node)
    now_ms = answer.checked_at_ms
    # Another node key: the header signature does not verify.
    with pytest.raises(ClientError) as raised:
        verify_attestation(answer, SigningKey.generate().did, now_ms)
    assert raised.value.code == "client.bad_proof"
    # Another chain id than the header's.
    with pytest.raises(ClientError):
        verify_attestation(answer, trusted, now_ms, chain_id="other")
    # A doctored record: the value no longer matches the proof.
    value = bytearray(answer.proof.value or b"")
    value[-1] ^= 1
    doctored = dataclasses.replace(answer, proof=dataclasses.replace(answer.proof, value=bytes(value)))
    with pytest.raises(ClientError):
        verify_attestation(doctored, trusted, now_ms)
    # The proof of another attestation offered for this id.
    other = anchor(live_node, test_keys.alice, claim_about(test_keys.alice, test_keys.battery, label="other"))
    swapped = dataclasses.replace(answer, id=other)
    with pytest.raises(ClientError):
        verify_attestation(swapped, trusted, now_ms)
    # The issuer proof of another account.
    bob = StateProof.from_json(
        live_node.http.get("/api/v1/proof", params={"key": f"identity/acct/{test_keys.bob.did}"}).json()
    )
    with pytest.raises(ClientError):
        verify_attestation(dataclasses.replace(answer, issuer_proof=bob), trusted, now_ms)


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/api/v1/attestations/" + "ab" * 31, 400, "api.invalid_hash"),
        ("/api/v1/attestations/" + "zz" * 32, 400, "api.invalid_hash"),
        ("/api/v1/attestations/" + "ab " * 21 + "a", 400, "api.invalid_hash"),
        ("/api/v1/attestations/" + "ab" * 32, 404, "api.not_found"),
        ("/api/v1/attestations/" + "ab" * 32 + "?at_ms=-1", 422, "api.invalid_request"),
        ("/api/v1/attestations/" + "ab" * 32 + "?at_ms=x", 422, "api.invalid_request"),
    ],
)
def test_attestation_errors(live_node: LiveNode, path: str, status: int, code: str) -> None:
    response = live_node.http.get(path)
    assert response.status_code == status, response.text
    assert error_code(response) == code


def test_upper_case_ids_are_accepted(live_node: LiveNode, test_keys: TestKeys) -> None:
    attestation = anchor(
        live_node, test_keys.alice, claim_about(test_keys.alice, test_keys.solar, label="case")
    )
    response = live_node.http.get(f"/api/v1/attestations/{attestation.hex().upper()}")
    assert response.status_code == 200 and response.json()["id"] == attestation.hex()


# -- listing ------------------------------------------------------------------------------------------


def test_listing_by_subject_issuer_or_both(live_node: LiveNode, test_keys: TestKeys) -> None:
    subject = SigningKey.generate()  # a fresh subject: only this test's attestations are about it
    by_alice = [
        anchor(live_node, test_keys.alice, claim_about(test_keys.alice, subject, label=f"a{i}"))
        for i in range(3)
    ]
    by_bob = anchor(live_node, test_keys.bob, claim_about(test_keys.bob, subject, label="b"))

    about = live_node.http.get("/api/v1/attestations", params={"subject": subject.did}).json()
    assert about["total"] == 4
    assert [entry["id"] for entry in about["attestations"]] == [by_bob.hex()] + [
        i.hex() for i in reversed(by_alice)
    ]
    assert all(entry["valid"] and entry["verdict"] == "valid" for entry in about["attestations"])

    both = live_node.http.get(
        "/api/v1/attestations", params={"subject": subject.did, "issuer": test_keys.bob.did}
    )
    assert [entry["id"] for entry in both.json()["attestations"]] == [by_bob.hex()]

    issued = live_node.http.get(
        "/api/v1/attestations", params={"issuer": test_keys.alice.did, "limit": 500}
    ).json()
    assert {i.hex() for i in by_alice} <= {entry["id"] for entry in issued["attestations"]}
    assert all(entry["issuer"] == test_keys.alice.did for entry in issued["attestations"])

    page = live_node.http.get(
        "/api/v1/attestations", params={"subject": subject.did, "offset": 1, "limit": 2}
    ).json()
    assert [entry["id"] for entry in page["attestations"]] == [by_alice[2].hex(), by_alice[1].hex()]
    assert page["total"] == 4 and page["offset"] == 1 and page["limit"] == 2

    async def through_the_client() -> dict[str, Any]:
        async with AutarkyClient(live_node.url) as client:
            return await client.attestations(subject=subject.did, issuer=test_keys.alice.did)

    assert run(through_the_client())["total"] == 3


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({}, 400, "api.invalid_request"),
        ({"subject": "did:web:example.com"}, 400, "api.invalid_did"),
        ({"issuer": "nope"}, 400, "api.invalid_did"),
        (
            {"subject": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", "limit": 0},
            422,
            "api.invalid_request",
        ),
        (
            {"subject": "did:key:z6MkhaXgBZDvotDkL5257faiztiGiC2QtKLGpbnnEGta2doK", "limit": 501},
            422,
            "api.invalid_request",
        ),
    ],
)
def test_listing_errors(live_node: LiveNode, params: dict[str, Any], status: int, code: str) -> None:
    response = live_node.http.get("/api/v1/attestations", params=params)
    assert response.status_code == status, response.text
    assert error_code(response) == code


# -- revocation, services and the DID document, through the typed client ------------------------------------


def test_revocation_services_and_the_did_document(live_node: LiveNode, test_keys: TestKeys) -> None:
    battery, alice = test_keys.battery, test_keys.alice
    claim = claim_about(alice, battery, label="revocable")
    root_before = live_node.state_root()

    async def scenario() -> dict[str, Any]:
        async with AutarkyClient(live_node.url) as client:
            anchored = await client.attest(alice, sign_claim(alice, claim))
            assert anchored.ok and anchored.committed
            # the battery's owner (alice) sets a service on the machine
            service = await client.set_service(
                alice, battery.did, "telemetry", "MQTTBroker", "mqtts://b.example:8883"
            )
            assert service.ok
            gone = await client.set_service(alice, battery.did, "old", "LinkedDomains", "https://old.example")
            assert gone.ok
            assert (await client.remove_service(alice, battery.did, "old")).ok
            before = await client.did_document(battery.did)
            revoked = await client.revoke_attestation(alice, claim.id)
            assert revoked.ok
            again = await client.revoke_attestation(alice, claim.id)
            assert not again.ok and again.code == "identity.attestation_revoked" and again.receipt is not None
            assert again.receipt["code"] == "identity.attestation_revoked"
            after = await client.did_document(battery.did)
            answer = await client.attestation(claim.id)
            return {"before": before, "after": after, "answer": answer, "revoked_height": revoked.height}

    result = run(scenario())
    assert live_node.state_root() != root_before
    before, after = result["before"], result["after"]
    assert before["service"] == [
        {"id": f"{battery.did}#telemetry", "type": "MQTTBroker", "serviceEndpoint": "mqtts://b.example:8883"}
    ]
    entry = next(e for e in before["autarky"]["attestations"] if e["id"] == claim.id.hex())
    assert entry["valid"] is True and entry["verdict"] == "valid" and entry["revoked"] is None
    entry = next(e for e in after["autarky"]["attestations"] if e["id"] == claim.id.hex())
    assert entry["valid"] is False and entry["verdict"] == "revoked"
    assert entry["revoked"] == result["revoked_height"]
    assert after["autarky"]["attestations_total"] >= 1
    answer = result["answer"]
    assert answer.verdict.reason == "revoked"
    assert verify_attestation(answer, node_key(live_node), answer.checked_at_ms).reason == "revoked"


def test_did_document_checks_attestations_at_a_given_time(live_node: LiveNode, test_keys: TestKeys) -> None:
    subject = SigningKey.generate()
    claim = claim_about(test_keys.alice, subject, label="doc", valid_until_ms=3_000_000_000_000)
    anchor(live_node, test_keys.alice, claim)
    document = live_node.http.get(f"/api/v1/did/{subject.did}", params={"at_ms": 3_000_000_000_000}).json()
    (entry,) = document["autarky"]["attestations"]
    assert entry["verdict"] == "expired" and entry["valid"] is False
    assert document["service"] == [] and document["autarky"]["registered"] is False
    now = live_node.http.get(f"/api/v1/did/{subject.did}").json()
    assert now["autarky"]["attestations"][0]["verdict"] == "valid"
    assert error_code(live_node.http.get(f"/api/v1/did/{subject.did}", params={"at_ms": "soon"})) == (
        "api.invalid_request"
    )


def test_a_refused_attestation_changes_nothing(live_node: LiveNode, test_keys: TestKeys) -> None:
    """Someone other than the issuer submits the issuer's signed claim: the message fails in its block
    with its code, and no attestation is anchored."""
    claim = claim_about(test_keys.alice, test_keys.solar, label="stolen")
    response = live_node.submit(live_node.sign(test_keys.bob, [m.attest(sign_claim(test_keys.alice, claim))]))
    assert response.status_code == 200
    assert response.json()["receipt"]["code"] == "identity.not_authorised"
    assert live_node.http.get(f"/api/v1/attestations/{claim.id.hex()}").status_code == 404
