"""The HTTP API over real HTTP against a real node (no mocks): SPEC C16, R3, R5, R6, R9.

Every test talks to 127.0.0.1:<port> with httpx; see conftest.py for the live node fixtures.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from autarky.crypto.domains import Domain
from autarky.crypto.keys import SigningKey
from autarky.engines.mempool import MempoolLimits
from autarky.ledger.tx import TxBody, encode_signed
from autarky.modules.bank import messages as bank_messages
from autarky.web.client import StateProof, header_from_json, verify_header, verify_proof
from autarky.web.testing import API_KEY, LiveNode, TestKeys

ERROR_KEYS = {"error"}


def error_code(response: httpx.Response) -> str:
    body = response.json()
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["message"], body
    return str(body["error"]["code"])


def balances(live: LiveNode, did: str) -> dict[str, int]:
    response = live.http.get(f"/api/v1/accounts/{did}/balances")
    assert response.status_code == 200, response.text
    return dict(response.json()["balances"])


# -- submitting transactions ----------------------------------------------------------------------


def test_a_signed_transfer_commits_and_moves_balances(live_node: LiveNode, test_keys: TestKeys) -> None:
    recipient = SigningKey.generate().did
    before = balances(live_node, test_keys.bob.did)["aut"]

    response = live_node.submit(live_node.transfer(test_keys.bob, recipient, 250))

    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "committed" and answer["code"] is None
    assert answer["receipt"]["ok"] is True and answer["height"] >= 1
    assert balances(live_node, recipient) == {"aut": 250}
    assert balances(live_node, test_keys.bob.did)["aut"] == before - 250 - 1  # amount and fee


def test_json_body_with_hex_is_accepted_like_cbor(live_node: LiveNode, test_keys: TestKeys) -> None:
    tx = live_node.transfer(test_keys.faucet, SigningKey.generate().did, 5)
    response = live_node.http.post("/api/v1/tx", json={"tx": tx.raw.hex()})
    assert response.status_code == 200, response.text
    assert response.json()["tx_hash"] == tx.hash.hex()


def test_resubmission_answers_exists_with_the_same_receipt(live_node: LiveNode, test_keys: TestKeys) -> None:
    """R3: the same transaction submitted k times is applied once; later submissions answer exists."""
    recipient = SigningKey.generate().did
    tx = live_node.transfer(test_keys.faucet, recipient, 7)
    first = live_node.submit(tx)
    assert first.status_code == 200 and first.json()["status"] == "committed"

    for wait in (True, False, True):
        again = live_node.submit(tx, wait=wait)
        assert again.status_code == 200, again.text
        answer = again.json()
        assert answer["status"] == "exists"
        assert answer["receipt"] == first.json()["receipt"]
        assert answer["height"] == first.json()["height"]
    assert balances(live_node, recipient) == {"aut": 7}


def test_wait_false_answers_202_and_the_transaction_commits(live_node: LiveNode, test_keys: TestKeys) -> None:
    tx = live_node.transfer(test_keys.faucet, SigningKey.generate().did, 3)
    response = live_node.submit(tx, wait=False)
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "accepted"

    committed = live_node.run(live_node.node.wait_committed(tx.hash, 10))
    assert committed.status == "committed"
    record = live_node.http.get(f"/api/v1/tx/{tx.hash.hex()}")
    assert record.status_code == 200
    body = record.json()
    assert body["status"] == "committed" and body["height"] == committed.height
    assert body["tx"]["sender"] == test_keys.faucet.did
    assert body["tx"]["messages"] == [bank_messages.send(body["tx"]["messages"][0]["to"], "aut", 3)]
    assert body["raw"] == tx.raw.hex()
    assert body["receipt"]["code"] == "ok"


def test_a_failed_transaction_is_committed_with_its_code(live_node: LiveNode, test_keys: TestKeys) -> None:
    """Past the fee, a failing message leaves the transaction in its block with the failure code."""
    tx = live_node.transfer(test_keys.carol, SigningKey.generate().did, 10**9)
    response = live_node.submit(tx)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["status"] == "committed"
    assert answer["code"] == "bank.insufficient_funds"
    assert answer["receipt"]["ok"] is False


# -- R5: replay and domain separation --------------------------------------------------------------


def _signed_raw(key: SigningKey, body: TxBody, domain: Domain, chain_id: str | None) -> bytes:
    body_bytes = body.encode()
    return encode_signed(body_bytes, [(key.public_key.raw, key.sign(domain, body_bytes, chain_id))])


def _body(live: LiveNode, key: SigningKey, chain_id: str) -> TxBody:
    message = bank_messages.send(SigningKey.generate().did, "aut", 1)
    return TxBody(chain_id, key.did, live.sequence(key.did), 1, 0, (message,))


def test_a_transaction_for_another_chain_is_rejected(live_node: LiveNode, test_keys: TestKeys) -> None:
    root = live_node.state_root()
    tx = live_node.transfer(test_keys.alice, SigningKey.generate().did, 1, chain_id="other-chain")
    response = live_node.submit(tx)
    assert response.status_code == 400, response.text
    assert response.json()["status"] == "rejected"
    assert response.json()["code"] == error_code(response) == "core.wrong_chain"
    assert live_node.state_root() == root


@pytest.mark.parametrize(
    ("domain", "signed_chain"),
    [
        (Domain.TRANSACTION, "other-chain"),  # valid on another chain, replayed here
        (Domain.MESSAGE, None),  # a machine-to-machine message signature
        (Domain.BLOCK_HEADER, "test"),  # a header signature
        (Domain.VOTE, "test"),
    ],
)
def test_signatures_from_other_domains_never_authorise_a_transaction(
    live_node: LiveNode, test_keys: TestKeys, domain: Domain, signed_chain: str | None
) -> None:
    root = live_node.state_root()
    raw = _signed_raw(
        test_keys.alice, _body(live_node, test_keys.alice, live_node.chain_id), domain, signed_chain
    )
    response = live_node.submit(raw)
    assert response.status_code == 400, response.text
    assert error_code(response) == "core.bad_signature"
    assert live_node.state_root() == root


# -- malformed input: typed 4xx, never 5xx, nothing changes -----------------------------------------


def test_malformed_cbor_is_rejected_as_core_malformed(live_node: LiveNode) -> None:
    root = live_node.state_root()
    for raw in (b"", b"\x00", b"\xff\xff", b"\x83\x01\x40\x80", bytes(range(256))):
        response = live_node.submit(raw)
        assert response.status_code == 400, (raw, response.text)
        assert error_code(response) == "core.malformed"
    assert live_node.state_root() == root


def test_an_oversize_body_is_refused_with_413(live_node: LiveNode) -> None:
    response = live_node.submit(b"\x00" * (200 * 1024))
    assert response.status_code == 413
    assert error_code(response) == "api.body_too_large"


def test_a_transaction_over_the_mempool_size_cap_is_refused_with_413(live_node: LiveNode) -> None:
    response = live_node.submit(b"\x00" * (70 * 1024))  # inside the body cap, over max_tx_bytes
    assert response.status_code == 413
    assert error_code(response) == "mempool.tx_too_large"


@pytest.mark.parametrize(
    ("content_type", "body", "status", "code"),
    [
        (None, b"\x83", 415, "api.unsupported_media_type"),
        ("text/plain", b"\x83", 415, "api.unsupported_media_type"),
        ("application/x-www-form-urlencoded", b"tx=00", 415, "api.unsupported_media_type"),
        ("application/json", b"{not json", 400, "api.invalid_json"),
        ("application/json", b"\xff\xfe", 400, "api.invalid_json"),
        ("application/json", b"[" * 50_000, 400, "api.invalid_json"),
        ("application/json", b'{"raw": "00"}', 400, "api.invalid_request"),
        ("application/json", b'{"tx": 12}', 400, "api.invalid_request"),
        ("application/json", b'["00"]', 400, "api.invalid_request"),
        ("application/json", b'{"tx": "zz"}', 400, "api.invalid_hex"),
        ("application/json", b'{"tx": "abc"}', 400, "api.invalid_hex"),
        ("application/json", b'{"tx": ""}', 400, "core.malformed"),
    ],
)
def test_bad_submission_bodies_get_typed_errors(
    live_node: LiveNode, content_type: str | None, body: bytes, status: int, code: str
) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = live_node.http.post("/api/v1/tx", content=body, headers=headers)
    assert response.status_code == status, response.text
    assert error_code(response) == code


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("GET", "/api/v1/accounts/not-a-did", 400, "api.invalid_did"),
        ("GET", "/api/v1/accounts/did:key:z6MkFAKE", 400, "api.invalid_did"),
        ("GET", "/api/v1/accounts/did:web:example.com/balances", 400, "api.invalid_did"),
        ("GET", "/api/v1/did/did:example:123", 400, "api.invalid_did"),
        ("GET", "/api/v1/machines/did:key:z6Mk", 400, "api.invalid_did"),
        ("GET", "/api/v1/blocks/999999999", 404, "api.not_found"),
        ("GET", "/api/v1/blocks/-1", 422, "api.invalid_request"),
        ("GET", "/api/v1/blocks/abc", 422, "api.invalid_request"),
        ("GET", "/api/v1/blocks/99999999999999999999999", 422, "api.invalid_request"),
        ("GET", "/api/v1/blocks?limit=1000", 422, "api.invalid_request"),
        ("GET", "/api/v1/blocks?from=-5", 422, "api.invalid_request"),
        ("GET", "/api/v1/tx/" + "ab" * 32, 404, "api.not_found"),
        ("GET", "/api/v1/tx/xyz", 400, "api.invalid_hash"),
        ("GET", "/api/v1/tx/" + "zz" * 32, 400, "api.invalid_hash"),
        ("GET", "/api/v1/proof", 422, "api.invalid_request"),
        ("GET", "/api/v1/proof?key=", 422, "api.invalid_request"),
        ("GET", "/api/v1/machines?limit=0", 422, "api.invalid_request"),
        ("GET", "/api/v1/nothing-here", 404, "api.not_found"),
        ("DELETE", "/api/v1/status", 405, "api.method_not_allowed"),
        ("GET", "/api/v1/tx", 405, "api.method_not_allowed"),
        ("PUT", "/api/v1/tx", 405, "api.method_not_allowed"),
    ],
)
def test_bad_requests_get_typed_errors(
    live_node: LiveNode, method: str, path: str, status: int, code: str
) -> None:
    response = live_node.http.request(method, path)
    assert response.status_code == status, response.text
    assert error_code(response) == code


def test_an_unknown_machine_is_not_found(live_node: LiveNode) -> None:
    response = live_node.http.get(f"/api/v1/machines/{SigningKey.generate().did}")
    assert response.status_code == 404
    assert error_code(response) == "api.not_found"


# -- reads ----------------------------------------------------------------------------------------


def test_status_names_the_chain_and_the_node_key(live_node: LiveNode) -> None:
    status = live_node.http.get("/api/v1/status").json()
    assert status["chain_id"] == "test"
    assert status["node_key"] == live_node.call(lambda: live_node.node.node_key.did)
    assert status["fault"] is None
    assert set(status["mempool"]) == {"transactions", "bytes"}


def test_blocks_carry_a_node_signature_over_the_header(live_node: LiveNode, test_keys: TestKeys) -> None:
    tx = live_node.transfer(test_keys.faucet, SigningKey.generate().did, 1)
    height = live_node.submit(tx).json()["height"]
    block = live_node.http.get(f"/api/v1/blocks/{height}").json()
    assert tx.hash.hex() in block["txs"]
    assert [r["tx_hash"] for r in block["receipts"]] == block["txs"]

    header = header_from_json(block["header"])
    node_key = live_node.http.get("/api/v1/status").json()["node_key"]
    assert verify_header(header, bytes.fromhex(block["signature"]), node_key)
    assert not verify_header(header, bytes.fromhex(block["signature"]), SigningKey.generate().did)
    latest = live_node.http.get("/api/v1/blocks/latest").json()
    assert latest["header"]["height"] >= height


def test_block_listing_is_newest_first_and_pages(live_node: LiveNode) -> None:
    live_node.wait_for_height(3)
    first = live_node.http.get("/api/v1/blocks", params={"limit": 2}).json()
    heights = [header["height"] for header in first["blocks"]]
    assert len(heights) == 2 and heights[0] == heights[1] + 1
    assert first["next_from"] == heights[1] - 1
    second = live_node.http.get("/api/v1/blocks", params={"limit": 2, "from": first["next_from"]}).json()
    assert second["blocks"][0]["height"] == first["next_from"]
    genesis = live_node.http.get("/api/v1/blocks", params={"from": 0}).json()
    assert [h["height"] for h in genesis["blocks"]] == [0] and genesis["next_from"] is None


def test_account_of_a_registered_machine(live_node: LiveNode, test_keys: TestKeys) -> None:
    account = live_node.http.get(f"/api/v1/accounts/{test_keys.battery.did}").json()
    assert account["did"] == test_keys.battery.did
    assert account["identity"]["owner"] == test_keys.alice.did
    assert account["identity"]["kind"] == "battery"
    assert account["balances"]["kwh"] == 120
    assert account["frozen"] is False and account["guardrails"] is None
    assert account["sequence"] == account["committed_sequence"] == 0


def test_an_account_never_seen_answers_with_sequence_zero(live_node: LiveNode) -> None:
    did = SigningKey.generate().did
    account = live_node.http.get(f"/api/v1/accounts/{did}").json()
    assert account == {
        "did": did,
        "sequence": 0,
        "committed_sequence": 0,
        "identity": None,
        "balances": {},
        "guardrails": None,
        "window_spent": {},
        "frozen": False,
        "escrow": {"paid": [], "beneficiary": []},
        "status": "unregistered",
        "pause": None,
    }


def test_module_accounts_have_balances(live_node: LiveNode) -> None:
    assert "aut" in balances(live_node, "module:fees")


def test_guardrails_show_on_the_account(live_node: LiveNode, test_keys: TestKeys) -> None:
    guard = {
        "window_blocks": 100,
        "limits": {"aut": {"per_tx": 50, "per_window": 200, "cosign_above": None}},
        "allowlist": None,
    }
    tx = live_node.sign(test_keys.alice, [bank_messages.set_guardrails(test_keys.solar.did, guard)])
    response = live_node.submit(tx)
    assert response.json()["code"] is None, response.text
    spend = live_node.transfer(test_keys.solar, test_keys.alice.did, 20)
    assert live_node.submit(spend).json()["code"] is None

    account = live_node.http.get(f"/api/v1/accounts/{test_keys.solar.did}").json()
    assert account["guardrails"]["limits"]["aut"]["per_tx"] == 50
    assert account["window_spent"] == {"aut": 21}  # amount and fee
    machines = live_node.http.get("/api/v1/machines").json()
    solar = next(m for m in machines["machines"] if m["did"] == test_keys.solar.did)
    assert solar["guardrails"]["window_blocks"] == 100


def test_machines_lists_registered_accounts(live_node: LiveNode, test_keys: TestKeys) -> None:
    page = live_node.http.get("/api/v1/machines").json()
    dids = {m["did"] for m in page["machines"]}
    assert {test_keys.alice.did, test_keys.battery.did, test_keys.solar.did} <= dids
    assert page["total"] == len(page["machines"]) == 3
    battery = next(m for m in page["machines"] if m["did"] == test_keys.battery.did)
    assert battery["kind"] == "battery" and battery["owner"] == test_keys.alice.did
    assert battery["status"] == "active" and battery["maker"] == "Voltaic"
    one = live_node.http.get("/api/v1/machines", params={"offset": 1, "limit": 1}).json()
    assert len(one["machines"]) == 1 and one["total"] == 3
    assert live_node.http.get(f"/api/v1/machines/{test_keys.battery.did}").json()["model"] == "VB-10"


def test_the_sequence_counts_pending_transactions(
    start_node: Callable[..., LiveNode], test_keys: TestKeys
) -> None:
    live = start_node(block_interval_ms=1500, heartbeat_ms=60_000)
    tx = live.transfer(test_keys.bob, SigningKey.generate().did, 1)
    assert live.submit(tx, wait=False).status_code == 202
    account = live.http.get(f"/api/v1/accounts/{test_keys.bob.did}").json()
    assert (account["sequence"], account["committed_sequence"]) == (1, 0)
    assert live.http.get(f"/api/v1/tx/{tx.hash.hex()}").json()["status"] == "pending"


# -- proofs ---------------------------------------------------------------------------------------


def _proof(live: LiveNode, key: str) -> StateProof:
    response = live.http.get("/api/v1/proof", params={"key": key})
    assert response.status_code == 200, response.text
    return StateProof.from_json(response.json())


def test_proofs_verify_client_side_for_present_and_absent_keys(
    live_node: LiveNode, test_keys: TestKeys
) -> None:
    node_key = live_node.http.get("/api/v1/status").json()["node_key"]
    present = _proof(live_node, f"bank/bal/{test_keys.battery.did}/kwh")
    assert present.value is not None
    assert verify_proof(present, node_key, chain_id="test")

    absent = _proof(live_node, f"bank/bal/{SigningKey.generate().did}/aut")
    assert absent.value is None
    assert verify_proof(absent, node_key)

    odd = _proof(live_node, "key with spaces/ünïcödé/?&=")
    assert odd.value is None and verify_proof(odd, node_key)


def test_a_tampered_proof_or_an_untrusted_key_fails_verification(
    live_node: LiveNode, test_keys: TestKeys
) -> None:
    node_key = live_node.http.get("/api/v1/status").json()["node_key"]
    answer = _proof(live_node, f"bank/bal/{test_keys.battery.did}/kwh")
    from dataclasses import replace

    assert not verify_proof(replace(answer, value=b"\x19\x03\xe8"), node_key)  # a different balance
    assert not verify_proof(replace(answer, value=None), node_key)  # claims absence
    assert not verify_proof(answer, SigningKey.generate().did)  # signed by someone else
    assert not verify_proof(answer, node_key, chain_id="other")
    assert not verify_proof(replace(answer, signature=bytes(64)), node_key)
    assert not verify_proof(answer, "not a did")


# -- DID documents --------------------------------------------------------------------------------


def test_did_document_of_a_registered_machine(live_node: LiveNode, test_keys: TestKeys) -> None:
    did = test_keys.battery.did
    response = live_node.http.get(f"/api/v1/did/{did}", headers={"Accept": "application/did+json"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/did+json")
    document = response.json()
    assert document["id"] == did
    assert document["controller"] == test_keys.alice.did
    assert document["verificationMethod"][0]["controller"] == did
    assert document["autarky"]["kind"] == "battery"
    plain = live_node.http.get(f"/api/v1/did/{did}")
    assert plain.headers["content-type"].startswith("application/json")


def test_did_document_of_an_unregistered_key_is_its_implicit_document(live_node: LiveNode) -> None:
    did = SigningKey.generate().did
    document = live_node.http.get(f"/api/v1/did/{did}").json()
    assert document["id"] == did and document["autarky"]["registered"] is False
    assert document["authentication"] == [document["verificationMethod"][0]["id"]]


# -- live events ----------------------------------------------------------------------------------


def _read_events(response: httpx.Response) -> Any:
    name, data = "message", []
    for line in response.iter_lines():
        if line == "":
            if data:
                yield name, json.loads("\n".join(data))
            name, data = "message", []
        elif line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].strip())


def _stream(url: str) -> Iterator[httpx.Response]:
    with httpx.Client(base_url=url, timeout=30) as client, client.stream("GET", "/api/v1/events") as response:
        yield response


def test_events_deliver_the_block_of_a_submission(live_node: LiveNode, test_keys: TestKeys) -> None:
    tx = live_node.transfer(test_keys.faucet, SigningKey.generate().did, 2)
    seen: list[str] = []
    block_height = None
    for response in _stream(live_node.url):
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        for name, data in _read_events(response):
            seen.append(name)
            if name == "hello":
                assert data["chain_id"] == "test"
                assert live_node.submit(tx, wait=False).status_code == 202
            elif name == "block":
                assert data["type"] == "block"
                block_height = data["height"]
            elif name == "tx" and data["tx_hash"] == tx.hash.hex():
                assert data["code"] == "ok"
                assert data["height"] == block_height  # the block's event comes before its transactions'
                break
    assert seen[0] == "hello" and "tx" in seen


@pytest.mark.parametrize("what", ["api", "node"])
def test_the_event_stream_ends_when_the_server_or_the_node_stops(
    start_node: Callable[..., LiveNode], what: str
) -> None:
    live = start_node()
    names = []
    for response in _stream(live.url):
        for name, _ in _read_events(response):
            names.append(name)
            if name == "hello":
                live.run(live.api.stop() if what == "api" else live.node.stop())
    assert names[0] == "hello"  # and the stream closed, or this loop would not end


def _subscribers(live: LiveNode) -> int:
    return live.call(lambda: len(live.node._subscribers))  # white-box: the node's event queues


def test_subscribers_are_released_when_clients_disconnect(live_node: LiveNode) -> None:
    before = _subscribers(live_node)
    for _ in range(3):
        for response in _stream(live_node.url):
            name, _ = next(_read_events(response))
            assert name == "hello"
    for _ in range(100):
        if _subscribers(live_node) == before:
            break
        time.sleep(0.05)
    assert _subscribers(live_node) == before


# -- operations -----------------------------------------------------------------------------------


def test_health_readiness_and_metrics(live_node: LiveNode) -> None:
    assert live_node.http.get("/healthz").json() == {"status": "ok"}
    ready = live_node.http.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"
    metrics = live_node.http.get("/metrics")
    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    assert "autarky_block_height" in metrics.text and "autarky_transactions_committed_total" in metrics.text


def test_a_faulty_node_is_not_ready_and_refuses_writes(
    start_node: Callable[..., LiveNode], test_keys: TestKeys
) -> None:
    live = start_node()
    live.call(setattr, live.node, "fault", "block 9 could not be stored: disk full")
    try:
        ready = live.http.get("/readyz")
        assert ready.status_code == 503 and error_code(ready) == "node.fault"
        assert "disk full" in ready.json()["error"]["message"]
        response = live.submit(live.transfer(test_keys.bob, test_keys.carol.did, 1))
        assert response.status_code == 503 and error_code(response) == "node.fault"
        assert live.http.get("/healthz").status_code == 200
        assert live.http.get("/api/v1/status").json()["fault"].startswith("block 9")
    finally:
        live.call(setattr, live.node, "fault", None)


def test_a_full_mempool_answers_503_with_retry_after(
    start_node: Callable[..., LiveNode], test_keys: TestKeys
) -> None:
    """R9: floods are bounded and answered, per sender and in total."""
    limits = MempoolLimits(max_txs=2, max_per_sender=1)
    # The block is cut 3 s after the first admission: long enough for this test, short for teardown.
    live = start_node(block_interval_ms=3000, heartbeat_ms=60_000, max_block_txs=100, mempool=limits)
    assert live.submit(live.transfer(test_keys.alice, test_keys.carol.did, 1), wait=False).status_code == 202
    again = live.submit(live.transfer(test_keys.alice, test_keys.carol.did, 1, sequence=1), wait=False)
    assert again.status_code == 503 and error_code(again) == "mempool.sender_limit"
    assert again.headers["retry-after"] == "1"
    assert live.submit(live.transfer(test_keys.bob, test_keys.carol.did, 1), wait=False).status_code == 202
    full = live.submit(live.transfer(test_keys.faucet, test_keys.carol.did, 1), wait=False)
    assert full.status_code == 503 and error_code(full) == "mempool.full"
    assert full.json()["status"] == "rejected"


# -- admin ----------------------------------------------------------------------------------------


def test_admin_routes_need_the_api_key(live_node: LiveNode) -> None:
    missing = live_node.http.post("/api/v1/admin/checkpoint")
    assert missing.status_code == 401 and error_code(missing) == "api.unauthorized"
    wrong = live_node.http.post("/api/v1/admin/checkpoint", headers={"X-API-Key": "guess"})
    assert wrong.status_code == 401 and error_code(wrong) == "api.unauthorized"
    right = live_node.http.post("/api/v1/admin/checkpoint", headers={"X-API-Key": API_KEY})
    assert right.status_code == 200, right.text
    assert right.json()["status"] == "ok"


def test_admin_routes_are_open_without_a_configured_key(start_node: Callable[..., LiveNode]) -> None:
    live = start_node(api_key=None)
    assert live.http.post("/api/v1/admin/checkpoint").status_code == 200


# -- the API describes itself ---------------------------------------------------------------------


def test_openapi_lists_every_route(live_node: LiveNode) -> None:
    spec = live_node.http.get("/openapi.json").json()
    paths = spec["paths"]
    for path in (
        "/api/v1/tx",
        "/api/v1/tx/{tx_hash}",
        "/api/v1/status",
        "/api/v1/blocks",
        "/api/v1/blocks/latest",
        "/api/v1/blocks/{height}",
        "/api/v1/accounts/{did}",
        "/api/v1/accounts/{did}/balances",
        "/api/v1/machines",
        "/api/v1/machines/{did}",
        "/api/v1/proof",
        "/api/v1/did/{did}",
        "/api/v1/events",
        "/api/v1/admin/checkpoint",
        "/healthz",
        "/readyz",
        "/metrics",
    ):
        assert path in paths, path
    body = paths["/api/v1/tx"]["post"]["requestBody"]["content"]
    assert set(body) == {"application/cbor", "application/json"}
    assert "APIKeyHeader" in json.dumps(paths["/api/v1/admin/checkpoint"])


def test_the_api_reference_page_is_served_without_a_cdn(live_node: LiveNode) -> None:
    page = live_node.http.get("/docs")
    assert page.status_code == 200 and "/static/docs.js" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert "default-src 'self'" in page.headers["content-security-policy"]
    assert live_node.http.get("/static/docs.js").status_code == 200
