"""``autarky bench ledger``: signed transfers through the embedded engine, against raw Ed25519 verify.

What is measured (SPEC P1, P2), all in one run on this machine:

* ``verify_per_s_single_core``: libsodium Ed25519 verifications per second on one thread, the
  baseline (best of three rounds).
* ``transfers_per_s``: pre-signed transfers submitted to a real node (SQLite, WAL,
  ``synchronous=FULL``) from many accounts, from the first submission until the last one is durably
  committed: decoded, signature-checked, applied, state root updated, block stored.
* ``ratio`` = transfers_per_s / verify_per_s_single_core (target >= 0.8).
* ``p99_commit_ms``: submit-to-durable-commit latency at half of the measured peak rate, offered
  open-loop (target < 50 ms).

Signing is done before the clock starts: clients sign, the ledger verifies.
"""

from __future__ import annotations

import asyncio
import hashlib
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from autarky.crypto.domains import Domain, domain_tag
from autarky.crypto.keys import SigningKey, verify_raw
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.node.genesis import dev_genesis
from autarky.node.node import Node, NodeSettings, init_data_dir

CHAIN_ID = "bench"


def measure_verify_rate(samples: int = 4000, rounds: int = 3) -> float:
    """Single-thread libsodium verifications per second over transaction-sized messages."""
    key = SigningKey.from_seed(hashlib.sha256(b"verify-baseline").digest())
    tag = domain_tag(Domain.TRANSACTION, CHAIN_ID)
    messages = [tag + i.to_bytes(4, "big") * 45 for i in range(samples)]
    signatures = [key.sign(Domain.TRANSACTION, m[len(tag) :], CHAIN_ID) for m in messages]
    public_key = key.public_key.raw
    best = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        for message, signature in zip(messages, signatures, strict=True):
            assert verify_raw(public_key, message, signature)
        best = max(best, samples / (time.perf_counter() - start))
    return best


def _keys(count: int, seed: int) -> list[SigningKey]:
    return [SigningKey.from_seed(hashlib.sha256(f"bench/{seed}/{i}".encode()).digest()) for i in range(count)]


def _sign_transfers(
    keys: list[SigningKey], count: int, sequences: list[int], fee_asset: str
) -> list[SignedTx]:
    txs = []
    n = len(keys)
    for i in range(count):
        sender = i % n
        recipient = (sender + 1 + (i * 7919) % (n - 1)) % n
        body = TxBody(
            CHAIN_ID,
            keys[sender].did,
            sequences[sender],
            1,
            0,
            ({"type": "bank/send", "to": keys[recipient].did, "asset": fee_asset, "amount": 1},),
        )
        sequences[sender] += 1
        txs.append(sign_tx(body, keys[sender]))
    return txs


Signed = tuple[bytes, bytes, str]
"""A pre-signed transaction as the client keeps it: (raw bytes, hash, sender)."""


def _client_side(txs: list[SignedTx]) -> list[Signed]:
    """What a client keeps of its signed transactions: plain tuples of bytes and str.

    A real client is another process. Here it shares the node's process, so its tens of thousands
    of decoded transactions would sit in the node's heap and every full collection of the cyclic
    garbage collector would walk them (tens of ms at 30,000 transactions: a client's cost charged
    to the node's p99). Tuples of bytes and str are left out of those walks.
    """
    return [(tx.raw, tx.hash, tx.body.sender) for tx in txs]


async def _peak(node: Node, txs: list[Signed]) -> tuple[float, int]:
    last_per_sender: dict[str, bytes] = {}
    for _, tx_hash, sender in txs:
        last_per_sender[sender] = tx_hash
    failed_before = node.metrics.failed_total
    start = time.perf_counter()
    results = await node.submit_many([raw for raw, _, _ in txs])
    refused = [r for r in results if r.status != "accepted"]
    assert not refused, f"bench transactions refused: {refused[:3]}"
    outcomes = await asyncio.gather(*(node.wait_committed(h, 120) for h in last_per_sender.values()))
    elapsed = time.perf_counter() - start
    assert all(o.status == "committed" for o in outcomes), "bench transactions not committed in time"
    failed = node.metrics.failed_total - failed_before
    return len(txs) / elapsed, failed


async def _latency(node: Node, txs: list[Signed], rate: float) -> list[float]:
    """Offer ``txs`` open-loop at ``rate`` per second; return submit-to-commit latencies in ms."""
    tick_s = 0.005
    per_tick = max(1, round(rate * tick_s))
    latencies: list[float] = []
    waits: list[asyncio.Task[None]] = []

    async def track(tx_hash: bytes, submitted: float) -> None:
        outcome = await node.wait_committed(tx_hash, 60)
        assert outcome.status == "committed"
        latencies.append((time.perf_counter() - submitted) * 1000)

    start = time.perf_counter()
    for tick, offset in enumerate(range(0, len(txs), per_tick)):
        due = start + tick * tick_s
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        batch = txs[offset : offset + per_tick]
        submitted = time.perf_counter()
        results = await node.submit_many([raw for raw, _, _ in batch])
        assert all(r.status == "accepted" for r in results), results[:3]
        waits.extend(asyncio.create_task(track(tx_hash, submitted)) for _, tx_hash, _ in batch)
    await asyncio.gather(*waits)
    return latencies


async def _run(transfers: int, accounts: int, seed: int, data_dir: Path, latency_s: float) -> dict[str, Any]:
    verify_rate = measure_verify_rate()
    keys = _keys(accounts, seed)
    genesis = dev_genesis(CHAIN_ID, time_ms=0, allocations=[(k.did, "aut", 10**12) for k in keys], min_fee=1)
    init_data_dir(data_dir, genesis)
    settings = NodeSettings(data_dir=data_dir)
    node = await Node.open(settings)
    sequences = [0] * accounts
    peak_txs = _client_side(_sign_transfers(keys, transfers, sequences, "aut"))
    async with node:
        await node.start_admission_workers()
        peak_rate, failed = await _peak(node, peak_txs)
        half = peak_rate / 2
        latency_txs = _client_side(_sign_transfers(keys, max(200, int(half * latency_s)), sequences, "aut"))
        latencies = await _latency(node, latency_txs, half)
        height, root = node.height, node.header.state_root.hex()
        integrity = node.storage.integrity_check()
    latencies.sort()
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
    return {
        "benchmark": "ledger",
        "engine": "embedded",
        "transfers": transfers,
        "accounts": accounts,
        "transfers_per_s": round(peak_rate, 1),
        "verify_per_s_single_core": round(verify_rate, 1),
        "ratio": round(peak_rate / verify_rate, 3),
        "failed": failed,
        "latency_rate_per_s": round(half, 1),
        "latency_samples": len(latencies),
        "p50_commit_ms": round(statistics.median(latencies), 2),
        "p99_commit_ms": round(p99, 2),
        "height": height,
        "state_root": root,
        "integrity_check": integrity,
        "targets": {"ratio": 0.8, "p99_commit_ms": 50},
    }


def run_ledger_bench(
    transfers: int = 30_000,
    accounts: int = 3_000,
    seed: int = 1,
    data_dir: Path | None = None,
    latency_s: float = 4.0,
) -> dict[str, Any]:
    if data_dir is not None:
        return asyncio.run(_run(transfers, accounts, seed, Path(data_dir), latency_s))
    with tempfile.TemporaryDirectory(prefix="autarky-bench-") as tmp:
        return asyncio.run(_run(transfers, accounts, seed, Path(tmp) / "node", latency_s))
