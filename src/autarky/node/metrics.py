"""Prometheus metrics of one node (its own registry, so several nodes can live in one process)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

if TYPE_CHECKING:
    from autarky.ledger.executor import BlockResult


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.height = Gauge("autarky_block_height", "Height of the last committed block", registry=r)
        self.final_height = Gauge(
            "autarky_final_height", "Height of the last final block (quorum certificate)", registry=r
        )
        self.blocks = Counter("autarky_blocks", "Blocks committed", registry=r)
        self.txs_ok = Counter(
            "autarky_transactions_committed", "Transactions committed with code ok", registry=r
        )
        self.txs_failed = Counter(
            "autarky_transactions_failed", "Transactions committed with a failure code", registry=r
        )
        self.admitted = Counter(
            "autarky_transactions_admitted", "Transactions admitted to the mempool", registry=r
        )
        self.rejected = Counter(
            "autarky_transactions_rejected", "Submissions rejected before the mempool", ["code"], registry=r
        )
        self.block_seconds = Histogram(
            "autarky_block_apply_seconds",
            "Time to execute, sign and durably store a block",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=r,
        )
        self.committed_total = 0
        self.failed_total = 0

    def record_block(self, result: BlockResult, seconds: float) -> None:
        failed = sum(1 for receipt in result.receipts if not receipt.ok)
        ok = len(result.receipts) - failed
        self.blocks.inc()
        self.height.set(result.header.height)
        self.txs_ok.inc(ok)
        self.txs_failed.inc(failed)
        self.block_seconds.observe(seconds)
        self.committed_total += ok
        self.failed_total += failed

    def render(self) -> bytes:
        return generate_latest(self.registry)
