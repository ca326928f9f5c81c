"""Escrow over HTTP: a lock made with a signed transaction is visible on the payer's and the
beneficiary's account, in ``/api/v1/escrow/locks`` and by id; it disappears once released; bad
input gets a typed error."""

from __future__ import annotations

import time

from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.escrow import messages as escrow
from autarky.web.testing import LiveNode, TestKeys


def test_a_lock_is_visible_on_both_accounts_and_by_id_until_it_is_released(
    live_node: LiveNode, test_keys: TestKeys
) -> None:
    alice, bob = test_keys.alice, test_keys.bob
    expires = int(time.time() * 1000) + 3_600_000
    tx = live_node.sign(alice, [escrow.lock("aut", 250, [bob.did], expires, purpose="parcel")])
    response = live_node.submit(tx)
    assert response.status_code == 200 and response.json()["receipt"]["code"] == "ok", response.text
    lock_id = escrow_keeper.new_lock_id(tx.hash, 0).hex()

    paid = live_node.http.get("/api/v1/escrow/locks", params={"account": alice.did}).json()
    assert [lock["id"] for lock in paid["locks"]] == [lock_id] and paid["total"] == {"aut": 250}
    named = live_node.http.get(
        "/api/v1/escrow/locks", params={"account": bob.did, "role": "beneficiary"}
    ).json()
    assert [lock["id"] for lock in named["locks"]] == [lock_id]
    one = live_node.http.get(f"/api/v1/escrow/locks/{lock_id}").json()
    assert one["payer"] == alice.did and one["amount"] == 250 and one["holder"] == "escrow"
    assert one["purpose"] == "parcel" and one["beneficiaries"] == [bob.did]
    account = live_node.http.get(f"/api/v1/accounts/{alice.did}").json()
    assert [lock["id"] for lock in account["escrow"]["paid"]] == [lock_id]

    release = live_node.submit(live_node.sign(alice, [escrow.release(bytes.fromhex(lock_id), bob.did, 250)]))
    assert release.json()["receipt"]["code"] == "ok", release.text
    gone = live_node.http.get(f"/api/v1/escrow/locks/{lock_id}")
    assert gone.status_code == 404 and gone.json()["error"]["code"] == "api.not_found"
    assert live_node.http.get("/api/v1/escrow/locks", params={"account": alice.did}).json()["locks"] == []


def test_bad_input_is_a_typed_error(live_node: LiveNode) -> None:
    for path, params, code in (
        ("/api/v1/escrow/locks/zz", {}, "api.invalid_hex"),
        ("/api/v1/escrow/locks/abcd", {}, "api.invalid_hex"),
        ("/api/v1/escrow/locks", {"account": "mallory"}, "api.invalid_did"),
        ("/api/v1/escrow/locks", {"account": "module:escrow", "role": "thief"}, "api.invalid_request"),
    ):
        response = live_node.http.get(path, params=params)
        assert response.status_code in (400, 422) and response.json()["error"]["code"] == code, response.text
