"""Admission work that runs in worker processes: decode and verify signatures.

Why processes: decoding is Python work that holds the GIL, and a thread pool verifying
signatures keeps losing the GIL to the thread that executes blocks. Worker processes decode and
verify on the other core and return decoded transactions, which cost the node about 6 µs each to
unpickle against ~20 µs to decode. The checks that depend on node state (duplicates, chain, expiry,
sequence, mempool room) stay in the node.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
from collections.abc import Iterable
from concurrent.futures import Executor, Future

from autarky.crypto.hashing import sha256
from autarky.ledger.errors import BAD_SIGNATURE, TxError
from autarky.ledger.executor import verify_signatures
from autarky.ledger.tx import MAX_TX_BYTES, SignedTx, decode_tx

Checked = SignedTx | tuple[bytes, str, str]
"""A decoded transaction whose signatures verify, or (hash, code, detail) for a refused one."""


_PR_SET_PDEATHSIG = 1


def exit_with_parent() -> None:
    """Worker initializer: be killed when the node process dies, even by SIGKILL (Linux).

    A node killed with SIGKILL cannot shut its pool down; without this its workers would stay,
    orphaned. Elsewhere (no prctl) it does nothing: the workers then end when the pool's pipe
    closes on their next read.
    """
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before prctl took effect
        os._exit(0)


def check_batch(raws: list[bytes], max_tx_bytes: int) -> list[Checked]:
    """Decode each transaction and verify its signatures. Pure; runs in a worker process."""
    results: list[Checked] = []
    for raw in raws:
        if len(raw) > max_tx_bytes:
            results.append((sha256(raw), "mempool.tx_too_large", f"{len(raw)} bytes exceeds {max_tx_bytes}"))
            continue
        try:
            tx = decode_tx(raw, max_tx_bytes)
        except TxError as exc:
            results.append((sha256(raw), exc.code, exc.detail))
            continue
        if not verify_signatures(tx):
            results.append((tx.hash, BAD_SIGNATURE.code, BAD_SIGNATURE.summary))
            continue
        results.append(tx)
    return results


def verify_batch(raws: list[bytes]) -> list[bool]:
    """For each raw transaction: does it decode, and does every signature verify? Runs in a worker
    (the verdicts of :func:`check_batch`, without sending the decoded transactions back)."""
    return [type(checked) is SignedTx for checked in check_batch(raws, MAX_TX_BYTES)]


class PrefetchVerifier:
    """The executor's :class:`~autarky.ledger.executor.SignatureVerifier`, with its work done ahead.

    A producer that holds transactions before it executes them (a simulation's in-process ledger)
    hands them to :meth:`prefetch` as they arrive; worker processes verify them on the other core
    while the producer goes on. A batch goes to the worker when ``batch_size`` wait, or when
    ``min_batch`` wait and the worker has verified everything sent before (so it never idles
    while a burst fills a batch, and the producer does not wait for that burst at execution). At
    execution :meth:`verify` answers from those results, waiting for a batch still in flight, and
    verifies anything it was not given itself. The verdict is the same as
    :class:`~autarky.ledger.executor.DirectVerifier`'s: the worker decodes the same bytes and runs
    the same :func:`~autarky.ledger.executor.verify_signatures`.
    """

    def __init__(self, pool: Executor, batch_size: int = 512, min_batch: int = 32) -> None:
        self._pool = pool
        self._batch_size = batch_size
        self._min_batch = min_batch
        self._waiting: list[SignedTx] = []
        self._in_flight: list[tuple[list[bytes], Future[list[bool]]]] = []
        self._verdicts: dict[bytes, bool] = {}

    def prefetch(self, txs: Iterable[SignedTx]) -> None:
        for tx in txs:
            self._waiting.append(tx)
            waiting = len(self._waiting)
            if waiting >= self._batch_size or (waiting >= self._min_batch and self._worker_idle()):
                self._send()

    def _worker_idle(self) -> bool:
        """True when every batch sent so far is verified: send what waits now rather than let the
        worker idle while a batch fills (a burst of submissions smaller than a batch would otherwise
        wait until execution, and the producer with it)."""
        return not self._in_flight or self._in_flight[-1][1].done()

    def _send(self) -> None:
        if self._waiting:
            hashes = [tx.hash for tx in self._waiting]
            future = self._pool.submit(verify_batch, [tx.raw for tx in self._waiting])
            self._in_flight.append((hashes, future))
            self._waiting = []

    def verify(self, tx: SignedTx) -> bool:
        verdict = self._verdicts.pop(tx.hash, None)
        if verdict is None and (self._waiting or self._in_flight):
            self._collect()
            verdict = self._verdicts.pop(tx.hash, None)
        return verify_signatures(tx) if verdict is None else verdict

    def _collect(self) -> None:
        self._send()
        for hashes, future in self._in_flight:
            self._verdicts.update(zip(hashes, future.result(), strict=True))
        self._in_flight = []
