"""``python -m autarky.bench.crash``: kill -9 the embedded node at random points, over and over (SPEC R2).

One data directory lives through every cycle. Each cycle the parent starts a *worker* process
(``python -m autarky.bench.crash worker DATA_DIR SEED``) that opens the node on that directory,
starts it and runs several client tasks; each client signs transfers from its own pre-funded key,
taking the sequence from ``node.sequence`` (so it resumes correctly after a crash), submits with
``wait=True`` and, once the block holding it is durably committed, prints ``ACK <tx hash hex>``.
The parent SIGKILLs the worker at a random moment and keeps every ACK it read.

Where the kill lands (chosen by ``random.Random(seed)``, so a run's choices replay from its seed;
the exact instruction it interrupts depends on timing):

* usually 0.05-0.8 s after the worker's first ACK: in the middle of blocks being executed,
  committed, checkpointed (the worker checkpoints every ``CHECKPOINT_BLOCKS`` blocks so kills land
  inside checkpoints too) and acknowledged;
* sometimes (``EARLY_KILL_SHARE``) before any ACK: while the node opens, reloads and checks its
  state (crash recovery), or starts its engine.

Every ``audit_every`` cycles and at the end, with the worker dead, the parent audits the database:

* ``lost``: acknowledged transactions that are not in the transaction index with an ``ok``
  receipt (must be 0);
* ``applied_twice``: a transaction hash applied by more than one receipt, or a sender's applied
  sequences not exactly 0, 1, 2, ... (must be 0);
* ``integrity_check``: SQLite's ``PRAGMA integrity_check`` (must be ``ok``);
* ``state_equal``: the state reloaded from storage (base table + log) reproduces the last
  header's state root;
* ``replay_equal``: two replays from genesis agree with the stored chain. At every audit the
  in-memory :class:`~autarky.modules.harness.Chain` (the real executor, every signature checked
  again) is extended over the blocks stored since the last audit, after re-reading the headers it
  already replayed and requiring them unchanged; every header hash, every receipt, the final state
  root and the module invariants must match. At the end the node's own replay
  (:func:`autarky.node.replay.replay_data_dir`, the check behind ``autarky node replay``) runs once
  more from genesis on the closed database.

A kill -9 of a process does not drop writes the process already handed to the kernel, so this
checks that a block and its effects are atomic and that recovery is correct, not what survives a
power cut (that needs a fault-injecting file system; see docs/reliability.md).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from autarky.crypto.keys import SigningKey
from autarky.ledger.block import BlockHeader
from autarky.ledger.executor import sequence_of
from autarky.ledger.smt import SparseMerkleTree
from autarky.ledger.tx import TxBody, decode_tx, sign_tx
from autarky.modules.harness import Chain
from autarky.node.genesis import dev_genesis
from autarky.node.node import DB_FILE, Node, NodeSettings, init_data_dir
from autarky.node.replay import replay_data_dir
from autarky.node.storage import Storage

CHAIN_ID = "crash"
GENESIS_TIME_MS = 1_767_225_600_000
CLIENTS = 6
FUNDS = 10**15
CHECKPOINT_BLOCKS = 16
BLOCK_INTERVAL_MS = 5

EARLY_KILL_SHARE = 0.2
KILL_AFTER_ACK_S = (0.05, 0.8)
ACK_TIMEOUT_S = 60.0
WORKER_LIFETIME_S = 600.0


def client_keys() -> list[SigningKey]:
    """The worker's client keys: fixed, publicly known, funded only on the bench's own chain."""
    return [
        SigningKey.from_seed(hashlib.sha256(f"autarky-crash-bench/client/{index}".encode()).digest())
        for index in range(CLIENTS)
    ]


def crash_genesis() -> dict[str, Any]:
    return dev_genesis(
        CHAIN_ID, time_ms=GENESIS_TIME_MS, allocations=[(key.did, "aut", FUNDS) for key in client_keys()]
    )


# --- the worker: a node with clients, killed by the parent --------------------------------------------


def _say(line: str) -> None:
    # One write(2) per line, unbuffered: a line the parent reads was written whole, and nothing
    # acknowledged can sit in a userspace buffer when the kill comes.
    os.write(1, (line + "\n").encode("ascii"))


async def _client(node: Node, key: SigningKey, recipients: Sequence[str], rng: random.Random) -> None:
    while True:
        body = TxBody(
            CHAIN_ID,
            key.did,
            node.sequence(key.did),
            1,
            0,
            (
                {
                    "type": "bank/send",
                    "to": rng.choice(recipients),
                    "asset": "aut",
                    "amount": rng.randint(1, 1000),
                },
            ),
        )
        tx = sign_tx(body, key)
        result = await node.submit(tx.raw, wait=True)
        if result.status == "committed":
            _say(f"ACK {tx.hash.hex()}")
        else:
            _say(f"NACK {tx.hash.hex()} {result.status} {result.code}")
            await asyncio.sleep(0.01)


async def _worker(data_dir: Path, seed: int) -> None:
    rng = random.Random(seed)
    keys = client_keys()
    dids = [key.did for key in keys]
    settings = NodeSettings(
        data_dir, block_interval_ms=BLOCK_INTERVAL_MS, checkpoint_blocks=CHECKPOINT_BLOCKS
    )
    node = await Node.open(settings)
    await node.start()
    _say(f"READY {node.height}")
    clients = [
        asyncio.create_task(
            _client(node, key, [d for d in dids if d != key.did], random.Random(rng.random()))
        )
        for key in keys
    ]
    # Runs until killed; the lifetime bounds an orphaned worker whose parent died without killing it.
    done, _ = await asyncio.wait(clients, timeout=WORKER_LIFETIME_S, return_when=asyncio.FIRST_EXCEPTION)
    for task in done:
        task.result()
    os._exit(3)


def worker_main(data_dir: Path, seed: int) -> None:
    _say("IMPORTED")
    asyncio.run(_worker(data_dir, seed))


# --- the parent: start, kill, collect ------------------------------------------------------------------


class _WorkerOutput:
    """Reads a worker's stdout on a thread, timestamping each line (seconds since the spawn)."""

    def __init__(self, process: subprocess.Popen[bytes], spawned: float) -> None:
        self.spawned = spawned
        self.acks: list[bytes] = []
        self.nacks: list[str] = []
        self.imported_s: float | None = None
        self.ready_s: float | None = None
        self.first_ack_s: float | None = None
        self.imported = threading.Event()
        self.first_ack = threading.Event()
        assert process.stdout is not None
        self._stream: IO[bytes] = process.stdout
        self._thread = threading.Thread(target=self._read, name="crash-worker-stdout", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for raw in self._stream:
            now = time.perf_counter() - self.spawned
            if not raw.endswith(b"\n"):
                break  # a line cut by the kill was never completely claimed
            line = raw.decode("ascii", "replace").strip()
            if line.startswith("ACK "):
                self.acks.append(bytes.fromhex(line[4:]))
                if self.first_ack_s is None:
                    self.first_ack_s = now
                    self.first_ack.set()
            elif line == "IMPORTED":
                self.imported_s = now
                self.imported.set()
            elif line.startswith("READY"):
                self.ready_s = now
            elif line.startswith("NACK"):
                self.nacks.append(line)
        self.imported.set()
        self.first_ack.set()

    def join(self) -> None:
        self._thread.join(30)
        assert not self._thread.is_alive(), "worker stdout still open after the worker died"


@dataclass(slots=True)
class _Cycle:
    early: bool
    acks: list[bytes]
    nacks: list[str]
    imported_s: float | None
    ready_s: float | None
    first_ack_s: float | None
    error: str | None


def _run_cycle(data_dir: Path, rng: random.Random, open_s_estimate: float) -> _Cycle:
    early = rng.random() < EARLY_KILL_SHARE
    early_delay_s = rng.uniform(0.0, 1.5 * open_s_estimate)
    late_delay_s = rng.uniform(*KILL_AFTER_ACK_S)
    worker_seed = rng.randrange(2**32)
    command = [sys.executable, "-m", "autarky.bench.crash", "worker", str(data_dir), str(worker_seed)]
    error: str | None = None
    with tempfile.TemporaryFile() as stderr:
        spawned = time.perf_counter()
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=stderr)
        output = _WorkerOutput(process, spawned)
        try:
            if early:
                output.imported.wait(ACK_TIMEOUT_S)
                time.sleep(early_delay_s)
            elif output.first_ack.wait(ACK_TIMEOUT_S) and output.first_ack_s is not None:
                time.sleep(late_delay_s)
            else:
                error = f"no acknowledgement within {ACK_TIMEOUT_S} s"
        finally:
            exited_early = process.poll() is not None
            process.kill()  # SIGKILL, this process only
            process.wait()
            output.join()
            assert process.stdout is not None
            process.stdout.close()
        if exited_early or process.returncode != -signal.SIGKILL:
            stderr.seek(0)
            tail = stderr.read().decode("utf-8", "replace")[-2000:]
            error = f"worker exited by itself with status {process.returncode}: {tail}"
    return _Cycle(
        early, output.acks, output.nacks, output.imported_s, output.ready_s, output.first_ack_s, error
    )


# --- the audit ---------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Audit:
    """What the stored ledger says, checked against the acknowledgements and a replay from genesis."""

    genesis: dict[str, Any]
    chain: Chain
    replayed_hashes: list[bytes] = field(default_factory=list)
    applied: set[bytes] = field(default_factory=set)
    included: set[bytes] = field(default_factory=set)
    next_sequence: dict[str, int] = field(default_factory=dict)
    applied_twice: int = 0
    included_twice: int = 0
    sequence_errors: int = 0
    failed_in_block: int = 0
    transactions: int = 0
    replay_equal: bool = True
    replay_mismatch: str | None = None
    state_equal: bool = True
    integrity_check: str = "ok"
    invariants: list[str] = field(default_factory=list)
    audits: int = 0
    audit_s: float = 0.0

    @classmethod
    def start(cls, genesis: dict[str, Any]) -> _Audit:
        audit = cls(genesis, Chain.from_genesis(genesis))
        audit.replayed_hashes.append(audit.chain.headers[0].hash)
        return audit

    def run(self, data_dir: Path, acks: Sequence[bytes]) -> int:
        """Audit the stored ledger; return how many of ``acks`` are lost."""
        started = time.perf_counter()
        self.audits += 1
        storage = Storage(data_dir / DB_FILE)
        try:
            integrity = storage.integrity_check()
            if integrity != "ok" and self.integrity_check == "ok":
                self.integrity_check = integrity
            top = storage.applied_height
            assert top is not None, "the crash bench's ledger lost its genesis block"
            self._check_prefix(storage)
            self._replay(storage, top)
            lost = sum(1 for tx_hash in acks if not self._committed_ok(storage, tx_hash))
            self._check_state(storage, top)
        finally:
            storage.close()
        self.audit_s += time.perf_counter() - started
        return lost

    def _check_prefix(self, storage: Storage) -> None:
        """Blocks already replayed must still be stored byte for byte as they were."""
        stored = [header.hash for header in storage.headers(0, len(self.replayed_hashes))]
        if stored != self.replayed_hashes and self.replay_equal:
            self.replay_equal = False
            self.replay_mismatch = "a block already replayed changed or disappeared from storage"

    def _replay(self, storage: Storage, top: int) -> None:
        for height in range(len(self.replayed_hashes), top + 1):
            block = storage.block(height)
            if block is None:
                self._mismatch(f"block {height} missing below the applied height {top}")
                return
            self._check_receipts(block.txs, block.receipts)
            if not self.replay_equal:
                continue  # keep counting duplicates, but the replay stopped at the first mismatch
            receipts = self.chain.execute(block.txs, block.header.time_ms)
            replayed: BlockHeader = self.chain.headers[-1]
            if replayed.hash != block.header.hash:
                self._mismatch(
                    f"block {height}: replayed header {replayed.to_json()} != stored {block.header.to_json()}"
                )
            elif [r.consensus_bytes() for r in receipts] != [r.consensus_bytes() for r in block.receipts]:
                self._mismatch(f"block {height}: replayed receipts differ from the stored ones")
            self.replayed_hashes.append(block.header.hash)

    def _check_receipts(self, txs: Sequence[bytes], receipts: Sequence[Any]) -> None:
        for raw, receipt in zip(txs, receipts, strict=True):
            self.transactions += 1
            if receipt.tx_hash in self.included:
                self.included_twice += 1
            self.included.add(receipt.tx_hash)
            if not receipt.ok:
                self.failed_in_block += 1
                continue
            if receipt.tx_hash in self.applied:
                self.applied_twice += 1
            self.applied.add(receipt.tx_hash)
            tx = decode_tx(raw)
            expected = self.next_sequence.get(tx.body.sender, 0)
            if tx.body.sequence != expected:
                self.sequence_errors += 1
                if tx.body.sequence < expected:
                    self.applied_twice += 1  # a sequence applied before, under another hash
            self.next_sequence[tx.body.sender] = max(expected, tx.body.sequence + 1)

    def _mismatch(self, detail: str) -> None:
        if self.replay_equal:
            self.replay_equal = False
            self.replay_mismatch = detail

    @staticmethod
    def _committed_ok(storage: Storage, tx_hash: bytes) -> bool:
        location = storage.tx_location(tx_hash)
        if location is None:
            return False
        block = storage.block(location.height)
        if block is None or location.index >= len(block.receipts):
            return False
        receipt = block.receipts[location.index]
        return receipt.tx_hash == tx_hash and receipt.ok

    def _check_state(self, storage: Storage, top: int) -> None:
        header = storage.header(top)
        assert header is not None
        stored_root = SparseMerkleTree.from_items(sorted(storage.load_state().items())).root
        if stored_root != header.state_root:
            self.state_equal = False
        if self.replay_equal:
            if self.chain.root != header.state_root:
                self._mismatch(
                    f"replayed state root {self.chain.root.hex()} != stored {header.state_root.hex()}"
                )
            for sender, expected in self.next_sequence.items():
                if sequence_of(self.chain.state, sender) != expected:
                    self.sequence_errors += 1
            self.invariants = self.chain.invariants()


# --- the run -----------------------------------------------------------------------------------------


def _ms(values: Sequence[float]) -> dict[str, float] | None:
    if not values:
        return None
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered) * 1000, 1),
        "p90": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))] * 1000, 1),
        "max": round(ordered[-1] * 1000, 1),
    }


def _run(cycles: int, seed: int, data_dir: Path, audit_every: int) -> dict[str, Any]:
    started = time.perf_counter()
    rng = random.Random(seed)
    genesis = crash_genesis()
    init_data_dir(data_dir, genesis)
    audit = _Audit.start(genesis)
    acks: list[bytes] = []
    unaudited: list[bytes] = []
    results: list[_Cycle] = []
    errors: list[str] = []
    open_s_estimate = 0.2
    lost_periodic = 0
    for index in range(cycles):
        cycle = _run_cycle(data_dir, rng, open_s_estimate)
        results.append(cycle)
        if cycle.imported_s is not None and cycle.ready_s is not None:
            open_s_estimate = cycle.ready_s - cycle.imported_s
        if cycle.error is not None:
            errors.append(f"cycle {index}: {cycle.error}")
        acks.extend(cycle.acks)
        unaudited.extend(cycle.acks)
        if (index + 1) % audit_every == 0 and index + 1 < cycles:
            lost_periodic += audit.run(data_dir, unaudited)
            unaudited = []
    lost = audit.run(data_dir, acks)
    replay = replay_data_dir(data_dir)
    if not replay.equal:
        audit.replay_equal = False
        audit.replay_mismatch = audit.replay_mismatch or f"autarky node replay: {replay.to_json()}"
    storage = Storage(data_dir / DB_FILE)
    try:
        final_height = storage.applied_height
        final_header = storage.header(final_height or 0)
    finally:
        storage.close()
    assert final_header is not None
    return {
        "benchmark": "crash",
        "seed": seed,
        "cycles": cycles,
        "acknowledged": len(acks),
        "unique_acknowledged": len(set(acks)),
        "lost": lost,
        "lost_at_periodic_audits": lost_periodic,
        "applied_twice": audit.applied_twice,
        "included_twice": audit.included_twice,
        "sequence_errors": audit.sequence_errors,
        "failed_in_block": audit.failed_in_block,
        "integrity_check": audit.integrity_check,
        "state_equal": audit.state_equal,
        "replay_equal": audit.replay_equal,
        "replay_mismatch": audit.replay_mismatch,
        "replay_s": round(replay.seconds, 2),
        "invariants": audit.invariants,
        "final_height": final_height,
        "state_root": final_header.state_root.hex(),
        "transactions": audit.transactions,
        "killed_before_first_ack": sum(1 for cycle in results if cycle.first_ack_s is None),
        "killed_before_ready": sum(1 for cycle in results if cycle.ready_s is None),
        "refused_submissions": sum(len(cycle.nacks) for cycle in results),
        "worker_errors": errors[:10],
        "startup_ms": _ms([c.ready_s for c in results if c.ready_s is not None]),
        "import_ms": _ms([c.imported_s for c in results if c.imported_s is not None]),
        "open_ms": _ms(
            [c.ready_s - c.imported_s for c in results if c.ready_s is not None and c.imported_s is not None]
        ),
        "first_ack_ms": _ms([c.first_ack_s for c in results if c.first_ack_s is not None]),
        "audits": audit.audits,
        "audit_s": round(audit.audit_s, 2),
        "wall_s": round(time.perf_counter() - started, 2),
    }


def run_crash_bench(
    cycles: int = 200, seed: int = 1, data_dir: Path | None = None, audit_every: int = 25
) -> dict[str, Any]:
    """Run ``cycles`` start/kill -9 cycles against one ledger and audit it; figures as a JSON-able dict.

    ``data_dir`` must not hold a ledger yet; without one, a temporary directory is used and removed.
    """
    if cycles < 1 or audit_every < 1:
        raise ValueError("cycles and audit_every must be at least 1")
    if data_dir is not None:
        return _run(cycles, seed, Path(data_dir), audit_every)
    with tempfile.TemporaryDirectory(prefix="autarky-crash-") as tmp:
        return _run(cycles, seed, Path(tmp) / "node", audit_every)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m autarky.bench.crash", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="run the crash loop and print its figures as JSON")
    run.add_argument("--cycles", type=int, default=200)
    run.add_argument("--seed", type=int, default=1)
    run.add_argument("--data-dir", type=Path, default=None)
    run.add_argument("--audit-every", type=int, default=25)
    worker = commands.add_parser("worker", help="(internal) the process the crash loop kills")
    worker.add_argument("data_dir", type=Path)
    worker.add_argument("seed", type=int)
    args = parser.parse_args(argv)
    if args.command == "worker":
        worker_main(args.data_dir, args.seed)
        return 0
    report = run_crash_bench(args.cycles, args.seed, args.data_dir, args.audit_every)
    print(json.dumps(report, indent=2))
    ok = report["lost"] == 0 and report["applied_twice"] == 0 and report["integrity_check"] == "ok"
    return 0 if ok and report["replay_equal"] and report["state_equal"] else 1


if __name__ == "__main__":
    with contextlib.suppress(BrokenPipeError):
        sys.exit(main())
