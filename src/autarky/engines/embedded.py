"""The embedded engine: one process orders transactions by cutting the mempool into blocks.

A block is cut when ``max_block_txs`` transactions wait, or ``block_interval_ms`` after the first
one arrived, whichever comes first. With nothing waiting, an empty block is cut every
``heartbeat_ms`` so heights (and block-window rules such as spend limits) advance with time.
Block time is the wall clock in milliseconds, never earlier than the previous block's; a test or a
simulation may replace the clock (``clock_ms``) with a virtual one it advances itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from typing import Any

from autarky.engines.base import BatchSink, Engine, OrderedBatch
from autarky.engines.mempool import Mempool


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


class VirtualClock:
    """A clock that moves only when told: ``engine.clock_ms = clock`` (tests and simulations).

    ``set(t)`` never moves it backwards; the next block cut after it carries that time.
    """

    def __init__(self, start_ms: int) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def set(self, time_ms: int) -> None:
        assert time_ms >= self.now_ms, f"a virtual clock does not go back ({time_ms} < {self.now_ms})"
        self.now_ms = time_ms

    def advance(self, ms: int) -> None:
        self.set(self.now_ms + ms)


class EmbeddedEngine(Engine):
    name = "embedded"

    def __init__(
        self,
        mempool: Mempool,
        block_interval_ms: int = 10,
        max_block_txs: int = 2000,
        max_block_bytes: int = 4 * 1024 * 1024,
        heartbeat_ms: int = 1000,
    ) -> None:
        self.mempool = mempool
        self.block_interval_ms = block_interval_ms
        self.max_block_txs = max_block_txs
        self.max_block_bytes = max_block_bytes
        self.heartbeat_ms = heartbeat_ms
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._first_waiting_at: float | None = None
        self._next_height = 0
        self._last_time_ms = 0
        self.clock_ms: Callable[[], int] = wall_clock_ms
        """Where block time comes from; blocks never go back in time whatever it answers."""

    async def start(self, sink: BatchSink, next_height: int, last_time_ms: int) -> None:
        self._next_height = next_height
        self._last_time_ms = last_time_ms
        self._task = asyncio.create_task(self._run(sink), name="embedded-engine")

    def notify(self) -> None:
        if self._first_waiting_at is None:
            self._first_waiting_at = time.monotonic()
        self._wake.set()

    async def _run(self, sink: BatchSink) -> None:
        heartbeat_s = self.heartbeat_ms / 1000
        interval_s = self.block_interval_ms / 1000
        while not self._stopping:
            if not self.mempool.waiting:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), heartbeat_s)
            if self.mempool.waiting and self.mempool.waiting < self.max_block_txs:
                # Give the block a short time to fill, counted from the first waiting transaction's
                # arrival (it may have come while the previous block executed); a full block is cut at once.
                deadline = (self._first_waiting_at or time.monotonic()) + interval_s
                while self.mempool.waiting < self.max_block_txs and not self._stopping:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        break
                    self._wake.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wake.wait(), remaining)
            if self._stopping:
                break
            txs = self.mempool.reap(self.max_block_txs, self.max_block_bytes)
            self._first_waiting_at = time.monotonic() if self.mempool.waiting else None
            time_ms = max(self.clock_ms(), self._last_time_ms)
            batch = OrderedBatch(self._next_height, time_ms, txs)
            # Shielded: a block being executed and stored is finished even if the engine is stopped.
            await asyncio.shield(sink(batch))
            self._next_height += 1
            self._last_time_ms = time_ms

    async def stop(self) -> None:
        """Stop after the block in progress (if any) is stored."""
        self._stopping = True
        self._wake.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(asyncio.shield(self._task), 30)
            except TimeoutError:
                self._task.cancel()
            self._task = None

    def status(self) -> dict[str, Any]:
        return {
            "engine": self.name,
            "block_interval_ms": self.block_interval_ms,
            "max_block_txs": self.max_block_txs,
            "heartbeat_ms": self.heartbeat_ms,
        }
