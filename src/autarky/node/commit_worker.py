"""State roots computed in a worker process, one block behind execution (simulations).

A block's execution never reads the previous block's hash (``ledger.executor.apply_block``), so
an in-memory chain can hand each block's write set to a worker that holds the Merkle tree and go
on executing the next block on this core while the root is hashed on the other
(``autarky.modules.harness.Chain.defer_roots``). Hashing the tree is about a fifth of a
simulated block's time. The worker's tree starts as the chain's; each ``submit`` applies one
write set, in block order (one worker process fed over a pipe, :class:`PipeExecutor`, so no
threads here take the GIL on every block), and answers the new root. The headers are the same
as computing roots in line: ``tests/unit/test_commit_worker.py``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from concurrent.futures import Future

from autarky.ledger.smt import SparseMerkleTree
from autarky.node.admission import exit_with_parent
from autarky.node.pipe_executor import PipeExecutor

_tree: SparseMerkleTree | None = None
"""The worker process's tree (set by :func:`_start`)."""


def _start(items: list[tuple[str, bytes]]) -> None:
    global _tree
    exit_with_parent()
    _tree = SparseMerkleTree.from_items(items)


def _update(changes: Sequence[tuple[str, bytes | None]]) -> bytes:
    global _tree
    assert _tree is not None, "the worker starts with the chain's tree"
    _tree = _tree.update(changes)
    return _tree.root


class RootWorker:
    """A :class:`~autarky.modules.harness.RootCommitter` backed by one worker process."""

    def __init__(self, items: Iterable[tuple[str, bytes]]) -> None:
        self._pool = PipeExecutor(_start, (list(items),))

    def submit(self, changes: Sequence[tuple[str, bytes | None]]) -> Future[bytes]:
        return self._pool.submit(_update, list(changes))

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=False)

    def __enter__(self) -> RootWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
