"""Batches of decision records and their Merkle proofs.

A batch is a run of one machine's records ``first_seq .. first_seq + count - 1``. Its root is
``autarky.ledger.merkle.merkle_root`` over the records' hashes (in ``seq`` order) and its head is the
last record's hash; both go on chain in ``provenance/anchor_decisions``. A record is checked against
an anchored batch with a Merkle path (:func:`merkle_proof`, :func:`verify_record`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from autarky.ledger.merkle import merkle_proof as _merkle_path
from autarky.ledger.merkle import merkle_root, verify_merkle_proof
from autarky.provenance.records import DecisionRecord

MAX_BATCH = 4096


@dataclasses.dataclass(frozen=True)
class BatchAnchor:
    """What the chain stores for a batch (``provenance/dbatch/<did>/<first_seq>``)."""

    machine: str
    first_seq: int
    count: int
    head: bytes
    root: bytes

    def covers(self, seq: int) -> bool:
        return self.first_seq <= seq < self.first_seq + self.count


@dataclasses.dataclass(frozen=True)
class RecordProof:
    """A record's place in a batch: its index and the sibling path up to the batch root."""

    first_seq: int
    count: int
    index: int
    path: tuple[tuple[bool, bytes], ...]


def batch_root(hashes: Sequence[bytes]) -> bytes:
    """Merkle root over record hashes (the ``root`` of ``anchor_decisions``)."""
    return merkle_root(hashes)


def batch_anchor(records: Sequence[DecisionRecord]) -> BatchAnchor:
    """The anchor a run of records would get; checks that they are one machine's contiguous run."""
    assert records, "a batch has at least one record"
    first = records[0]
    for offset, record in enumerate(records):
        assert record.machine == first.machine and record.seq == first.seq + offset, "not a contiguous run"
    return BatchAnchor(
        first.machine, first.seq, len(records), records[-1].hash, batch_root([r.hash for r in records])
    )


def merkle_proof(batch: Sequence[DecisionRecord], index: int) -> RecordProof:
    """The proof that ``batch[index]`` is in the batch's root."""
    hashes = [record.hash for record in batch]
    return RecordProof(batch[0].seq, len(batch), index, tuple(_merkle_path(hashes, index)))


def verify_record(record: DecisionRecord, anchor: BatchAnchor, proof: RecordProof) -> bool:
    """True when ``record`` (its hash recomputed here) is at its place in the anchored batch."""
    return (
        record.machine == anchor.machine
        and anchor.covers(record.seq)
        and proof.first_seq == anchor.first_seq
        and proof.count == anchor.count
        and proof.index == record.seq - anchor.first_seq
        and verify_merkle_proof(anchor.root, record.hash, proof.path)
    )
