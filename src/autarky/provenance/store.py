"""SQLite storage of decision records, for many machines in one file.

Records are buffered and written with ``executemany`` in one transaction per batch (a simulation
of thousands of machines writes one file without a commit per decision). Every read flushes the
buffer first, so a reader always sees what was added. ``DecisionStore(":memory:")`` (or
:meth:`DecisionStore.memory`) keeps everything in memory for tests and simulations.

Tables: ``records(machine, seq, hash, tx, time_ms, body, inputs)`` keyed by ``(machine, seq)``
with an index on ``tx``; ``body`` is the record's canonical CBOR, ``inputs`` the canonical CBOR of
the inputs it hashed (when given). ``anchors(machine, first_seq, count)`` lists the batches the
chain accepted.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from autarky.encoding import canonical_decode, canonical_encode
from autarky.provenance.records import DecisionRecord

_SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    machine TEXT NOT NULL,
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    tx BLOB,
    time_ms INTEGER NOT NULL,
    body BLOB NOT NULL,
    inputs BLOB,
    PRIMARY KEY (machine, seq)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS records_by_tx ON records (tx) WHERE tx IS NOT NULL;
CREATE TABLE IF NOT EXISTS anchors (
    machine TEXT NOT NULL,
    first_seq INTEGER NOT NULL,
    count INTEGER NOT NULL,
    PRIMARY KEY (machine, first_seq)
) WITHOUT ROWID;
"""

_Row = tuple[str, int, bytes, bytes | None, int, bytes, bytes | None]


class DecisionStore:
    """Decision records of any number of machines in one SQLite file (or in memory)."""

    def __init__(self, path: str | Path, *, batch_size: int = 4096) -> None:
        self.path = str(path)
        self.batch_size = batch_size
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        if self.path != ":memory:":
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._buffer: list[_Row] = []

    @classmethod
    def memory(cls) -> DecisionStore:
        return cls(":memory:")

    def __enter__(self) -> DecisionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Writes ---------------------------------------------------------------------------------

    def add(self, record: DecisionRecord, inputs: Mapping[str, Any] | None = None) -> None:
        """Buffer a record (and the inputs it hashed); written at the next flush."""
        encoded_inputs = None if inputs is None else canonical_encode(dict(inputs))
        self._buffer.append(
            (
                record.machine,
                record.seq,
                record.hash,
                record.tx,
                record.time_ms,
                record.encode(),
                encoded_inputs,
            )
        )
        if len(self._buffer) >= self.batch_size:
            self.flush()

    def flush(self) -> None:
        """Write the buffered records in one transaction."""
        if not self._buffer:
            return
        rows, self._buffer = self._buffer, []
        with self._transaction():
            self._db.executemany("INSERT INTO records VALUES (?, ?, ?, ?, ?, ?, ?)", rows)

    def mark_anchored(self, machine: str, first_seq: int, count: int) -> None:
        self.flush()
        with self._transaction():
            self._db.execute("INSERT OR REPLACE INTO anchors VALUES (?, ?, ?)", (machine, first_seq, count))

    def close(self) -> None:
        self.flush()
        self._db.close()

    # Reads ----------------------------------------------------------------------------------

    def get(self, machine: str, seq: int) -> DecisionRecord | None:
        row = self._one("SELECT body FROM records WHERE machine = ? AND seq = ?", (machine, seq))
        return None if row is None else DecisionRecord.decode(row[0])

    def by_tx(self, tx_hash: bytes) -> DecisionRecord | None:
        """The record that names ``tx_hash`` (the first, if several do)."""
        row = self._one("SELECT body FROM records WHERE tx = ? ORDER BY machine, seq LIMIT 1", (tx_hash,))
        return None if row is None else DecisionRecord.decode(row[0])

    def stored_hash(self, machine: str, seq: int) -> bytes | None:
        """The hash written beside the record when it was added (compare with a recomputed one)."""
        row = self._one("SELECT hash FROM records WHERE machine = ? AND seq = ?", (machine, seq))
        return None if row is None else bytes(row[0])

    def inputs(self, machine: str, seq: int) -> dict[str, Any] | None:
        row = self._one("SELECT inputs FROM records WHERE machine = ? AND seq = ?", (machine, seq))
        if row is None or row[0] is None:
            return None
        value: dict[str, Any] = canonical_decode(bytes(row[0]))
        return value

    def records(self, machine: str, first_seq: int = 0, count: int | None = None) -> list[DecisionRecord]:
        """The machine's records from ``first_seq`` (all of them, or ``count``), in ``seq`` order."""
        self.flush()
        last = first_seq + count if count is not None else 2**63 - 1
        cursor = self._db.execute(
            "SELECT body FROM records WHERE machine = ? AND seq >= ? AND seq < ? ORDER BY seq",
            (machine, first_seq, last),
        )
        return [DecisionRecord.decode(row[0]) for row in cursor]

    def last_record(self, machine: str) -> DecisionRecord | None:
        row = self._one("SELECT body FROM records WHERE machine = ? ORDER BY seq DESC LIMIT 1", (machine,))
        return None if row is None else DecisionRecord.decode(row[0])

    def machines(self) -> list[str]:
        self.flush()
        return [row[0] for row in self._db.execute("SELECT DISTINCT machine FROM records ORDER BY machine")]

    def count(self, machine: str | None = None) -> int:
        if machine is None:
            row = self._one("SELECT COUNT(*) FROM records", ())
        else:
            row = self._one("SELECT COUNT(*) FROM records WHERE machine = ?", (machine,))
        assert row is not None
        return int(row[0])

    def anchors(self, machine: str) -> list[tuple[int, int]]:
        """``(first_seq, count)`` of the machine's anchored batches, in order."""
        self.flush()
        cursor = self._db.execute(
            "SELECT first_seq, count FROM anchors WHERE machine = ? ORDER BY first_seq", (machine,)
        )
        return [(int(first), int(count)) for first, count in cursor]

    def anchored_count(self, machine: str) -> int:
        return sum(count for _, count in self.anchors(machine))

    # Internals ------------------------------------------------------------------------------

    def _one(self, sql: str, params: tuple[Any, ...]) -> tuple[Any, ...] | None:
        self.flush()
        row: tuple[Any, ...] | None = self._db.execute(sql, params).fetchone()
        return row

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        self._db.execute("COMMIT" if exc_type is None else "ROLLBACK")
