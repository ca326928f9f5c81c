"""An in-memory chain: the real executor and modules, no node, no storage, no clock.

Used by module tests, property tests and (later) simulations::

    chain = Chain.from_genesis(genesis)
    receipts = chain.execute([tx.raw for tx in txs])   # one block
    assert chain.invariants() == []

Block time is injected: each block advances ``time_ms`` by ``block_ms`` unless given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Protocol

from autarky.ledger.block import BlockHeader, Receipt
from autarky.ledger.executor import (
    AppliedBlock,
    BlockResult,
    Executed,
    SignatureVerifier,
    apply_block,
    execute_block,
    execute_genesis,
    seal_header,
    sequence_of,
)
from autarky.ledger.router import App, BlockEnv
from autarky.ledger.smt import SparseMerkleTree
from autarky.ledger.state import Overlay, SortedState
from autarky.ledger.tx import SignedTx
from autarky.modules import build_app


class RootCommitter(Protocol):
    """Computes state roots elsewhere (``autarky.node.commit_worker.RootWorker``): one call per block,
    in block order, each with that block's write set; the answer's ``result()`` is the new root."""

    def submit(self, changes: Sequence[tuple[str, bytes | None]]) -> Any: ...


PENDING_PREV_HASH = bytes(32)
"""``env.prev_hash`` of a block executed while the previous block's root is still being computed:
execution never reads it (``apply_block``), and its header is sealed with the real one."""


class Chain:
    def __init__(self, genesis: Mapping[str, Any], app: App, result: BlockResult, block_ms: int) -> None:
        self.genesis = genesis
        self.app = app
        self._state = SortedState()
        self.data: dict[str, bytes] = self._state.data
        self._tree: SparseMerkleTree | None = result.tree
        self._headers: list[BlockHeader] = [result.header]
        self.blocks: list[tuple[bytes, ...]] = [()]
        self.block_ms = block_ms
        self._committer: RootCommitter | None = None
        self._unsealed: list[tuple[BlockEnv, AppliedBlock, Any]] = []
        self._tip = (result.header.height, result.header.time_ms)
        self._apply_changes(result.changes)

    @classmethod
    def from_genesis(cls, genesis: Mapping[str, Any], app: App | None = None, block_ms: int = 1000) -> Chain:
        app = app or build_app()
        return cls(genesis, app, execute_genesis(genesis, app), block_ms)

    @property
    def chain_id(self) -> str:
        return str(self.genesis["chain_id"])

    @property
    def height(self) -> int:
        return self._tip[0]

    @property
    def tip_time_ms(self) -> int:
        """The last block's time (known before its header is sealed)."""
        return self._tip[1]

    @property
    def headers(self) -> list[BlockHeader]:
        """Every block's header (with deferred roots: waits for the roots still being computed)."""
        self._seal()
        return self._headers

    @property
    def root(self) -> bytes:
        return self.headers[-1].state_root

    @property
    def tree(self) -> SparseMerkleTree:
        assert self._tree is not None, "with deferred roots the tree lives in the root committer"
        return self._tree

    @property
    def state(self) -> SortedState:
        return self._state

    def overlay(self) -> Overlay:
        """A scratch overlay over the current state, for queries through module keepers."""
        return Overlay(self.state)

    def defer_roots(self, committer: RootCommitter) -> None:
        """From now on compute state roots through ``committer`` (holding this chain's current tree),
        so the next block executes while the last one's root is computed on another core.

        Headers are sealed when read (:attr:`headers`, :attr:`root`); :attr:`tree` is no longer
        here. Same blocks, same headers: ``tests/unit/test_commit_worker.py``.
        """
        assert self._committer is None and not self._unsealed
        self._committer = committer
        self._tree = None

    def next_env(self, time_ms: int | None = None) -> BlockEnv:
        height, last_time_ms = self._tip
        assert time_ms is None or time_ms >= last_time_ms, f"block time goes back: {time_ms} < {last_time_ms}"
        prev_hash = PENDING_PREV_HASH if self._unsealed else self._headers[-1].hash
        return BlockEnv(
            self.chain_id, height + 1, last_time_ms + self.block_ms if time_ms is None else time_ms, prev_hash
        )

    def execute(
        self,
        txs: Sequence[bytes | SignedTx],
        time_ms: int | None = None,
        verifier: SignatureVerifier | None = None,
    ) -> tuple[Receipt, ...]:
        """Execute one block. ``txs`` may be raw bytes or the decoded transactions (a signer already
        has them: decoding is a pure function of the bytes, so both give the same block);
        ``verifier`` is the executor's (default: libsodium on every signature)."""
        return self.execute_block(txs, time_ms, verifier).receipts

    def execute_block(
        self,
        txs: Sequence[bytes | SignedTx],
        time_ms: int | None = None,
        verifier: SignatureVerifier | None = None,
        executed: Sequence[Executed] = (),
    ) -> AppliedBlock:
        """:meth:`execute`, answering the block's receipts, end_block events and write set.

        ``executed``: the first transactions already executed in this order on the current state
        at this block's height and time (see :func:`autarky.ledger.executor.apply_block`)."""
        env = self.next_env(time_ms)
        raws = tuple(tx.raw if isinstance(tx, SignedTx) else tx for tx in txs)
        if self._committer is None:
            result = execute_block(self.state, self.tree, env, txs, self.app, verifier, executed)
            self.commit(result, raws)
            return AppliedBlock(result.receipts, result.end_events, result.changes)
        applied = apply_block(self.state, env, txs, self.app, verifier, executed)
        self._apply_changes(applied.changes)
        self._unsealed.append((env, applied, self._committer.submit(applied.changes)))
        self.blocks.append(raws)
        self._tip = (env.height, env.time_ms)
        return applied

    def commit(self, result: BlockResult, txs: tuple[bytes, ...]) -> None:
        assert self._committer is None, "with deferred roots, blocks go through execute_block"
        assert result.header.prev_hash == self._headers[-1].hash
        self._apply_changes(result.changes)
        self._tree = result.tree
        self._headers.append(result.header)
        self.blocks.append(txs)
        self._tip = (result.header.height, result.header.time_ms)

    def _seal(self) -> None:
        for env, applied, root in self._unsealed:
            env = replace(env, prev_hash=self._headers[-1].hash)
            self._headers.append(seal_header(env, applied.receipts, applied.end_events, root.result()))
        self._unsealed = []

    def _apply_changes(self, changes: Sequence[tuple[str, bytes | None]]) -> None:
        self._state.apply(changes)

    def sequence(self, account: str) -> int:
        return sequence_of(self.state, account)

    def invariants(self) -> list[str]:
        return self.app.invariants(self.state)

    def replay(self) -> Chain:
        """A new chain re-executed from genesis through every block of this one."""
        other = Chain.from_genesis(self.genesis, build_app(), self.block_ms)
        for header, txs in zip(self.headers[1:], self.blocks[1:], strict=True):
            other.execute(txs, header.time_ms)
        return other
