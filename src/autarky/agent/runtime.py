"""Running many machines in one process: :class:`Fleet`.

::

    fleet = Fleet(machines)
    await fleet.run_for(24 * HOUR_MS)     # on a virtual loop: as fast as the handlers run

    run_fleet(machines, ledger, until_ms=start_ms + 24 * HOUR_MS, start_ms=start_ms)   # from sync code

On a :class:`~autarky.agent.clock.VirtualEventLoop` ``run_until`` jumps virtual time; on a normal
loop it waits for real. Machines start in list order (so a simulation is reproducible).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Sequence
from typing import Any

from .clock import Clock, clock_for_running_loop, run_virtual
from .machine import Machine


class Fleet:
    def __init__(self, machines: Iterable[Machine] = ()) -> None:
        self.machines: list[Machine] = list(machines)
        self.clock: Clock | None = None

    def add(self, machine: Machine) -> Machine:
        self.machines.append(machine)
        return machine

    async def start(self) -> None:
        self.clock = self.clock or clock_for_running_loop()
        for machine in self.machines:
            if machine.clock is None:
                machine.clock = self.clock
            await machine.start()

    async def stop(self) -> None:
        for machine in self.machines:
            await machine.stop()

    async def run_until(self, until_ms: int) -> None:
        """Start the machines (if not yet), run until ``until_ms`` on the loop's clock, stop them."""
        await self.start()
        assert self.clock is not None
        try:
            delay = until_ms - self.clock.now_ms()
            if delay > 0:
                await asyncio.sleep(delay / 1000)
        finally:
            await self.stop()

    async def run_for(self, duration_ms: int) -> None:
        self.clock = self.clock or clock_for_running_loop()
        await self.run_until(self.clock.now_ms() + duration_ms)

    @property
    def refusals(self) -> int:
        return sum(machine.refusals for machine in self.machines)

    @property
    def failures(self) -> int:
        return sum(machine.failures for machine in self.machines)


def run_fleet(machines: Sequence[Machine], ledger: Any, *, start_ms: int, until_ms: int) -> Fleet:
    """Run ``machines`` on a new virtual-time loop from ``start_ms`` to ``until_ms``; returns the fleet.

    ``ledger`` (an :class:`~autarky.agent.ledger.InProcessLedger`, or any port with ``attach``) is
    attached to the loop first and detached at the end."""
    fleet = Fleet(machines)

    async def main() -> None:
        if ledger is not None:
            ledger.attach()
        try:
            await fleet.run_until(until_ms)
        finally:
            detach = getattr(ledger, "detach", None)
            if detach is not None:
                detach()

    run_virtual(main, start_ms=start_ms)
    return fleet
