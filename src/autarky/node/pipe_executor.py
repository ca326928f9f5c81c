"""One worker process fed over a pipe by the caller's own thread: an executor with no threads here.

:class:`concurrent.futures.ProcessPoolExecutor` hands every call to a queue-feeder thread and wakes
a management thread through a pipe. In a busy single-threaded producer (a simulation's machines and
ledger in one process) each of those wake-ups lets the other threads take the GIL, and on a loaded
2-core machine getting it back took ~3.6 ms per call (cProfile of the 1,000-machine microgrid: 3.7 s
in ``posix.write`` for ~1,000 submissions). Here the caller pickles and writes the call itself, and
answers are read when a future is asked about (``done``, ``result``), in the order of submission.

For small calls submitted often (signature batches, :class:`~autarky.node.admission.PrefetchVerifier`).
A call whose arguments are large blocks the caller until the worker has read them (it reads one call
at a time), so large calls belong in a ``ProcessPoolExecutor``, whose feeder thread waits instead.
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

T = TypeVar("T")


def _serve(conn: Connection, initializer: Callable[..., object] | None, initargs: tuple[Any, ...]) -> None:
    """The worker: run each call it reads and write back ``(ok, result or exception)``."""
    from autarky.node.admission import exit_with_parent

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
    """A future whose answer is read from the pipe when it is asked about."""

    def __init__(self, executor: PipeExecutor) -> None:
        super().__init__()
        self._executor = executor

    def done(self) -> bool:
        self._executor._read_answers()
        return super().done()

    def result(self, timeout: float | None = None) -> T:
        self._executor._read_answers(until=self)
        return super().result(timeout)

    def exception(self, timeout: float | None = None) -> BaseException | None:
        self._executor._read_answers(until=self)
        return super().exception(timeout)


class PipeExecutor(Executor):
    """One spawned worker process (``initializer(*initargs)`` first), calls in order over a pipe."""

    def __init__(
        self, initializer: Callable[..., object] | None = None, initargs: tuple[Any, ...] = ()
    ) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(child, initializer, initargs), daemon=True)
        self._process.start()
        child.close()
        self._unanswered: deque[_PipeFuture[Any]] = deque()
        self._broken: BaseException | None = None
        self._closed = False

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        if self._closed:
            raise RuntimeError("cannot submit to a PipeExecutor after shutdown")
        # Take in what is answered first, so the worker never waits on a full pipe back to us.
        self._read_answers()
        if self._broken is not None:
            raise BrokenProcessPool(f"the worker process is gone: {self._broken!r}")
        future: _PipeFuture[T] = _PipeFuture(self)
        future.set_running_or_notify_cancel()  # sent at once: it can no longer be cancelled
        try:
            self._conn.send_bytes(pickle.dumps((fn, args, kwargs), pickle.HIGHEST_PROTOCOL))
        except OSError as exc:
            self._break(exc)
            raise BrokenProcessPool(f"the worker process is gone: {exc!r}") from exc
        self._unanswered.append(future)
        return future

    def _read_answers(self, until: Future[Any] | None = None) -> None:
        """Read every answer already there; with ``until``, wait until that future is answered."""
        while self._unanswered and self._broken is None:
            if (until is None or Future.done(until)) and not self._conn.poll():
                return
            try:
                ok, value = pickle.loads(self._conn.recv_bytes())
            except (EOFError, OSError) as exc:
                self._break(exc)
                return
            future = self._unanswered.popleft()
            if ok:
                future.set_result(value)
            else:
                future.set_exception(value)

    def _break(self, cause: BaseException) -> None:
        self._broken = cause
        while self._unanswered:
            self._unanswered.popleft().set_exception(
                BrokenProcessPool(f"the worker process ended before answering: {cause!r}")
            )

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        if self._closed:
            return
        if wait and not cancel_futures and self._broken is None:
            for future in list(self._unanswered):
                future.exception()  # read every answer before the pipe closes
        self._closed = True
        self._conn.close()  # the worker reads EOF and returns
        self._process.join(5 if wait else 0)
        if self._process.is_alive():
            self._process.kill()
            self._process.join()
        if self._unanswered:
            self._break(RuntimeError("shut down"))
