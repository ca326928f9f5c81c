"""A machine's chain of decision records: append, batch for anchoring, mark anchored.

The chain keeps in memory only what is not yet anchored; an attached :class:`DecisionStore` keeps
every record (and the inputs it hashed) on disk::

    chain = DecisionChain(did, store=store)
    record = chain.append(time_ms=now, policy="battery-lp/1", inputs=inputs, output=plan, tx=tx_hash)
    batch = chain.pending_batch()          # (first_seq, records, head, root) or None
    ...submit provenance/anchor_decisions with batch.message_fields()...
    chain.mark_anchored(batch.first_seq, len(batch.records))
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

from autarky.provenance.batch import MAX_BATCH, batch_root
from autarky.provenance.records import (
    NOT_ALLOWED_BY_ANYTHING,
    ZERO_HASH,
    DecisionRecord,
    RecordError,
)
from autarky.provenance.records import (
    inputs_digest as digest_of,
)

if TYPE_CHECKING:
    from autarky.provenance.store import DecisionStore


class ChainError(ValueError):
    """Records that do not form a chain: a gap in ``seq``, a broken ``prev`` link, another machine."""

    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"record {seq}: {reason}")
        self.seq = seq
        self.reason = reason


class PendingBatch(NamedTuple):
    """Records to anchor: unpacks as ``(first_seq, records, head, root)``."""

    first_seq: int
    records: tuple[DecisionRecord, ...]
    head: bytes
    root: bytes

    def message_fields(self, machine: str) -> dict[str, Any]:
        """The fields of ``provenance/anchor_decisions`` for this batch."""
        return {
            "machine": machine,
            "first_seq": self.first_seq,
            "count": len(self.records),
            "head": self.head,
            "root": self.root,
        }


class DecisionChain:
    """Appends a machine's records with linked hashes; hands out unanchored batches."""

    def __init__(
        self,
        machine: str,
        *,
        store: DecisionStore | None = None,
        next_seq: int = 0,
        head: bytes = ZERO_HASH,
        anchored: int | None = None,
    ) -> None:
        self.machine = machine
        self.store = store
        self.next_seq = next_seq
        self.head = head
        self.anchored = next_seq if anchored is None else anchored
        assert 0 <= self.anchored <= self.next_seq
        assert next_seq > 0 or head == ZERO_HASH
        self._pending: list[DecisionRecord] = []
        if self.anchored < self.next_seq:
            assert store is not None, "unanchored records must be read back from a store"
            self._pending = store.records(machine, self.anchored, self.next_seq - self.anchored)

    @classmethod
    def from_store(cls, store: DecisionStore, machine: str) -> DecisionChain:
        """Resume a machine's chain where its stored records end (and its anchors stop)."""
        last = store.last_record(machine)
        if last is None:
            return cls(machine, store=store)
        return cls(
            machine,
            store=store,
            next_seq=last.seq + 1,
            head=last.hash,
            anchored=store.anchored_count(machine),
        )

    def append(
        self,
        *,
        time_ms: int,
        policy: str,
        output: Any,
        inputs: Mapping[str, Any] | None = None,
        inputs_digest: bytes | None = None,
        model: bytes | None = None,
        allowed_by: Mapping[str, str] = NOT_ALLOWED_BY_ANYTHING,
        tx: bytes | None = None,
    ) -> DecisionRecord:
        """Add the next record. Give ``inputs`` (hashed here and stored) or their ``inputs_digest``."""
        if inputs is not None:
            digest = digest_of(inputs)
            if inputs_digest is not None and inputs_digest != digest:
                raise RecordError("inputs_digest is not the digest of inputs")
        elif inputs_digest is not None:
            digest = inputs_digest
        else:
            raise RecordError("give inputs or inputs_digest")
        record = DecisionRecord(
            self.machine, self.next_seq, self.head, time_ms, policy, model, digest, output, allowed_by, tx
        )
        head = record.hash  # computes (and checks the output encodes) before the chain moves
        self._pending.append(record)
        self.next_seq += 1
        self.head = head
        if self.store is not None:
            self.store.add(record, inputs)
        return record

    @property
    def pending_count(self) -> int:
        return self.next_seq - self.anchored

    def pending_batch(self, max_count: int = MAX_BATCH) -> PendingBatch | None:
        """The oldest unanchored records (at most ``max_count``), or None when all are anchored."""
        assert 1 <= max_count <= MAX_BATCH
        if not self._pending:
            return None
        records = tuple(self._pending[:max_count])
        return PendingBatch(records[0].seq, records, records[-1].hash, batch_root([r.hash for r in records]))

    def mark_anchored(self, first_seq: int, count: int) -> None:
        """The chain accepted ``count`` records from ``first_seq``: forget them here."""
        if first_seq != self.anchored or not 1 <= count <= len(self._pending):
            raise ChainError(first_seq, f"expected an anchor from {self.anchored} of 1..{len(self._pending)}")
        del self._pending[:count]
        self.anchored += count
        if self.store is not None:
            self.store.mark_anchored(self.machine, first_seq, count)


def verify_chain(records: Sequence[DecisionRecord], prev: bytes | None = None) -> None:
    """Raise :class:`ChainError` unless ``records`` are one machine's contiguous, linked run.

    ``prev`` is the hash before the first record (zero for ``seq`` 0; unchecked when None and the
    run starts later).
    """
    if not records:
        return
    expected_prev = ZERO_HASH if records[0].seq == 0 else prev
    machine = records[0].machine
    for offset, record in enumerate(records):
        if record.machine != machine:
            raise ChainError(record.seq, f"belongs to {record.machine}, not {machine}")
        if record.seq != records[0].seq + offset:
            raise ChainError(record.seq, f"expected seq {records[0].seq + offset}")
        if expected_prev is not None and record.prev != expected_prev:
            raise ChainError(record.seq, "prev is not the hash of the record before it")
        expected_prev = record.hash
