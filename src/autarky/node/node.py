"""The node: admits transactions, hands them to an engine, executes and stores every block.

Data flow (see ARCHITECTURE.md)::

    submit(raw) ── decode ── duplicate? ── verify signatures (thread pool) ── sequence check ── mempool
                                                                                                 │
    engine (embedded: cut a block; nats: consume the stream) ── OrderedBatch ── apply_batch ◄─────┘
         apply_batch: execute_block (worker thread) ── sign header ── one SQLite transaction ──
                      update in-memory state and tree ── resolve waiters ── publish events

Acknowledged means committed: ``submit(..., wait=True)`` returns after the block holding the
transaction is durably stored. An admitted but uncommitted transaction lives only in memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import gc
import logging
import multiprocessing
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from autarky.crypto.domains import Domain
from autarky.crypto.keys import SigningKey
from autarky.crypto.keystore import create_keystore, load_keystore, new_key_file
from autarky.encoding import canonical_decode, canonical_encode
from autarky.engines.base import Engine, OrderedBatch
from autarky.engines.embedded import EmbeddedEngine
from autarky.engines.mempool import Mempool, MempoolFull, MempoolLimits
from autarky.engines.nats import NatsEngine, NatsSettings
from autarky.engines.ordering import Certificate, LogPosition, QuorumTracker, parse_vote
from autarky.ledger import errors as core_errors
from autarky.ledger.block import BlockHeader, Receipt
from autarky.ledger.executor import (
    BlockResult,
    execute_block,
    execute_genesis,
    sequence_of,
    verify_signatures,
)
from autarky.ledger.router import App, BlockEnv
from autarky.ledger.smt import Proof, SparseMerkleTree
from autarky.ledger.state import SortedState
from autarky.ledger.tx import SignedTx, decode_tx
from autarky.modules import build_app
from autarky.modules.validators import SET_KEY, read_validators
from autarky.node.admission import check_batch, exit_with_parent
from autarky.node.audit import AuditEntry, block_entries
from autarky.node.errors import ConfigError, CorruptState, ProofUnavailable, StorageError
from autarky.node.metrics import NodeMetrics
from autarky.node.storage import Storage, StoredBlock

log = logging.getLogger("autarky.node")

DB_FILE = "ledger.sqlite"
GENESIS_FILE = "genesis.cbor"
NODE_KEY_FILE = "node_key.json"
NODE_SECRET_FILE = "node_key.secret"


@dataclass(frozen=True, slots=True)
class NodeSettings:
    data_dir: Path
    block_interval_ms: int = 10
    max_block_txs: int = 2000
    max_block_bytes: int = 4 * 1024 * 1024
    heartbeat_ms: int = 1000
    checkpoint_blocks: int = 500
    verify_threads: int = 2
    verify_processes: int = 2
    mempool: MempoolLimits = field(default_factory=MempoolLimits)
    max_subscriber_queue: int = 2000
    engine: str = "embedded"
    nats: NatsSettings | None = None


@dataclass(frozen=True, slots=True)
class SubmitResult:
    """The answer to one submission. ``status``: accepted | committed | exists | rejected."""

    tx_hash: bytes
    status: str
    code: str | None = None
    detail: str = ""
    height: int | None = None
    receipt: Receipt | None = None

    @property
    def ok(self) -> bool:
        return self.status in ("accepted", "committed", "exists")

    def to_json(self) -> dict[str, Any]:
        return {
            "tx_hash": self.tx_hash.hex(),
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
            "height": self.height,
            "receipt": None if self.receipt is None else self.receipt.to_json(),
        }


@dataclass(frozen=True, slots=True)
class TxRecord:
    raw: bytes
    height: int
    receipt: Receipt
    tx: SignedTx | None


class _CachedVerifier:
    """Signatures checked at admission are not checked again; anything else is verified directly."""

    def __init__(self, verified: set[bytes]) -> None:
        self._verified = verified

    def verify(self, tx: SignedTx) -> bool:
        return tx.hash in self._verified or verify_signatures(tx)


def init_data_dir(data_dir: Path, genesis: Mapping[str, Any], node_key: SigningKey | None = None) -> None:
    """Create a node's data directory: genesis, node key (encrypted with a key file), database at height 0.

    ``node_key`` is the node's signing key (a validator's key must be known before its genesis is
    written); without one, a key already made by :func:`ensure_node_key` is kept, or a new one made.
    """
    data_dir = Path(data_dir)
    if (data_dir / DB_FILE).exists():
        raise ConfigError(f"{data_dir} already holds a ledger; choose another directory or remove it")
    data_dir.mkdir(parents=True, exist_ok=True)
    if node_key is not None or not (data_dir / NODE_KEY_FILE).exists():
        new_key_file(data_dir / NODE_SECRET_FILE, overwrite=True)
        create_keystore(
            data_dir / NODE_KEY_FILE,
            node_key or SigningKey.generate(),
            key_file=data_dir / NODE_SECRET_FILE,
            label="node",
            overwrite=True,
        )
    (data_dir / GENESIS_FILE).write_bytes(canonical_encode(dict(genesis)))
    app = build_app()
    result = execute_genesis(genesis, app)
    storage = Storage(data_dir / DB_FILE)
    try:
        storage.set_meta("chain_id", genesis["chain_id"])
        storage.commit_block(result.header, None, (), (), (), result.changes)
    finally:
        storage.close()


def ensure_node_key(data_dir: Path) -> SigningKey:
    """The node key in ``data_dir``, made (encrypted with a key file there) if it does not exist yet.

    A validator's key must be in the genesis, so on a new cluster each machine makes its key first
    (``autarky node key``), one machine writes the genesis naming them, and every machine then
    initialises its data directory from that genesis, keeping its key.
    """
    data_dir = Path(data_dir)
    if not (data_dir / NODE_KEY_FILE).exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        new_key_file(data_dir / NODE_SECRET_FILE, overwrite=True)
        create_keystore(
            data_dir / NODE_KEY_FILE,
            SigningKey.generate(),
            key_file=data_dir / NODE_SECRET_FILE,
            label="node",
        )
    return load_keystore(data_dir / NODE_KEY_FILE, key_file=data_dir / NODE_SECRET_FILE)


LOCK_FILE = "node.lock"
PROOF_HISTORY = 256
"""How many recent blocks a node can prove state against (``Node.prove_many``)."""


@dataclass(frozen=True, slots=True)
class ProvenState:
    """Values of some keys with their proofs against one block's header (checked by nobody yet)."""

    header: BlockHeader
    entries: list[tuple[str, bytes | None, Proof]]


def _lock_data_dir(data_dir: Path) -> IO[bytes]:
    """An exclusive lock on the data directory for this process: two nodes on one ledger would
    both append blocks to it."""
    handle = (data_dir / LOCK_FILE).open("a+b")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        raise ConfigError(
            f"another node is already running on {data_dir} (it holds {data_dir / LOCK_FILE}); stop it first"
        ) from None
    return handle


def audit_entries_of(block: StoredBlock) -> list[AuditEntry]:
    """The audit entries of a stored block (its transactions decoded again)."""
    txs: list[SignedTx | None] = []
    for raw in block.txs:
        try:
            txs.append(decode_tx(raw))
        except core_errors.TxError:
            txs.append(None)
    return block_entries(block.header.height, block.header.time_ms, txs, block.receipts)


class Node:
    """One Autarky node over a data directory.

    Use ``node = await Node.open(settings)`` then ``await node.start()`` (or ``async with node``).
    """

    def __init__(
        self, settings: NodeSettings, storage: Storage, genesis: dict[str, Any], key: SigningKey
    ) -> None:
        self.settings = settings
        self.storage = storage
        self.genesis = genesis
        self.chain_id: str = genesis["chain_id"]
        self.node_key = key
        self.app: App = build_app()
        self.mempool = Mempool(settings.mempool)
        self.engine: Engine = self._make_engine()
        self.quorum = QuorumTracker(self.chain_id)
        self.validators: tuple[bytes, ...] = ()
        self.final_height = 0
        self._pending_certificates: dict[int, Certificate] = {}
        self._final_waiters: dict[int, list[asyncio.Future[int]]] = {}
        self._recent_headers: dict[int, BlockHeader] = {}
        # The state tree after each of the last PROOF_HISTORY blocks, with the values each block
        # overwrote: enough to prove a key at any of those heights (the last final one, say).
        self._history: OrderedDict[int, tuple[SparseMerkleTree, dict[str, bytes | None]]] = OrderedDict()
        self._position: LogPosition | None = None
        self.metrics = NodeMetrics()
        self._state = SortedState()
        self._data: dict[str, bytes] = self._state.data
        self.tree = SparseMerkleTree.empty()
        self.header: BlockHeader
        self._verified: set[bytes] = set()
        self._verifier = _CachedVerifier(self._verified)
        self._verify_pool = ThreadPoolExecutor(settings.verify_threads, thread_name_prefix="verify")
        self._admission_executor: Executor | None = None
        self._waiters: dict[bytes, list[asyncio.Future[tuple[int, Receipt]]]] = {}
        self._subscribers: list[asyncio.Queue[dict[str, Any] | None]] = []
        self._new_block = asyncio.Condition()
        self.started = False
        self.fault: str | None = None
        self._lock: IO[bytes] | None = None

    def _make_engine(self) -> Engine:
        settings = self.settings
        if settings.engine == "embedded":
            return EmbeddedEngine(
                self.mempool,
                block_interval_ms=settings.block_interval_ms,
                max_block_txs=settings.max_block_txs,
                max_block_bytes=settings.max_block_bytes,
                heartbeat_ms=settings.heartbeat_ms,
            )
        if settings.engine == "nats":
            return NatsEngine(
                settings.nats or NatsSettings(),
                self.chain_id,
                self.node_key,
                position=self.log_position,
                validators=lambda: self.validators,
                is_committed=lambda tx_hash: self.storage.tx_location(tx_hash) is not None,
                committed_among=self.storage.known_hashes,
                on_vote=self._on_vote,
                on_fault=self._set_fault,
            )
        raise ConfigError(f"unknown engine {settings.engine!r}: use 'embedded' or 'nats'")

    # -- lifecycle ----------------------------------------------------------------------------------
    @classmethod
    async def open(cls, settings: NodeSettings) -> Node:
        data_dir = Path(settings.data_dir)
        if not (data_dir / DB_FILE).exists():
            raise ConfigError(f"no ledger in {data_dir}: run `autarky init` first")
        lock = _lock_data_dir(data_dir)
        try:
            genesis = canonical_decode((data_dir / GENESIS_FILE).read_bytes())
            key = load_keystore(data_dir / NODE_KEY_FILE, key_file=data_dir / NODE_SECRET_FILE)
            storage = Storage(data_dir / DB_FILE, settings.checkpoint_blocks)
            node = cls(settings, storage, genesis, key)
            node._lock = lock
            await asyncio.to_thread(node._load)
        except BaseException:
            lock.close()
            raise
        return node

    def _load(self) -> None:
        if self.storage.get_meta("chain_id") != self.chain_id:
            raise StorageError("database and genesis disagree on the chain id")
        height = self.storage.applied_height
        if height is None:
            raise StorageError("database holds no genesis block")
        header = self.storage.header(height)
        assert header is not None, "applied height without its block"
        self._state.load(self.storage.load_state())
        self.tree = SparseMerkleTree.from_items(sorted(self._data.items()))
        if self.tree.root != header.state_root:
            raise CorruptState(
                f"stored state does not match the state root of block {height}: "
                f"{self.tree.root.hex()} != {header.state_root.hex()}; rebuild with `autarky node replay`"
            )
        self.header = header
        self._recent_headers[height] = header
        self._history[height] = (self.tree, {})
        self.validators = read_validators(self._state)
        self.final_height = height if self.engine.name == "embedded" else self.storage.final_height()
        stored_position = self.storage.get_meta("log_position")
        if stored_position is not None:
            self._position = LogPosition.from_cbor(stored_position)
        elif height == 0:
            genesis_header = self.storage.header(0)
            assert genesis_header is not None
            self._position = LogPosition.genesis(genesis_header.hash, genesis_header.time_ms)
        self.metrics.height.set(height)
        self._backfill_audit(height)
        # The loaded state and tree are long-lived: move them out of the collector's view so its
        # full passes (which scan every tracked object) stay short while blocks execute.
        gc.collect()
        gc.freeze()

    def _backfill_audit(self, height: int) -> None:
        """Write the audit trail of stored blocks that have none (a ledger from before the trail)."""
        done = self.storage.get_meta("audit_height")
        start = self.storage.lowest_height() if done is None else int(done) + 1
        if start is None or start > height:
            return
        log.info("building the audit trail of blocks %d..%d", start, height)
        batch: list[AuditEntry] = []
        for block in self.storage.iter_blocks(start):
            batch.extend(audit_entries_of(block))
            if len(batch) >= 10_000 or block.header.height == height:
                self.storage.backfill_audit(batch, block.header.height)
                batch = []
            if block.header.height >= height:
                break

    def audit(self, **filters: Any) -> list[AuditEntry]:
        """The audit trail, newest first (filters: see ``Storage.audit``)."""
        return self.storage.audit(**filters)

    async def start(self) -> None:
        await self.engine.start(self.apply_batch, self.header.height + 1, self.header.time_ms)
        self.started = True
        log.info(
            "node started: chain %s at height %d, engine %s", self.chain_id, self.height, self.engine.name
        )

    async def stop(self) -> None:
        if self.started:
            await self.engine.stop()
            self.started = False
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        if self._admission_executor is not None and self._admission_executor is not self._verify_pool:
            self._admission_executor.shutdown(wait=True, cancel_futures=True)
        self._verify_pool.shutdown(wait=True)
        self.storage.close()
        if self._lock is not None:
            self._lock.close()  # releases the data directory for the next node
            self._lock = None

    async def __aenter__(self) -> Node:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # -- reads --------------------------------------------------------------------------------------
    @property
    def height(self) -> int:
        return self.header.height

    @property
    def state(self) -> SortedState:
        """A read view of committed state (for module keepers)."""
        return self._state

    def sequence(self, account: str) -> int:
        """The sequence the sender's next transaction must carry, counting its pending ones."""
        return sequence_of(self._state, account) + self.mempool.pending_count(account)

    def block(self, height: int) -> StoredBlock | None:
        return self.storage.block(height)

    def tx(self, tx_hash: bytes) -> TxRecord | None:
        location = self.storage.tx_location(tx_hash)
        if location is None or location.index < 0:
            return None  # unknown, or committed before the snapshot this node started from
        block = self.storage.block(location.height)
        assert block is not None
        raw = block.txs[location.index]
        try:
            tx: SignedTx | None = decode_tx(raw)
        except core_errors.TxError:
            tx = None
        return TxRecord(raw, location.height, block.receipts[location.index], tx)

    def prove(self, key: str) -> tuple[bytes | None, Proof, BlockHeader]:
        """Value, proof and the header whose state root the proof is against."""
        return self._data.get(key), self.tree.prove(key), self.header

    def prove_many(self, keys: Sequence[str], height: int | None = None) -> ProvenState:
        """Values and proofs of ``keys`` against block ``height`` (default: the latest), one of the
        last ``PROOF_HISTORY`` blocks; ``ProofUnavailable`` for an older or future one."""
        if height is None:
            height = self.height
        if height not in self._history:
            raise ProofUnavailable(
                f"block {height} is not among the {len(self._history)} recent blocks this node can prove "
                f"against ({min(self._history)}..{max(self._history)})"
            )
        tree = self._history[height][0]
        later = [self._history[h][1] for h in range(self.height, height, -1)]
        entries = []
        for key in keys:
            value = self._data.get(key)
            for overwritten in later:  # newest first: the last hit is the value at ``height``
                if key in overwritten:
                    value = overwritten[key]
            entries.append((key, value, tree.prove(key)))
        header = self._recent_headers.get(height) or self.storage.header(height)
        assert header is not None and header.state_root == tree.root, f"no header for block {height}"
        return ProvenState(header, entries)

    def final_proof_height(self) -> int:
        """The latest block that is final and that this node can still prove against."""
        height = min(self.final_height, self.height)
        if height not in self._history:
            raise ProofUnavailable(
                f"the last final block ({self.final_height}) is older than the blocks this node keeps "
                "proofs for; try again when the next block is final"
            )
        return height

    def log_position(self) -> LogPosition:
        """Where this node stands in the ``nats`` engine's log (stored with every block)."""
        if self._position is None:
            raise StorageError(
                f"this ledger is at height {self.height} without a log position: it was built by the "
                "embedded engine and cannot join a nats cluster; start from the cluster's genesis"
            )
        return self._position

    def certificate(self, height: int) -> Certificate | None:
        raw = self.storage.certificate(height)
        return None if raw is None else Certificate.from_cbor(canonical_decode(raw))

    def header_signature(self, header: BlockHeader) -> bytes:
        return self.node_key.sign(Domain.BLOCK_HEADER, header.encode(), self.chain_id)

    def status(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "block_hash": self.header.hash.hex(),
            "state_root": self.header.state_root.hex(),
            "time_ms": self.header.time_ms,
            "node_key": self.node_key.did,
            "mempool": {"transactions": len(self.mempool), "bytes": self.mempool.total_bytes},
            "engine": self.engine.status(),
            "fault": self.fault,
            "final_height": self.final_height,
            "validators": len(self.validators),
            "validator": self.node_key.public_key.raw in self.validators,
        }

    # -- admission ----------------------------------------------------------------------------------
    def _committed_receipt(self, tx_hash: bytes) -> SubmitResult | None:
        record = self.tx(tx_hash)
        if record is not None:
            return SubmitResult(tx_hash, "exists", None, "already committed", record.height, record.receipt)
        location = self.storage.tx_location(tx_hash)
        if location is not None:
            detail = "committed before the snapshot this node started from"
            return SubmitResult(tx_hash, "exists", None, detail, location.height)
        if tx_hash in self.mempool:
            return SubmitResult(tx_hash, "exists", None, "already pending")
        return None

    def _prepare(self, raw: bytes) -> SignedTx | SubmitResult:
        """Checks before the signature: size, decode, duplicate, chain, expiry."""
        if type(raw) is not bytes:
            raise TypeError("raw transaction must be bytes")
        limit = self.settings.mempool.max_tx_bytes
        if len(raw) > limit:
            return SubmitResult(b"", "rejected", "mempool.tx_too_large", f"{len(raw)} bytes exceeds {limit}")
        try:
            tx = decode_tx(raw)
        except core_errors.TxError as exc:
            return SubmitResult(b"", "rejected", exc.code, exc.detail)
        existing = self._committed_receipt(tx.hash)
        if existing is not None:
            return existing
        return self._check_chain_and_expiry(tx) or tx

    def _check_chain_and_expiry(self, tx: SignedTx) -> SubmitResult | None:
        if tx.body.chain_id != self.chain_id:
            return self._reject(tx, core_errors.WRONG_CHAIN(f"this node runs {self.chain_id!r}"))
        if tx.body.expiry_height != 0 and tx.body.expiry_height <= self.height:
            return self._reject(
                tx, core_errors.EXPIRED(f"expiry {tx.body.expiry_height}, height {self.height}")
            )
        return None

    def _admit(self, tx: SignedTx, signatures_ok: bool) -> SubmitResult:
        """Checks after the signature: authentication, sequence, mempool room. Then admit."""
        if tx.hash in self.mempool:
            # Not committed when prepared, so only a concurrent submission of the same bytes can be here.
            return SubmitResult(tx.hash, "exists", None, "already pending")
        if not signatures_ok:
            return self._reject(tx, core_errors.BAD_SIGNATURE())
        try:
            self.app.authenticator.authenticate(self._state, tx.body.sender, tx.signatures[0][0])
            expected = self.sequence(tx.body.sender)
            if self.engine.remote_ordering:
                # Other nodes may hold this sender's earlier transactions, not yet in a block: any
                # sequence from the committed one up to a window ahead is taken; execution decides.
                committed = sequence_of(self._state, tx.body.sender)
                window = committed + self.settings.mempool.max_per_sender
                if not committed <= tx.body.sequence < window:
                    raise core_errors.BAD_SEQUENCE(
                        f"sequence {tx.body.sequence} given, {committed} to {window - 1} accepted"
                    )
            elif tx.body.sequence != expected:
                raise core_errors.BAD_SEQUENCE(f"sequence {tx.body.sequence} given, {expected} expected")
        except core_errors.TxError as exc:
            return self._reject(tx, exc)
        try:
            self.mempool.add(tx)
        except MempoolFull as exc:
            self.metrics.rejected.labels(code=exc.code).inc()
            return SubmitResult(tx.hash, "rejected", exc.code, exc.detail)
        self._verified.add(tx.hash)
        self.metrics.admitted.inc()
        return SubmitResult(tx.hash, "accepted")

    def _reject(self, tx: SignedTx, exc: core_errors.TxError) -> SubmitResult:
        self.metrics.rejected.labels(code=exc.code).inc()
        return SubmitResult(tx.hash, "rejected", exc.code, exc.detail)

    async def submit(self, raw: bytes, wait: bool = False, timeout_s: float = 30.0) -> SubmitResult:
        """Admit one transaction; with ``wait``, return once its block is durably committed."""
        self._check_writable()
        prepared = self._prepare(raw)
        if isinstance(prepared, SubmitResult):
            result = prepared
        else:
            loop = asyncio.get_running_loop()
            signatures_ok = await loop.run_in_executor(self._verify_pool, verify_signatures, prepared)
            result = self._admit(prepared, signatures_ok)
            if result.status == "accepted":
                if self.engine.remote_ordering:
                    result = (await self._hand_to_orderer([prepared], [result]))[0]
                    if result.status != "accepted":
                        return result
                self.engine.notify()
                if wait:
                    return await self.wait_committed(prepared.hash, timeout_s)
        if wait and result.status == "exists" and result.receipt is None and result.height is None:
            # A resubmission of a transaction that is still pending: "done" may only be said once
            # the original is durably committed, so wait for it and answer with its receipt.
            committed = await self.wait_committed(result.tx_hash, timeout_s)
            if committed.status != "committed":
                return committed
            return replace(committed, status="exists", detail="already committed")
        return result

    async def submit_many(self, raws: Sequence[bytes], chunk: int = 512) -> list[SubmitResult]:
        """Admit many transactions, in order, with decoding and signature checks in worker processes.

        Chunks go to the workers all at once and are admitted as they come back, in order, so
        the node admits one chunk while the workers check the next and a block executes.
        """
        self._check_writable()
        for raw in raws:
            if type(raw) is not bytes:
                raise TypeError("raw transaction must be bytes")
        loop = asyncio.get_running_loop()
        pool = self._admission_pool()
        limit = self.settings.mempool.max_tx_bytes
        parts = [list(raws[i : i + chunk]) for i in range(0, len(raws), chunk)]
        futures = [loop.run_in_executor(pool, check_batch, part, limit) for part in parts]
        results: list[SubmitResult] = []
        for part, future in zip(parts, futures, strict=True):
            try:
                checked = await future
            except BrokenProcessPool:
                checked = await loop.run_in_executor(self._verify_pool, check_batch, part, limit)
                self._fall_back_to_threads()
            self._check_writable()
            known = self.storage.known_hashes([item.hash for item in checked if isinstance(item, SignedTx)])
            for item in checked:
                if not isinstance(item, SignedTx):
                    tx_hash, code, detail = item
                    self.metrics.rejected.labels(code=code).inc()
                    results.append(SubmitResult(tx_hash, "rejected", code, detail))
                elif item.hash in known:
                    existing = self._committed_receipt(item.hash)
                    assert existing is not None
                    results.append(existing)
                else:
                    results.append(self._check_chain_and_expiry(item) or self._admit(item, True))
            if self.engine.remote_ordering:
                start = len(results) - len(checked)
                accepted = [
                    (start + i, item)
                    for i, item in enumerate(checked)
                    if isinstance(item, SignedTx) and results[start + i].status == "accepted"
                ]
                published = await self._hand_to_orderer(
                    [tx for _, tx in accepted], [results[i] for i, _ in accepted]
                )
                for (i, _), outcome in zip(accepted, published, strict=True):
                    results[i] = outcome
            self.engine.notify()
        assert len(results) == len(raws)
        return results

    async def _hand_to_orderer(self, txs: list[SignedTx], results: list[SubmitResult]) -> list[SubmitResult]:
        """Hand admitted transactions to a remote orderer; one that it did not take is withdrawn."""
        if not txs:
            return []
        errors = await self.engine.publish(txs)
        outcome: list[SubmitResult] = []
        failed: list[bytes] = []
        for tx, result, error in zip(txs, results, errors, strict=True):
            if error is None:
                outcome.append(result)
            else:
                failed.append(tx.hash)
                self._verified.discard(tx.hash)
                self.metrics.rejected.labels(code="engine.unavailable").inc()
                outcome.append(SubmitResult(tx.hash, "rejected", "engine.unavailable", str(error)))
        if failed:
            self.mempool.remove(failed)
        return outcome

    def _admission_pool(self) -> Executor:
        """Worker processes for :func:`check_batch`, started on first use (threads if configured 0)."""
        if self._admission_executor is None:
            workers = self.settings.verify_processes
            if workers == 0:
                self._admission_executor = self._verify_pool
            else:
                context = multiprocessing.get_context("spawn")
                # Workers die with the node (even after SIGKILL); see admission.exit_with_parent.
                self._admission_executor = ProcessPoolExecutor(
                    workers, mp_context=context, initializer=exit_with_parent
                )
        return self._admission_executor

    def _fall_back_to_threads(self) -> None:
        if self._admission_executor is not self._verify_pool:
            log.warning(
                "admission worker processes failed to start (a script using Node.submit_many must guard "
                "its entry point with `if __name__ == '__main__':`); checking signatures in threads"
            )
            self._admission_executor = self._verify_pool

    async def start_admission_workers(self) -> None:
        """Start the admission worker processes now rather than on the first ``submit_many``."""
        pool = self._admission_pool()
        loop = asyncio.get_running_loop()
        await asyncio.gather(
            *(
                loop.run_in_executor(pool, check_batch, [], 0)
                for _ in range(max(1, self.settings.verify_processes))
            )
        )

    async def wait_committed(self, tx_hash: bytes, timeout_s: float = 30.0) -> SubmitResult:
        """Wait until ``tx_hash`` is in a durably committed block; answer with its receipt."""
        record = self.tx(tx_hash)
        if record is not None:
            height, receipt = record.height, record.receipt
        else:
            future: asyncio.Future[tuple[int, Receipt]] = asyncio.get_running_loop().create_future()
            self._waiters.setdefault(tx_hash, []).append(future)
            try:
                height, receipt = await asyncio.wait_for(future, timeout_s)
            except TimeoutError:
                return SubmitResult(
                    tx_hash, "accepted", "node.timeout", f"not committed within {timeout_s} s"
                )
            finally:
                waiters = self._waiters.get(tx_hash)
                if waiters is not None:
                    with contextlib.suppress(ValueError):
                        waiters.remove(future)
                    if not waiters:
                        del self._waiters[tx_hash]
        code = None if receipt.ok else receipt.code
        return SubmitResult(tx_hash, "committed", code, receipt.detail, height, receipt)

    def _check_writable(self) -> None:
        if self.fault is not None:
            raise StorageError(f"node stopped accepting writes: {self.fault}")

    def _set_fault(self, reason: str) -> None:
        """Stop accepting writes (reads go on); shown on /readyz, in status and on the dashboard."""
        if self.fault is None:
            self.fault = reason
            log.error("node fault: %s", reason)
        self.engine.halt(reason)

    # -- finality -----------------------------------------------------------------------------------
    def _on_vote(self, raw: bytes) -> None:
        """A vote entry from the log: count it, and check this node against the other validators."""
        vote = parse_vote(raw, self.chain_id)
        if vote is None:
            return
        certificate = self.quorum.add(vote, self.validators)
        if certificate is not None:
            self._on_certificate(certificate)
        own = self._recent_headers.get(vote.height)
        if own is not None and self.fault is None:
            against = self.quorum.others_agree_against(
                vote.height, own.hash, own.state_root, self.validators, self.node_key.public_key.raw
            )
            if against is not None:
                count, _, other_root = against
                self._set_fault(
                    f"state diverged at height {vote.height}: {count} other validators have state root "
                    f"{other_root.hex()}, this node {own.state_root.hex()}"
                )

    def _on_certificate(self, certificate: Certificate) -> None:
        if certificate.height > self.height:
            self._pending_certificates[certificate.height] = certificate
            return
        own = self._recent_headers.get(certificate.height) or self.storage.header(certificate.height)
        if own is None:
            return
        if (own.hash, own.state_root) != (certificate.block_hash, certificate.state_root):
            self._set_fault(
                f"state diverged at height {certificate.height}: a quorum certified state root "
                f"{certificate.state_root.hex()}, this node has {own.state_root.hex()}"
            )
            return
        self.storage.put_certificate(certificate.height, canonical_encode(certificate.to_cbor()))
        if certificate.height > self.final_height:
            self.final_height = certificate.height
            self.metrics.final_height.set(certificate.height)
            self._resolve_final_waiters()

    def _resolve_final_waiters(self) -> None:
        for height in [h for h in self._final_waiters if h <= self.final_height]:
            for future in self._final_waiters.pop(height):
                if not future.done():
                    future.set_result(self.final_height)

    async def wait_final(self, height: int, timeout_s: float = 30.0) -> bool:
        """Wait until block ``height`` is final (certified; on the embedded engine, committed)."""
        if self.final_height >= height:
            return True
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._final_waiters.setdefault(height, []).append(future)
        try:
            await asyncio.wait_for(future, timeout_s)
            return True
        except TimeoutError:
            return False
        finally:
            waiters = self._final_waiters.get(height)
            if waiters is not None and future in waiters:
                waiters.remove(future)
                if not waiters:
                    del self._final_waiters[height]

    # -- blocks -------------------------------------------------------------------------------------
    async def apply_batch(self, batch: OrderedBatch) -> None:
        """Execute, sign, store and publish one ordered batch. Called by the engine, in height order."""
        started = time.perf_counter()
        assert batch.height == self.header.height + 1, (
            f"batch {batch.height} after block {self.header.height}"
        )
        env = BlockEnv(self.chain_id, batch.height, batch.time_ms, self.header.hash)
        try:
            result: BlockResult = await asyncio.to_thread(
                execute_block, self._state, self.tree, env, batch.txs, self.app, self._verifier
            )
            signature = self.header_signature(result.header)
            meta = []
            if isinstance(batch.position, LogPosition):
                meta.append(("log_position", batch.position.to_cbor()))
            await asyncio.to_thread(self._store_block, result, signature, batch.txs, meta)
        except Exception as exc:
            self.fault = f"block {batch.height} could not be stored: {exc}"
            log.exception("node fault")
            raise
        overwritten = {key: self._data.get(key) for key, _ in result.changes}
        self._state.apply(result.changes)
        self.tree = result.tree
        self._history[result.header.height] = (result.tree, overwritten)
        while len(self._history) > PROOF_HISTORY:
            self._history.popitem(last=False)
        self.header = result.header
        if isinstance(batch.position, LogPosition):
            self._position = batch.position
        if any(key == SET_KEY for key, _ in result.changes):
            self.validators = read_validators(self._state)
        self._recent_headers[result.header.height] = result.header
        self._recent_headers.pop(result.header.height - 256, None)
        if self.engine.name == "embedded":
            self.final_height = result.header.height
            self._resolve_final_waiters()
        else:
            self.engine.block_applied(result.header, [receipt.tx_hash for receipt in result.receipts])
            pending = self._pending_certificates.pop(result.header.height, None)
            if pending is not None:
                self._on_certificate(pending)
        hashes = [receipt.tx_hash for receipt in result.receipts]
        self.mempool.remove(hashes)
        for tx_hash in hashes:
            self._verified.discard(tx_hash)
        self._resolve_waiters(result.header.height, result.receipts)
        self.metrics.record_block(result, time.perf_counter() - started)
        self._publish(result)
        async with self._new_block:
            self._new_block.notify_all()

    def _store_block(
        self, result: BlockResult, signature: bytes, txs: Sequence[SignedTx], meta: list[tuple[str, Any]]
    ) -> None:
        header = result.header
        self.storage.commit_block(
            header,
            signature,
            [tx.raw for tx in txs],
            result.receipts,
            result.end_events,
            result.changes,
            meta,
            block_entries(header.height, header.time_ms, txs, result.receipts),
        )

    def _resolve_waiters(self, height: int, receipts: Sequence[Receipt]) -> None:
        if not self._waiters:
            return
        for receipt in receipts:
            for future in self._waiters.pop(receipt.tx_hash, []):
                if not future.done():
                    future.set_result((height, receipt))

    async def wait_for_height(self, height: int, timeout_s: float = 30.0) -> None:
        async with self._new_block:
            await asyncio.wait_for(self._new_block.wait_for(lambda: self.height >= height), timeout_s)

    # -- events -------------------------------------------------------------------------------------
    def _publish(self, result: BlockResult) -> None:
        if not self._subscribers:
            return
        failed = sum(1 for r in result.receipts if not r.ok)
        messages: list[dict[str, Any]] = [
            {
                "type": "block",
                **result.header.to_json(),
                "failed": failed,
            }
        ]
        for receipt in result.receipts[:200]:
            messages.append({"type": "tx", "height": result.header.height, **receipt.to_json()})
        for queue in list(self._subscribers):
            for message in messages:
                try:
                    queue.put_nowait(message)
                except asyncio.QueueFull:
                    # A slow client is dropped rather than slowing the node down (R9).
                    self._subscribers.remove(queue)
                    with contextlib.suppress(asyncio.QueueEmpty):
                        queue.get_nowait()
                    queue.put_nowait(None)
                    break

    async def events(self) -> AsyncIterator[dict[str, Any]]:
        """Live block and transaction events until the node stops or the reader falls behind."""
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(self.settings.max_subscriber_queue)
        self._subscribers.append(queue)
        try:
            while (message := await queue.get()) is not None:
                yield message
        finally:
            if queue in self._subscribers:
                self._subscribers.remove(queue)
