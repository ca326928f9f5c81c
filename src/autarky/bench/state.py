"""P4 benchmark: the state commitment at the size of a large deployment.

Builds a :class:`~autarky.ledger.smt.SparseMerkleTree` of ``accounts`` keys, then times blocks of
``changes`` writes (mostly balance updates, some new accounts, some deletions) against it, measures
encoded proof sizes, and times proof verification. Everything pseudo-random comes from
``random.Random(seed)``, so two runs with the same arguments build the same trees and the same
roots (``root_hex``); only the timings differ.

Targets (SPEC P4): a 1,000-key block on a 1,000,000-key state updates the root in < 50 ms, an
encoded proof is <= 1.5 KB, a proof verifies in < 0.5 ms.

The bench keeps its own copy of the state (values by account index) in a dict of ints and bytes,
which CPython's cycle collector does not track, so the collector's work measured here is the
tree's, as in a node that keeps its state in such a dict.
"""

from __future__ import annotations

import gc
import os
import platform
import random
import statistics
import time
from typing import Any

from autarky.ledger.smt import SparseMerkleTree, verify

UPDATE_MS_TARGET = 50.0
PROOF_BYTES_TARGET = 1536
VERIFY_US_TARGET = 500.0

VALUE_BYTES = 24
"""Size of a stored value: about a canonical-CBOR balance record."""

INSERT_PERCENT = 10
DELETE_PERCENT = 10


def account_key(index: int) -> str:
    return f"bank/bal/acct-{index:08d}/uatk"


class _GcPauses:
    """Time spent in CPython's cycle collector while :attr:`active` is set."""

    def __init__(self) -> None:
        self.active = False
        self.full_collections = 0
        self.full_pause_ms_max = 0.0
        self.pause_ms = 0.0
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._started = time.perf_counter()
            return
        if not self.active:
            return
        elapsed_ms = (time.perf_counter() - self._started) * 1000
        self.pause_ms += elapsed_ms
        if info.get("generation") == 2:
            self.full_collections += 1
            self.full_pause_ms_max = max(self.full_pause_ms_max, elapsed_ms)


def _next_batch(
    rng: random.Random, values: dict[int, bytes], next_index: int, changes: int
) -> tuple[list[tuple[str, bytes | None]], int]:
    """``changes`` writes on distinct keys: overwrites, inserts of new accounts and deletions.

    Applies them to ``values`` and returns the batch with the next unused account index.
    """
    batch: list[tuple[str, bytes | None]] = []
    chosen: set[int] = set()
    while len(batch) < changes:
        roll = rng.randrange(100)
        if roll < INSERT_PERCENT:
            index = next_index
            next_index += 1
            value: bytes | None = rng.randbytes(VALUE_BYTES)
        else:
            index = rng.randrange(next_index)
            if index in chosen or index not in values:
                continue
            value = None if roll < INSERT_PERCENT + DELETE_PERCENT else rng.randbytes(VALUE_BYTES)
        chosen.add(index)
        if value is None:
            del values[index]
        else:
            values[index] = value
        batch.append((account_key(index), value))
    return batch, next_index


def run_state_bench(
    accounts: int = 1_000_000,
    changes: int = 1000,
    seed: int = 1,
    batches: int = 10,
    proofs: int = 1000,
) -> dict[str, Any]:
    """Run the P4 benchmark and return its figures (times in ms, µs or s as named)."""
    rng = random.Random(seed)
    values: dict[int, bytes] = {index: rng.randbytes(VALUE_BYTES) for index in range(accounts)}

    started = time.perf_counter()
    tree = SparseMerkleTree.from_items((account_key(index), value) for index, value in values.items())
    build_s = time.perf_counter() - started
    assert len(tree) == accounts

    pauses = _GcPauses()
    gc.callbacks.append(pauses)
    try:
        update_ms: list[float] = []
        update_cpu_ms: list[float] = []
        next_index = accounts
        for _ in range(batches):
            batch, next_index = _next_batch(rng, values, next_index, changes)
            pauses.active = True
            started = time.perf_counter()
            started_cpu = time.process_time()
            tree = tree.update(batch)
            update_cpu_ms.append((time.process_time() - started_cpu) * 1000)
            update_ms.append((time.perf_counter() - started) * 1000)
            pauses.active = False
    finally:
        gc.callbacks.remove(pauses)
    assert len(tree) == len(values)

    # Half the proofs for present keys, half for absent ones (never-used or deleted indices).
    root = tree.root
    claims: list[tuple[str, bytes | None]] = []
    for number in range(proofs):
        want_present = number % 2 == 0
        index = rng.randrange(next_index + accounts)
        while (index in values) != want_present:
            index = rng.randrange(next_index + accounts)
        claims.append((account_key(index), values.get(index)))
    proof_list = [tree.prove(key) for key, _ in claims]
    sizes = [len(proof.encode()) for proof in proof_list]

    verify_us: list[float] = []
    for (key, value), proof in zip(claims, proof_list, strict=True):
        started = time.perf_counter()
        valid = verify(root, key, value, proof)
        verify_us.append((time.perf_counter() - started) * 1_000_000)
        assert valid, f"proof for {key} does not verify"

    update_ms_median = statistics.median(update_ms)
    update_ms_max = max(update_ms)
    proof_bytes_max = max(sizes)
    verify_us_mean = statistics.fmean(verify_us)
    return {
        "accounts": accounts,
        "changes": changes,
        "batches": batches,
        "seed": seed,
        "leaves": len(tree),
        "root_hex": root.hex(),
        "build_s": round(build_s, 3),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "update_ms_median": round(update_ms_median, 2),
        "update_ms_max": round(update_ms_max, 2),
        "update_ms_all": [round(sample, 2) for sample in update_ms],
        # CPU time of this process only: what the update costs when other processes compete for the cores.
        "update_cpu_ms_median": round(statistics.median(update_cpu_ms), 2),
        "update_cpu_ms_max": round(max(update_cpu_ms), 2),
        "gc_pause_ms_during_updates": round(pauses.pause_ms, 2),
        "gc_full_collections_during_updates": pauses.full_collections,
        "gc_full_pause_ms_max": round(pauses.full_pause_ms_max, 2),
        "proofs": proofs,
        "proof_bytes_max": proof_bytes_max,
        "proof_bytes_mean": round(statistics.fmean(sizes), 1),
        "verify_us_mean": round(verify_us_mean, 2),
        "verify_us_max": round(max(verify_us), 2),
        "targets": {
            "update_ms": UPDATE_MS_TARGET,
            "proof_bytes": PROOF_BYTES_TARGET,
            "verify_us": VERIFY_US_TARGET,
        },
        "meets_targets": {
            "update_ms_median": update_ms_median < UPDATE_MS_TARGET,
            "update_ms_max": update_ms_max < UPDATE_MS_TARGET,
            "proof_bytes_max": proof_bytes_max <= PROOF_BYTES_TARGET,
            "verify_us_mean": verify_us_mean < VERIFY_US_TARGET,
        },
        "python": platform.python_version(),
    }
