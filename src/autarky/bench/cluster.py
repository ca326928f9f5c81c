"""``autarky bench cluster``: the ``nats`` engine on a local cluster, through the HTTP API (SPEC P3, R1).

A :class:`~autarky.cluster.local.LocalAutarkyCluster` is created for the run: 3 nats-servers (the
stream replicated 3 times, file storage, ``sync_interval: always``) and N node processes, each with
its own HTTP API, every node a validator. Many accounts are funded at genesis; their transfers are
signed before any clock starts (clients sign, the ledger verifies). Every sender's transactions go
to one node (senders are partitioned across the nodes), in batches through ``POST /api/v1/txs``;
a sender never has two transactions in flight, so its sequence order is the stream's order.

**Throughput mode** (no ``fault``), all in one run:

* ``embedded_transfers_per_s``: the embedded engine's peak, measured first by
  :func:`autarky.bench.ledger.run_ledger_bench` (same transfer and account counts), with nothing
  else running;
* ``transfers_per_s``: the cluster's, from the first submission until the block holding the last
  transfer is committed on every node; ``final_transfers_per_s`` until it is final (certified by
  a quorum of validators) on every node. ``ratio`` = transfers_per_s / embedded_transfers_per_s
  (target >= 0.4);
* ``p50_final_ms`` / ``p99_final_ms``: submit-to-final latency at half the cluster's measured rate,
  offered open-loop for ``latency_s`` (target p99 < 500 ms). The load goes in batches every 20 ms
  per node as in the peak; every 10th transfer (a *probe*) is instead sent alone with
  ``POST /api/v1/tx?final=true``, which the node answers once the block holding it is certified:
  a probe's latency is from sending it to that answer.

How commit is timed: a poller reads every node's ``/api/v1/status`` (``height``,
``final_height``) every ``POLL_S`` seconds during the run; afterwards the blocks are read back and
a transaction's commit (or finality) time is the first status sample at which the node had reached
(or certified) the block holding it: late by up to one poll interval plus one status round trip,
never early. ``transfers_per_s`` and ``final_transfers_per_s`` use it, and so do the
``p50_commit_ms`` / ``p99_commit_ms`` of the latency phase (coarse, for comparison only).
``p50_ack_ms`` / ``p99_ack_ms``: from sending a batched transfer to the node's answer (admitted and
stored by JetStream), the first part of the path.
``peak_cpu_s`` shows where the CPU went during the peak (each node with its worker processes,
each nats-server, this client, and everything else on the machine) and ``busy_cores`` (machine
CPU seconds per wall second); ``latency_cpu_s`` the same while the latency phase offers its
transfers: near the core count, the cluster cannot keep up with that rate and queues build.

**Fault mode** (``fault`` = ``kill-server`` | ``kill-node`` | ``restart-all`` | ``pause-server``):
``transfers`` (at least 10,000 by default) are offered at a steady ``rate`` while, part-way through,

* ``kill-server``: the stream leader's nats-server is SIGKILLed, and started again ``down_s`` later;
* ``kill-node``: the node that cuts blocks (validator rank 0) is SIGKILLed, and started again
  ``down_s`` later (it must catch up from the stream);
* ``restart-all``: every node and every nats-server is SIGKILLed, then all are started again
  (servers first, until healthy, then the nodes);
* ``pause-server``: the stream leader's nats-server is SIGSTOPped for ``down_s``, then SIGCONTed.

A submission that fails with a connection error, a timeout or a 5xx answer (``engine.unavailable``,
``mempool.*``, node not ready) is sent again, the same signed bytes, to the next node; an answer
``accepted``, ``committed`` or ``exists`` makes it **acknowledged**. After the fault, the bench
waits until every node has certified a marker transaction submitted after every acknowledgement
(so everything acknowledged is at or below it in the stream) and the nodes agree on one height and
state root, then audits every node through its API:

* ``lost``: acknowledged transactions missing from a node's chain (looked up again one by one
  with ``GET /api/v1/tx/{hash}`` before being counted);
* ``applied_twice``: transactions whose effect is on a node's ledger more than once: a hash with
  more than one ``ok`` receipt, or a sender whose committed sequence or balance shows more
  applications than its distinct ``ok`` transactions (each sender's balance must equal genesis minus
  amount and fee of each of its committed transfers, plus what it received, counted once);
* ``conserved``: on every node, the supply of ``aut`` (read with a state proof) equals the sum of
  the balances of every account that can hold any (genesis accounts, the bench's accounts, the fee
  collector) and the genesis supply;
* ``roots_equal``: every node's state root at the cluster's final height (the lowest node's
  certified height) is the same, and the nodes converged (one height and state root on all of
  them, :meth:`~autarky.cluster.local.LocalAutarkyCluster.wait_converged`); the first part alone
  is ``roots_equal_at_final_height``.

Worker processes that a SIGKILLed node leaves running are killed by the bench and counted in
``orphaned_workers_killed``. Both modes run the audit. Progress goes to stderr; the result is one
JSON-able dict.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import hashlib
import heapq
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import httpx

from autarky.bench.ledger import CHAIN_ID, _keys, _sign_transfers, run_ledger_bench
from autarky.cluster.local import LocalAutarkyCluster, NodeProcess
from autarky.crypto.keys import SigningKey
from autarky.encoding import canonical_decode
from autarky.ledger.executor import SEQUENCE_PREFIX
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.modules.bank.keeper import BALANCE_PREFIX, FEE_COLLECTOR, SUPPLY_PREFIX
from autarky.web.client import AutarkyClient, ClientError, NotFound, Submission, Unavailable

T = TypeVar("T")

__all__ = ["FAULTS", "MIN_FAULT_TRANSFERS", "ClusterBenchError", "run_cluster_bench"]

FAULTS = ("kill-server", "kill-node", "restart-all", "pause-server")
MIN_FAULT_TRANSFERS = 10_000
"""R1's figure; the default in fault mode (fewer only when asked for explicitly)."""
THROUGHPUT_TRANSFERS = 20_000
ASSET = "aut"
FUNDS = 10**12
POLL_S = 0.05
LATENCY_TICK_S = 0.02
PROBE_EVERY = 10
BATCH = 250
INFLIGHT_PER_NODE = 4
GIVE_UP_S = 180.0
SETTLE_TIMEOUT_S = 180.0
HTTP_TIMEOUT_S = 15.0
TARGETS: dict[str, Any] = {"ratio": 0.4, "p99_final_ms": 500}
FAULT_TARGETS: dict[str, Any] = {"lost": 0, "applied_twice": 0, "conserved": True, "roots_equal": True}


class ClusterBenchError(Exception):
    """The benchmark could not finish a phase (the cluster stalled); the message says where."""


def _say(start: float, message: str) -> None:
    sys.stderr.write(f"[bench cluster {time.perf_counter() - start:7.1f}s] {message}\n")
    sys.stderr.flush()


def _retryable(error: ClientError) -> bool:
    """A failure that says nothing about the transaction itself: send it again (same bytes)."""
    if isinstance(error, Unavailable) or error.status == 0 or error.status >= 500:
        return True
    code = error.code or ""
    return code in ("engine.unavailable", "node.timeout") or (
        code.startswith("mempool.") and code != "mempool.tx_too_large"
    )


# --- submitting ------------------------------------------------------------------------------------------


@dataclass(slots=True)
class _Sub:
    """One transaction to submit and what became of it."""

    tx: SignedTx
    sender: int
    node: int
    first_sent: float | None = None
    acked_at: float | None = None
    acked_by: int | None = None
    status: str = "pending"  # pending | acknowledged | rejected | gave_up | skipped
    code: str | None = None
    attempts: int = 0
    probe: bool = False
    """Submitted alone with ``POST /api/v1/tx?final=true``: its answer times its finality."""
    final_at: float | None = None
    """For a probe: when the node answered that the block holding it is final."""


@dataclass
class _Counters:
    retries: int = 0
    batches: int = 0
    request_failures: Counter[str] = field(default_factory=Counter)
    retry_codes: Counter[str] = field(default_factory=Counter)


class _Submitter:
    """Offers transactions open-loop (``rate`` per second, or all at once), one in flight per sender.

    Ready transactions are grouped per target node into batches of up to ``batch`` for
    ``POST /api/v1/txs``, at most ``inflight`` batches per node at a time; a probe goes alone to
    ``POST /api/v1/tx?final=true`` (answered once its block is certified), beside the batches. With a
    ``rate``, due transactions are sent every ``tick_s``. A
    retryable failure sends the transaction again to the next node after a short pause; the sender's
    later transactions wait.
    """

    def __init__(
        self,
        clients: Sequence[AutarkyClient],
        subs: Sequence[_Sub],
        rate: float | None,
        counters: _Counters,
        batch: int = BATCH,
        inflight: int = INFLIGHT_PER_NODE,
        give_up_s: float = GIVE_UP_S,
        tick_s: float = 0.02,
    ) -> None:
        self.clients = clients
        self.tick_s = tick_s
        self.subs = subs
        self.rate = rate
        self.counters = counters
        self.batch = batch
        self.inflight_cap = inflight
        self.give_up_s = give_up_s
        self.released = 0
        self.resolved = 0
        self.start = 0.0
        self._queues: dict[int, deque[_Sub]] = {}
        self._busy: set[int] = set()
        self._ready: dict[int, None] = {}
        self._dead: set[int] = set()
        self._retry: list[tuple[float, int, int]] = []
        self._retry_serial = 0
        self._inflight = [0] * len(clients)
        self._tasks: set[asyncio.Task[None]] = set()
        self._wake = asyncio.Event()

    @property
    def acknowledged(self) -> int:
        return sum(1 for sub in self.subs[: self.released] if sub.status == "acknowledged")

    def _due(self, index: int) -> float:
        return self.start if self.rate is None else self.start + index / self.rate

    async def run(self) -> None:
        self.start = time.perf_counter()
        total = len(self.subs)
        next_tick = self.start
        while self.resolved < total:
            now = time.perf_counter()
            if now >= next_tick:
                self._release(now)
                next_tick = now + self.tick_s
            while self._retry and self._retry[0][0] <= now:
                _, _, sender = heapq.heappop(self._retry)
                self._busy.discard(sender)
                if self._queues.get(sender):
                    self._ready[sender] = None
            self._dispatch(now)
            if self.resolved >= total:
                break
            wait: float | None = None
            if self.released < total:
                wait = max(next_tick, self._due(self.released)) - now
            if self._retry:
                until_retry = self._retry[0][0] - now
                wait = until_retry if wait is None else min(wait, until_retry)
            self._wake.clear()
            if wait is None or wait > 0:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), None if wait is None else max(wait, 0.001))
        for task in list(self._tasks):
            await task

    def _release(self, now: float) -> None:
        """Queue every transaction whose time has come (all of them without a rate)."""
        total = len(self.subs)
        while self.released < total and self._due(self.released) <= now:
            sub = self.subs[self.released]
            self.released += 1
            if sub.sender in self._dead:
                sub.status = "skipped"
                self.resolved += 1
                continue
            queue = self._queues.setdefault(sub.sender, deque())
            queue.append(sub)
            if len(queue) == 1 and sub.sender not in self._busy:
                self._ready[sub.sender] = None

    def _dispatch(self, now: float) -> None:
        per_node: dict[int, list[_Sub]] = {}
        for sender in list(self._ready):
            head = self._queues[sender][0]
            if head.probe:
                self._launch(head.node, [head], now, count=False)
            else:
                per_node.setdefault(head.node, []).append(head)
        for node, items in per_node.items():
            for offset in range(0, len(items), self.batch):
                if self._inflight[node] >= self.inflight_cap:
                    break
                self._launch(node, items[offset : offset + self.batch], now, count=True)

    def _launch(self, node: int, chunk: list[_Sub], now: float, count: bool) -> None:
        for sub in chunk:
            del self._ready[sub.sender]
            self._busy.add(sub.sender)
            sub.attempts += 1
            if sub.first_sent is None:
                sub.first_sent = now
        if count:
            self._inflight[node] += 1
            self.counters.batches += 1
        task = asyncio.create_task(self._send(node, chunk, count))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _send(self, node: int, chunk: list[_Sub], counted: bool) -> None:
        answers: Sequence[Submission | ClientError]
        try:
            if chunk[0].probe:
                answers = [await self.clients[node].submit(chunk[0].tx, wait=True, final=True)]
            else:
                answers = await self.clients[node].submit_many([sub.tx for sub in chunk])
        except ClientError as exc:
            self.counters.request_failures[f"node {node}: {exc.code or exc.status}"] += 1
            answers = [exc] * len(chunk)
        except (httpx.HTTPError, ValueError, KeyError) as exc:  # a malformed or cut answer
            self.counters.request_failures[f"node {node}: {type(exc).__name__}"] += 1
            answers = [Unavailable(0, "client.bad_answer", repr(exc))] * len(chunk)
        finally:
            if counted:
                self._inflight[node] -= 1
        now = time.perf_counter()
        for sub, answer in zip(chunk, answers, strict=True):
            self._resolve(sub, answer, node, now)
        self._wake.set()

    def _resolve(self, sub: _Sub, answer: Submission | ClientError, node: int, now: float) -> None:
        queue = self._queues[sub.sender]
        if isinstance(answer, Submission) and answer.status in ("accepted", "committed", "exists"):
            sub.status, sub.acked_at, sub.acked_by = "acknowledged", now, node
            if answer.final:
                sub.final_at = now
            self._finish(sub.sender, queue)
            return
        if isinstance(answer, ClientError) and _retryable(answer):
            sub.code = answer.code
            assert sub.first_sent is not None
            if now - sub.first_sent > self.give_up_s:
                sub.status = "gave_up"
                self._drop(sub.sender, queue)
                return
            self.counters.retries += 1
            self.counters.retry_codes[answer.code or str(answer.status)] += 1
            sub.node = (sub.node + 1) % len(self.clients)
            self._retry_serial += 1
            pause = min(1.0, 0.05 * sub.attempts)
            heapq.heappush(self._retry, (now + pause, self._retry_serial, sub.sender))
            return  # the sender stays busy until its retry is due
        sub.status = "rejected"
        sub.code = answer.code if isinstance(answer, ClientError) else f"status {answer.status}"
        self._drop(sub.sender, queue)

    def _finish(self, sender: int, queue: deque[_Sub]) -> None:
        queue.popleft()
        self.resolved += 1
        self._busy.discard(sender)
        if queue:
            self._ready[sender] = None

    def _drop(self, sender: int, queue: deque[_Sub]) -> None:
        """The head failed for good: the sender's later transactions would only fail on sequence."""
        queue.popleft()
        self.resolved += 1
        while queue:
            queue.popleft().status = "skipped"
            self.resolved += 1
        self._busy.discard(sender)
        self._dead.add(sender)  # its transactions not released yet are skipped as they come due


# --- watching heights ------------------------------------------------------------------------------------


class _Watch:
    """Polls every node's status; answers when a node first reached (or certified) a height."""

    def __init__(self, clients: Sequence[AutarkyClient], interval_s: float = POLL_S) -> None:
        self.clients = clients
        self.interval_s = interval_s
        self.times: list[list[float]] = [[] for _ in clients]
        self.heights: list[list[int]] = [[] for _ in clients]
        self.finals: list[list[int]] = [[] for _ in clients]
        self.last: list[dict[str, Any] | None] = [None for _ in clients]
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._poll(index)) for index in range(len(self.clients))]

    async def stop(self) -> None:
        self._stop.set()
        await asyncio.gather(*self._tasks)

    async def _poll(self, index: int) -> None:
        client = self.clients[index]
        while not self._stop.is_set():
            try:
                status = await client.status()
            except (ClientError, httpx.HTTPError, ValueError, KeyError):
                self.last[index] = None
                await asyncio.sleep(0.1)
                continue
            now = time.perf_counter()
            self.last[index] = status
            # Running maxima: a restarted node reports from its stored height, never lower.
            height = max(int(status["height"]), self.heights[index][-1] if self.heights[index] else 0)
            final = max(int(status["final_height"]), self.finals[index][-1] if self.finals[index] else 0)
            self.times[index].append(now)
            self.heights[index].append(height)
            self.finals[index].append(final)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.interval_s)

    def reached(self, node: int, height: int, final: bool) -> float | None:
        values = self.finals[node] if final else self.heights[node]
        position = bisect.bisect_left(values, height)
        return self.times[node][position] if position < len(values) else None

    def all_reached(self, height: int, final: bool) -> float | None:
        times = [self.reached(node, height, final) for node in range(len(self.clients))]
        return None if any(t is None for t in times) else max(t for t in times if t is not None)

    async def wait_all(self, height: int, final: bool, timeout_s: float) -> bool:
        deadline = time.perf_counter() + timeout_s
        while self.all_reached(height, final) is None:
            if time.perf_counter() > deadline:
                return False
            await asyncio.sleep(0.02)
        return True

    def summary(self) -> str:
        parts = []
        for index, status in enumerate(self.last):
            if status is None:
                parts.append(f"n{index}: down")
            else:
                parts.append(f"n{index}: h{status['height']}/f{status['final_height']}")
        return " ".join(parts)


# --- the chain as the API shows it ------------------------------------------------------------------------


async def _read(call: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """A read through the API, tried again after a transport error or a 5xx answer (an idle
    keep-alive connection the server closed, a node still starting); other errors pass through."""
    for attempt in range(attempts):
        try:
            return await call()
        except (Unavailable, httpx.TransportError) as exc:
            if attempt == attempts - 1:
                raise
            if isinstance(exc, Unavailable) and 0 < exc.status < 500:
                raise
            await asyncio.sleep(0.2 * (attempt + 1))
    raise AssertionError("unreachable")


@dataclass
class _Chain:
    """One node's blocks 1..top: headers, and each transaction hash's receipts (height, ok, code)."""

    headers: dict[int, dict[str, Any]] = field(default_factory=dict)
    receipts: dict[str, list[tuple[int, bool, str]]] = field(default_factory=dict)


async def _read_chain(client: AutarkyClient, top: int, concurrency: int = 6, above: int = 0) -> _Chain:
    """Blocks ``above + 1`` .. ``top`` of one node (headers of all, bodies of those with transactions)."""
    chain = _Chain()
    next_from: int | None = top
    while next_from is not None and next_from > above:
        page = await _read(partial(client.blocks, from_height=next_from, limit=100))
        for header in page["blocks"]:
            if header["height"] > above:
                chain.headers[header["height"]] = header
        next_from = page["next_from"]
    busy = [h for h, header in chain.headers.items() if header["tx_count"] > 0]
    semaphore = asyncio.Semaphore(concurrency)

    async def fetch(height: int) -> None:
        async with semaphore:
            block = await _read(partial(client.block, height))
        for receipt in block["receipts"]:
            entry = (height, bool(receipt["ok"]), str(receipt["code"]))
            chain.receipts.setdefault(receipt["tx_hash"], []).append(entry)

    await asyncio.gather(*(fetch(height) for height in busy))
    return chain


async def _gather_bounded(awaitables: Sequence[Awaitable[T]], concurrency: int = 32) -> list[T]:
    """Await all of ``awaitables`` (coroutines not yet started), at most ``concurrency`` at a time."""
    semaphore = asyncio.Semaphore(concurrency)

    async def one(awaitable: Awaitable[T]) -> T:
        async with semaphore:
            return await awaitable

    return list(await asyncio.gather(*(one(awaitable) for awaitable in awaitables)))


# --- the audit --------------------------------------------------------------------------------------------


def _balance_key(did: str) -> str:
    return f"{BALANCE_PREFIX}{did}/{ASSET}"


async def _state_int(client: AutarkyClient, key: str) -> tuple[int, int]:
    """An integer in the node's committed state (0 when absent), read through ``GET /api/v1/proof``,
    and the height of the state it was read from."""
    answer = await _read(partial(client.proof, key))
    return 0 if answer.value is None else int(canonical_decode(answer.value)), answer.header.height


@dataclass(frozen=True, slots=True)
class _Transfer:
    sender: str
    recipient: str
    amount: int
    fee: int


def _transfer_of(tx: SignedTx) -> _Transfer:
    message = tx.body.messages[0]
    return _Transfer(tx.body.sender, str(message["to"]), int(message["amount"]), tx.body.fee)


async def _audit(
    clients: Sequence[AutarkyClient],
    statuses: Sequence[dict[str, Any] | None],
    subs: Sequence[_Sub],
    genesis: dict[str, Any],
    final_height: int,
    start: float,
) -> dict[str, Any]:
    """Check every node's ledger against what was acknowledged (see the module docstring).

    A node that does not answer (``statuses`` None) cannot be audited: it is listed in
    ``unreachable_nodes`` and makes ``roots_equal`` false.
    """
    acknowledged = {sub.tx.hash.hex() for sub in subs if sub.status == "acknowledged"}
    transfers = {sub.tx.hash.hex(): _transfer_of(sub.tx) for sub in subs}
    genesis_balances: Counter[str] = Counter()
    for entry in genesis["app_state"]["bank"]["balances"]:
        if entry["asset"] == ASSET:
            genesis_balances[entry["account"]] += int(entry["amount"])
    genesis_supply = sum(genesis_balances.values())
    accounts = sorted(set(genesis_balances) | {t.sender for t in transfers.values()} | {FEE_COLLECTOR})
    accounts += sorted({t.recipient for t in transfers.values()} - set(accounts))

    per_node: list[dict[str, Any]] = []
    roots: list[str | None] = []
    lost_union: set[str] = set()
    for index, (client, status) in enumerate(zip(clients, statuses, strict=True)):
        if status is None:
            _say(start, f"audit: node {index} does not answer")
            per_node.append({"node": index, "unreachable": True})
            roots.append(None)
            continue
        _say(start, f"audit: reading node {index}'s chain up to height {status['height']}")
        chain = await _read_chain(client, int(status["height"]))
        # The state is read key by key while the node may still add blocks: read it again until no
        # block with transactions came after the chain that was read (so both describe one state).
        for _attempt in range(5):
            _say(start, f"audit: reading {len(accounts)} accounts on node {index}")
            state_top = max(chain.headers, default=0)
            # State proofs read single keys (GET /accounts/{did} lists an account's balances by
            # scanning the whole state, far slower with thousands of accounts).
            balance_reads = await _gather_bounded([_state_int(client, _balance_key(did)) for did in accounts])
            sequence_reads = await _gather_bounded(
                [_state_int(client, SEQUENCE_PREFIX + did) for did in accounts]
            )
            supply, supply_height = await _state_int(client, SUPPLY_PREFIX + ASSET)
            read_top = max([supply_height, *(h for _, h in balance_reads), *(h for _, h in sequence_reads)])
            later = await _read_chain(client, read_top, above=state_top)
            if not any(header["tx_count"] for header in later.headers.values()):
                break
            chain = await _read_chain(client, read_top)
        else:
            raise ClusterBenchError(f"node {index} kept adding transactions while it was audited")
        header = chain.headers.get(final_height)
        roots.append(None if header is None else header["state_root"])
        missing = [h for h in acknowledged if h not in chain.receipts]
        confirmed_missing = []
        pending = 0
        for tx_hash in missing:  # the block scan says missing: ask for it by hash before counting it
            try:
                record = await _read(partial(client.tx, tx_hash))
            except NotFound:
                record = {"status": "unknown"}
            if record.get("status") != "committed":
                confirmed_missing.append(tx_hash)
                pending += record.get("status") == "pending"
        lost_union.update(confirmed_missing)
        mine = {h: entries for h, entries in chain.receipts.items() if h in transfers}
        included_twice = sum(1 for entries in mine.values() if len(entries) > 1)
        ok_twice = sum(1 for entries in mine.values() if sum(1 for e in entries if e[1]) > 1)
        ok_once = {h for h, entries in mine.items() if any(e[1] for e in entries)}
        failed = {h: entries[0][2] for h, entries in mine.items() if not any(e[1] for e in entries)}
        # A core.* failure (decode, chain, expiry, signature, signer, sequence, message type) changes
        # nothing; any other failure keeps the fee and the sequence, which is not modelled here.
        unchecked = {transfers[h].sender for h, code in failed.items() if not code.startswith("core.")}
        if unchecked:
            unchecked.add(FEE_COLLECTOR)

        expected = Counter(genesis_balances)
        ok_count: Counter[str] = Counter()
        for tx_hash in ok_once:
            transfer = transfers[tx_hash]
            expected[transfer.sender] -= transfer.amount + transfer.fee
            expected[transfer.recipient] += transfer.amount
            expected[FEE_COLLECTOR] += transfer.fee
            ok_count[transfer.sender] += 1

        balances = {did: value for did, (value, _) in zip(accounts, balance_reads, strict=True)}
        sequences = {did: value for did, (value, _) in zip(accounts, sequence_reads, strict=True)}
        balance_mismatches = []
        extra = 0
        senders = {t.sender for t in transfers.values()}
        for did in accounts:
            if did in unchecked:
                continue
            if balances[did] != expected[did]:
                balance_mismatches.append(
                    {"account": did, "balance": balances[did], "expected": expected[did]}
                )
            if did in senders:
                extra_sequence = max(0, sequences[did] - ok_count[did])
                shortfall = expected[did] - balances[did]
                extra_debits = -(-shortfall // 2) if shortfall > 0 else 0  # each transfer: amount 1 + fee 1
                extra += max(extra_sequence, extra_debits)
        total = sum(balances.values())
        per_node.append(
            {
                "node": index,
                "height": int(status["height"]),
                "final_height": int(status["final_height"]),
                "fault": status.get("fault"),
                "lost": len(confirmed_missing),
                "lost_pending_in_mempool": pending,
                "audited_state_height": read_top,
                "lost_sample": sorted(confirmed_missing)[:5],
                "included_twice": included_twice,
                "applied_twice": ok_twice + extra,
                "failed": len(failed),
                "failed_codes": dict(Counter(failed.values())),
                "balance_mismatches": len(balance_mismatches),
                "balance_mismatch_sample": balance_mismatches[:3],
                "unchecked_accounts": len(unchecked),
                "supply": supply,
                "balances_total": total,
                "conserved": supply == total == genesis_supply,
                "state_root_at_final_height": roots[-1],
            }
        )
    audited = [node for node in per_node if not node.get("unreachable")]
    return {
        "acknowledged": len(acknowledged),
        "lost": len(lost_union),
        "applied_twice": max((node["applied_twice"] for node in audited), default=0),
        "conserved": bool(audited) and all(node["conserved"] for node in audited),
        "roots_equal": None not in roots and len(set(roots)) == 1,
        "balances_match": all(node["balance_mismatches"] == 0 for node in audited),
        "failed": max((node["failed"] for node in audited), default=0),
        "unreachable_nodes": [node["node"] for node in per_node if node.get("unreachable")],
        "genesis_supply": genesis_supply,
        "audited_height": final_height,
        "state_root": roots[0],
        "per_node": per_node,
    }


# --- the run ----------------------------------------------------------------------------------------------


async def _status_or_none(client: AutarkyClient) -> dict[str, Any] | None:
    try:
        return await client.status()
    except ClientError:
        return None


@dataclass
class _Setup:
    keys: list[SigningKey]
    marker: SigningKey
    sequences: list[int]
    marker_sequence: int = 0
    subs: list[_Sub] = field(default_factory=list)
    """Every transaction submitted so far (markers included), for the audit."""


def _marker_key(seed: int) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(f"bench-cluster/{seed}/marker".encode()).digest())


def _subs(setup: _Setup, txs: Sequence[SignedTx], nodes: int) -> list[_Sub]:
    index_of = {key.did: i for i, key in enumerate(setup.keys)}
    subs = []
    for tx in txs:
        sender = index_of[tx.body.sender]
        subs.append(_Sub(tx, sender, sender % nodes))
    setup.subs.extend(subs)
    return subs


async def _settle(
    clients: Sequence[AutarkyClient], watch: _Watch, setup: _Setup, start: float, timeout_s: float
) -> int | None:
    """Submit a marker transfer after every acknowledgement; wait until every node certified it.

    Returns the marker's height, or None if it was not certified everywhere in time.
    """
    body = TxBody(
        CHAIN_ID,
        setup.marker.did,
        setup.marker_sequence,
        1,
        0,
        ({"type": "bank/send", "to": setup.keys[0].did, "asset": ASSET, "amount": 1},),
    )
    setup.marker_sequence += 1
    marker = sign_tx(body, setup.marker)
    sub = _Sub(marker, -1, 0)
    setup.subs.append(sub)
    deadline = time.perf_counter() + timeout_s
    height: int | None = None
    attempt = 0
    while height is None:
        client = clients[attempt % len(clients)]
        attempt += 1
        try:
            answer = await client.submit(marker.raw, wait=True)
            sub.status, sub.acked_by = "acknowledged", (attempt - 1) % len(clients)
            height = answer.height
        except ClientError as exc:
            if not _retryable(exc):
                raise
        if height is None:
            if time.perf_counter() > deadline:
                _say(start, "the marker transaction was not committed in time")
                return None
            await asyncio.sleep(0.2)
    _say(start, f"marker committed at height {height}; waiting until every node certified it")
    if not await watch.wait_all(height, final=True, timeout_s=max(1.0, deadline - time.perf_counter())):
        _say(start, f"not every node certified height {height} in time: {watch.summary()}")
        return None
    return height


def _percentile(values: Sequence[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * share))]


def _max_height(chain: _Chain, subs: Sequence[_Sub]) -> int | None:
    heights = [chain.receipts[sub.tx.hash.hex()][0][0] for sub in subs if sub.tx.hash.hex() in chain.receipts]
    return max(heights) if heights else None


async def _progress(submitter: _Submitter, watch: _Watch, start: float, every_s: float = 2.0) -> None:
    while True:
        await asyncio.sleep(every_s)
        total = len(submitter.subs)
        _say(
            start,
            f"released {submitter.released}/{total}, resolved {submitter.resolved}, "
            f"retries {submitter.counters.retries}; {watch.summary()}",
        )


async def _stream_leader(cluster: LocalAutarkyCluster) -> str | None:
    async with httpx.AsyncClient(timeout=3) as http:
        for server in cluster.nats.servers:
            try:
                jsz = (await http.get(f"{server.monitor_url}/jsz", params={"streams": "true"})).json()
            except (httpx.HTTPError, ValueError):
                continue
            for account in jsz.get("account_details", []):
                for stream in account.get("stream_detail", []):
                    if stream.get("name") == cluster.stream:
                        leader = (stream.get("cluster") or {}).get("leader")
                        if leader:
                            return str(leader)
    return None


async def _inject(
    cluster: LocalAutarkyCluster,
    watch: _Watch,
    fault: str,
    at_s: float,
    down_s: float,
    start: float,
    events: list[dict[str, Any]],
    orphans: list[int],
) -> None:
    """Inject ``fault`` after ``at_s`` and undo it ``down_s`` later; ``orphans[0]`` counts the worker
    processes that SIGKILLed nodes left running (killed here, and reported)."""

    def event(what: str) -> None:
        events.append({"t_s": round(time.perf_counter() - start, 2), "event": what})
        _say(start, what)

    await asyncio.sleep(at_s)
    if fault in ("kill-server", "pause-server"):
        leader = await _stream_leader(cluster)
        server = cluster.nats.server(leader) if leader else cluster.nats.servers[0]
        role = "the stream leader" if leader else "server 0 (no stream leader found)"
        if fault == "kill-server":
            server.kill()
            event(f"SIGKILL nats-server {server.name} ({role})")
            await asyncio.sleep(down_s)
            server.start()
            event(f"started nats-server {server.name} again")
            await server.wait_healthy(120)
            event(f"nats-server {server.name} healthy")
        else:
            server.pause()
            event(f"SIGSTOP nats-server {server.name} ({role})")
            await asyncio.sleep(down_s)
            server.resume()
            event(f"SIGCONT nats-server {server.name}")
    elif fault == "kill-node":
        ranks = [
            (status or {}).get("engine", {}).get("validator_rank") if status else None
            for status in watch.last
        ]
        victim = ranks.index(0) if 0 in ranks else 0
        node = cluster.nodes[victim]
        workers = _kill_node(node)
        event(f"SIGKILL node {victim} (validator rank {ranks[victim]}, the one cutting blocks)")
        orphans[0] += await _reap_orphans(workers, f"node {victim}", event)
        await asyncio.sleep(max(0.0, down_s - 1.0))
        node.start()
        event(f"started node {victim} again")
        await node.wait_ready(180)
        event(f"node {victim} ready")
    elif fault == "restart-all":
        node_workers = [_kill_node(node) for node in cluster.nodes]
        for server in cluster.nats.servers:
            server.kill()
        event(f"SIGKILL all {len(cluster.nodes)} nodes and all {len(cluster.nats.servers)} nats-servers")
        reaped = await asyncio.gather(
            *(_reap_orphans(pids, f"node {index}", event) for index, pids in enumerate(node_workers))
        )
        orphans[0] += sum(reaped)
        await asyncio.sleep(max(0.0, down_s - 1.0))
        for server in cluster.nats.servers:
            server.start()
        event("started every nats-server again")
        await cluster.nats.wait_healthy(120)
        event("every nats-server healthy")
        for node in cluster.nodes:
            node.start()
        event("started every node again")
        await asyncio.gather(*(node.wait_ready(180) for node in cluster.nodes))
        event("every node ready")
    else:
        raise ValueError(f"unknown fault {fault!r}")


def _process_table() -> dict[int, tuple[int, float]]:
    """Every process's parent pid and CPU seconds so far, from ``/proc`` (OSError where there is none)."""
    ticks = os.sysconf("SC_CLK_TCK")
    processes: dict[int, tuple[int, float]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            text = Path(entry.path, "stat").read_text()
        except OSError:
            continue
        fields = text[text.rindex(")") + 2 :].split()
        processes[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / ticks)
    return processes


def _descendants(pid: int | None) -> list[int]:
    """The pids of ``pid``'s children, their children, ... (empty where /proc is not readable)."""
    if pid is None:
        return []
    try:
        processes = _process_table()
    except (OSError, ValueError, IndexError):
        return []
    found: list[int] = []
    frontier = [pid]
    while frontier:
        parent = frontier.pop()
        for child, (ppid, _) in processes.items():
            if ppid == parent:
                found.append(child)
                frontier.append(child)
    return found


def _kill_node(node: NodeProcess) -> list[int]:
    """SIGKILL a node; return the pids of the processes it had started (its admission workers)."""
    workers = _descendants(node.pid)
    node.kill()
    return workers


async def _reap_orphans(pids: Sequence[int], label: str, event: Callable[[str], None]) -> int:
    """Kill the worker processes a SIGKILLed node left behind, if they outlived it; say how many."""
    await asyncio.sleep(1.0)
    alive = []
    for pid in pids:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"multiprocessing" in command:  # still the same process, not a reused pid
            alive.append(pid)
    for pid in alive:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)
    if alive:
        event(f"{len(alive)} worker processes of {label} outlived it (orphaned); killed them")
    return len(alive)


def _cpu_snapshot(cluster: LocalAutarkyCluster) -> dict[str, Any] | None:
    """CPU seconds used so far by each node (with its worker processes), each nats-server, this
    process, and the whole machine (from ``/proc``; None where that is not available)."""
    try:
        ticks = os.sysconf("SC_CLK_TCK")
        processes = _process_table()
        machine = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError, IndexError):
        return None
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in processes.items():
        children.setdefault(ppid, []).append(pid)

    def tree(pid: int | None) -> float:
        if pid is None or pid not in processes:
            return 0.0
        return processes[pid][1] + sum(tree(child) for child in children.get(pid, []))

    return {
        "nodes": [tree(node.pid) for node in cluster.nodes],
        "nats_servers": [
            tree(server.process.pid if server.process is not None else None)
            for server in cluster.nats.servers
        ],
        "bench_client": processes.get(os.getpid(), (0, 0.0))[1],
        "machine_busy": (sum(machine) - machine[3] - machine[4]) / ticks,
    }


def _cpu_delta(
    before: dict[str, Any] | None, after: dict[str, Any] | None, wall_s: float
) -> dict[str, Any] | None:
    if before is None or after is None:
        return None
    nodes = [round(b - a, 2) for a, b in zip(before["nodes"], after["nodes"], strict=True)]
    servers = [round(b - a, 2) for a, b in zip(before["nats_servers"], after["nats_servers"], strict=True)]
    bench = round(after["bench_client"] - before["bench_client"], 2)
    machine = round(after["machine_busy"] - before["machine_busy"], 2)
    return {
        "wall_s": round(wall_s, 2),
        "nodes": nodes,
        "nats_servers": servers,
        "bench_client": bench,
        "machine_busy": machine,
        "other_processes": round(machine - sum(nodes) - sum(servers) - bench, 2),
        "cores": os.cpu_count(),
        "busy_cores": round(machine / wall_s, 2) if wall_s > 0 else None,
    }


def _clients(cluster: LocalAutarkyCluster) -> list[AutarkyClient]:
    return [
        AutarkyClient(
            url,
            transport=httpx.AsyncHTTPTransport(
                limits=httpx.Limits(max_connections=512, max_keepalive_connections=64)
            ),
            timeout=HTTP_TIMEOUT_S,
        )
        for url in cluster.api_urls
    ]


async def _cluster_run(
    base_dir: Path,
    nodes: int,
    servers: int,
    transfers: int,
    accounts: int,
    seed: int,
    fault: str | None,
    rate: float,
    latency_s: float,
    latency_rate: float | None,
    probe_every: int,
    fault_at: float,
    down_s: float,
    start: float,
) -> dict[str, Any]:
    keys = _keys(accounts, seed)
    setup = _Setup(keys, _marker_key(seed), [0] * accounts)
    allocations = [(key.did, ASSET, FUNDS) for key in keys] + [(setup.marker.did, ASSET, FUNDS)]
    _say(start, f"creating a cluster of {servers} nats-servers and {nodes} nodes in {base_dir}")
    cluster = LocalAutarkyCluster.create(
        base_dir, nodes, servers, chain_id=CHAIN_ID, genesis_extra_allocations=allocations
    )
    genesis = canonical_decode((cluster.nodes[0].data_dir / "genesis.cbor").read_bytes())
    _say(start, f"signing {transfers} transfers from {accounts} accounts")
    main_txs = _sign_transfers(keys, transfers, setup.sequences, ASSET)
    report: dict[str, Any] = {}
    async with cluster:
        _say(start, "cluster ready")
        clients = _clients(cluster)
        watch = _Watch(clients)
        watch.start()
        counters = _Counters()
        try:
            await watch.wait_all(0, final=False, timeout_s=10)
            if fault is None:
                report.update(
                    await _throughput(
                        cluster,
                        clients,
                        watch,
                        setup,
                        main_txs,
                        latency_s,
                        latency_rate,
                        probe_every,
                        counters,
                        start,
                    )
                )
            else:
                report.update(
                    await _fault_phase(
                        cluster,
                        clients,
                        watch,
                        setup,
                        main_txs,
                        fault,
                        rate,
                        fault_at,
                        down_s,
                        counters,
                        start,
                    )
                )
            settled = report.pop("_settled_height")
            converged: dict[str, Any] | None = None
            try:
                converged = await cluster.wait_converged(60)
            except Exception as exc:  # report it; the audit shows the difference
                report["converge_error"] = str(exc)
            statuses = await asyncio.gather(*(_status_or_none(client) for client in clients))
            answering = [s for s in statuses if s is not None]
            final_height = min((int(s["final_height"]) for s in answering), default=0)
            _say(start, f"auditing every node at final height {final_height}")
            audit = await _audit(clients, statuses, setup.subs, genesis, final_height, start)
            report["settled_height"] = settled
            report["converged"] = converged
            report["heights"] = [None if s is None else int(s["height"]) for s in statuses]
            report["final_heights"] = [None if s is None else int(s["final_height"]) for s in statuses]
            report.update(audit)
            # Equal roots at the lowest certified height are not enough when the nodes then went
            # separate ways (one halted, say): roots_equal also needs them to have converged.
            report["roots_equal_at_final_height"] = audit["roots_equal"]
            report["roots_equal"] = audit["roots_equal"] and converged is not None
            report["retries"] = counters.retries
            report["batches"] = counters.batches
            report["request_failures"] = dict(counters.request_failures.most_common(10))
            report["retry_codes"] = dict(counters.retry_codes.most_common(10))
            report["unacknowledged"] = sum(1 for s in setup.subs if s.status in ("gave_up", "pending"))
            report["rejected"] = sum(1 for s in setup.subs if s.status == "rejected")
            report["rejected_codes"] = dict(Counter(s.code for s in setup.subs if s.status == "rejected"))
            report["skipped"] = sum(1 for s in setup.subs if s.status == "skipped")
            report["node_logs"] = [str(node.log_path) for node in cluster.nodes]
            report["server_logs"] = [str(server.log_path) for server in cluster.nats.servers]
        finally:
            await watch.stop()
            for client in clients:
                await client.aclose()
            _say(start, "stopping the cluster")
    return report


async def _throughput(
    cluster: LocalAutarkyCluster,
    clients: Sequence[AutarkyClient],
    watch: _Watch,
    setup: _Setup,
    txs: Sequence[SignedTx],
    latency_s: float,
    latency_rate: float | None,
    probe_every: int,
    counters: _Counters,
    start: float,
) -> dict[str, Any]:
    nodes = len(clients)
    # Peak: everything offered at once, one transaction per sender in flight.
    peak_subs = _subs(setup, txs, nodes)
    submitter = _Submitter(clients, peak_subs, None, counters)
    _say(start, f"peak: submitting {len(peak_subs)} transfers to {nodes} nodes")
    progress = asyncio.create_task(_progress(submitter, watch, start))
    cpu_before, cpu_wall = _cpu_snapshot(cluster), time.perf_counter()
    try:
        await submitter.run()
        peak_start = submitter.start
        submitted_s = max((s.acked_at or 0.0) for s in peak_subs) - peak_start
        _say(start, f"peak: all submissions answered in {submitted_s:.2f}s; waiting for the last block")
        peak_settled = await _settle(clients, watch, setup, start, SETTLE_TIMEOUT_S)
        if peak_settled is None:
            raise ClusterBenchError(f"the peak's transfers were not final on every node: {watch.summary()}")
        peak_cpu = _cpu_delta(cpu_before, _cpu_snapshot(cluster), time.perf_counter() - cpu_wall)
        chain = await _read_chain(clients[0], peak_settled)
        top = _max_height(chain, peak_subs)
        assert top is not None, "no transfer of the peak phase is on the chain"
        committed_at = watch.all_reached(top, final=False)
        final_at = watch.all_reached(top, final=True)
        assert committed_at is not None and final_at is not None
        peak_rate = len(peak_subs) / (committed_at - peak_start)
        final_rate = len(peak_subs) / (final_at - peak_start)
        _say(start, f"peak: {peak_rate:.0f} transfers/s committed on every node, {final_rate:.0f}/s final")
    finally:
        progress.cancel()
    rate = peak_rate / 2 if latency_rate is None else latency_rate
    latency = await _latency(
        clients, watch, setup, rate, latency_s, counters, start, probe_every, lambda: _cpu_snapshot(cluster)
    )
    return {
        "transfers_per_s": round(peak_rate, 1),
        "final_transfers_per_s": round(final_rate, 1),
        "submitted_per_s": round(len(peak_subs) / submitted_s, 1),
        "peak_s": round(committed_at - peak_start, 3),
        "peak_final_s": round(final_at - peak_start, 3),
        "peak_last_height": top,
        "peak_cpu_s": peak_cpu,
        **latency,
    }


async def _latency(
    clients: Sequence[AutarkyClient],
    watch: _Watch,
    setup: _Setup,
    rate: float,
    duration_s: float,
    counters: _Counters,
    start: float,
    probe_every: int,
    cpu: Callable[[], dict[str, Any] | None],
) -> dict[str, Any]:
    """Offer transfers open-loop at ``rate``; submit-to-final (and submit-to-commit) latencies.

    Every ``probe_every``-th transfer is a probe, sent alone with ``POST /api/v1/tx?final=true``:
    its latency is from sending it to the node's answer that its block is final. The others go in
    batches (``POST /api/v1/txs``, every ``LATENCY_TICK_S`` per node), as in the peak. With
    ``probe_every`` 0 there are no probes and every transfer's final time is read from the status
    samples. Commit latencies always come from the status samples (``POLL_S`` resolution).
    """
    count = max(200, int(rate * duration_s))
    txs = _sign_transfers(setup.keys, count, setup.sequences, ASSET)
    subs = _subs(setup, txs, len(clients))
    for index, sub in enumerate(subs):
        sub.probe = probe_every > 0 and index % probe_every == 0
    submitter = _Submitter(
        clients, subs, rate, counters, inflight=INFLIGHT_PER_NODE * 4, tick_s=LATENCY_TICK_S
    )
    progress = asyncio.create_task(_progress(submitter, watch, start))
    _say(start, f"latency: offering {len(subs)} transfers at {rate:.0f}/s")
    try:
        cpu_before, cpu_wall = cpu(), time.perf_counter()
        await submitter.run()
        offer_cpu = _cpu_delta(cpu_before, cpu(), time.perf_counter() - cpu_wall)
        settled = await _settle(clients, watch, setup, start, SETTLE_TIMEOUT_S)
        if settled is None:
            raise ClusterBenchError(
                f"the latency phase's transfers were not final on every node: {watch.summary()}"
            )
    finally:
        progress.cancel()
    chain = await _read_chain(clients[0], settled)
    final_ms: list[float] = []
    commit_ms: list[float] = []
    # Submit to the node's answer (stored by JetStream), for batched transfers: where the time goes.
    ack_ms = [
        (sub.acked_at - sub.first_sent) * 1000
        for sub in subs
        if not sub.probe and sub.acked_at is not None and sub.first_sent is not None
    ]
    not_final = 0
    heights = {chain.receipts[h][0][0] for h in (sub.tx.hash.hex() for sub in subs) if h in chain.receipts}
    for sub in subs:
        entries = chain.receipts.get(sub.tx.hash.hex())
        if sub.first_sent is None or sub.acked_by is None or entries is None:
            not_final += 1
            continue
        height = entries[0][0]
        committed_at = watch.reached(sub.acked_by, height, final=False)
        if committed_at is not None:
            commit_ms.append((committed_at - sub.first_sent) * 1000)
        if probe_every > 0 and not sub.probe:
            continue
        final_at = sub.final_at if sub.probe else watch.reached(sub.acked_by, height, final=True)
        if final_at is None:
            not_final += 1
        else:
            final_ms.append((final_at - sub.first_sent) * 1000)
    method = (
        f"every {probe_every}th transfer sent alone with ?final=true, the rest in batches"
        if probe_every > 0
        else f"batches; final times from status polled every {POLL_S * 1000:g} ms"
    )
    return {
        "_settled_height": settled,
        "latency_rate_per_s": round(rate, 1),
        "latency_transfers": len(subs),
        "latency_method": method,
        "latency_samples": len(final_ms),
        "latency_blocks": len(heights),
        "latency_not_final": not_final,
        "p50_final_ms": round(statistics.median(final_ms), 1) if final_ms else None,
        "p99_final_ms": round(_percentile(final_ms, 0.99), 1) if final_ms else None,
        "max_final_ms": round(max(final_ms), 1) if final_ms else None,
        "p50_commit_ms": round(statistics.median(commit_ms), 1) if commit_ms else None,
        "p99_commit_ms": round(_percentile(commit_ms, 0.99), 1) if commit_ms else None,
        "commit_ms_resolution": POLL_S * 1000,
        "p50_ack_ms": round(statistics.median(ack_ms), 1) if ack_ms else None,
        "p99_ack_ms": round(_percentile(ack_ms, 0.99), 1) if ack_ms else None,
        "latency_cpu_s": offer_cpu,
    }


async def _fault_phase(
    cluster: LocalAutarkyCluster,
    clients: Sequence[AutarkyClient],
    watch: _Watch,
    setup: _Setup,
    txs: Sequence[SignedTx],
    fault: str,
    rate: float,
    fault_at: float,
    down_s: float,
    counters: _Counters,
    start: float,
) -> dict[str, Any]:
    subs = _subs(setup, txs, len(clients))
    submitter = _Submitter(clients, subs, rate, counters)
    offered_s = len(subs) / rate
    events: list[dict[str, Any]] = []
    _say(
        start,
        f"offering {len(subs)} transfers at {rate:.0f}/s (~{offered_s:.0f}s); "
        f"{fault} at {fault_at * offered_s:.1f}s",
    )
    progress = asyncio.create_task(_progress(submitter, watch, start))
    orphans = [0]
    injector = asyncio.create_task(
        _inject(cluster, watch, fault, fault_at * offered_s, down_s, start, events, orphans)
    )
    phase_start = time.perf_counter()
    try:
        await submitter.run()
        submitted_s = time.perf_counter() - phase_start
        _say(start, f"every submission answered after {submitted_s:.1f}s; waiting for the fault's recovery")
        await injector
        recovered_s = time.perf_counter() - phase_start
        settled = await _settle(clients, watch, setup, start, SETTLE_TIMEOUT_S)
    finally:
        progress.cancel()
        if not injector.done():
            injector.cancel()
    settled_s = time.perf_counter() - phase_start
    return {
        "_settled_height": settled,
        "rate_per_s": rate,
        "submit_s": round(submitted_s, 2),
        "recovered_s": round(recovered_s, 2),
        "settled_s": round(settled_s, 2),
        "fault_events": events,
        "orphaned_workers_killed": orphans[0],
    }


def _code_version() -> dict[str, Any] | None:
    """The git commit of the source tree this runs from, and its changed files under ``src/`` (the
    node processes import the same tree when they start): which engine a figure belongs to."""
    root = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        changed = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "src"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if commit.returncode != 0:
        return None
    return {"commit": commit.stdout.strip(), "changed": [line[3:] for line in changed.stdout.splitlines()]}


def run_cluster_bench(
    nodes: int = 3,
    transfers: int | None = None,
    fault: str | None = None,
    seed: int = 1,
    data_dir: Path | None = None,
    *,
    servers: int = 3,
    accounts: int = 2_000,
    rate: float = 500.0,
    latency_s: float = 5.0,
    latency_rate: float | None = None,
    probe_every: int = PROBE_EVERY,
    fault_at: float = 0.3,
    down_s: float = 5.0,
) -> dict[str, Any]:
    """Run the cluster benchmark (throughput, or one fault) and return its figures as a JSON-able dict.

    ``transfers`` defaults to 20,000 (throughput) or 10,000 (fault mode). ``data_dir`` keeps the
    cluster (and the embedded run's ledger) there; it must not hold one yet. Without it a temporary
    directory is used and removed.
    """
    if fault is not None and fault not in FAULTS:
        raise ValueError(f"unknown fault {fault!r}: one of {', '.join(FAULTS)}")
    if nodes < 1 or accounts < 2:
        raise ValueError("at least one node and two accounts")
    if transfers is None:
        transfers = THROUGHPUT_TRANSFERS if fault is None else MIN_FAULT_TRANSFERS
    if transfers < 1:
        raise ValueError("transfers must be at least 1")
    accounts = min(accounts, max(2, transfers))
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            base = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="autarky-bench-cluster-")))
        else:
            base = Path(data_dir)
            base.mkdir(parents=True, exist_ok=True)
        report: dict[str, Any] = {
            "benchmark": "cluster",
            "engine": "nats",
            "nodes": nodes,
            "servers": servers,
            "replicas": min(servers, 3),
            "fault": fault,
            "transfers": transfers,
            "accounts": accounts,
            "seed": seed,
            "code": _code_version(),
        }
        if fault is None:
            _say(started, f"embedded engine: {transfers} transfers from {accounts} accounts (same run)")
            embedded = run_ledger_bench(transfers, accounts, seed, base / "embedded", latency_s=0.5)
            report["embedded_transfers_per_s"] = embedded["transfers_per_s"]
            report["embedded"] = {
                key: embedded[key]
                for key in ("transfers_per_s", "verify_per_s_single_core", "ratio", "p99_commit_ms", "failed")
            }
            _say(started, f"embedded engine: {embedded['transfers_per_s']:.0f} transfers/s")
        report.update(
            asyncio.run(
                _cluster_run(
                    base / "cluster",
                    nodes,
                    servers,
                    transfers,
                    accounts,
                    seed,
                    fault,
                    rate,
                    latency_s,
                    latency_rate,
                    probe_every,
                    fault_at,
                    down_s,
                    started,
                )
            )
        )
        if fault is None:
            report["ratio"] = round(report["transfers_per_s"] / report["embedded_transfers_per_s"], 3)
            report["targets"] = dict(TARGETS)
            report["met"] = {
                "ratio": report["ratio"] >= TARGETS["ratio"],
                "p99_final_ms": report["p99_final_ms"] is not None
                and report["p99_final_ms"] < TARGETS["p99_final_ms"],
            }
        else:
            report["targets"] = dict(FAULT_TARGETS)
            report["r1_size"] = transfers >= MIN_FAULT_TRANSFERS
        report["ok"] = (
            report["lost"] == 0
            and report["applied_twice"] == 0
            and report["conserved"]
            and report["roots_equal"]
            and report["unacknowledged"] == 0
            and report["rejected"] == 0
            and report["failed"] == 0  # every transfer is valid in its sender's order
        )
        report["elapsed_s"] = round(time.perf_counter() - started, 2)
        if data_dir is None:
            report.pop("node_logs", None)
            report.pop("server_logs", None)
        return report
