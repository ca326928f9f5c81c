"""PrefetchVerifier gives DirectVerifier's verdicts, whether or not a transaction was prefetched."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.executor import DirectVerifier
from autarky.ledger.tx import SignedTx, TxBody, decode_tx, encode_signed, sign_tx
from autarky.modules.harness import Chain
from autarky.node.admission import PrefetchVerifier, verify_batch
from autarky.sim.microgrid_day import MicrogridDay


def _key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(name.encode()))


def _transfers(count: int) -> list[SignedTx]:
    sender, receiver = _key("sender"), _key("receiver")
    message = {"type": "bank/send", "to": receiver.did, "asset": "aut", "amount": 1}
    return [sign_tx(TxBody("prefetch", sender.did, n, 0, 0, (message,)), sender) for n in range(count)]


def _forged(tx: SignedTx) -> SignedTx:
    """The same body under a signature with one bit flipped (still well formed)."""
    (public_key, signature), *rest = tx.signatures
    flipped = bytes([signature[0] ^ 1]) + signature[1:]
    return decode_tx(encode_signed(tx.body_bytes, [(public_key, flipped), *rest]))


def test_verdicts_equal_direct_verification_prefetched_or_not() -> None:
    txs = _transfers(12)
    txs[3] = _forged(txs[3])
    txs[9] = _forged(txs[9])
    prefetched, late = txs[:8], txs[8:]
    direct = DirectVerifier()
    with ThreadPoolExecutor(1) as pool:
        verifier = PrefetchVerifier(pool, batch_size=3)
        verifier.prefetch(prefetched)
        verdicts = [verifier.verify(tx) for tx in txs]
    assert verdicts == [direct.verify(tx) for tx in txs]
    assert verdicts.count(False) == 2 and not verdicts[3] and not verdicts[9]
    assert late  # the last four were never prefetched: verified on the spot


def test_a_burst_smaller_than_a_batch_goes_to_an_idle_worker_at_once() -> None:
    """A batch is sent when it is full, or as soon as ``min_batch`` wait and the worker has
    finished what it was given: a burst of submissions does not sit unverified until execution."""
    txs = _transfers(10)
    submitted: list[int] = []

    class CountingPool(ThreadPoolExecutor):
        def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
            submitted.append(len(args[0]))
            return super().submit(fn, *args, **kwargs)

    with CountingPool(1) as pool:
        verifier = PrefetchVerifier(pool, batch_size=512, min_batch=4)
        verifier.prefetch(txs[:3])
        assert submitted == []  # fewer than min_batch: they wait
        verifier.prefetch(txs[3:4])
        assert submitted == [4]  # the worker was idle
        verifier._in_flight[-1][1].result()  # the worker is idle again
        verifier.prefetch(txs[4:10])
        assert submitted == [4, 4]  # sent at the fourth; two still wait
        assert [verifier.verify(tx) for tx in txs] == [True] * 10
        assert submitted == [4, 4, 2]  # execution sends the rest


def test_worker_batch_refuses_undecodable_bytes() -> None:
    good = _transfers(1)[0]
    assert verify_batch([good.raw, b"\x00", _forged(good).raw]) == [True, False, False]


def test_a_day_executed_with_worker_processes_has_the_same_roots() -> None:
    day = MicrogridDay(seed=3, solar=2, households=3, intervals=4)
    phases = day.phases()
    direct = Chain.from_genesis(day.genesis())
    prefetching = Chain.from_genesis(day.genesis())
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(1, mp_context=context) as pool:
        verifier = PrefetchVerifier(pool, batch_size=8)
        for time_ms, txs in phases:
            direct.execute([tx.raw for tx in txs], time_ms)
            verifier.prefetch(txs)
            prefetching.execute(txs, time_ms, verifier=verifier)
            assert prefetching.root == direct.root
    assert prefetching.height == direct.height > 4
