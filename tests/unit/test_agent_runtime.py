"""The agent runtime on the in-process ledger and the virtual clock (``autarky.agent``)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from autarky.agent import (
    ActionRefused,
    Deadlock,
    Fleet,
    InProcessBus,
    InProcessLedger,
    LedgerEvent,
    Machine,
    MemoryStorage,
    Skill,
    SqliteStorage,
    VirtualClock,
    run_fleet,
    run_virtual,
)
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.harness import Chain

HOUR_MS = 3_600_000
START_MS = 1_700_000_000_000


def key(label: str) -> SigningKey:
    return SigningKey.from_seed(sha256(label.encode()))


OWNER, GRID = key("owner"), key("grid")


def make_chain(machines: list[SigningKey], guard: dict[str, Any] | None = None) -> Chain:
    accounts = [{"did": k.did, "owner": OWNER.did, "kind": "meter"} for k in machines]
    bank: dict[str, Any] = {
        "params": {"fee_asset": "aut", "min_fee": 1},
        "balances": [{"account": k.did, "asset": "aut", "amount": 100_000} for k in machines],
    }
    bank["balances"].append({"account": OWNER.did, "asset": "aut", "amount": 100_000})
    genesis = {
        "chain_id": "agent-test",
        "genesis_time_ms": START_MS,
        "app_state": {"identity": {"accounts": accounts}, "bank": bank},
    }
    chain = Chain.from_genesis(genesis)
    if guard is not None:
        owner_do(
            chain, *({"type": "bank/set_guardrails", "machine": k.did, "guardrails": guard} for k in machines)
        )
    return chain


def owner_do(chain: Chain, *messages: dict[str, Any]) -> None:
    """The owner's own transaction, signed and executed directly (not through an agent)."""
    body = TxBody(chain.chain_id, OWNER.did, chain.sequence(OWNER.did), 1, 0, tuple(messages))
    (receipt,) = chain.execute([sign_tx(body, OWNER)], chain.headers[-1].time_ms)
    assert receipt.ok, receipt


def send(to: str, amount: int) -> dict[str, Any]:
    return {"type": "bank/send", "to": to, "asset": "aut", "amount": amount}


# -- the virtual clock ----------------------------------------------------------------------------


def test_sleep_jumps_virtual_time() -> None:
    async def main() -> tuple[int, int]:
        clock = VirtualClock()
        before = clock.now_ms()
        await asyncio.sleep(3600)
        return before, clock.now_ms()

    assert run_virtual(main, start_ms=START_MS) == (START_MS, START_MS + HOUR_MS)


def test_timers_fire_in_order_of_virtual_time() -> None:
    seen: list[tuple[str, int]] = []

    async def sleeper(name: str, seconds: float) -> None:
        await asyncio.sleep(seconds)
        seen.append((name, VirtualClock().now_ms()))

    async def main() -> None:
        await asyncio.gather(sleeper("b", 2.5), sleeper("a", 1), sleeper("c", 900))

    run_virtual(main, start_ms=0)
    assert seen == [("a", 1000), ("b", 2500), ("c", 900_000)]


def test_waiting_on_nothing_is_a_deadlock() -> None:
    async def main() -> None:
        await asyncio.get_running_loop().create_future()

    with pytest.raises(Deadlock):
        run_virtual(main)


# -- machines on the in-process ledger ------------------------------------------------------------


def test_a_thousand_intervals_land_in_blocks_per_interval() -> None:
    keys = [key(f"m{i}") for i in range(20)]
    chain = make_chain(keys)
    ledger = InProcessLedger(chain)
    machines = []
    for k in keys:
        machine = Machine(k, ledger)

        @machine.on_interval(period_ms=15 * 60_000)
        async def pay(m: Machine) -> None:
            receipt = await m.submit(send(GRID.did, 3))
            assert receipt.ok, receipt

        machines.append(machine)
    fleet = run_fleet(machines, ledger, start_ms=START_MS, until_ms=START_MS + 24 * HOUR_MS)
    assert fleet.failures == 0 and fleet.refusals == 0
    assert ledger.txs_committed == 20 * 96
    assert ledger.blocks_produced == 96  # every machine woken by one timer lands in one block
    assert chain.invariants() == []
    assert chain.sequence(keys[0].did) == 96
    assert chain.replay().root == chain.root


def test_same_inputs_same_state_root() -> None:
    def run() -> bytes:
        keys = [key(f"d{i}") for i in range(5)]
        chain = make_chain(keys)
        ledger = InProcessLedger(chain)
        machines = []
        for index, k in enumerate(keys):
            machine = Machine(k, ledger)

            @machine.on_interval(period_ms=600_000, offset_ms=index * 1000)
            async def pay(m: Machine) -> None:
                await m.submit(send(GRID.did, 1 + m.sequence % 7))

            machines.append(machine)
        run_fleet(machines, ledger, start_ms=START_MS, until_ms=START_MS + 6 * HOUR_MS)
        return chain.root

    assert run() == run()


def test_two_transactions_of_one_machine_in_one_block_are_checked_in_order() -> None:
    k = key("busy")
    chain = make_chain([k])
    ledger = InProcessLedger(chain)
    machine = Machine(k, ledger)
    results: list[str] = []

    @machine.on_start
    async def burst(m: Machine) -> None:
        first = asyncio.ensure_future(m.submit(send(GRID.did, 10)))
        second = asyncio.ensure_future(m.submit(send(GRID.did, 20)))
        results.extend(r.code for r in await asyncio.gather(first, second))

    run_fleet([machine], ledger, start_ms=START_MS, until_ms=START_MS + 1000)
    assert results == ["ok", "ok"]
    assert ledger.blocks_produced == 1
    assert chain.sequence(k.did) == 2


def test_refused_by_guardrails_is_explained_and_never_signed() -> None:
    k = key("capped")
    guard = {
        "window_blocks": 100,
        "limits": {"aut": {"per_tx": 500, "per_window": None, "cosign_above": None}},
        "allowlist": None,
    }
    chain = make_chain([k], guard)
    ledger = InProcessLedger(chain)
    machine = Machine(k, ledger)
    refusals: list[ActionRefused] = []

    @machine.on_start
    async def pay(m: Machine) -> None:
        try:
            await m.submit(send(GRID.did, 900))
        except ActionRefused as refusal:
            refusals.append(refusal)

    run_fleet([machine], ledger, start_ms=START_MS, until_ms=START_MS + 1000)
    (refusal,) = refusals
    assert refusal.code == "bank.per_tx_cap"
    assert "exceeds the per-transaction cap of 500 aut set by the owner's guardrails" in refusal.explanation
    assert "900 aut" in refusal.explanation
    assert ledger.txs_committed == 0 and chain.height == 1  # nothing submitted
    assert machine.sequence == 0 and machine.refusals == 1
    assert any("refused by the pre-check" in line for _, line in machine.log)


@dataclass(frozen=True)
class Ping:
    schema: ClassVar[str] = "autarky.test-ping/1"
    count: int
    note: str


def test_messages_between_machines_are_signed_and_verified() -> None:
    a, b = key("alice"), key("bob")
    chain = make_chain([a, b])
    ledger = InProcessLedger(chain)
    bus = InProcessBus(ledger, seed=7)
    alice, bob = Machine(a, ledger, bus=bus), Machine(b, ledger, bus=bus)
    got: list[tuple[str, str, int]] = []

    skill = Skill("ping")

    @skill.on_message(Ping)
    async def on_ping(m: Machine, sender: str, ping: Ping) -> None:
        got.append((m.name, sender, ping.count))
        if ping.count < 3:
            await m.send(sender, Ping(ping.count + 1, "back"))

    alice.include(skill)
    bob.include(skill)

    @alice.on_start
    async def start(m: Machine) -> None:
        await m.send(b.did, Ping(0, "hello"))

    run_fleet([alice, bob], ledger, start_ms=START_MS, until_ms=START_MS + 1000)
    assert [(count, sender) for _, sender, count in got] == [(0, a.did), (1, b.did), (2, a.did), (3, b.did)]
    assert bus.delivered == 4 and bus.refused == 0


def test_a_forged_message_is_refused() -> None:
    a, b, mallory = key("alice2"), key("bob2"), key("mallory")
    chain = make_chain([a, b])
    ledger = InProcessLedger(chain)
    bus = InProcessBus(ledger)
    bob = Machine(b, ledger, bus=bus)
    got: list[Any] = []

    @bob.on_message(Ping)
    def on_ping(m: Machine, sender: str, ping: Ping) -> None:
        got.append(ping)

    # mallory signs as alice: the kid names alice's DID with mallory's key, which alice does not list
    forger = Machine(mallory, ledger, did=a.did, bus=bus)

    async def main() -> None:
        ledger.attach()
        await bob.start()
        await forger.start()
        await forger.send(b.did, Ping(1, "forged"))
        await asyncio.sleep(1)

    run_virtual(main, start_ms=START_MS)
    assert got == [] and bus.refused == 1


def test_events_of_committed_blocks_reach_handlers() -> None:
    a = key("evented")
    chain = make_chain([a])
    ledger = InProcessLedger(chain)
    machine = Machine(a, ledger)
    seen: list[LedgerEvent] = []

    @machine.on_event("bank.transfer")
    async def transfer(m: Machine, event: LedgerEvent) -> None:
        seen.append(event)

    @machine.on_start
    async def pay(m: Machine) -> None:
        await m.submit(send(GRID.did, 5))

    run_fleet([machine], ledger, start_ms=START_MS, until_ms=START_MS + 1000)
    (event,) = seen
    assert event.get("amount") == 5 and event.get("to") == GRID.did and event.height == 1


def test_handler_errors_are_counted_and_the_machine_goes_on() -> None:
    a = key("buggy")
    chain = make_chain([a])
    ledger = InProcessLedger(chain)
    machine = Machine(a, ledger)
    calls: list[int] = []

    @machine.on_interval(period_ms=1000)
    def tick(m: Machine) -> None:
        calls.append(m.now_ms())
        raise RuntimeError("boom")

    fleet = Fleet([machine])

    async def main() -> None:
        await fleet.run_for(3000)

    run_virtual(main, start_ms=START_MS)
    assert calls == [START_MS, START_MS + 1000, START_MS + 2000]
    assert machine.failures == 3


def test_storage(tmp_path: Any) -> None:
    for storage in (MemoryStorage(), SqliteStorage(tmp_path, "m1")):
        storage.set("plan/1", {"wh": 5, "price": 2150})
        storage.set("plan/2", [1, 2])
        storage.set("other", b"x")
        storage.flush()
        assert storage.get("plan/1") == {"wh": 5, "price": 2150}
        assert storage.keys("plan/") == ["plan/1", "plan/2"]
        storage.delete("plan/1")
        assert storage.get("plan/1", "gone") == "gone"
    again = SqliteStorage(tmp_path, "m1")
    assert again.get("plan/2") == [1, 2]


def test_the_machine_signs_exactly_what_sign_tx_signs() -> None:
    from autarky.ledger.tx import decode_tx

    a, c = key("signer"), key("cosigner")
    ledger = InProcessLedger(make_chain([a]))
    machine = Machine(a, ledger)
    body = TxBody(ledger.chain_id, a.did, 3, 1, 0, (send(GRID.did, 7),), "memo")
    mine = machine._sign(body, body.encode(), [c])
    reference = sign_tx(body, a, [c])
    assert mine.raw == reference.raw and mine.hash == reference.hash
    assert decode_tx(mine.raw) == reference


class SlowCheckLedger(InProcessLedger):
    """A ledger whose pre-check yields to the event loop, as a node's HTTP API does."""

    async def check(self, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(0)
        return await super().check(*args, **kwargs)


def test_concurrent_submits_of_one_machine_never_share_a_sequence() -> None:
    """Two actions at once (a handler's and the anchoring record() starts) while the pre-check
    awaits: each transaction gets its own sequence and both commit."""
    k = key("concurrent")
    chain = make_chain([k])
    ledger = SlowCheckLedger(chain)
    machine = Machine(k, ledger)
    codes: list[str] = []

    @machine.on_interval(period_ms=HOUR_MS)
    async def burst(m: Machine) -> None:
        receipts = await asyncio.gather(*(m.submit(send(GRID.did, amount)) for amount in (1, 2, 3)))
        codes.extend(receipt.code for receipt in receipts)

    run_fleet([machine], ledger, start_ms=START_MS, until_ms=START_MS + 2 * HOUR_MS)
    assert codes == ["ok"] * 6
    assert chain.sequence(k.did) == 6 and machine.failures == 0
