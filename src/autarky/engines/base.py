"""The ordering engine interface (Hyperledger Fabric's orderer is the model).

An engine turns admitted transactions into an ordered sequence of batches, each with a height and
an injected block time. It never looks inside a transaction and never executes one: every node
executes every batch itself with the same executor (see ``node.Node.apply_batch``).

Two engines implement it: ``embedded`` (one process, this package) and ``nats`` (a JetStream
stream replicated on 3 or 5 servers; a later issue).
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from autarky.ledger.block import BlockHeader
from autarky.ledger.tx import SignedTx


@dataclass(frozen=True, slots=True)
class OrderedBatch:
    """One block's worth of ordered transactions, as the engine decided them."""

    height: int
    time_ms: int
    txs: Sequence[SignedTx]
    position: Any = None
    """Engine bookkeeping the node stores with the block, in the same database transaction
    (the ``nats`` engine's :class:`~autarky.engines.ordering.LogPosition`)."""


BatchSink = Callable[[OrderedBatch], Awaitable[None]]
"""Where an engine delivers batches, strictly in height order, one at a time."""


class Engine(abc.ABC):
    name: str = ""
    remote_ordering: bool = False
    """True when admitted transactions must be handed to :meth:`publish` (they are ordered elsewhere)."""

    @abc.abstractmethod
    async def start(self, sink: BatchSink, next_height: int, last_time_ms: int) -> None:
        """Begin delivering batches from ``next_height``; block times never go below ``last_time_ms``."""

    @abc.abstractmethod
    def notify(self) -> None:
        """Transactions were admitted to the mempool; a batch may be due."""

    @abc.abstractmethod
    async def stop(self) -> None:
        """Stop delivering; a batch being delivered completes first."""

    async def publish(self, txs: Sequence[SignedTx]) -> list[BaseException | None]:
        """Hand admitted transactions to the orderer; None per transaction it durably took."""
        return [None for _ in txs]

    def block_applied(self, header: BlockHeader, tx_hashes: Sequence[bytes] = ()) -> None:
        """The node durably stored ``header`` holding ``tx_hashes`` (the ``nats`` engine votes for it)."""
        return None

    def halt(self, reason: str) -> None:
        """The node found a fault: stop ordering and voting."""
        return None

    def status(self) -> dict[str, Any]:
        return {"engine": self.name}
