"""One worker process fed over a pipe by the caller's own thread: an executor with no threads here.

:class:`concurrent.futures.ProcessPoolExecutor` hands every call to a queue-feeder thread and wakes
a management thread through a pipe. In a busy single-threaded producer (a simulation's machines and
ledger in one process) each of those wake-ups lets the other threads take the GIL, and on a loaded
2-core machine getting it back took ~3.6 ms per call (cProfile of the 1,000-machine microgrid: 3.7 s
in ``posix.write`` for ~1,000 submissions). Here the caller pickles and writes the call itself, and
answers are read when a future is asked about (``done``, ``result``), in the order of submission.

One call is in the worker at a time and the rest wait here, so a write never waits for a busy
worker; they are sent when the executor or a future is next asked (``submit``, ``done``,
``result``), which suits a caller that asks often (a simulation: signature batches as machines
submit, a state root per block).
"""

from __future__ import annotations

import multiprocessing
import pickle
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from concurrent.futures.process import BrokenProcessPool
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from autarky.node.admission import exit_with_parent

T = TypeVar("T")


def _serve(conn: Connection, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]) -> None:
    """The worker: run each call it reads and write back ``(ok, result or exception)``."""
    exit_with_parent()
    if initializer is not None:
        initializer(*initargs)
    while True:
        try:
            data = conn.recv_bytes()
        except (EOFError, OSError):  # the parent closed its end (shutdown) or died
            return
        fn, args, kwargs = pickle.loads(data)
        try:
            answer: tuple[bool, Any] = (True, fn(*args, **kwargs))
        except BaseException as exc:  # handed back to the caller's future
            answer = (False, exc)
        try:
            conn.send_bytes(pickle.dumps(answer, pickle.HIGHEST_PROTOCOL))
        except OSError:  # the parent no longer listens (shut down without waiting)
            return


class _PipeFuture(Future[T]):
    """A future whose call is sent, and whose answer read, when the executor is next asked."""

    def __init__(self, executor: PipeExecutor) -> None:
        super().__init__()
        self._executor = executor

    def done(self) -> bool:
        self._executor._pump()
        return super().done()

    def result(self, timeout: float | None = None) -> T:
        self._executor._pump(until=self)
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._executor._pump(until=self)
        return super().exception(timeout)


class PipeExecutor(Executor):
    """One spawned worker process (``initializer(*initargs)`` first), calls in order over a pipe.

    One call is in the worker at a time; the others wait here, already pickled, and go when the
    worker has answered (checked whenever this executor or one of its futures is asked). So a
    write never waits for a busy worker to read, and a waiting call can still be cancelled.
    """

    def __init__(
        self, initializer: Callable[..., object] | None = None, initargs: tuple[Any, ...] = ()
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, initializer, initargs), daemon=True)
        self._process.start()
        child.close()
        self._waiting: deque[tuple[bytes, _PipeFuture[Any]]] = deque()
        self._in_worker: _PipeFuture[Any] | None = None
        self._broken: BaseException | None = None
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if self._closed:
            raise RuntimeError("cannot submit to a PipeExecutor after shutdown")
        self._pump()
        if self._broken is not None:
            raise BrokenProcessPool(f"the worker process is gone: {self._broken!r}")
        future: _PipeFuture[T] = _PipeFuture(self)
        self._waiting.append((pickle.dumps((fn, args, kwargs), pickle.HIGHEST_PROTOCOL), future))
        self._pump()
        return future

    def _pump(self, until: Future[Any] | None = None) -> None:
        """Take in the worker's answer if it is there (waiting for it while ``until`` is not done),
        and send the next waiting call whenever the worker is free."""
        while self._broken is None:
            if self._in_worker is not None:
                if (until is None or Future.done(until)) and not self._conn.poll():
                    return
                try:
                    ok, value = pickle.loads(self._conn.recv_bytes())
                except (EOFError, OSError) as exc:
                    self._break(exc)
                    return
                answered, self._in_worker = self._in_worker, None
                if ok:
                    answered.set_result(value)
                else:
                    answered.set_exception(value)
            if not self._waiting:
                return
            payload, future = self._waiting.popleft()
            if not future.set_running_or_notify_cancel():
                continue  # cancelled while it waited
            try:
                self._conn.send_bytes(payload)
            except OSError as exc:
                self._in_worker = future
                self._break(exc)
                return
            self._in_worker = future

    def _break(self, cause: BaseException) -> None:
        self._broken = cause
        error = BrokenProcessPool(f"the worker process ended before answering: {cause!r}")
        if self._in_worker is not None:
            self._in_worker.set_exception(error)
            self._in_worker = None
        while self._waiting:
            _, future = self._waiting.popleft()
            if future.set_running_or_notify_cancel():
                future.set_exception(error)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._closed:
            return
        if cancel_futures:
            for _, future in self._waiting:
                future.cancel()
        if wait and self._broken is None:
            while self._in_worker is not None or self._waiting:
                self._pump(until=self._in_worker or self._waiting[-1][1])
        self._closed = True
        self._conn.close()  # the worker reads EOF and returns
        self._process.join(5 if wait else 0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        if self._in_worker is not None or self._waiting:
            self._break(RuntimeError("shut down"))
