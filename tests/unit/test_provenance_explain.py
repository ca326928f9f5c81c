"""``autarky.provenance.explain`` over an in-process chain: a battery decides with a registered model,
submits, records and anchors; explain reports every check ok, and each kind of tampering (the record,
its inputs, the model file, the card, the training data, a missing anchor) fails its own check.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.models.modelfile import ModelCard, ModelFile, load_model, save_card, save_model
from autarky.modules.bank import messages as bank
from autarky.modules.harness import Chain
from autarky.modules.provenance import keeper
from autarky.modules.provenance import messages as prov
from autarky.provenance import (
    ChainLedgerView,
    DecisionChain,
    DecisionStore,
    explain,
    training_data_bytes,
)

CHAIN_ID = "explain-test"
BATTERY = SigningKey.from_seed(sha256(b"explain/battery"))
OWNER = SigningKey.from_seed(sha256(b"explain/owner"))
GENESIS: dict[str, Any] = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": 0,
    "app_state": {
        "identity": {"accounts": [{"did": BATTERY.did, "owner": OWNER.did, "kind": "battery"}]},
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "balances": [{"account": BATTERY.did, "asset": "aut", "amount": 1_000}],
        },
    },
}
ALL_CHECKS = [
    "record.found",
    "tx.committed",
    "record.hash",
    "record.inputs",
    "record.chain",
    "batch.anchored",
    "batch.proof",
    "batch.head",
    "model.registered",
    "model.file",
    "model.card",
    "training.anchors",
    "training.data",
]


def write_model(directory: Path, training_root: bytes) -> tuple[bytes, bytes]:
    """A model file and its card in ``autarky.models``' format (``<hex>.model``, ``<hex>.card.json``)."""
    model = ModelFile("battery-lp", "1", {"weights": np.arange(4, dtype="f8")}, {"seed": 1})
    _, model_hash = save_model(model, directory)
    card = ModelCard(
        {
            "name": "battery-lp",
            "version": "1",
            "kind": "battery-lp",
            "model_hash": model_hash.hex(),
            "intended_use": "schedule a home battery",
            "inputs": ["soc_wh", "price_milli"],
            "outputs": ["sell_wh"],
            "training_data": {"records": 3, "merkle_root": training_root.hex(), "anchor_id": ""},
            "metrics": {"revenue_bp": 10_000},
            "limitations": "test model",
        }
    )
    _, card_hash = save_card(card, directory)
    load_model(directory / f"{model_hash.hex()}.model")  # the real loader accepts it
    return model_hash, card_hash


class Site:
    def __init__(self, tmp_path: Path) -> None:
        self.chain = Chain.from_genesis(GENESIS)
        self.view = ChainLedgerView(self.chain)
        self.models = tmp_path / "models"
        self.models.mkdir()
        self.store = DecisionStore(tmp_path / "decisions.sqlite")
        data, root = training_data_bytes([{"hour": h, "pv_wh": 100 * h} for h in range(3)])
        (self.models / f"{root.hex()}.records.cbor").write_bytes(data)
        tx = self.run(OWNER, prov.anchor("autarky.training/battery-lp/1", root, 3, 0, 2))
        anchor_id = keeper.new_anchor_id(tx.hash, 0)
        self.model_hash, card_hash = write_model(self.models, root)
        self.run(
            OWNER,
            prov.register_model("battery-lp", "1", self.model_hash, card_hash, "battery-lp", [anchor_id]),
        )
        self.decisions = DecisionChain(BATTERY.did, store=self.store)
        self.txs = [self.decide(hour) for hour in range(5)]
        batch = self.decisions.pending_batch()
        assert batch is not None
        self.run(BATTERY, prov.anchor_decisions(**batch.message_fields(BATTERY.did)))
        self.decisions.mark_anchored(batch.first_seq, len(batch.records))

    def run(self, signer: SigningKey, *messages: dict[str, Any]) -> SignedTx:
        tx = sign_tx(TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, messages), signer)
        receipts = self.chain.execute([tx.raw])
        assert receipts[0].code == "ok", receipts[0].detail
        self.view.note_receipts([tx], receipts)
        return tx

    def decide(self, hour: int) -> bytes:
        inputs = {"hour": hour, "soc_wh": 5_000 - 100 * hour, "price_milli": [30, 40, 35]}
        tx = self.run(BATTERY, bank.send(OWNER.did, "aut", 1 + hour))
        self.decisions.append(
            time_ms=hour * 3_600_000,
            policy="battery-lp/1",
            model=self.model_hash,
            inputs=inputs,
            output={"sell_wh": 100 * hour},
            allowed_by={"kind": "guardrail", "ref": "per_tx_cap"},
            tx=tx.hash,
        )
        return tx.hash

    def explain(self, index: int = 2) -> dict[str, Any]:
        result = explain(self.txs[index], self.store, self.view, self.models)
        return {check.name: check for check in result.checks} | {"_ok": result.ok}


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return Site(tmp_path)


def failed(checks: dict[str, Any]) -> list[str]:
    return [name for name, check in checks.items() if name != "_ok" and check.ok is False]


def test_every_check_passes_for_an_untouched_decision(site: Site) -> None:
    result = explain(site.txs[2], site.store, site.view, site.models)
    assert [check.name for check in result.checks] == ALL_CHECKS
    assert all(check.ok is True for check in result.checks), result.checks
    assert result.ok and result.record is not None and result.record.seq == 2
    assert result.inputs == {"hour": 2, "soc_wh": 4_800, "price_milli": [30, 40, 35]}
    document = result.to_json()
    assert document["ok"] is True and document["record"]["seq"] == 2
    assert document["model"]["model_id"] == "battery-lp" and document["card"]["name"] == "battery-lp"
    assert json.dumps(document)  # plain JSON


def test_unknown_transaction(site: Site) -> None:
    result = explain(sha256(b"nothing"), site.store, site.view, site.models)
    assert [(c.name, c.ok) for c in result.checks] == [("record.found", False)]
    assert not result.ok


def _tamper(site: Site, sql: str, *params: Any) -> None:
    site.store.flush()
    with sqlite3.connect(site.store.path) as db:
        db.execute(sql, params)


def test_a_tampered_record_fails_hash_chain_and_proof(site: Site) -> None:
    record = site.store.get(BATTERY.did, 2)
    assert record is not None
    import dataclasses

    forged = dataclasses.replace(record, output={"sell_wh": 9_999})
    _tamper(site, "UPDATE records SET body = ? WHERE machine = ? AND seq = 2", forged.encode(), BATTERY.did)
    checks = site.explain(2)
    assert failed(checks) == ["record.hash", "record.chain", "batch.proof"]
    # A record rewritten with its stored hash too still breaks the chain link and the Merkle proof.
    _tamper(site, "UPDATE records SET hash = ? WHERE machine = ? AND seq = 2", forged.hash, BATTERY.did)
    assert failed(site.explain(2)) == ["record.chain", "batch.proof"]
    # Its neighbours' proofs fail too: the batch no longer reproduces the on-chain root.
    assert "batch.proof" in failed(site.explain(1))


def test_tampered_inputs(site: Site) -> None:
    from autarky.encoding import canonical_encode

    forged = canonical_encode({"hour": 2, "soc_wh": 1, "price_milli": [30, 40, 35]})
    _tamper(site, "UPDATE records SET inputs = ? WHERE machine = ? AND seq = 2", forged, BATTERY.did)
    assert failed(site.explain(2)) == ["record.inputs"]


def test_tampered_model_file_card_and_training_data(site: Site) -> None:
    model_path = site.models / f"{site.model_hash.hex()}.model"
    model_path.write_bytes(model_path.read_bytes() + b"!")
    assert failed(site.explain()) == ["model.file"]
    (card_path,) = site.models.glob("*.card.json")
    card_path.write_bytes(card_path.read_bytes().replace(b"test model", b"safe model", 1))
    assert failed(site.explain()) == ["model.file", "model.card"]
    (data_path,) = site.models.glob("*.records.cbor")
    data_path.write_bytes(data_path.read_bytes()[:-1] + b"\x00")
    assert failed(site.explain()) == ["model.file", "model.card", "training.data"]


def test_missing_files_are_reported_as_not_checked(site: Site) -> None:
    for path in site.models.iterdir():
        path.unlink()
    checks = site.explain()
    assert failed(checks) == [] and checks["_ok"] is True
    assert [name for name in ALL_CHECKS if checks[name].ok is None] == [
        "model.file",
        "model.card",
        "training.data",
    ]
    result = explain(site.txs[0], site.store, site.view, None)
    assert result.ok and "no model directory" in {c.name: c for c in result.checks}["model.file"].detail


def test_a_decision_not_yet_anchored(site: Site) -> None:
    tx = site.decide(9)
    result = explain(tx, site.store, site.view, site.models)
    assert [c.name for c in result.checks if c.ok is False] == ["batch.anchored"]
    assert result.checks[1].detail.startswith("height ") and "code ok" in result.checks[1].detail
