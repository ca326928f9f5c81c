"""A deterministic simulation of the ``nats`` engine: several nodes deriving blocks from one log.

Three pieces, all pure and synchronous (no clock, no I/O, no threads; the only randomness is the
``random.Random(seed)`` the :class:`Simulation` owns and draws from in a fixed order):

* :class:`MemoryLog` stands in for the JetStream stream: an append-only log with a global sequence,
  de-duplication by message id inside a *duplicate window* (a publish whose id was seen inside the
  window is acknowledged as a duplicate with the original sequence and NOT appended; the id check
  comes before the expected-sequence check, as in nats-server), and compare-and-set by
  ``expected_last_subject_seq`` (0 = no entry on that subject yet). ``delete`` and ``tamper`` are
  faults for tests of the integrity checks.
* :class:`SimNode` is one node: an in-memory chain run by the real executor, a tx-hash index, a
  :class:`LogDeriver`, a :class:`QuorumTracker` and a validator key. Its *disk* (chain state, tx
  index, log position, per-block records, certificates: what the real node writes in one SQLite
  transaction per block) survives :meth:`SimNode.crash`; its *memory* (deriver with its pending
  entries, read cursor, vote tally, unsent votes) does not. :meth:`SimNode.restart` rebuilds the
  deriver from the stored :class:`LogPosition` and re-reads the log from ``position.through + 1``
  (earlier if a block still lacks a certificate, to count its votes again; the deriver ignores
  the entries it has already taken into account).
* :class:`Simulation` is a seeded scheduler with a simulated clock. Clients send signed bank
  transfers (one outstanding transaction each, with the sender's next sequence) through a network
  that drops requests and acknowledgements, delays and duplicates them; a client resends the same
  bytes until acknowledged, sometimes after the duplicate window, so the log can hold a transaction
  twice. Nodes read a random number of entries per step, with a random lag; validators propose cuts
  and vote; nodes crash and restart. A quiet phase (no new transactions, no faults) then runs until
  every node has read the whole log, all are at the same certified height and every acknowledged
  transaction is committed. :meth:`Simulation.run` returns a :class:`SimReport`; the same seed and
  parameters give the same report and the same trace, byte for byte, in any process.

Replay a seed with ``python -m autarky.sim --seed N`` (see ``__main__.py``).
"""

from __future__ import annotations

import dataclasses
import heapq
import random
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.engines.ordering import (
    CUT,
    TX,
    VOTE,
    Certificate,
    DerivedBlock,
    LogDeriver,
    LogIntegrityError,
    LogPosition,
    QuorumTracker,
    Vote,
    kind_of,
    make_vote,
    parse_vote,
    subject,
)
from autarky.ledger.block import BlockHeader
from autarky.ledger.errors import OK
from autarky.ledger.executor import execute_block
from autarky.ledger.router import BlockEnv
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.bank import keeper
from autarky.modules.bank import messages as bank
from autarky.modules.harness import Chain
from autarky.modules.validators import read_validators

CHAIN_ID = "autarky-sim"
ASSET = "aut"
FEE = 1
CLIENT_FUNDS = 10_000_000

Emit = Callable[[str], None]


def _short(digest: bytes) -> str:
    return digest[:4].hex()


def node_key(index: int) -> SigningKey:
    """The fixed validator key of simulated node ``index``."""
    return SigningKey.from_seed(sha256(b"autarky/sim/node/" + str(index).encode()))


def client_key(index: int) -> SigningKey:
    """The fixed account key of simulated client ``index``."""
    return SigningKey.from_seed(sha256(b"autarky/sim/client/" + str(index).encode()))


def sim_genesis(
    validators: Sequence[bytes],
    accounts: Sequence[str],
    *,
    chain_id: str = CHAIN_ID,
    time_ms: int = 0,
    funds: int = CLIENT_FUNDS,
) -> dict[str, Any]:
    """The genesis ``node.genesis.dev_genesis`` would build: ``accounts`` funded, ``validators`` set.

    Written out here because the simulation may not import the node layer; a test checks that the
    two agree.
    """
    return {
        "chain_id": chain_id,
        "genesis_time_ms": time_ms,
        "app_state": {
            "identity": {"accounts": []},
            "bank": {
                "params": {"fee_asset": ASSET, "min_fee": FEE},
                "balances": [
                    {"account": account, "asset": ASSET, "amount": funds} for account in sorted(accounts)
                ],
            },
            "validators": {"validators": [key.hex() for key in validators]},
        },
    }


# -- the log ----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class LogEntry:
    seq: int
    subject: str
    payload: bytes
    time_ms: int
    msg_id: str | None = None


@dataclass(frozen=True, slots=True)
class AppendResult:
    """A publish acknowledgement: ``seq`` (the original one when ``duplicate``) or ``rejected``."""

    seq: int | None
    duplicate: bool = False
    rejected: str | None = None

    @property
    def acknowledged(self) -> bool:
        return self.seq is not None


class MemoryLog:
    """The in-memory stand-in for a JetStream stream (see the module docstring)."""

    def __init__(self, duplicate_window_ms: int = 120_000) -> None:
        if duplicate_window_ms < 0:
            raise ValueError("the duplicate window cannot be negative")
        self.duplicate_window_ms = duplicate_window_ms
        self._entries: list[LogEntry | None] = []  # index seq - 1; None once deleted
        self._ids: dict[str, tuple[int, int]] = {}  # message id -> (sequence, time) of its append
        self._subjects: dict[str, list[int]] = {}  # subject -> sequences of its live entries
        self._time_ms = 0

    @property
    def last_seq(self) -> int:
        """The last sequence ever assigned (deleting entries does not lower it)."""
        return len(self._entries)

    def last_subject_seq(self, subject_name: str) -> int:
        seqs = self._subjects.get(subject_name)
        return seqs[-1] if seqs else 0

    def append(
        self,
        subject_name: str,
        payload: bytes,
        msg_id: str | None = None,
        expected_last_subject_seq: int | None = None,
        *,
        now_ms: int = 0,
    ) -> AppendResult:
        if now_ms < self._time_ms:
            raise ValueError(f"log time goes backwards: {now_ms} after {self._time_ms}")
        self._time_ms = now_ms
        if msg_id is not None:
            seen = self._ids.get(msg_id)
            if seen is not None and now_ms - seen[1] < self.duplicate_window_ms:
                return AppendResult(seen[0], duplicate=True)
        if expected_last_subject_seq is not None:
            last = self.last_subject_seq(subject_name)
            if last != expected_last_subject_seq:
                return AppendResult(None, rejected=f"wrong last sequence: {last}")
        seq = len(self._entries) + 1
        self._entries.append(LogEntry(seq, subject_name, bytes(payload), now_ms, msg_id))
        self._subjects.setdefault(subject_name, []).append(seq)
        if msg_id is not None:
            self._ids[msg_id] = (seq, now_ms)
        return AppendResult(seq)

    def entry(self, seq: int) -> LogEntry | None:
        return self._entries[seq - 1] if 1 <= seq <= len(self._entries) else None

    def entries_from(self, seq: int, limit: int | None = None) -> list[LogEntry]:
        """Live entries with sequence >= ``seq``, in order (deleted ones are skipped), at most ``limit``."""
        found: list[LogEntry] = []
        for index in range(max(seq, 1) - 1, len(self._entries)):
            if limit is not None and len(found) >= limit:
                break
            entry = self._entries[index]
            if entry is not None:
                found.append(entry)
        return found

    # -- faults ---------------------------------------------------------------------------------------
    def delete(self, seq: int) -> LogEntry:
        entry = self.entry(seq)
        if entry is None:
            raise KeyError(f"no entry {seq}")
        self._entries[seq - 1] = None
        self._subjects[entry.subject].remove(seq)
        return entry

    def tamper(self, seq: int, new_payload: bytes) -> LogEntry:
        entry = self.entry(seq)
        if entry is None:
            raise KeyError(f"no entry {seq}")
        self._entries[seq - 1] = dataclasses.replace(entry, payload=bytes(new_payload))
        return entry


# -- a node -----------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class BlockRecord:
    """What a node stores about one block besides the state change."""

    height: int
    header: BlockHeader
    cut_seq: int
    proposer: bytes
    txs: tuple[tuple[bytes, str, int, str], ...]  # (tx hash, sender, sequence, result code)
    dropped: int


@dataclass(slots=True)
class NodeDisk:
    """The durable part of a node: written once per block, atomically; survives a crash."""

    chain: Chain
    position: LogPosition
    records: list[BlockRecord]  # records[h - 1] is block h
    tx_index: dict[bytes, int]  # transaction hash -> height of the block that holds it
    validator_sets: list[tuple[bytes, ...]]  # [h]: the set after block h, in force for block h + 1
    certificates: dict[int, Certificate]

    @classmethod
    def from_genesis(cls, genesis: Mapping[str, Any]) -> NodeDisk:
        chain = Chain.from_genesis(genesis)
        block0 = chain.headers[0]
        position = LogPosition.genesis(block0.hash, block0.time_ms)
        return cls(chain, position, [], {}, [read_validators(chain.state)], {})

    @property
    def height(self) -> int:
        return self.chain.height


@dataclass(slots=True)
class _Memory:
    """The volatile part of a node, lost on a crash."""

    deriver: LogDeriver
    tracker: QuorumTracker
    cursor: int  # next log sequence to read
    pending_times: deque[tuple[int, int]] = field(default_factory=deque)  # (seq, append time) of pending txs
    early_votes: list[Vote] = field(default_factory=list)  # votes for blocks this node has not derived yet
    outbox: list[bytes] = field(default_factory=list)  # votes signed but not yet published
    attempted_at: int = -1  # the deriver's last cut entry when this node last tried to append a cut


class SimNode:
    """One node of the simulated cluster (see the module docstring)."""

    def __init__(
        self,
        index: int,
        genesis: Mapping[str, Any],
        log: MemoryLog,
        key: SigningKey,
        *,
        interval_ms: int = 50,
        heartbeat_ms: int = 1000,
        max_txs: int = 8,
        emit: Emit | None = None,
    ) -> None:
        self.index = index
        self.name = f"n{index}"
        self.chain_id = str(genesis["chain_id"])
        self.log = log
        self.key = key
        self.interval_ms = interval_ms
        self.heartbeat_ms = heartbeat_ms
        self.max_txs = max_txs
        self._emit: Emit = emit or (lambda line: None)
        self._subjects = {kind: subject(self.chain_id, kind) for kind in (TX, CUT, VOTE)}
        self.disk = NodeDisk.from_genesis(genesis)
        self.memory: _Memory | None = None
        self.halted: str | None = None
        self.disagreements = 0
        self.ignored_cuts = 0  # over the node's whole life (the deriver's own count restarts with it)
        self.cuts_appended = 0
        self.cuts_rejected = 0
        self.revotes = 0  # votes signed again after a restart (a crash may have lost them)
        self._now_ms = 0
        self.restart()

    # -- state ----------------------------------------------------------------------------------------
    @property
    def up(self) -> bool:
        return self.memory is not None and self.halted is None

    @property
    def height(self) -> int:
        return self.disk.height

    @property
    def final_height(self) -> int:
        """The highest height with a certificate on this node."""
        return max(self.disk.certificates, default=0)

    @property
    def position(self) -> LogPosition:
        return self.disk.position

    def is_committed(self, tx_hash: bytes) -> bool:
        return tx_hash in self.disk.tx_index

    def is_validator(self, height: int | None = None) -> bool:
        """Whether this node's key is in the set in force for block ``height`` (default: the next)."""
        sets = self.disk.validator_sets
        validators = sets[-1] if height is None else sets[height - 1]
        return self.key.public_key.raw in validators

    @property
    def caught_up(self) -> bool:
        """Up, every log entry read and every vote published."""
        memory = self.memory
        return (
            memory is not None
            and self.halted is None
            and memory.cursor > self.log.last_seq
            and not memory.outbox
        )

    def _memory(self) -> _Memory:
        if self.memory is None or self.halted is not None:
            raise RuntimeError(f"{self.name} is down" + (f" (halted: {self.halted})" if self.halted else ""))
        return self.memory

    # -- crash and restart ----------------------------------------------------------------------------
    def crash(self) -> None:
        """Lose everything volatile: pending entries, read cursor, vote tally, unsent votes."""
        if self.memory is not None:
            self.ignored_cuts += self.memory.deriver.ignored_cuts
        self.memory = None

    def restart(self) -> None:
        """Rebuild the volatile part from the disk, as a restarted process would."""
        self.crash()
        disk = self.disk
        deriver = LogDeriver(
            self.chain_id, disk.position, lambda: self.disk.validator_sets[-1], self.is_committed
        )
        cursor = disk.position.through + 1
        first = self._first_uncertified()
        if first <= disk.height:
            # Votes for blocks without a certificate may lie before ``through``: count them again.
            cursor = min(cursor, disk.records[first - 1].cut_seq + 1)
        memory = _Memory(deriver, QuorumTracker(self.chain_id), cursor)
        for height in range(first, disk.height + 1):
            if self.is_validator(height):  # the vote may have been lost with the crash: sign it again
                memory.outbox.append(self._vote(disk.records[height - 1]))
                self.revotes += 1
        self.memory = memory

    def _first_uncertified(self) -> int:
        height = 1
        while height in self.disk.certificates:
            height += 1
        return height

    # -- one step -------------------------------------------------------------------------------------
    def step(self, now_ms: int, limit: int | None = None, lag_ms: int = 0) -> None:
        """Publish unsent votes, read up to ``limit`` entries older than ``lag_ms``, propose if due."""
        if not self.up:
            return
        self.flush(now_ms)
        self.read(now_ms, limit, lag_ms)
        if self.proposal_due(now_ms):
            self.propose(now_ms)

    def flush(self, now_ms: int) -> None:
        memory = self._memory()
        for payload in memory.outbox:
            self.log.append(self._subjects[VOTE], payload, sha256(payload).hex(), now_ms=now_ms)
        memory.outbox.clear()

    def read(self, now_ms: int, limit: int | None = None, lag_ms: int = 0) -> int:
        """Read log entries in order; apply each block they complete. Raises LogIntegrityError."""
        memory = self._memory()
        self._now_ms = now_ms
        read = 0
        for entry in self.log.entries_from(memory.cursor, limit):
            if entry.time_ms > now_ms - lag_ms:
                break  # not delivered to this node yet
            memory.cursor = entry.seq + 1
            read += 1
            kind = kind_of(entry.subject)
            if kind is None or entry.subject != self._subjects[kind]:
                continue
            if kind == VOTE:
                vote = parse_vote(entry.payload, self.chain_id)
                if vote is not None:
                    self._count(vote)
                continue
            deriver = memory.deriver
            if kind == TX and entry.seq > deriver.last_seq:
                memory.pending_times.append((entry.seq, entry.time_ms))
            ignored = deriver.ignored_cuts
            try:
                block = deriver.feed(entry.seq, kind, entry.payload)
            except LogIntegrityError as exc:
                self.halted = str(exc)
                self._emit(f"{now_ms} {self.name} HALT {exc}")
                raise
            if deriver.ignored_cuts != ignored:
                self._emit(f"{now_ms} {self.name} ignores cut +{entry.seq}")
            if block is not None:
                self._apply(block, now_ms)
        return read

    def _apply(self, block: DerivedBlock, now_ms: int) -> None:
        memory = self._memory()
        disk = self.disk
        chain = disk.chain
        assert block.height == chain.height + 1, (block.height, chain.height)
        env = BlockEnv(self.chain_id, block.height, block.time_ms, chain.headers[-1].hash)
        result = execute_block(chain.state, chain.tree, env, block.txs, chain.app)
        txs = tuple(
            (receipt.tx_hash, tx.body.sender, tx.body.sequence, receipt.code)
            for tx, receipt in zip(block.txs, result.receipts, strict=True)
        )
        record = BlockRecord(
            block.height, result.header, block.position.cut_seq, block.cut.signer, txs, block.dropped
        )
        # One durable transaction: state, block, tx index, validator set, log position.
        chain.commit(result, tuple(tx.raw for tx in block.txs))
        disk.records.append(record)
        for receipt in result.receipts:
            disk.tx_index[receipt.tx_hash] = block.height
        disk.validator_sets.append(read_validators(chain.state))
        disk.position = block.position
        # Volatile bookkeeping.
        while memory.pending_times and memory.pending_times[0][0] <= block.position.through:
            memory.pending_times.popleft()
        self._emit(
            f"{now_ms} {self.name} block {block.height} txs={len(block.txs)} dropped={block.dropped} "
            f"through={block.position.through} cut=+{block.position.cut_seq} "
            f"root={_short(result.header.state_root)}"
        )
        if self.is_validator(block.height):
            memory.outbox.append(self._vote(record))
        early = [vote for vote in memory.early_votes if vote.height == block.height]
        if early:
            memory.early_votes = [vote for vote in memory.early_votes if vote.height != block.height]
            for vote in early:
                self._count(vote)

    def _vote(self, record: BlockRecord) -> bytes:
        return make_vote(self.key, self.chain_id, record.height, record.header.hash, record.header.state_root)

    def _count(self, vote: Vote) -> None:
        memory = self._memory()
        disk = self.disk
        if vote.height < 1 or vote.height in disk.certificates:
            return
        if vote.height > disk.height:
            if len(memory.early_votes) < 10_000:
                memory.early_votes.append(vote)
            return
        cert = memory.tracker.add(vote, disk.validator_sets[vote.height - 1])
        if cert is None:
            return
        header = disk.records[cert.height - 1].header
        if (cert.block_hash, cert.state_root) != (header.hash, header.state_root):
            self.disagreements += 1
            self._emit(f"{self._now_ms} {self.name} DISAGREES with the certificate of block {cert.height}")
            return
        disk.certificates[cert.height] = cert
        self._emit(f"{self._now_ms} {self.name} certified {cert.height}")

    # -- proposing ------------------------------------------------------------------------------------
    def proposal_due(self, now_ms: int) -> bool:
        """A validator proposes when a pending entry is older than the interval or a heartbeat passed,
        at most once per cut it has read (a second try would fail the compare-and-set anyway)."""
        memory = self.memory
        if memory is None or self.halted is not None or not self.is_validator():
            return False
        if memory.deriver.last_cut_entry_seq == memory.attempted_at:
            return False
        if memory.pending_times and memory.pending_times[0][1] <= now_ms - self.interval_ms:
            return True
        return now_ms - self.disk.position.time_ms >= self.heartbeat_ms

    def propose(self, now_ms: int) -> AppendResult:
        """Append a cut over the pending entries, with compare-and-set on the cut subject."""
        memory = self._memory()
        payload, expected = memory.deriver.propose(self.key, now_ms, self.max_txs)
        memory.attempted_at = expected
        result = self.log.append(
            self._subjects[CUT],
            payload,
            sha256(payload).hex(),
            expected_last_subject_seq=expected,
            now_ms=now_ms,
        )
        if result.seq is None:
            self.cuts_rejected += 1
            outcome = f"rejected ({result.rejected})"
        else:
            self.cuts_appended += 0 if result.duplicate else 1
            outcome = f"duplicate of +{result.seq}" if result.duplicate else f"+{result.seq}"
        self._emit(
            f"{now_ms} {self.name} cut {memory.deriver.position.height + 1} "
            f"pending={memory.deriver.pending} expect={expected} -> {outcome}"
        )
        return result


# -- the simulation ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class SimConfig:
    """Every parameter of a run; the seed and these determine it completely."""

    nodes: int = 3
    clients: int = 4
    steps: int = 300  # ticks of the active phase
    drop: float = 0.1  # a publish request, or its acknowledgement, is lost
    delay: float = 0.2  # a publish is delayed; a node's read this step lags
    duplicate: float = 0.05  # the network delivers a publish twice
    restart: float = 0.005  # per node and tick: the node crashes (and restarts after a downtime)
    tick_ms: int = 10
    submit: float = 0.3  # per idle client and tick: it sends a new transfer
    duplicate_window_ms: int = 400
    max_delay_ms: int = 250
    max_read_lag_ms: int = 150
    read_batch: int = 8
    retry_min_ms: int = 100
    retry_max_ms: int = 1000
    downtime_min_ms: int = 30
    downtime_max_ms: int = 500
    interval_ms: int = 50
    heartbeat_ms: int = 500
    max_txs: int = 8
    quiet_steps: int = 3000

    def __post_init__(self) -> None:
        if self.nodes < 1 or self.clients < 2 or self.steps < 0 or self.tick_ms < 1:
            raise ValueError("a simulation needs nodes >= 1, clients >= 2, steps >= 0, tick_ms >= 1")

    def changed(self) -> dict[str, Any]:
        """The parameters that differ from the defaults, in field order."""
        default = SimConfig()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }


def replay_command(seed: int, config: SimConfig) -> str:
    options = "".join(f" --{name.replace('_', '-')} {value!r}" for name, value in config.changed().items())
    return f"python -m autarky.sim --seed {seed}{options}"


@dataclass(frozen=True)
class SimReport:
    seed: int
    config: SimConfig
    heights: tuple[int, ...]
    final_heights: tuple[int, ...]  # highest certified height per node
    common_height: int
    state_roots: tuple[str, ...]  # per node, at the common height
    roots_equal: bool  # every node has the same block hashes up to the common height
    acknowledged: int
    lost: int  # acknowledged but not committed on some node
    lost_txs: tuple[str, ...]
    applied_twice: int  # a tx hash in two blocks (or twice in one), or a sender sequence applied twice
    failed: int  # acknowledged, committed, but with a code other than ok
    conserved: bool
    settled: bool  # the quiet phase ended with everyone caught up
    halted: tuple[str | None, ...]
    disagreements: int
    validators: tuple[bytes, ...]
    certificates: tuple[tuple[Certificate, ...], ...]  # per node, by height
    stats: dict[str, int]
    trace: tuple[str, ...]

    @property
    def replay(self) -> str:
        return replay_command(self.seed, self.config)

    def problems(self) -> list[str]:
        found = []
        if not self.settled:
            found.append("the quiet phase did not settle")
        if self.lost:
            found.append(f"{self.lost} acknowledged transactions lost")
        if self.applied_twice:
            found.append(f"{self.applied_twice} transactions applied twice")
        if self.failed:
            found.append(f"{self.failed} acknowledged transactions failed")
        if not self.conserved:
            found.append("bank supply not conserved")
        if not self.roots_equal:
            found.append("nodes disagree on blocks")
        if len(set(self.heights)) != 1 or self.final_heights != self.heights:
            found.append(f"heights {list(self.heights)}, certified {list(self.final_heights)}")
        if any(self.halted):
            found.append(f"halted: {[reason for reason in self.halted if reason]}")
        if self.disagreements:
            found.append(f"{self.disagreements} certificate disagreements")
        for index, certificates in enumerate(self.certificates):
            if [cert.height for cert in certificates] != list(range(1, self.final_heights[index] + 1)):
                found.append(f"node {index} lacks certificates below its final height")
        return found

    def to_json(self, trace: bool = False) -> dict[str, Any]:
        document: dict[str, Any] = {
            "seed": self.seed,
            "config": dataclasses.asdict(self.config),
            "replay": self.replay,
            "problems": self.problems(),
            "heights": list(self.heights),
            "final_heights": list(self.final_heights),
            "common_height": self.common_height,
            "state_roots": list(self.state_roots),
            "roots_equal": self.roots_equal,
            "acknowledged": self.acknowledged,
            "lost": self.lost,
            "lost_txs": list(self.lost_txs),
            "applied_twice": self.applied_twice,
            "failed": self.failed,
            "conserved": self.conserved,
            "settled": self.settled,
            "halted": list(self.halted),
            "disagreements": self.disagreements,
            "certificates": [len(certs) for certs in self.certificates],
            "stats": dict(self.stats),
            "trace_sha256": sha256("\n".join(self.trace).encode()).hex(),
        }
        if trace:
            document["trace"] = list(self.trace)
        return document


@dataclass(slots=True)
class _Client:
    index: int
    key: SigningKey
    sequence: int = 0
    raw: bytes | None = None  # the outstanding transaction, sent until acknowledged
    tx_hash: bytes = b""
    retry_at: int = 0
    attempts: int = 0


class Simulation:
    def __init__(
        self,
        seed: int,
        nodes: int = 3,
        clients: int = 4,
        steps: int = 300,
        drop: float = 0.1,
        delay: float = 0.2,
        duplicate: float = 0.05,
        restart: float = 0.005,
        **options: Any,
    ) -> None:
        config = SimConfig(
            nodes=nodes,
            clients=clients,
            steps=steps,
            drop=drop,
            delay=delay,
            duplicate=duplicate,
            restart=restart,
            **options,
        )
        self.seed = seed
        self.config = config
        self.rng = random.Random(seed)
        self.now_ms = 0
        self.trace: list[str] = []
        self.log = MemoryLog(config.duplicate_window_ms)
        self.clients = [_Client(index, client_key(index)) for index in range(config.clients)]
        keys = [node_key(index) for index in range(config.nodes)]
        self.validators = tuple(sorted(key.public_key.raw for key in keys))
        self.genesis = sim_genesis(self.validators, [client.key.did for client in self.clients])
        self.nodes = [
            SimNode(
                index,
                self.genesis,
                self.log,
                key,
                interval_ms=config.interval_ms,
                heartbeat_ms=config.heartbeat_ms,
                max_txs=config.max_txs,
                emit=self._emit,
            )
            for index, key in enumerate(keys)
        ]
        self.down_until = [0] * config.nodes
        self.acknowledged: list[bytes] = []
        self._flights: list[tuple[int, int, int, bytes, bytes]] = []  # (at, order, client, raw, hash)
        self._order = 0
        self._quiet = False
        self._appended: dict[bytes, int] = {}  # tx hash -> times appended to the log
        self.stats: dict[str, int] = {
            name: 0
            for name in (
                "sent",
                "retries",
                "requests_dropped",
                "acks_dropped",
                "delayed",
                "duplicated",
                "duplicate_acks",
                "tx_appended_twice",
                "crashes",
                "integrity_errors",
            )
        }

    def _emit(self, line: str) -> None:
        self.trace.append(line)

    # -- running --------------------------------------------------------------------------------------
    def run(self) -> SimReport:
        for _ in range(self.config.steps):
            self._tick()
        self._quiet = True
        self._emit(f"{self.now_ms} quiet phase")
        settled = False
        for _ in range(self.config.quiet_steps):
            self._tick()
            if self._settled():
                settled = True
                break
        self._emit(f"{self.now_ms} " + ("settled" if settled else "NOT settled"))
        return self._report(settled)

    def _tick(self) -> None:
        config, rng = self.config, self.rng
        self.now_ms += config.tick_ms
        now = self.now_ms
        faults = not self._quiet
        while self._flights and self._flights[0][0] <= now:
            _, _, index, raw, tx_hash = heapq.heappop(self._flights)
            self._deliver(self.clients[index], raw, tx_hash)
        for index, node in enumerate(self.nodes):
            if node.memory is None and node.halted is None and (self._quiet or now >= self.down_until[index]):
                node.restart()
                self._emit(f"{now} {node.name} restarts at height {node.height}")
        if faults:
            for index, node in enumerate(self.nodes):
                if node.up and rng.random() < config.restart:
                    node.crash()
                    self.down_until[index] = now + rng.randint(config.downtime_min_ms, config.downtime_max_ms)
                    self.stats["crashes"] += 1
                    self._emit(f"{now} {node.name} crashes at height {node.height}")
        order = list(range(len(self.clients)))
        rng.shuffle(order)
        for index in order:
            self._client_step(self.clients[index])
        order = list(range(len(self.nodes)))
        rng.shuffle(order)
        for index in order:
            node = self.nodes[index]
            if not node.up:
                continue
            limit = None if self._quiet else rng.randint(1, config.read_batch)
            lag = rng.randint(1, config.max_read_lag_ms) if faults and rng.random() < config.delay else 0
            try:
                node.step(now, limit, lag)
            except LogIntegrityError:
                self.stats["integrity_errors"] += 1

    # -- clients and the network ----------------------------------------------------------------------
    def _client_step(self, client: _Client) -> None:
        config, rng = self.config, self.rng
        if client.raw is not None:
            if self.now_ms >= client.retry_at:
                self.stats["retries"] += 1
                self._send(client)
            return
        if self._quiet or rng.random() >= config.submit:
            return
        others = [other for other in self.clients if other is not client]
        to = others[rng.randrange(len(others))]
        amount = rng.randint(1, 100)
        body = TxBody(
            CHAIN_ID, client.key.did, client.sequence, FEE, 0, (bank.send(to.key.did, ASSET, amount),)
        )
        tx = sign_tx(body, client.key)
        client.raw, client.tx_hash, client.attempts = tx.raw, tx.hash, 0
        self.stats["sent"] += 1
        self._emit(
            f"{self.now_ms} c{client.index} new tx {_short(tx.hash)} seq={client.sequence} to=c{to.index}"
        )
        self._send(client)

    def _send(self, client: _Client) -> None:
        config, rng = self.config, self.rng
        assert client.raw is not None
        faults = not self._quiet
        client.attempts += 1
        client.retry_at = self.now_ms + rng.randint(config.retry_min_ms, config.retry_max_ms)
        if faults and rng.random() < config.drop:
            self.stats["requests_dropped"] += 1
            self._emit(
                f"{self.now_ms} net drops c{client.index} publish {_short(client.tx_hash)} "
                f"try={client.attempts}"
            )
            return
        at = self.now_ms
        if faults and rng.random() < config.delay:
            at += rng.randint(1, config.max_delay_ms)
            self.stats["delayed"] += 1
        self._flight(at, client, client.raw)
        if faults and rng.random() < config.duplicate:
            self.stats["duplicated"] += 1
            self._flight(at + rng.randint(0, config.max_delay_ms), client, client.raw)

    def _flight(self, at: int, client: _Client, raw: bytes) -> None:
        self._order += 1
        heapq.heappush(self._flights, (at, self._order, client.index, raw, client.tx_hash))

    def _deliver(self, client: _Client, raw: bytes, tx_hash: bytes) -> None:
        result = self.log.append(subject(CHAIN_ID, TX), raw, tx_hash.hex(), now_ms=self.now_ms)
        if result.duplicate:
            self.stats["duplicate_acks"] += 1
            self._emit(f"{self.now_ms} log dup tx {_short(tx_hash)} = +{result.seq}")
        else:
            count = self._appended.get(tx_hash, 0) + 1
            self._appended[tx_hash] = count
            if count > 1:
                self.stats["tx_appended_twice"] += 1
            self._emit(
                f"{self.now_ms} log +{result.seq} tx {_short(tx_hash)} (c{client.index}, copy {count})"
            )
        if not self._quiet and self.rng.random() < self.config.drop:
            self.stats["acks_dropped"] += 1
            self._emit(f"{self.now_ms} net drops ack to c{client.index} for {_short(tx_hash)}")
            return
        if client.raw is not None and client.tx_hash == tx_hash:
            self.acknowledged.append(tx_hash)
            client.raw = None
            client.sequence += 1
            self._emit(f"{self.now_ms} c{client.index} acked {_short(tx_hash)} after {client.attempts} tries")

    # -- the end --------------------------------------------------------------------------------------
    def _settled(self) -> bool:
        if self._flights or any(client.raw is not None for client in self.clients):
            return False
        nodes = self.nodes
        if not all(node.caught_up for node in nodes):
            return False
        height = nodes[0].height
        if any(node.height != height or node.final_height != height for node in nodes):
            return False
        return all(node.is_committed(tx_hash) for node in nodes for tx_hash in self.acknowledged)

    def _report(self, settled: bool) -> SimReport:
        nodes = self.nodes
        common = min(node.height for node in nodes)
        hashes = [tuple(header.hash for header in node.disk.chain.headers[: common + 1]) for node in nodes]
        roots = tuple(node.disk.chain.headers[common].state_root.hex() for node in nodes)
        lost = tuple(
            tx_hash.hex()
            for tx_hash in dict.fromkeys(self.acknowledged)
            if not all(node.is_committed(tx_hash) for node in nodes)
        )
        codes: dict[bytes, str] = {}  # the result of each transaction's first inclusion
        for record in nodes[0].disk.records:
            for tx_hash, _, _, code in record.txs:
                codes.setdefault(tx_hash, code)
        failed = sum(1 for tx_hash in dict.fromkeys(self.acknowledged) if codes.get(tx_hash, OK) != OK)
        supply = CLIENT_FUNDS * len(self.clients)
        conserved = all(
            node.disk.chain.invariants() == [] and keeper.supply(node.disk.chain.state, ASSET) == supply
            for node in nodes
        )
        stats = dict(self.stats)
        first = nodes[0].disk.records
        stats["blocks"] = len(first)
        stats["empty_blocks"] = sum(1 for record in first if not record.txs)
        stats["entries_dropped_in_blocks"] = sum(record.dropped for record in first)
        stats["log_entries"] = self.log.last_seq
        stats["cuts_appended"] = sum(node.cuts_appended for node in nodes)
        stats["cuts_rejected"] = sum(node.cuts_rejected for node in nodes)
        stats["revotes"] = sum(node.revotes for node in nodes)
        stats["ignored_cuts"] = sum(
            node.ignored_cuts + (node.memory.deriver.ignored_cuts if node.memory else 0) for node in nodes
        )
        return SimReport(
            seed=self.seed,
            config=self.config,
            heights=tuple(node.height for node in nodes),
            final_heights=tuple(node.final_height for node in nodes),
            common_height=common,
            state_roots=roots,
            roots_equal=all(chain == hashes[0] for chain in hashes),
            acknowledged=len(self.acknowledged),
            lost=len(lost),
            lost_txs=lost,
            applied_twice=max(_applied_twice(node.disk.records) for node in nodes),
            failed=failed,
            conserved=conserved,
            settled=settled,
            halted=tuple(node.halted for node in nodes),
            disagreements=sum(node.disagreements for node in nodes),
            validators=self.validators,
            certificates=tuple(
                tuple(node.disk.certificates[height] for height in sorted(node.disk.certificates))
                for node in nodes
            ),
            stats=stats,
            trace=tuple(self.trace),
        )


def _applied_twice(records: Sequence[BlockRecord]) -> int:
    hashes: dict[bytes, int] = {}
    sequences: dict[tuple[str, int], int] = {}
    for record in records:
        for tx_hash, sender, sequence, code in record.txs:
            hashes[tx_hash] = hashes.get(tx_hash, 0) + 1
            if code == OK:
                sequences[sender, sequence] = sequences.get((sender, sequence), 0) + 1
    return sum(count - 1 for count in hashes.values()) + sum(count - 1 for count in sequences.values())
