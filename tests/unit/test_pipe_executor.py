"""PipeExecutor: a worker process fed over a pipe by the caller's thread, answers in order."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, sign_tx
from autarky.node.admission import verify_batch
from autarky.node.pipe_executor import PipeExecutor

_STATE: dict[str, int] = {}


def _remember(value: int) -> None:
    _STATE["base"] = value


def _add(x: int) -> int:
    return _STATE.get("base", 0) + x


def _fail(message: str) -> None:
    raise ValueError(message)


def _pid() -> int:
    return os.getpid()


def _slow(seconds: float) -> str:
    time.sleep(seconds)
    return "slept"


def test_calls_run_in_one_worker_in_order_after_its_initializer() -> None:
    executor = PipeExecutor(_remember, (100,))
    try:
        futures = [executor.submit(_add, n) for n in range(50)]
        assert [future.result() for future in futures] == [100 + n for n in range(50)]
        assert len({executor.submit(_pid).result() for _ in range(3)}) == 1
        assert executor.submit(_pid).result() != os.getpid()
    finally:
        executor.shutdown()


def test_an_exception_in_the_worker_reaches_its_future_and_the_worker_goes_on() -> None:
    with PipeExecutor() as executor:
        failed = executor.submit(_fail, "no")
        after = executor.submit(_add, 1)
        with pytest.raises(ValueError, match="no"):
            failed.result()
        assert isinstance(failed.exception(), ValueError)
        assert after.result() == 1


def test_done_reads_answers_without_waiting_and_a_sent_call_cannot_be_cancelled() -> None:
    with PipeExecutor() as executor:
        future = executor.submit(_add, 2)
        assert not future.cancel()
        while not future.done():  # done() takes in the answer once it is there
            pass
        assert future.result() == 2


def test_calls_wait_here_while_the_worker_is_busy_and_a_waiting_one_can_be_cancelled() -> None:
    with PipeExecutor() as executor:
        slow = executor.submit(_slow, 0.3)
        waiting = executor.submit(_add, 1)
        later = executor.submit(_add, 2)
        assert len(executor._waiting) == 2  # not written to a busy worker
        assert waiting.cancel()
        assert later.result() == 2 and slow.result() == "slept"
        assert waiting.cancelled()


def test_the_worker_verifies_signature_batches() -> None:
    key = SigningKey.from_seed(sha256(b"pipe"))
    message = {"type": "bank/send", "to": key.did, "asset": "aut", "amount": 1}
    good = sign_tx(TxBody("pipe", key.did, 0, 0, 0, (message,)), key).raw
    with PipeExecutor() as executor:
        assert executor.submit(verify_batch, [good, b"\x00", good]).result() == [True, False, True]


def test_a_dead_worker_breaks_the_futures_waiting_on_it_and_refuses_new_calls() -> None:
    executor = PipeExecutor()
    try:
        pid = executor.submit(_pid).result()
        os.kill(pid, signal.SIGKILL)
        executor._process.join(10)
        with pytest.raises(BrokenProcessPool):
            executor.submit(_add, 1).result()
        with pytest.raises(BrokenProcessPool):
            executor.submit(_add, 1)
    finally:
        executor.shutdown()


def test_shutdown_waits_for_answers_then_ends_the_worker() -> None:
    executor = PipeExecutor()
    futures = [executor.submit(_add, n) for n in range(5)]
    executor.shutdown(wait=True)
    assert [future.result() for future in futures] == list(range(5))
    assert not executor._process.is_alive()
    with pytest.raises(RuntimeError):
        executor.submit(_add, 1)
