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

from autarky.crypto.hashing import sha256
from autarky.ledger.errors import BAD_SIGNATURE, TxError
from autarky.ledger.executor import verify_signatures
from autarky.ledger.tx import SignedTx, decode_tx

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
