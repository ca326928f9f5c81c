"""An in-memory chain: the real executor and modules, no node, no storage, no clock.

Used by module tests, property tests and (later) simulations::

    chain = Chain.from_genesis(genesis)
    receipts = chain.execute([tx.raw for tx in txs])   # one block
    assert chain.invariants() == []

Block time is injected: each block advances ``time_ms`` by ``block_ms`` unless given.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from autarky.ledger.block import BlockHeader, Receipt
from autarky.ledger.executor import (
    BlockResult,
    SignatureVerifier,
    execute_block,
    execute_genesis,
    sequence_of,
)
from autarky.ledger.router import App, BlockEnv
from autarky.ledger.smt import SparseMerkleTree
from autarky.ledger.state import Overlay, SortedState
from autarky.ledger.tx import SignedTx
from autarky.modules import build_app


class Chain:
    def __init__(self, genesis: Mapping[str, Any], app: App, result: BlockResult, block_ms: int) -> None:
        self.genesis = genesis
        self.app = app
        self._state = SortedState()
        self.data: dict[str, bytes] = self._state.data
        self.tree: SparseMerkleTree = result.tree
        self.headers: list[BlockHeader] = [result.header]
        self.blocks: list[tuple[bytes, ...]] = [()]
        self.block_ms = block_ms
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
        return self.headers[-1].height

    @property
    def root(self) -> bytes:
        return self.headers[-1].state_root

    @property
    def state(self) -> SortedState:
        return self._state

    def overlay(self) -> Overlay:
        """A scratch overlay over the current state, for queries through module keepers."""
        return Overlay(self.state)

    def next_env(self, time_ms: int | None = None) -> BlockEnv:
        last = self.headers[-1]
        assert time_ms is None or time_ms >= last.time_ms, f"block time goes back: {time_ms} < {last.time_ms}"
        return BlockEnv(
            self.chain_id,
            last.height + 1,
            last.time_ms + self.block_ms if time_ms is None else time_ms,
            last.hash,
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
        result = execute_block(self.state, self.tree, self.next_env(time_ms), txs, self.app, verifier)
        self.commit(result, tuple(tx.raw if isinstance(tx, SignedTx) else tx for tx in txs))
        return result.receipts

    def commit(self, result: BlockResult, txs: tuple[bytes, ...]) -> None:
        assert result.header.prev_hash == self.headers[-1].hash
        self._apply_changes(result.changes)
        self.tree = result.tree
        self.headers.append(result.header)
        self.blocks.append(txs)

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
