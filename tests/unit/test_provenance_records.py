"""Off-chain decision records (``autarky.provenance``): hashes, chains, batches, proofs and the store.

A record's hash is pinned against a hand-built preimage (tag + canonical CBOR), every field change
moves it, chains link through ``prev``, a batch's root is the ledger's Merkle root over record
hashes, every record of a batch proves into its root and a changed record does not, and the SQLite
store round-trips records and inputs, indexes them by transaction hash and resumes a chain.
"""

from __future__ import annotations

import dataclasses
import hashlib
import sqlite3
from pathlib import Path

import pytest

from autarky.encoding import canonical_encode
from autarky.ledger.merkle import merkle_root
from autarky.provenance import (
    DECISION_TAG,
    INPUTS_TAG,
    ZERO_HASH,
    BatchAnchor,
    ChainError,
    DecisionChain,
    DecisionRecord,
    DecisionStore,
    RecordError,
    batch_anchor,
    inputs_digest,
    merkle_proof,
    verify_chain,
    verify_record,
)

MACHINE = "did:key:z6MkBattery"
INPUTS = {"soc_wh": 5_000, "price_milli": [31, 35, 40], "site": "north"}


def _chain(n: int, store: DecisionStore | None = None) -> DecisionChain:
    chain = DecisionChain(MACHINE, store=store)
    for i in range(n):
        chain.append(
            time_ms=1_000 * i,
            policy="battery-lp/1",
            inputs={**INPUTS, "i": i},
            output={"bid_wh": i, "plan": [i, -i]},
            model=b"\x07" * 32,
            allowed_by={"kind": "guardrail", "ref": "per_tx_cap"},
            tx=i.to_bytes(32, "big"),
        )
    return chain


def test_record_hash_is_the_tagged_canonical_map() -> None:
    record = _chain(1).pending_batch()
    assert record is not None
    first = record.records[0]
    expected = hashlib.sha256(DECISION_TAG + canonical_encode(first.to_map())).digest()
    assert first.hash == expected
    assert DECISION_TAG == b"AUTARKY-DECISION-V1\x00"
    assert not INPUTS_TAG.startswith(DECISION_TAG) and not DECISION_TAG.startswith(INPUTS_TAG)


def test_inputs_digest_is_tagged_and_order_free() -> None:
    digest = inputs_digest(INPUTS)
    assert digest == hashlib.sha256(INPUTS_TAG + canonical_encode(INPUTS)).digest()
    assert inputs_digest(dict(reversed(list(INPUTS.items())))) == digest
    assert inputs_digest({**INPUTS, "soc_wh": 5_001}) != digest
    with pytest.raises(ValueError):
        inputs_digest({"soc": 0.5})  # floats are quantised before hashing


@pytest.mark.parametrize(
    "change",
    [
        {"seq": 1, "prev": b"\x01" * 32},
        {"time_ms": 1},
        {"policy": "rule-battery/1"},
        {"model": None},
        {"inputs_digest": b"\x02" * 32},
        {"output": {"bid_wh": 1, "plan": [0, 0]}},
        {"allowed_by": {"kind": "grant", "ref": "g"}},
        {"tx": None},
        {"machine": "did:key:z6MkOther"},
    ],
)
def test_every_field_is_covered_by_the_hash(change: dict[str, object]) -> None:
    record = _chain(1).pending_batch()
    assert record is not None
    original = record.records[0]
    assert dataclasses.replace(original, **change).hash != original.hash  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seq": -1}, "seq"),
        ({"prev": b"\x01" * 32}, "first record"),
        ({"prev": b"short"}, "prev"),
        ({"time_ms": -5}, "time_ms"),
        ({"policy": ""}, "policy"),
        ({"model": b"\x00"}, "model"),
        ({"inputs_digest": None}, "inputs_digest"),
        ({"tx": b"x"}, "tx"),
        ({"allowed_by": {"kind": "magic", "ref": ""}}, "allowed_by"),
        ({"allowed_by": {"kind": "none"}}, "allowed_by"),
        ({"machine": ""}, "machine"),
    ],
)
def test_bad_records_are_refused(change: dict[str, object], message: str) -> None:
    batch = _chain(1).pending_batch()
    assert batch is not None
    with pytest.raises(RecordError, match=message):
        dataclasses.replace(batch.records[0], **change)  # type: ignore[arg-type]


def test_float_output_is_refused_before_the_chain_moves() -> None:
    chain = DecisionChain(MACHINE)
    with pytest.raises(ValueError):
        chain.append(time_ms=0, policy="p/1", inputs_digest=ZERO_HASH, output={"x": 0.5})
    assert chain.next_seq == 0 and chain.head == ZERO_HASH and chain.pending_batch() is None


def test_append_needs_inputs_or_a_matching_digest() -> None:
    chain = DecisionChain(MACHINE)
    with pytest.raises(RecordError, match="give inputs"):
        chain.append(time_ms=0, policy="p/1", output=1)
    with pytest.raises(RecordError, match="not the digest"):
        chain.append(time_ms=0, policy="p/1", output=1, inputs=INPUTS, inputs_digest=ZERO_HASH)
    record = chain.append(
        time_ms=0, policy="p/1", output=1, inputs=INPUTS, inputs_digest=inputs_digest(INPUTS)
    )
    assert record.inputs_digest == inputs_digest(INPUTS)
    assert record.allowed_by == {"kind": "none", "ref": ""} and record.model is None and record.tx is None


def test_records_link_and_verify_chain_finds_every_break() -> None:
    chain = _chain(5)
    batch = chain.pending_batch()
    assert batch is not None
    records = list(batch.records)
    assert [r.seq for r in records] == [0, 1, 2, 3, 4]
    assert records[0].prev == ZERO_HASH
    assert all(records[i].prev == records[i - 1].hash for i in range(1, 5))
    assert chain.head == records[-1].hash
    verify_chain(records)
    verify_chain(records[2:], prev=records[1].hash)
    with pytest.raises(ChainError, match="record 3: expected seq 2"):
        verify_chain(records[:2] + records[3:])
    with pytest.raises(ChainError, match="record 2: prev"):
        verify_chain(records[2:], prev=records[0].hash)
    forged = dataclasses.replace(records[2], output={"bid_wh": 999, "plan": [0, 0]})
    with pytest.raises(ChainError, match="record 3: prev"):
        verify_chain([*records[:2], forged, *records[3:]])
    other = dataclasses.replace(records[1], machine="did:key:z6MkOther")
    with pytest.raises(ChainError, match="belongs to"):
        verify_chain([records[0], other])


def test_pending_batches_and_mark_anchored() -> None:
    chain = _chain(10)
    first = chain.pending_batch(4)
    assert first is not None
    first_seq, records, head, root = first
    assert (first_seq, len(records)) == (0, 4)
    assert head == records[-1].hash
    assert root == merkle_root([r.hash for r in records])
    assert first.message_fields(MACHINE) == {
        "machine": MACHINE, "first_seq": 0, "count": 4, "head": head, "root": root,
    }  # fmt: skip
    with pytest.raises(ChainError):
        chain.mark_anchored(4, 4)  # not the next unanchored record
    with pytest.raises(ChainError):
        chain.mark_anchored(0, 11)  # more than is pending
    chain.mark_anchored(0, 4)
    assert chain.anchored == 4 and chain.pending_count == 6
    rest = chain.pending_batch()
    assert rest is not None and rest.first_seq == 4 and len(rest.records) == 6
    chain.mark_anchored(4, 6)
    assert chain.pending_batch() is None


def test_every_record_proves_into_its_batch_root_and_a_changed_one_does_not() -> None:
    for size in (1, 2, 3, 7, 16, 33):
        batch = _chain(size).pending_batch()
        assert batch is not None
        anchor = batch_anchor(batch.records)
        assert anchor == BatchAnchor(MACHINE, 0, size, batch.head, batch.root)
        for index, record in enumerate(batch.records):
            proof = merkle_proof(batch.records, index)
            assert verify_record(record, anchor, proof)
            forged = dataclasses.replace(record, output="forged")
            assert not verify_record(forged, anchor, proof)
        if size > 1:
            assert not verify_record(batch.records[1], anchor, merkle_proof(batch.records, 0))


def test_store_round_trips_records_inputs_and_tx_index(tmp_path: Path) -> None:
    path = tmp_path / "decisions.sqlite"
    with DecisionStore(path, batch_size=3) as store:
        chain = _chain(7, store)
        records = list(chain.pending_batch().records)  # type: ignore[union-attr]
        assert store.count() == 7 == store.count(MACHINE)
        assert store.get(MACHINE, 3) == records[3]
        assert store.stored_hash(MACHINE, 3) == records[3].hash
        assert store.inputs(MACHINE, 3) == {**INPUTS, "i": 3}
        assert store.by_tx((5).to_bytes(32, "big")) == records[5]
        assert store.by_tx(b"\xff" * 32) is None and store.get(MACHINE, 99) is None
        assert store.records(MACHINE, 2, 3) == records[2:5]
        assert store.machines() == [MACHINE]
        chain.mark_anchored(0, 4)
        assert store.anchors(MACHINE) == [(0, 4)] and store.anchored_count(MACHINE) == 4
    with DecisionStore(path) as reopened:
        resumed = DecisionChain.from_store(reopened, MACHINE)
        assert (resumed.next_seq, resumed.head, resumed.anchored) == (7, records[-1].hash, 4)
        pending = resumed.pending_batch()
        assert pending is not None and pending.records == tuple(records[4:])
        nxt = resumed.append(time_ms=9, policy="p/1", inputs_digest=ZERO_HASH, output=None)
        assert nxt.seq == 7 and nxt.prev == records[-1].hash
        assert DecisionChain.from_store(reopened, "did:key:z6MkNew").next_seq == 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_many_machines_in_one_memory_store() -> None:
    store = DecisionStore.memory()
    chains = [DecisionChain(f"did:key:z6Mk{i}", store=store) for i in range(20)]
    for step in range(30):
        for chain in chains:
            chain.append(time_ms=step, policy="p/1", inputs={"step": step}, output=step)
    assert store.count() == 600
    assert store.machines() == sorted(c.machine for c in chains)
    verify_chain(store.records("did:key:z6Mk5"))
    assert DecisionRecord.decode(store.get("did:key:z6Mk5", 29).encode()) == store.get("did:key:z6Mk5", 29)  # type: ignore[union-attr]
