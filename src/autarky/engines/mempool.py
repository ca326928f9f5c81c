"""The mempool: admitted transactions waiting to be ordered, with caps (SPEC C5, R9).

Caps: bytes per transaction, number of transactions, total bytes, and pending transactions per
sender. A transaction admitted here has passed decoding, signature verification and the
sender's sequence check against committed state plus its own pending transactions, so a sender's
pending transactions always carry consecutive sequence numbers.

Order is first come, first served. ``reap`` hands the oldest transactions to the engine; they
stay here (so a resubmission still answers ``exists``) until the node removes them at commit.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from autarky.ledger.tx import SignedTx


class MempoolFull(Exception):
    """A cap is reached; the message says which. Answered as HTTP 503 / code ``mempool.full``."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class MempoolLimits:
    max_tx_bytes: int = 64 * 1024
    max_txs: int = 50_000
    max_bytes: int = 64 * 1024 * 1024
    max_per_sender: int = 1_000


class Mempool:
    def __init__(self, limits: MempoolLimits | None = None) -> None:
        self.limits = limits or MempoolLimits()
        self._pending: OrderedDict[bytes, SignedTx] = OrderedDict()
        self._reaped: dict[bytes, SignedTx] = {}
        self._per_sender: dict[str, int] = {}
        self._bytes = 0

    def __len__(self) -> int:
        return len(self._pending) + len(self._reaped)

    @property
    def waiting(self) -> int:
        """Transactions not yet handed to the engine."""
        return len(self._pending)

    @property
    def total_bytes(self) -> int:
        return self._bytes

    def __contains__(self, tx_hash: bytes) -> bool:
        return tx_hash in self._pending or tx_hash in self._reaped

    def pending_count(self, sender: str) -> int:
        return self._per_sender.get(sender, 0)

    def check_room(self, tx: SignedTx) -> None:
        limits = self.limits
        size = len(tx.raw)
        if size > limits.max_tx_bytes:
            raise MempoolFull(
                "mempool.tx_too_large", f"transaction of {size} bytes exceeds {limits.max_tx_bytes}"
            )
        if len(self) >= limits.max_txs:
            raise MempoolFull("mempool.full", f"mempool holds its maximum of {limits.max_txs} transactions")
        if self._bytes + size > limits.max_bytes:
            raise MempoolFull("mempool.full", f"mempool holds its maximum of {limits.max_bytes} bytes")
        if self.pending_count(tx.body.sender) >= limits.max_per_sender:
            raise MempoolFull(
                "mempool.sender_limit",
                f"sender has {limits.max_per_sender} pending transactions; wait for commits",
            )

    def add(self, tx: SignedTx) -> None:
        self.check_room(tx)
        assert tx.hash not in self
        self._pending[tx.hash] = tx
        self._per_sender[tx.body.sender] = self.pending_count(tx.body.sender) + 1
        self._bytes += len(tx.raw)

    def reap(self, max_txs: int, max_bytes: int) -> list[SignedTx]:
        """Take up to ``max_txs`` / ``max_bytes`` of the oldest waiting transactions for a block."""
        batch: list[SignedTx] = []
        size = 0
        while self._pending and len(batch) < max_txs:
            tx_hash, tx = next(iter(self._pending.items()))
            if batch and size + len(tx.raw) > max_bytes:
                break
            del self._pending[tx_hash]
            self._reaped[tx_hash] = tx
            batch.append(tx)
            size += len(tx.raw)
        return batch

    def remove(self, tx_hashes: list[bytes]) -> None:
        """Forget transactions that are now in a committed block."""
        for tx_hash in tx_hashes:
            tx = self._reaped.pop(tx_hash, None) or self._pending.pop(tx_hash, None)
            if tx is None:
                continue
            self._bytes -= len(tx.raw)
            remaining = self._per_sender[tx.body.sender] - 1
            if remaining:
                self._per_sender[tx.body.sender] = remaining
            else:
                del self._per_sender[tx.body.sender]
