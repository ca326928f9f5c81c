"""A real embedded node: its audit trail (C3) and the proofs a light client checks offline (C1).

* every message of every block is in the audit trail with its sender, signing keys, action,
  result code and parties; the filters (machine, action, key, height range, ok) select exactly the
  matching entries; a ledger from before the trail gets it rebuilt from its blocks on open;
* ``Node.prove_many`` proves keys at the latest block and at earlier ones (values as they were
  then); a :class:`~autarky.verify.ProofBundle` of them checks against a trust anchor holding the
  node's key, after a trip through its canonical CBOR form, and every kind of tampering is refused
  with its code; the identity module's own authenticator, run on the verified state, decides
  which keys act for an account exactly as the ledger does.
"""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from autarky.crypto.domains import Domain
from autarky.crypto.keys import SigningKey
from autarky.ledger import errors as core_errors
from autarky.ledger.errors import TxError
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.modules import build_app
from autarky.modules.bank import messages as bank
from autarky.modules.identity import keeper as identity_keeper
from autarky.node.node import DB_FILE, Node, NodeSettings, init_data_dir
from autarky.verify import ProofBundle, TrustAnchor, VerifyError
from autarky.web.testing import CHAIN_ID, LiveNode, TestKeys, standard_genesis

KEYS = TestKeys.create()


def _tx(key: SigningKey, sequence: int, *messages: dict[str, Any]) -> SignedTx:
    return sign_tx(TxBody(CHAIN_ID, key.did, sequence, 1, 0, messages), key)


async def _commit(node: Node, txs: list[SignedTx]) -> int:
    for tx in txs:
        assert (await node.submit(tx.raw)).ok
    outcomes = await asyncio.gather(*(node.wait_committed(tx.hash) for tx in txs))
    assert all(outcome.status == "committed" for outcome in outcomes)
    return max(outcome.height or 0 for outcome in outcomes)


def _bundle(node: Node, keys: list[str], height: int | None = None) -> ProofBundle:
    proven = node.prove_many(keys, height)
    return ProofBundle(
        proven.header,
        tuple(proven.entries),
        signature=node.header_signature(proven.header),
        signer=node.node_key.public_key.raw,
    )


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "node"
    init_data_dir(path, standard_genesis(KEYS))
    return path


def test_audit_trail_and_light_proofs(data_dir: Path) -> None:
    alice, bob, carol = KEYS.alice, KEYS.bob, KEYS.carol
    balance_key = f"bank/bal/{bob.did}/aut"

    async def body() -> None:
        async with await Node.open(NodeSettings(data_dir, block_interval_ms=5)) as node:
            first = await _commit(node, [_tx(alice, 0, bank.send(bob.did, "aut", 100))])
            bob_then = node.state.get(balance_key)
            later = await _commit(
                node,
                [
                    _tx(carol, 0, bank.send(bob.did, "aut", 10**9)),  # fails: insufficient funds
                    _tx(alice, 1, bank.send(carol.did, "aut", 5), bank.send(bob.did, "aut", 7)),
                ],
            )
            assert later > first

            # -- audit ------------------------------------------------------------------------------
            everything = node.audit(limit=1000)
            sends = [e for e in everything if e.action == "bank/send"]
            assert len(sends) == 4
            assert [(e.height, e.tx_index, e.msg_index) for e in everything] == sorted(
                ((e.height, e.tx_index, e.msg_index) for e in everything), reverse=True
            )
            failed = node.audit(ok=False)
            assert [(e.sender, e.code) for e in failed] == [(carol.did, "bank.insufficient_funds")]
            assert failed[0].signers == (carol.public_key.hex(),)
            about_carol = node.audit(machine=carol.did)
            assert {(e.sender, e.msg_index) for e in about_carol} == {(carol.did, 0), (alice.did, 0)}
            by_key = node.audit(key=alice.public_key.hex().upper())
            assert {e.sender for e in by_key} == {alice.did} and len(by_key) == 3
            assert [e.height for e in node.audit(from_height=later, to_height=later)] == [later] * 3
            assert node.audit(action="bank/") == node.audit(action="bank/send")
            assert node.audit(action="identity/") == []  # genesis writes state, not transactions
            assert node.audit(grant="00" * 32) == []
            assert len(node.audit(limit=2)) == 2

            # -- proofs at the latest block and at an earlier one --------------------------------------
            anchor = TrustAnchor.of_node(CHAIN_ID, node.node_key.did)
            account = identity_keeper.account_key(KEYS.battery.did)
            keys = [balance_key, account, f"bank/bal/{SigningKey.from_seed(b'n' * 32).did}/aut"]
            now = ProofBundle.decode(_bundle(node, keys).encode()).verify(anchor)
            assert now.header.height == node.height
            assert now.get(balance_key) == node.state.get(balance_key)
            assert now.get(keys[2]) is None  # proved absent
            with pytest.raises(VerifyError) as unknown:
                now.get("bank/bal/someone-else/aut")
            assert unknown.value.code == "verify.not_proven"
            then = _bundle(node, [balance_key], first).verify(anchor)
            assert then.header.height == first and then.get(balance_key) == bob_then != now.get(balance_key)

            # The ledger's own authenticator, run on proved state, decides which keys act for the machine.
            identity = build_app().authenticator
            scope = identity.authenticate(now, KEYS.battery.did, KEYS.battery.public_key.raw)
            assert scope.full
            with pytest.raises(TxError) as refused:
                identity.authenticate(now, KEYS.battery.did, bob.public_key.raw)
            assert refused.value.code == core_errors.UNKNOWN_SIGNER.code

            # -- tampering ---------------------------------------------------------------------------
            good = _bundle(node, keys)
            forged_entries = ((balance_key, b"\x1a\x7f\xff\xff\xff", good.entries[0][2]), *good.entries[1:])
            cases = {
                "verify.bad_proof": ProofBundle(good.header, forged_entries, good.signature, good.signer),
                "verify.bad_signature": ProofBundle(good.header, good.entries, bytes(64), good.signer),
                "verify.untrusted_signer": ProofBundle(
                    good.header,
                    good.entries,
                    bob.sign(Domain.BLOCK_HEADER, good.header.encode(), CHAIN_ID),
                    bob.public_key.raw,
                ),
                "verify.no_evidence": ProofBundle(good.header, good.entries),
            }
            for code, bundle in cases.items():
                with pytest.raises(VerifyError) as caught:
                    bundle.verify(anchor)
                assert caught.value.code == code
            with pytest.raises(VerifyError) as wrong_chain:
                good.verify(TrustAnchor("other-chain", node_keys=(node.node_key.public_key.raw,)))
            assert wrong_chain.value.code == "verify.wrong_chain"
            with pytest.raises(VerifyError) as malformed:
                ProofBundle.decode(good.encode()[:-3])
            assert malformed.value.code == "verify.malformed"
            with pytest.raises(VerifyError) as stale:
                now.check_fresh(now.header.time_ms + 60_001, 60_000)
            assert stale.value.code == "verify.stale"
            now.check_fresh(now.header.time_ms + 60_000, 60_000)

    asyncio.run(body())

    # A ledger from before the audit trail: the node rebuilds it from the blocks on open.
    async def entries() -> list[Any]:
        async with await Node.open(NodeSettings(data_dir, block_interval_ms=5)) as node:
            return node.audit(limit=1000)

    before = asyncio.run(entries())
    with sqlite3.connect(data_dir / DB_FILE) as db:
        db.execute("DELETE FROM audit")
        db.execute("DELETE FROM audit_party")
        db.execute("DELETE FROM meta WHERE key = 'audit_height'")
    assert asyncio.run(entries()) == before


def test_proofs_and_audit_over_http(tmp_path: Path) -> None:
    """``GET /api/v1/proofs`` answers a bundle a light client checks with the node's key alone, and
    ``GET /api/v1/audit`` the trail with its filters; bad filters get typed errors."""
    alice, bob = KEYS.alice, KEYS.bob
    with LiveNode(tmp_path / "node", standard_genesis(KEYS)) as live:
        assert live.submit(live.transfer(alice, bob.did, 25)).status_code == 200
        status = live.http.get("/api/v1/status").json()
        anchor = TrustAnchor.of_node(CHAIN_ID, status["node_key"])
        keys = [f"bank/bal/{bob.did}/aut", f"bank/bal/{KEYS.carol.did}/kwh"]
        answer = live.http.get("/api/v1/proofs", params=[("key", k) for k in keys]).json()
        assert answer["final"] is True and answer["certificate"] is None
        state = ProofBundle.from_json(answer).verify(anchor)
        assert state.get(keys[1]) is None
        assert state.get(keys[0]) == live.call(lambda: live.node.state.get(keys[0]))
        answer["entries"][0]["value"] = "00"
        with pytest.raises(VerifyError) as forged:
            ProofBundle.from_json(answer).verify(anchor)
        assert forged.value.code == "verify.bad_proof"

        too_many = live.http.get("/api/v1/proofs", params=[("key", f"k{i}") for i in range(65)])
        assert too_many.status_code == 422 and too_many.json()["error"]["code"] == "api.invalid_request"
        assert live.http.get("/api/v1/proofs").status_code == 422

        trail = live.http.get("/api/v1/audit", params={"machine": bob.did, "action": "bank/send"}).json()
        assert [(e["sender"], e["action"], e["ok"]) for e in trail["entries"]] == [
            (alice.did, "bank/send", True)
        ]
        assert trail["entries"][0]["signers"] == [alice.public_key.hex()]
        by_key = live.http.get("/api/v1/audit", params={"key": bob.public_key.hex(), "ok": "true"}).json()
        assert by_key["entries"] == []
        for params, code in (
            ({"machine": "did:web:example.com"}, "api.invalid_did"),
            ({"grant": "xyz"}, "api.invalid_hex"),
            ({"key": "ab"}, "api.invalid_hex"),
            ({"limit": 0}, "api.invalid_request"),
        ):
            bad = live.http.get("/api/v1/audit", params=params)
            assert bad.status_code in (400, 422) and bad.json()["error"]["code"] == code, (params, bad.text)
