"""Replay: re-execute every stored block from genesis, in memory, and compare with what is stored.

This is the check behind ``autarky node replay`` (and SPEC R2's "replay from genesis equals the live
state root"). It uses the real executor and the real modules, verifies every signature again, and
never writes to the data directory. For each block it rebuilds the block environment from the
stored header (height, time) and the *replayed* previous hash, executes the stored transactions and
compares the resulting header hash with the stored one; at the end it compares the replayed state
root with the stored header's and with the state the database holds.

The first block whose header differs is reported with the header fields that differ, which tells
a person where to look: ``state_root`` (execution diverged), ``result_root`` (a result code or event
differs), ``tx_root`` (stored transactions differ), ``prev_hash`` (an earlier header was altered).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autarky.encoding import canonical_decode
from autarky.ledger.block import BlockHeader
from autarky.ledger.executor import execute_block, execute_genesis
from autarky.ledger.router import BlockEnv
from autarky.ledger.smt import SparseMerkleTree
from autarky.ledger.state import SortedState
from autarky.modules import build_app
from autarky.node.errors import ConfigError
from autarky.node.node import DB_FILE, GENESIS_FILE
from autarky.node.snapshot import snapshot_height
from autarky.node.storage import Storage

_HEADER_FIELDS = (
    "chain_id",
    "height",
    "prev_hash",
    "time_ms",
    "tx_count",
    "tx_root",
    "result_root",
    "state_root",
)


@dataclass(slots=True)
class ReplayReport:
    chain_id: str
    height: int
    blocks_replayed: int = 0
    transactions: int = 0
    state_root: str = ""
    stored_state_root: str = ""
    database_state_root: str = ""
    first_mismatch: dict[str, Any] | None = None
    seconds: float = 0.0
    invariants: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return (
            self.first_mismatch is None
            and self.state_root == self.stored_state_root == self.database_state_root
            and not self.invariants
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "equal": self.equal,
            "chain_id": self.chain_id,
            "height": self.height,
            "blocks_replayed": self.blocks_replayed,
            "transactions": self.transactions,
            "state_root": self.state_root,
            "stored_state_root": self.stored_state_root,
            "database_state_root": self.database_state_root,
            "first_mismatch": self.first_mismatch,
            "invariants": self.invariants,
            "seconds": round(self.seconds, 3),
        }


def _mismatch(height: int, stored: BlockHeader, replayed: BlockHeader) -> dict[str, Any]:
    stored_json, replayed_json = stored.to_json(), replayed.to_json()
    fields = [name for name in _HEADER_FIELDS if stored_json[name] != replayed_json[name]]
    return {
        "height": height,
        "fields": fields,
        "stored": {name: stored_json[name] for name in ("hash", *fields)},
        "replayed": {name: replayed_json[name] for name in ("hash", *fields)},
    }


def replay_data_dir(data_dir: Path, progress: Callable[[int, int], None] | None = None) -> ReplayReport:
    """Replay the ledger in ``data_dir`` (node stopped) and report; stops at the first mismatch."""
    data_dir = Path(data_dir)
    if not (data_dir / DB_FILE).exists():
        raise ConfigError(f"no ledger in {data_dir}: check the node.data_dir setting or pass --data-dir")
    started = time.perf_counter()
    genesis = canonical_decode((data_dir / GENESIS_FILE).read_bytes())
    storage = Storage(data_dir / DB_FILE)
    try:
        start = snapshot_height(storage)
        if start is not None and start > 0:
            raise ConfigError(
                f"{data_dir} was imported from a snapshot at height {start}; blocks before it are not "
                "stored, so it cannot be replayed from genesis (replay the node the snapshot came from)"
            )
        top = storage.applied_height
        if top is None:
            raise ConfigError(f"{data_dir} holds no block")
        report = ReplayReport(chain_id=str(genesis["chain_id"]), height=top)
        app = build_app()
        result = execute_genesis(genesis, app)
        stored_zero = storage.header(0)
        assert stored_zero is not None, "a ledger always stores block 0"
        state = SortedState()
        state.apply(result.changes)
        tree: SparseMerkleTree = result.tree
        previous = result.header
        if previous.hash != stored_zero.hash:
            report.first_mismatch = _mismatch(0, stored_zero, previous)
        else:
            for block in storage.iter_blocks(1):
                stored = block.header
                env = BlockEnv(report.chain_id, stored.height, stored.time_ms, previous.hash)
                result = execute_block(state, tree, env, block.txs, app)
                state.apply(result.changes)
                tree = result.tree
                previous = result.header
                report.blocks_replayed += 1
                report.transactions += len(block.txs)
                if result.header.hash != stored.hash:
                    report.first_mismatch = _mismatch(stored.height, stored, result.header)
                    break
                if progress is not None:
                    progress(stored.height, top)
        report.state_root = previous.state_root.hex()
        final = storage.header(top)
        assert final is not None
        report.stored_state_root = final.state_root.hex()
        report.database_state_root = SparseMerkleTree.from_items(
            sorted(storage.load_state().items())
        ).root.hex()
        if report.first_mismatch is None and previous.height != top:
            report.first_mismatch = {
                "height": previous.height + 1,
                "fields": ["missing"],
                "stored": {},
                "replayed": {},
            }
        report.invariants = app.invariants(state)
    finally:
        storage.close()
    report.seconds = time.perf_counter() - started
    return report


