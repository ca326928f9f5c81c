"""Provenance through a real node: the HTTP routes, ``HttpLedgerView`` and the CLI as a subprocess.

A battery machine (alice) decides, pays for what it decided (a ``bank/send``), records each decision
in a SQLite ``DecisionStore`` and anchors the batch; a trainer (bob) anchors the training data and
registers the model (a stand-in model file and card in the ``autarky.models`` layout).
``autarky decisions explain TX --json`` prints every check ok; a tampered record, a tampered model
file and a tampered card each make it exit 1 with the matching check failed. ``decisions verify``
and ``decisions list`` read the same store; the routes answer anchors, models, decisions, batches
and items, and refuse bad input with typed errors.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from test_cli import autarky, autarky_json

from autarky.crypto.hashing import sha256
from autarky.modules.bank import messages as bank
from autarky.modules.provenance import keeper
from autarky.modules.provenance import messages as prov
from autarky.provenance import DecisionChain, DecisionStore, explain, training_data_bytes
from autarky.web.client import AutarkyClient, NotFound
from autarky.web.provenance_view import HttpLedgerView
from autarky.web.testing import LiveNode, TestKeys, standard_genesis

pytestmark = pytest.mark.slow


@dataclasses.dataclass
class Site:
    live: LiveNode
    root: Path
    store_path: Path
    models: Path
    machine: str
    model_hash: bytes
    card_hash: bytes
    txs: list[bytes]


def commit(live: LiveNode, key: Any, *messages: dict[str, Any]) -> bytes:
    tx = live.sign(key, list(messages))
    response = live.submit(tx)
    assert response.status_code == 200, response.text
    assert response.json()["receipt"]["code"] == "ok", response.json()
    return tx.hash


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, test_keys: TestKeys) -> Iterator[Site]:
    root = tmp_path_factory.mktemp("provenance")
    with LiveNode(root / "node", standard_genesis(test_keys, chain_id="provenance-test")) as live:
        models = root / "models"
        models.mkdir()
        data, training_root = training_data_bytes([{"hour": h, "pv_wh": 250 * h} for h in range(24)])
        (models / f"{training_root.hex()}.records.cbor").write_bytes(data)
        anchor_tx = commit(
            live, test_keys.bob, prov.anchor("autarky.training/battery-lp/1", training_root, 24, 0, 23)
        )
        model_bytes = b"autarky-model/1 battery-lp stand-in parameters"
        model_hash = sha256(model_bytes)
        (models / f"{model_hash.hex()}.model").write_bytes(model_bytes)
        card = {
            "name": "battery-lp",
            "version": "1",
            "kind": "battery-lp",
            "model_hash": model_hash.hex(),
            "training_data": {"records": 24, "merkle_root": training_root.hex()},
        }
        card_bytes = json.dumps(card, sort_keys=True, separators=(",", ":")).encode()
        card_hash = sha256(card_bytes)
        (models / f"{card_hash.hex()}.card.json").write_bytes(card_bytes)
        anchor_id = keeper.new_anchor_id(anchor_tx, 0)
        commit(
            live,
            test_keys.bob,
            prov.register_model("battery-lp", "1", model_hash, card_hash, "battery-lp", [anchor_id]),
        )

        machine = test_keys.alice
        store_path = root / "decisions.sqlite"
        txs = []
        with DecisionStore(store_path) as store:
            chain = DecisionChain(machine.did, store=store)
            for hour in range(6):
                inputs = {"hour": hour, "soc_wh": 8_000 - 500 * hour, "price_milli": [31, 44, 38]}
                tx_hash = commit(live, machine, bank.send(test_keys.carol.did, "aut", 10 + hour))
                chain.append(
                    time_ms=hour * 3_600_000,
                    policy="battery-lp/1",
                    model=model_hash,
                    inputs=inputs,
                    output={"sell_wh": 400 + hour},
                    allowed_by={"kind": "guardrail", "ref": "per_tx_cap"},
                    tx=tx_hash,
                )
                txs.append(tx_hash)
                if hour in (2, 5):  # two batches: 0..2 and 3..5
                    batch = chain.pending_batch()
                    assert batch is not None
                    commit(live, machine, prov.anchor_decisions(**batch.message_fields(machine.did)))
                    chain.mark_anchored(batch.first_seq, len(batch.records))
        commit(live, machine, prov.register_item("SN-4711", "spindle-bearing", {"lot": "L7"}))
        commit(live, machine, prov.item_custody("SN-4711", test_keys.carol.did, sha256(b"waybill")))
        yield Site(live, root, store_path, models, machine.did, model_hash, card_hash, txs)


def copy_site(site: Site, tmp_path: Path) -> tuple[Path, Path]:
    store = tmp_path / "decisions.sqlite"
    with sqlite3.connect(site.store_path) as source, sqlite3.connect(store) as target:
        source.backup(target)
    models = tmp_path / "models"
    shutil.copytree(site.models, models)
    return store, models


def explain_cli(site: Site, store: Path, models: Path, tx: bytes, expect: int) -> dict[str, Any]:
    return autarky_json(
        site.root,
        "decisions",
        "explain",
        tx.hex(),
        "--node",
        site.live.url,
        "--store",
        str(store),
        "--models",
        str(models),
        expect=expect,
    )


def failed(document: dict[str, Any]) -> list[str]:
    return [check["name"] for check in document["checks"] if check["ok"] is False]


def test_routes(site: Site) -> None:
    http = site.live.http
    models = http.get("/api/v1/provenance/models", params={"model_id": "battery-lp"}).json()
    assert models["total"] == 1 and models["models"][0]["hash"] == site.model_hash.hex()
    model = http.get(f"/api/v1/provenance/models/{site.model_hash.hex()}").json()
    assert model["card_hash"] == site.card_hash.hex() and model["retired_height"] is None
    anchor = http.get(f"/api/v1/provenance/anchors/{model['training_anchors'][0]}").json()
    assert anchor["count"] == 24 and anchor["schema"] == "autarky.training/battery-lp/1"
    decisions = http.get(f"/api/v1/provenance/decisions/{site.machine}").json()
    assert decisions["head"]["count"] == 6 and decisions["total"] == 2
    assert [b["first_seq"] for b in decisions["batches"]] == [0, 3]
    first = http.get(f"/api/v1/provenance/decisions/{site.machine}", params={"from_seq": 0, "limit": 1})
    assert [b["first_seq"] for b in first.json()["batches"]] == [0] and first.json()["next_seq"] == 3
    last = http.get(f"/api/v1/provenance/decisions/{site.machine}", params={"from_seq": 3, "limit": 1})
    assert [b["first_seq"] for b in last.json()["batches"]] == [3] and last.json()["next_seq"] is None
    beyond = http.get(f"/api/v1/provenance/decisions/{site.machine}", params={"from_seq": 6}).json()
    assert beyond["batches"] == [] and beyond["next_seq"] is None and beyond["head"]["count"] == 6
    batch = http.get(f"/api/v1/provenance/decisions/{site.machine}/batch", params={"seq": 4}).json()
    assert (batch["first_seq"], batch["count"]) == (3, 3)
    item = http.get("/api/v1/provenance/items/SN-4711").json()
    assert [e["event"] for e in item["history"]] == ["registered", "custody"]
    assert item["metadata"] == {"lot": "L7"}
    for path, status in [
        (f"/api/v1/provenance/decisions/{site.machine}/batch?seq=6", 404),
        ("/api/v1/provenance/models/" + "00" * 32, 404),
        ("/api/v1/provenance/anchors/zz", 400),
        ("/api/v1/provenance/decisions/did:web:x", 400),
        ("/api/v1/provenance/items/no%2Fsuch", 404),
    ]:
        response = http.get(path)
        assert response.status_code == status, (path, response.text)
        assert "error" in response.json()


def test_client_reads_a_registered_model(site: Site) -> None:
    async def read() -> None:
        async with AutarkyClient(site.live.url) as client:
            model = await client.provenance_model(site.model_hash)
            assert model["card_hash"] == site.card_hash.hex() and model["model_id"] == "battery-lp"
            assert await client.provenance_model(site.model_hash.hex()) == model
            with pytest.raises(NotFound):
                await client.provenance_model(bytes(32))

    asyncio.run(read())


def test_http_view_pages_through_batches(site: Site, test_keys: TestKeys) -> None:
    with HttpLedgerView(site.live.url) as view:
        for page_size in (1, 2, 1000):
            assert [b["first_seq"] for b in view.decision_batches(site.machine, page_size)] == [0, 3]
        assert list(view.decision_batches(test_keys.bob.did, 1)) == []  # anchored nothing


def test_http_view_explains_like_the_cli(site: Site) -> None:
    with DecisionStore(site.store_path) as store, HttpLedgerView(site.live.url) as view:
        result = explain(site.txs[4], store, view, site.models)
    assert result.ok and all(check.ok for check in result.checks), result.checks
    assert {c.name: c for c in result.checks}["tx.committed"].detail.startswith("height ")


def test_cli_explains_every_check_ok(site: Site) -> None:
    for tx in (site.txs[0], site.txs[5]):
        document = explain_cli(site, site.store_path, site.models, tx, 0)
        assert document["ok"] is True
        assert all(check["ok"] is True for check in document["checks"]), document["checks"]
        assert len(document["checks"]) == 13
    human = autarky(
        site.root,
        "decisions",
        "explain",
        site.txs[1].hex(),
        "--node",
        site.live.url,
        "--store",
        str(site.store_path),
        "--models",
        str(site.models),
    )
    assert "all checks ok" in human.stdout and "battery-lp" in human.stdout


def test_cli_detects_a_tampered_record(site: Site, tmp_path: Path) -> None:
    store, models = copy_site(site, tmp_path)
    with DecisionStore(store) as decisions:
        record = decisions.get(site.machine, 4)
    assert record is not None
    forged = dataclasses.replace(record, output={"sell_wh": 1})
    with sqlite3.connect(store) as db:
        db.execute("UPDATE records SET body = ?, hash = ? WHERE seq = 4", (forged.encode(), forged.hash))
    document = explain_cli(site, store, models, site.txs[4], 1)
    assert failed(document) == ["record.chain", "batch.proof"]
    verify = autarky_json(
        site.root,
        "decisions",
        "verify",
        "--machine",
        site.machine,
        "--store",
        str(store),
        "--node",
        site.live.url,
        expect=1,
    )
    assert verify["ok"] is False and any("batch 3..5" in p for p in verify["problems"])


def test_cli_detects_a_tampered_model_file_and_card(site: Site, tmp_path: Path) -> None:
    store, models = copy_site(site, tmp_path)
    model_path = models / f"{site.model_hash.hex()}.model"
    model_path.write_bytes(model_path.read_bytes().replace(b"stand-in", b"backdoor"))
    assert failed(explain_cli(site, store, models, site.txs[2], 1)) == ["model.file"]
    shutil.copy(site.models / model_path.name, model_path)
    card_path = models / f"{site.card_hash.hex()}.card.json"
    card_path.write_bytes(card_path.read_bytes().replace(b'"records":24', b'"records":25'))
    assert failed(explain_cli(site, store, models, site.txs[2], 1)) == ["model.card"]


def test_cli_verify_and_list(site: Site) -> None:
    # --page-size 1: the two batches come in two pages (the default reads 1,000 at a time)
    for page_size in ("1", "1000"):
        verify = autarky_json(
            site.root,
            "decisions",
            "verify",
            "--machine",
            site.machine,
            "--store",
            str(site.store_path),
            "--node",
            site.live.url,
            "--page-size",
            page_size,
        )
        assert verify == {
            "machine": site.machine,
            "records": 6,
            "anchored_on_chain": 6,
            "batches": 2,
            "ok": True,
            "problems": [],
        }
    listed = autarky_json(
        site.root,
        "decisions",
        "list",
        "--machine",
        site.machine,
        "--store",
        str(site.store_path),
        "--limit",
        "2",
    )
    assert (
        [r["seq"] for r in listed["records"]] == [4, 5] and listed["total"] == 6 and listed["anchored"] == 6
    )
    assert listed["records"][1]["tx"] == site.txs[5].hex()


def test_cli_provenance_reads(site: Site) -> None:
    models = autarky_json(site.root, "--node", site.live.url, "provenance", "models")
    assert models["models"][0]["model_id"] == "battery-lp"
    item = autarky_json(site.root, "--node", site.live.url, "provenance", "items", "SN-4711")
    assert item["custodian"] != site.machine and item["events"] == 2
    missing = autarky(site.root, "--node", site.live.url, "provenance", "items", "nothing", expect=1)
    assert "no item" in missing.stderr + missing.stdout
