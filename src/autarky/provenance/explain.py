"""``explain``: from a transaction to the decision behind it, and every check on the way.

The walk (each step a named :class:`Check`; ``ok`` is None when a step cannot be checked, e.g. the
model file is not in the model directory):

1. ``record.found``      the store has a decision record naming the transaction;
2. ``tx.committed``      the ledger has the transaction (its height, code and sender in the detail);
3. ``record.hash``       the record's hash, recomputed, equals the hash stored beside it;
4. ``record.inputs``     the stored inputs hash to the record's ``inputs_digest``;
5. ``record.chain``      ``prev`` is the previous record's hash (zero for ``seq`` 0) and the next
                         record, if any, names this one;
6. ``batch.anchored``    the ledger has an anchored batch of the machine holding ``seq``;
7. ``batch.proof``       the record's Merkle path leads to the batch's on-chain root;
8. ``batch.head``        the batch's last stored record hashes to the on-chain head;
9. ``model.registered``  the record's model hash is in the ledger's model registry;
10. ``model.file``       ``<hash>.model`` in the model directory hashes to the registered hash;
11. ``model.card``       ``<card hash>.card.json`` hashes to the registered card hash and names the model;
12. ``training.anchors`` every training-data anchor of the model is on chain (and the card's
                         training root is one of them);
13. ``training.data``    a training data file ``<root>.records.cbor`` (canonical CBOR list of
                         records), when present, has that Merkle root.

The ledger is reached through a :class:`LedgerView`: :class:`ChainLedgerView` over an in-process
``autarky.modules.harness.Chain`` here, an HTTP one in ``autarky.web.provenance_view``.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from autarky.encoding import DecodeError, canonical_decode, canonical_encode
from autarky.ledger.merkle import merkle_root
from autarky.provenance.batch import BatchAnchor, merkle_proof, verify_record
from autarky.provenance.records import ZERO_HASH, DecisionRecord, RecordError, inputs_digest
from autarky.provenance.store import DecisionStore

MODEL_SUFFIX = ".model"
CARD_SUFFIX = ".card.json"
TRAINING_DATA_SUFFIX = ".records.cbor"


class LedgerView(Protocol):
    """What ``explain`` reads from the ledger. Hashes are bytes; records are the module's maps."""

    def tx(self, tx_hash: bytes) -> Mapping[str, Any] | None:
        """``{height, code, sender}`` of a committed transaction, or None."""
        ...

    def decision_batch(self, machine: str, seq: int) -> Mapping[str, Any] | None:
        """The anchored batch holding the machine's record ``seq`` (``first_seq, count, head, root``)."""
        ...

    def model(self, file_hash: bytes) -> Mapping[str, Any] | None: ...

    def anchor(self, anchor_id: bytes) -> Mapping[str, Any] | None: ...


@dataclasses.dataclass(frozen=True)
class Check:
    name: str
    ok: bool | None
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclasses.dataclass
class Explanation:
    """The record behind a transaction, the model and data behind the record, and every check."""

    tx_hash: bytes
    record: DecisionRecord | None = None
    inputs: Mapping[str, Any] | None = None
    batch: Mapping[str, Any] | None = None
    model: Mapping[str, Any] | None = None
    card: Mapping[str, Any] | None = None
    checks: list[Check] = dataclasses.field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No check failed (checks that could not run do not count as failures)."""
        return all(check.ok is not False for check in self.checks)

    def check(self, name: str, ok: bool | None, detail: str) -> bool | None:
        self.checks.append(Check(name, ok, detail))
        return ok

    def to_json(self) -> dict[str, Any]:
        from_bytes = to_jsonable
        return {
            "tx_hash": self.tx_hash.hex(),
            "ok": self.ok,
            "record": None
            if self.record is None
            else {**from_bytes(self.record.to_map()), "hash": self.record.hash.hex()},
            "inputs": from_bytes(self.inputs),
            "batch": from_bytes(self.batch),
            "model": from_bytes(self.model),
            "card": from_bytes(self.card),
            "checks": [check.to_json() for check in self.checks],
        }


def to_jsonable(value: Any) -> Any:
    """``value`` with bytes as hex, mappings as dicts with text keys and tuples as lists: what
    ``json.dumps`` takes (records, batches and model entries as the CLI and the dashboard show them)."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Mapping):
        return {str(key): to_jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    return value


def explain(
    tx_hash: bytes, store: DecisionStore, ledger_view: LedgerView, model_dir: str | Path | None = None
) -> Explanation:
    """Walk from ``tx_hash`` to its decision record, batch, model, card and training data."""
    result = Explanation(tx_hash)
    try:
        record = store.by_tx(tx_hash)
    except (RecordError, DecodeError, ValueError) as error:
        result.check("record.found", False, f"the stored record does not decode: {error}")
        return result
    if not result.check(
        "record.found",
        record is not None,
        "no decision record names this transaction"
        if record is None
        else f"{_short(record.machine)} #{_seq(record)}",
    ):
        return result
    assert record is not None
    result.record = record
    tx = ledger_view.tx(tx_hash)
    result.check(
        "tx.committed",
        tx is not None,
        "the transaction is not on chain"
        if tx is None
        else f"height {tx['height']}, code {tx['code']}, sent by {_short(str(tx['sender']))}",
    )
    _check_record(result, record, store)
    _check_batch(result, record, store, ledger_view)
    if record.model is None:
        result.check("model.registered", None, "the decision used no model")
        return result
    _check_model(result, record.model, ledger_view, None if model_dir is None else Path(model_dir))
    return result


def _short(did: str) -> str:
    return did if len(did) <= 24 else f"{did[:16]}…{did[-4:]}"


def _seq(record: DecisionRecord) -> str:
    return f"{record.seq} ({record.policy})"


def _check_record(result: Explanation, record: DecisionRecord, store: DecisionStore) -> None:
    stored = store.stored_hash(record.machine, record.seq)
    result.check(
        "record.hash",
        stored == record.hash,
        f"{record.hash.hex()}"
        if stored == record.hash
        else "the record's bytes do not hash to its stored hash: altered",
    )
    inputs = store.inputs(record.machine, record.seq)
    result.inputs = inputs
    if inputs is None:
        result.check("record.inputs", None, "the inputs were not stored")
    else:
        ok = inputs_digest(inputs) == record.inputs_digest
        result.check(
            "record.inputs",
            ok,
            "the stored inputs hash to inputs_digest" if ok else "the stored inputs were altered",
        )
    if record.seq == 0:
        linked = record.prev == ZERO_HASH
        detail = "first record" if linked else "the first record must have a zero prev"
    else:
        before = store.get(record.machine, record.seq - 1)
        linked = before is not None and before.hash == record.prev
        detail = "prev is the previous record's hash" if linked else "prev does not match the previous record"
    after = store.get(record.machine, record.seq + 1)
    if linked and after is not None and after.prev != record.hash:
        linked, detail = False, "the next record does not name this record's hash"
    result.check("record.chain", linked, detail)


def _check_batch(
    result: Explanation, record: DecisionRecord, store: DecisionStore, ledger: LedgerView
) -> None:
    batch = ledger.decision_batch(record.machine, record.seq)
    result.batch = batch
    if batch is None:
        result.check("batch.anchored", False, f"no anchored batch holds record {record.seq} yet")
        return
    first_seq, count = int(batch["first_seq"]), int(batch["count"])
    result.check(
        "batch.anchored", True, f"records {first_seq}..{first_seq + count - 1} at height {batch['height']}"
    )
    anchor = BatchAnchor(record.machine, first_seq, count, bytes(batch["head"]), bytes(batch["root"]))
    records = store.records(record.machine, first_seq, count)
    if len(records) != count:
        result.check("batch.proof", False, f"the store holds {len(records)} of the batch's {count} records")
        return
    proof = merkle_proof(records, record.seq - first_seq)
    ok = verify_record(record, anchor, proof)
    result.check(
        "batch.proof",
        ok,
        f"Merkle path of {len(proof.path)} steps to root {anchor.root.hex()[:16]}…"
        if ok
        else "the batch's stored records do not reproduce the on-chain root",
    )
    head_ok = records[-1].hash == anchor.head
    result.check(
        "batch.head", head_ok, "the batch's last record is the on-chain head" if head_ok else "head differs"
    )


def _check_model(result: Explanation, model_hash: bytes, ledger: LedgerView, model_dir: Path | None) -> None:
    model = ledger.model(model_hash)
    result.model = model
    if model is None:
        result.check("model.registered", False, f"model {model_hash.hex()} is not registered on chain")
        return
    retired = "" if model.get("retired_height") is None else f", retired at height {model['retired_height']}"
    result.check(
        "model.registered",
        True,
        f"{model['model_id']} {model['version']} by {_short(model['owner'])}{retired}",
    )
    card = _check_files(result, model_hash, bytes(model["card_hash"]), model_dir)
    anchors = [bytes(a) for a in model["training_anchors"]]
    found = [ledger.anchor(anchor_id) for anchor_id in anchors]
    missing = [a.hex() for a, f in zip(anchors, found, strict=True) if f is None]
    roots = {bytes(f["root"]) for f in found if f is not None}
    card_root = _card_training_root(card)
    ok = not missing and (card_root is None or card_root in roots)
    detail = (
        f"missing on chain: {', '.join(missing)}"
        if missing
        else f"{len(anchors)} anchor(s) on chain"
        if ok
        else "the card's training data root is not one of the model's anchors"
    )
    result.check("training.anchors", ok, detail)
    _check_training_data(result, sorted(roots), model_dir)


def _check_files(
    result: Explanation, model_hash: bytes, card_hash: bytes, model_dir: Path | None
) -> Mapping[str, Any] | None:
    if model_dir is None:
        result.check("model.file", None, "no model directory given")
        result.check("model.card", None, "no model directory given")
        return None
    model_path = model_dir / (model_hash.hex() + MODEL_SUFFIX)
    if not model_path.is_file():
        result.check("model.file", None, f"{model_path.name} is not in {model_dir}")
    else:
        ok = hashlib.sha256(model_path.read_bytes()).digest() == model_hash
        result.check(
            "model.file", ok, f"{model_path.name} matches" if ok else f"{model_path.name} was altered"
        )
    card_path = model_dir / (card_hash.hex() + CARD_SUFFIX)
    if not card_path.is_file():
        result.check("model.card", None, f"{card_path.name} is not in {model_dir}")
        return None
    data = card_path.read_bytes()
    if hashlib.sha256(data).digest() != card_hash:
        result.check("model.card", False, f"{card_path.name} was altered")
        return None
    try:
        card = json.loads(data)
    except ValueError:
        result.check("model.card", False, "the card is not JSON")
        return None
    names = isinstance(card, dict) and card.get("model_hash") == model_hash.hex()
    result.check(
        "model.card",
        names,
        "the card matches and names the model" if names else "the card names another model",
    )
    if isinstance(card, dict):
        result.card = card
        return card
    return None


def _card_training_root(card: Mapping[str, Any] | None) -> bytes | None:
    data = None if card is None else card.get("training_data")
    root = data.get("merkle_root") if isinstance(data, Mapping) else None
    try:
        return bytes.fromhex(root) if isinstance(root, str) and root else None
    except ValueError:
        return None


def _check_training_data(result: Explanation, roots: list[bytes], model_dir: Path | None) -> None:
    for root in roots:
        path = None if model_dir is None else model_dir / (root.hex() + TRAINING_DATA_SUFFIX)
        if path is None or not path.is_file():
            continue
        try:
            records = canonical_decode(path.read_bytes())
            leaves = [hashlib.sha256(canonical_encode(r)).digest() for r in records]
        except (DecodeError, TypeError, ValueError):
            result.check("training.data", False, f"{path.name} is not a canonical CBOR list")
            return
        ok = merkle_root(leaves) == root
        result.check(
            "training.data",
            ok,
            f"{len(leaves)} records reproduce the anchored root" if ok else f"{path.name} was altered",
        )
        return
    result.check("training.data", None, "no training data file in the model directory")


def training_data_bytes(records: list[Any]) -> tuple[bytes, bytes]:
    """``(file bytes, Merkle root)`` of a training data file: canonical CBOR of the list of records;
    the root is over ``sha256(canonical_encode(record))`` of each record."""
    leaves = [hashlib.sha256(canonical_encode(r)).digest() for r in records]
    return canonical_encode(records), merkle_root(leaves)


class ChainLedgerView:
    """A :class:`LedgerView` over an in-process ``harness.Chain`` (tests, simulations).

    The chain keeps no receipts, so give them to :meth:`note_receipts` as blocks run if the codes
    matter; otherwise a committed transaction's code reads ``unknown``.
    """

    def __init__(self, chain: Any) -> None:
        from autarky.modules.provenance import ProvenanceModule

        self.chain = chain
        module = chain.app.module("provenance")
        assert isinstance(module, ProvenanceModule)
        self.module = module
        self._codes: dict[bytes, str] = {}
        self._index: dict[bytes, tuple[int, bytes]] = {}
        self._indexed_height = 0

    def note_receipts(self, txs: list[Any], receipts: Any) -> None:
        for tx, receipt in zip(txs, receipts, strict=True):
            self._codes[tx.hash] = str(receipt.code)

    def tx(self, tx_hash: bytes) -> Mapping[str, Any] | None:
        from autarky.ledger.tx import decode_tx

        blocks = self.chain.blocks
        while self._indexed_height < len(blocks) - 1:
            self._indexed_height += 1
            for raw in blocks[self._indexed_height]:
                self._index[hashlib.sha256(raw).digest()] = (self._indexed_height, raw)
        found = self._index.get(tx_hash)
        if found is None:
            return None
        height, raw = found
        return {
            "height": height,
            "code": self._codes.get(tx_hash, "unknown"),
            "sender": decode_tx(raw).body.sender,
        }

    def decision_batch(self, machine: str, seq: int) -> Mapping[str, Any] | None:
        return self.module.decision_batch(self.chain.state, machine, seq)

    def model(self, file_hash: bytes) -> Mapping[str, Any] | None:
        return self.module.model(self.chain.state, file_hash)

    def anchor(self, anchor_id: bytes) -> Mapping[str, Any] | None:
        return self.module.anchor(self.chain.state, anchor_id)
