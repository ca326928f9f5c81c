"""Clocks for machines: the wall clock, and a virtual-time asyncio event loop for simulations.

A machine reads time only through a :class:`Clock` (``now_ms()``) and waits only with ``asyncio``
(``asyncio.sleep``, futures). On a :class:`VirtualEventLoop` both are virtual: ``loop.time()`` is a
number the loop advances itself, and when no callback is ready and no socket has data, the loop's
selector, instead of blocking for the time left until the next timer, first runs the *idle hooks*
(the in-process ledger executes a block there, which may wake machines) and, if none of them did
anything, jumps virtual time straight to that timer (like trio's ``MockClock(autojump_threshold=0)``).
So a day of fifteen-minute intervals runs as fast as the handlers run, and plain ``asyncio.sleep``
in agent code needs no special API. Sockets still work (they are polled without waiting), which is
how a virtual-time test can also talk to a real NATS server, although then the two timelines differ.

Time is kept as integer milliseconds (``now_ms``); ``loop.time()`` is those milliseconds over 1000.
"""

from __future__ import annotations

import asyncio
import selectors
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

IdleHook = Callable[[], bool]
"""Called when every task waits; returns True if it did something (then time does not jump)."""


class Clock(Protocol):
    def now_ms(self) -> int:
        """Milliseconds since the Unix epoch (virtual or real)."""
        ...


class RealClock:
    """The wall clock."""

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


class Deadlock(RuntimeError):
    """Every task waits, no idle hook has work, and no timer is scheduled: nothing can ever happen."""


class _VirtualSelector(selectors.BaseSelector):
    """Delegates to a real selector, but never blocks: it polls, then asks the loop to idle or jump."""

    def __init__(self) -> None:
        self._real = selectors.DefaultSelector()
        self.loop: VirtualEventLoop | None = None

    def register(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.register(fileobj, events, data)

    def unregister(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.unregister(fileobj)

    def modify(self, fileobj: Any, events: int, data: Any = None) -> selectors.SelectorKey:
        return self._real.modify(fileobj, events, data)

    def get_key(self, fileobj: Any) -> selectors.SelectorKey:
        return self._real.get_key(fileobj)

    def get_map(self) -> Any:
        return self._real.get_map()

    def close(self) -> None:
        self._real.close()

    def select(self, timeout: float | None = None) -> list[tuple[selectors.SelectorKey, int]]:
        ready = self._real.select(0)
        if ready or timeout == 0:
            return ready
        assert self.loop is not None
        self.loop._idle_or_jump(timeout)
        return []


class VirtualEventLoop(asyncio.SelectorEventLoop):
    """An asyncio loop on virtual time starting at ``start_ms`` (see the module docstring)."""

    def __init__(self, start_ms: int = 0) -> None:
        selector = _VirtualSelector()
        super().__init__(selector)
        selector.loop = self
        self._now_ms = int(start_ms)
        # Timers due within half a millisecond of now fire now: virtual time is whole milliseconds,
        # and ``time() + delay`` in float seconds can land an ulp past the millisecond it meant.
        self._clock_resolution = 0.0005
        self._idle_hooks: list[IdleHook] = []
        self.jumps = 0

    # asyncio reads this for every timer; it must be cheap.
    def time(self) -> float:
        return self._now_ms / 1000

    def now_ms(self) -> int:
        return self._now_ms

    def add_idle_hook(self, hook: IdleHook) -> None:
        self._idle_hooks.append(hook)

    def remove_idle_hook(self, hook: IdleHook) -> None:
        self._idle_hooks.remove(hook)

    def _idle_or_jump(self, timeout: float | None) -> None:
        for hook in list(self._idle_hooks):
            if hook():
                return
        if timeout is None:
            if self._has_threads_or_sockets():
                # Someone may still write to a socket or call_soon_threadsafe: wait a little, for real.
                time.sleep(0.001)
                return
            raise Deadlock("every task waits, nothing is scheduled and no idle hook has work")
        # Jump to the next timer. Rounding up to a whole millisecond keeps ``now_ms`` an integer and
        # never fires a timer early.
        target = -(-round(timeout * 1_000_000) // 1000)
        self._now_ms += max(target, 0)
        self.jumps += 1

    def _has_threads_or_sockets(self) -> bool:
        # The loop's own self-pipe is always registered; anything more is a real socket.
        selector = self._selector  # type: ignore[attr-defined]
        return len(selector.get_map()) > 1


class VirtualClock:
    """``now_ms()`` of a :class:`VirtualEventLoop` (the running one unless given)."""

    def __init__(self, loop: VirtualEventLoop | None = None) -> None:
        self._loop = loop

    @property
    def loop(self) -> VirtualEventLoop:
        if self._loop is None:
            loop = asyncio.get_running_loop()
            if not isinstance(loop, VirtualEventLoop):
                raise RuntimeError("VirtualClock needs a VirtualEventLoop (use run_virtual)")
            self._loop = loop
        return self._loop

    def now_ms(self) -> int:
        return self.loop.now_ms()


def clock_for_running_loop() -> Clock:
    """A :class:`VirtualClock` on a virtual loop, else the :class:`RealClock`."""
    loop = asyncio.get_running_loop()
    if isinstance(loop, VirtualEventLoop):
        return VirtualClock(loop)
    return RealClock()


def run_virtual(main: Callable[[], Awaitable[T]] | Coroutine[Any, Any, T], *, start_ms: int = 0) -> T:
    """Run ``main`` (a coroutine, or a function returning an awaitable) on a new virtual-time loop.

    Example::

        async def main() -> int:
            await asyncio.sleep(3600)          # returns at once; virtual time moves one hour
            return VirtualClock().now_ms()

        assert run_virtual(main, start_ms=0) == 3_600_000
    """
    loop = VirtualEventLoop(start_ms)
    try:
        coroutine = main if asyncio.iscoroutine(main) else main()

        async def wrapper() -> T:
            return await coroutine

        return loop.run_until_complete(wrapper())
    finally:
        try:
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()
