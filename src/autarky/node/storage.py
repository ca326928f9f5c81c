"""SQLite storage for one node: blocks, a transaction index, and the state.

Durability rules (SPEC C6, R2):

* WAL journal with ``synchronous=FULL`` on every connection: a committed transaction survives a
  crash or power loss.
* A block, its transaction index rows, its state write set and the new applied height are written
  in ONE database transaction. After a crash the database holds either all of a block or none of it.

State is stored as a base table ``state`` (the state as of ``checkpoint_height``) plus one row per
later block in ``state_log`` holding that block's write set. Writing one blob per block keeps the
commit path cheap; every ``checkpoint_blocks`` blocks the log is folded into the base table, again
in one transaction. On open, base + log are loaded and the node checks the result against the
state root in the last stored header (see ``Node``).
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autarky.encoding import canonical_encode, decode_trusted, encode_trusted
from autarky.ledger.block import BlockHeader, Event, Receipt
from autarky.node.audit import AuditEntry
from autarky.node.errors import StorageError

SCHEMA_VERSION = 1
BLOCK_CACHE_SIZE = 16

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    header BLOB NOT NULL,
    signature BLOB,
    txs BLOB NOT NULL,
    receipts BLOB NOT NULL,
    end_events BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS txs (
    hash BLOB PRIMARY KEY,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS state_log (height INTEGER PRIMARY KEY, changes BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS certificates (height INTEGER PRIMARY KEY, certificate BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS audit (
    height INTEGER NOT NULL,
    tx_index INTEGER NOT NULL,
    msg_index INTEGER NOT NULL,
    time_ms INTEGER NOT NULL,
    tx_hash BLOB NOT NULL,
    sender TEXT NOT NULL,
    signers TEXT NOT NULL,
    action TEXT NOT NULL,
    code TEXT NOT NULL,
    grants TEXT NOT NULL,
    parties TEXT NOT NULL,
    PRIMARY KEY (height, tx_index, msg_index)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_party (
    did TEXT NOT NULL,
    height INTEGER NOT NULL,
    tx_index INTEGER NOT NULL,
    msg_index INTEGER NOT NULL,
    PRIMARY KEY (did, height, tx_index, msg_index)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS audit_grant (
    grant_id TEXT NOT NULL,
    height INTEGER NOT NULL,
    tx_index INTEGER NOT NULL,
    msg_index INTEGER NOT NULL,
    PRIMARY KEY (grant_id, height, tx_index, msg_index)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS audit_by_action ON audit (action, height);
"""


@dataclass(frozen=True, slots=True)
class StoredBlock:
    header: BlockHeader
    signature: bytes | None
    txs: tuple[bytes, ...]
    receipts: tuple[Receipt, ...]
    end_events: tuple[Event, ...]


@dataclass(frozen=True, slots=True)
class TxLocation:
    height: int
    index: int


class Storage:
    """One SQLite database file. Methods are synchronous; the node calls them from worker threads."""

    def __init__(self, path: Path, checkpoint_blocks: int = 500) -> None:
        self.path = Path(path)
        self.checkpoint_blocks = checkpoint_blocks
        self._lock = threading.Lock()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            # Queries use their own connection: in WAL mode a reader sees the last committed block
            # and never waits for the writer, so serving reads does not stall behind a commit's fsync.
            self._reader = sqlite3.connect(str(self.path), isolation_level=None, check_same_thread=False)
            self._reader.execute("PRAGMA query_only=ON")
            self._read_lock = threading.Lock()
            self._block_cache: OrderedDict[int, StoredBlock] = OrderedDict()
        except sqlite3.Error as exc:
            raise StorageError(f"cannot open database {self.path}: {exc}") from exc
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", SCHEMA_VERSION)
        elif version != SCHEMA_VERSION:
            raise StorageError(
                f"database {self.path} has schema {version}, this version reads {SCHEMA_VERSION}"
            )

    # -- meta -------------------------------------------------------------------------------------
    def get_meta(self, key: str) -> Any:
        row = self._query_one("SELECT value FROM meta WHERE key = ?", (key,))
        return None if row is None else decode_trusted(row[0])

    def set_meta(self, key: str, value: Any) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, canonical_encode(value)))

    @property
    def applied_height(self) -> int | None:
        value = self.get_meta("applied_height")
        return None if value is None else int(value)

    # -- writes -----------------------------------------------------------------------------------
    def commit_block(
        self,
        header: BlockHeader,
        signature: bytes | None,
        txs: Sequence[bytes],
        receipts: Sequence[Receipt],
        end_events: Sequence[Event],
        changes: Sequence[tuple[str, bytes | None]],
        meta: Sequence[tuple[str, Any]] = (),
        audit: Sequence[AuditEntry] = (),
    ) -> None:
        """Store a block and its effects atomically, advancing the applied height.

        ``meta`` rows (such as the ``nats`` engine's log position) and the block's ``audit`` entries
        are written in the same transaction.
        """
        expected = (self.applied_height + 1) if self.applied_height is not None else 0
        assert header.height == expected, f"block {header.height} committed after {expected - 1}"
        header_bytes = header.encode()
        block_row = (
            header.height,
            header.hash,
            header_bytes,
            signature,
            encode_trusted(list(txs)),
            encode_trusted([receipt.to_cbor() for receipt in receipts]),
            encode_trusted([event.to_cbor() for event in end_events]),
        )
        tx_rows = [(receipt.tx_hash, header.height, receipt.index) for receipt in receipts]
        log_blob = encode_trusted([[key, value] for key, value in changes])
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                db.execute("INSERT INTO blocks VALUES (?, ?, ?, ?, ?, ?, ?)", block_row)
                # A transaction ordered twice (a misbehaving orderer) keeps its first location.
                db.executemany("INSERT OR IGNORE INTO txs VALUES (?, ?, ?)", tx_rows)
                if header.height == 0:
                    db.executemany(
                        "INSERT OR REPLACE INTO state VALUES (?, ?)",
                        [(key, value) for key, value in changes if value is not None],
                    )
                    db.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('checkpoint_height', ?)", (canonical_encode(0),)
                    )
                else:
                    db.execute("INSERT INTO state_log VALUES (?, ?)", (header.height, log_blob))
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('applied_height', ?)",
                    (canonical_encode(header.height),),
                )
                db.executemany(
                    "INSERT OR REPLACE INTO meta VALUES (?, ?)",
                    [(key, canonical_encode(value)) for key, value in meta],
                )
                self._insert_audit(db, audit)
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('audit_height', ?)",
                    (canonical_encode(header.height),),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        if header.height and header.height % self.checkpoint_blocks == 0:
            self.checkpoint()

    @staticmethod
    def _insert_audit(db: sqlite3.Connection, entries: Sequence[AuditEntry]) -> None:
        if not entries:
            return
        db.executemany(
            "INSERT OR IGNORE INTO audit VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    e.height,
                    e.tx_index,
                    e.msg_index,
                    e.time_ms,
                    e.tx_hash,
                    e.sender,
                    ",".join(e.signers),
                    e.action,
                    e.code,
                    ",".join(e.grants),
                    ",".join(e.parties),
                )
                for e in entries
            ],
        )
        db.executemany(
            "INSERT OR IGNORE INTO audit_party VALUES (?, ?, ?, ?)",
            [(did, e.height, e.tx_index, e.msg_index) for e in entries for did in e.parties],
        )
        db.executemany(
            "INSERT OR IGNORE INTO audit_grant VALUES (?, ?, ?, ?)",
            [(grant, e.height, e.tx_index, e.msg_index) for e in entries for grant in e.grants],
        )

    def backfill_audit(self, entries: Sequence[AuditEntry], through_height: int) -> None:
        """Audit entries of blocks stored before the trail existed, up to ``through_height``."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                self._insert_audit(db, entries)
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('audit_height', ?)",
                    (canonical_encode(through_height),),
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    def audit(
        self,
        *,
        machine: str | None = None,
        grant: str | None = None,
        action: str | None = None,
        key: str | None = None,
        from_height: int | None = None,
        to_height: int | None = None,
        ok: bool | None = None,
        limit: int = 100,
    ) -> list[AuditEntry]:
        """Audit entries matching every filter given, newest first, at most ``limit``.

        ``machine``: a party (sender or a DID the message names); ``grant``: a grant id used;
        ``action``: a message type (``bank/send``) or a module prefix ending in ``/``;
        ``key``: a signing key (hex); heights inclusive.
        """
        sql = ["SELECT a.* FROM audit a"]
        where: list[str] = []
        args: list[Any] = []
        if machine is not None:
            sql.append("JOIN audit_party p USING (height, tx_index, msg_index)")
            where.append("p.did = ?")
            args.append(machine)
        if grant is not None:
            sql.append("JOIN audit_grant g USING (height, tx_index, msg_index)")
            where.append("g.grant_id = ?")
            args.append(grant)
        if action is not None:
            if action.endswith("/"):
                where.append("a.action >= ? AND a.action < ?")
                args.extend([action, action[:-1] + "0"])  # "0" sorts right after "/"
            else:
                where.append("a.action = ?")
                args.append(action)
        if key is not None:
            where.append("(',' || a.signers || ',') LIKE ?")
            args.append(f"%,{key.lower()},%")
        if from_height is not None:
            where.append("a.height >= ?")
            args.append(from_height)
        if to_height is not None:
            where.append("a.height <= ?")
            args.append(to_height)
        if ok is not None:
            where.append("a.code = 'ok'" if ok else "a.code != 'ok'")
        if where:
            sql.append("WHERE " + " AND ".join(where))
        sql.append("ORDER BY a.height DESC, a.tx_index DESC, a.msg_index DESC LIMIT ?")
        args.append(limit)
        try:
            with self._read_lock:
                rows = self._reader.execute(" ".join(sql), args).fetchall()
        except sqlite3.Error as exc:
            raise StorageError(f"database {self.path}: {exc}") from exc
        return [
            AuditEntry(
                row[0],
                row[3],
                row[1],
                row[2],
                bytes(row[4]),
                row[5],
                tuple(row[6].split(",")) if row[6] else (),
                row[7],
                row[8],
                tuple(row[9].split(",")) if row[9] else (),
                tuple(row[10].split(",")) if row[10] else (),
            )
            for row in rows
        ]

    def checkpoint(self) -> None:
        """Fold the state log into the base table, in one transaction."""
        with self._lock:
            db = self._db
            try:
                db.execute("BEGIN IMMEDIATE")
                rows = db.execute("SELECT height, changes FROM state_log ORDER BY height").fetchall()
                if not rows:
                    db.execute("COMMIT")
                    return
                latest: dict[str, bytes | None] = {}
                for _, blob in rows:
                    for key, value in decode_trusted(blob):
                        latest[key] = value
                db.executemany(
                    "INSERT OR REPLACE INTO state VALUES (?, ?)",
                    [(k, v) for k, v in sorted(latest.items()) if v is not None],
                )
                db.executemany(
                    "DELETE FROM state WHERE key = ?", [(k,) for k, v in sorted(latest.items()) if v is None]
                )
                last = rows[-1][0]
                db.execute("DELETE FROM state_log WHERE height <= ?", (last,))
                db.execute(
                    "INSERT OR REPLACE INTO meta VALUES ('checkpoint_height', ?)", (canonical_encode(last),)
                )
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise

    # -- reads ------------------------------------------------------------------------------------
    def load_state(self) -> dict[str, bytes]:
        """The state at the applied height: base table plus every logged write set after it."""
        with self._lock:
            data = dict(self._db.execute("SELECT key, value FROM state").fetchall())
            logs = self._db.execute("SELECT changes FROM state_log ORDER BY height").fetchall()
        for (blob,) in logs:
            for key, value in decode_trusted(blob):
                if value is None:
                    data.pop(key, None)
                else:
                    data[key] = value
        return data

    def block(self, height: int) -> StoredBlock | None:
        # Committed blocks never change, so recently decoded ones are kept: looking up several
        # transactions of one block (commit waiters, the API) decodes its receipts once.
        cached = self._block_cache.get(height)
        if cached is not None:
            return cached
        row = self._query_one(
            "SELECT header, signature, txs, receipts, end_events FROM blocks WHERE height = ?", (height,)
        )
        if row is None:
            return None
        block = StoredBlock(
            BlockHeader.decode(row[0]),
            row[1],
            tuple(decode_trusted(row[2])),
            tuple(Receipt.from_cbor(r) for r in decode_trusted(row[3])),
            tuple(Event.from_cbor(e) for e in decode_trusted(row[4])),
        )
        with self._read_lock:
            self._block_cache[height] = block
            while len(self._block_cache) > BLOCK_CACHE_SIZE:
                self._block_cache.popitem(last=False)
        return block

    def header(self, height: int) -> BlockHeader | None:
        row = self._query_one("SELECT header FROM blocks WHERE height = ?", (height,))
        return None if row is None else BlockHeader.decode(row[0])

    def headers(self, start: int, stop: int) -> list[BlockHeader]:
        """Headers with start <= height < stop, ascending."""
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT header FROM blocks WHERE height >= ? AND height < ? ORDER BY height", (start, stop)
            ).fetchall()
        return [BlockHeader.decode(row[0]) for row in rows]

    def tx_location(self, tx_hash: bytes) -> TxLocation | None:
        row = self._query_one("SELECT height, idx FROM txs WHERE hash = ?", (tx_hash,))
        return None if row is None else TxLocation(row[0], row[1])

    def known_hashes(self, tx_hashes: list[bytes]) -> set[bytes]:
        """The subset of ``tx_hashes`` already in committed blocks (one query per 500 hashes)."""
        found: set[bytes] = set()
        with self._read_lock:
            for start in range(0, len(tx_hashes), 500):
                part = tx_hashes[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = self._reader.execute(f"SELECT hash FROM txs WHERE hash IN ({marks})", part).fetchall()
                found.update(row[0] for row in rows)
        return found

    def all_tx_hashes(self) -> list[bytes]:
        """Every committed transaction hash, in byte order (for snapshots)."""
        with self._read_lock:
            rows = self._reader.execute("SELECT hash FROM txs ORDER BY hash").fetchall()
        return [bytes(row[0]) for row in rows]

    def import_tx_hashes(self, tx_hashes: Sequence[bytes], height: int) -> None:
        """Record hashes committed before a snapshot's block (index -1: the block itself is not here)."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR IGNORE INTO txs VALUES (?, ?, -1)", [(tx_hash, height) for tx_hash in tx_hashes]
            )
            self._db.execute("COMMIT")

    def put_certificate(self, height: int, certificate: bytes) -> None:
        """Store the finality certificate of a block (the first one stored for a height stays)."""
        with self._lock:
            self._db.execute("INSERT OR IGNORE INTO certificates VALUES (?, ?)", (height, certificate))

    def certificate(self, height: int) -> bytes | None:
        row = self._query_one("SELECT certificate FROM certificates WHERE height = ?", (height,))
        return None if row is None else bytes(row[0])

    def lowest_height(self) -> int | None:
        """The lowest stored block (0, or a snapshot's block), None when there is none."""
        row = self._query_one("SELECT MIN(height) FROM blocks", ())
        return int(row[0]) if row and row[0] is not None else None

    def final_height(self) -> int:
        """The highest height with a stored certificate (0 when none)."""
        row = self._query_one("SELECT MAX(height) FROM certificates", ())
        return int(row[0]) if row and row[0] is not None else 0

    def iter_blocks(self, start: int = 1) -> Iterator[StoredBlock]:
        height = start
        while (block := self.block(height)) is not None:
            yield block
            height += 1

    def integrity_check(self) -> str:
        row = self._query_one("PRAGMA integrity_check", ())
        return str(row[0]) if row else "no answer"

    def _query_one(self, sql: str, args: tuple[Any, ...]) -> Any:
        try:
            with self._read_lock:
                return self._reader.execute(sql, args).fetchone()
        except sqlite3.Error as exc:
            raise StorageError(f"database {self.path}: {exc}") from exc

    def close(self) -> None:
        with self._read_lock:
            self._reader.close()
        with self._lock:
            self._db.close()
