"""How much the agent runtime costs per action: ``python -m autarky.agent.benchmark``.

Runs N machines that each send one payment every fifteen virtual minutes for I intervals, three
ways, and prints microseconds per action:

* ``null``: a ledger port that accepts every check and resolves every submission without executing
  anything: the runtime alone (timers, handler, body, canonical encoding, Ed25519 signing,
  futures);
* ``check``: the same plus the in-process pre-check (one execution of the transaction on the
  pending overlay with an accepting verifier; here no block ever resets that overlay);
* ``full``: :class:`~autarky.agent.ledger.InProcessLedger` over a real chain: pre-check, signing,
  and blocks executed by the real executor (every signature verified), state root per block.

Example: ``python -m autarky.agent.benchmark --machines 1000 --intervals 96``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from collections.abc import Callable, Sequence
from typing import Any

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.block import Event, Receipt
from autarky.ledger.tx import SignedTx, TxBody
from autarky.modules.harness import Chain

from .clock import VirtualEventLoop
from .ledger import AccountView, EventCallback, InProcessLedger
from .machine import Machine
from .runtime import run_fleet

INTERVAL_MS = 15 * 60_000
START_MS = 1_767_225_600_000


class NullLedger:
    """Accepts everything, executes nothing: isolates the runtime's own cost."""

    def __init__(self, chain_id: str, inner: InProcessLedger | None = None) -> None:
        self.chain_id = chain_id
        self._inner = inner
        self._pending: list[tuple[SignedTx, asyncio.Future[Receipt]]] = []
        self._ok_events: tuple[Event, ...] = ()
        self.txs = 0

    def attach(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        loop = loop or asyncio.get_running_loop()
        assert isinstance(loop, VirtualEventLoop)
        loop.add_idle_hook(self._idle)

    def _idle(self) -> bool:
        if not self._pending:
            return False
        pending, self._pending = self._pending, []
        for tx, future in pending:
            future.set_result(Receipt(tx.hash, 0, "ok", self._ok_events, tx.body.sender))
        self.txs += len(pending)
        return True

    def submit(self, tx: SignedTx) -> asyncio.Future[Receipt]:
        future: asyncio.Future[Receipt] = asyncio.get_running_loop().create_future()
        self._pending.append((tx, future))
        return future

    async def check(
        self,
        body: TxBody,
        public_key: bytes,
        cosigners: Sequence[bytes] = (),
        body_bytes: bytes | None = None,
    ) -> Receipt:
        if self._inner is not None:
            return self._inner.check_now(body, public_key, cosigners, body_bytes)
        return Receipt(b"", 0, "ok", (), body.sender)

    async def sequence(self, did: str) -> int:
        return 0

    async def account(self, did: str) -> AccountView:
        return AccountView(did, "active", None, {}, None, False)

    async def balance(self, did: str, asset: str) -> int:
        return 0

    async def fee(self) -> tuple[str, int]:
        return ("aut", 1)

    async def oracle_latest(self, feed: str) -> dict[str, Any] | None:
        return None

    async def market_clearing(self, zone: str, interval: int) -> dict[str, Any] | None:
        return None

    def subscribe(
        self, event_type: str, callback: EventCallback, match: tuple[str, Any] | None = None
    ) -> Callable[[], None]:
        return lambda: None


def _keys(count: int) -> list[SigningKey]:
    return [SigningKey.from_seed(sha256(f"bench-machine-{i}".encode())) for i in range(count)]


def _chain(keys: Sequence[SigningKey]) -> Chain:
    genesis = {
        "chain_id": "bench",
        "genesis_time_ms": START_MS,
        "app_state": {
            "identity": {"accounts": [{"did": k.did, "owner": OWNER.did, "kind": "meter"} for k in keys]},
            "bank": {
                "params": {"fee_asset": "aut", "min_fee": 1},
                "balances": [{"account": k.did, "asset": "aut", "amount": 10**9} for k in keys],
            },
        },
    }
    return Chain.from_genesis(genesis)


OWNER = SigningKey.from_seed(sha256(b"bench-owner"))
GRID = SigningKey.from_seed(sha256(b"bench-grid"))


def _machines(keys: Sequence[SigningKey], ledger: Any) -> list[Machine]:
    machines = []
    for key in keys:
        machine = Machine(key, ledger)

        @machine.on_interval(period_ms=INTERVAL_MS)
        async def pay(m: Machine) -> None:
            await m.submit({"type": "bank/send", "to": GRID.did, "asset": "aut", "amount": 3})

        machines.append(machine)
    return machines


def run_benchmark(
    machines: int, intervals: int, modes: Sequence[str] = ("null", "check", "full")
) -> dict[str, Any]:
    """Per-action microseconds of each mode (see the module docstring); ``actions`` per mode."""
    keys = _keys(machines)
    until = START_MS + intervals * INTERVAL_MS
    results: dict[str, Any] = {"machines": machines, "intervals": intervals, "actions": machines * intervals}
    for mode in modes:
        chain = _chain(keys)
        ledger: Any
        if mode == "null":
            ledger = NullLedger(chain.chain_id)
        elif mode == "check":
            ledger = NullLedger(chain.chain_id, InProcessLedger(chain))
        else:
            ledger = InProcessLedger(chain)
        fleet_machines = _machines(keys, ledger)
        started = time.perf_counter()
        fleet = run_fleet(fleet_machines, ledger, start_ms=START_MS, until_ms=until)
        elapsed = time.perf_counter() - started
        committed = ledger.txs if mode != "full" else ledger.txs_committed
        assert fleet.failures == 0 and fleet.refusals == 0, (mode, fleet.failures, fleet.refusals)
        assert committed == machines * intervals, (mode, committed)
        results[mode] = {"seconds": round(elapsed, 3), "us_per_action": round(elapsed / committed * 1e6, 1)}
    return results


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--machines", type=int, default=1000)
    parser.add_argument("--intervals", type=int, default=96)
    parser.add_argument("--mode", action="append", choices=("null", "check", "full"))
    args = parser.parse_args(argv)
    print(
        json.dumps(
            run_benchmark(args.machines, args.intervals, args.mode or ("null", "check", "full")), indent=2
        )
    )


if __name__ == "__main__":
    main()
