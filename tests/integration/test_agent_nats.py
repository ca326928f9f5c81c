"""Machines exchanging signed messages over a real nats-server (``autarky.agent.nats_bus.NatsBus``),
verified against the keys on an in-process ledger; a forged sender is refused."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from autarky.agent import InProcessLedger, Machine
from autarky.agent.bus import ChainDirectory
from autarky.agent.nats_bus import NatsBus
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.engines.nats_server import LocalCluster
from autarky.modules.harness import Chain


def key(label: str) -> SigningKey:
    return SigningKey.from_seed(sha256(f"agent-nats/{label}".encode()))


OWNER, PUMP, SENSOR, MALLORY = (key(n) for n in ("owner", "pump", "sensor", "mallory"))


@dataclass(frozen=True)
class Reading:
    schema: ClassVar[str] = "autarky.test-reading/1"
    moisture_permille: int
    seq: int


@pytest.fixture(scope="module")
def nats_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    cluster = LocalCluster.create(tmp_path_factory.mktemp("agent-nats"), 1, name_prefix="agent")
    asyncio.run(cluster.start())
    try:
        yield cluster.urls[0]
    finally:
        cluster.stop()


def test_machines_talk_over_nats(nats_url: str) -> None:
    genesis = {
        "chain_id": "agent-nats",
        "genesis_time_ms": 0,
        "app_state": {
            "identity": {
                "accounts": [{"did": k.did, "owner": OWNER.did, "kind": "device"} for k in (PUMP, SENSOR)]
            }
        },
    }
    ledger = InProcessLedger(Chain.from_genesis(genesis))
    bus = NatsBus(nats_url, ChainDirectory(ledger))
    pump = Machine(PUMP, ledger, bus=bus)
    sensor = Machine(SENSOR, ledger, bus=bus)
    forger = Machine(MALLORY, ledger, did=SENSOR.did, bus=bus)  # signs as the sensor with its own key
    got: list[tuple[str, int, int]] = []
    replies: list[int] = []

    @pump.on_message(Reading)
    async def on_reading(m: Machine, sender: str, reading: Reading) -> None:
        got.append((sender, reading.moisture_permille, reading.seq))
        await m.send(sender, Reading(0, reading.seq))  # an acknowledgement back

    @sensor.on_message(Reading)
    def on_ack(m: Machine, sender: str, reading: Reading) -> None:
        replies.append(reading.seq)

    async def main() -> None:
        for machine in (pump, sensor, forger):
            await machine.start()
        try:
            await forger.send(PUMP.did, Reading(999, 99))
            for seq in range(3):
                await sensor.send(PUMP.did, Reading(310 + seq, seq))
            for _ in range(500):
                if len(replies) == 3:
                    break
                await asyncio.sleep(0.01)
        finally:
            for machine in (pump, sensor, forger):
                await machine.stop()
            await bus.close()

    asyncio.run(main())
    assert sorted(got) == [(SENSOR.did, 310, 0), (SENSOR.did, 311, 1), (SENSOR.did, 312, 2)]
    assert sorted(replies) == [0, 1, 2]
    assert bus.delivered == 6


def test_refusals_are_counted(nats_url: str) -> None:
    genesis: dict[str, Any] = {"chain_id": "agent-nats", "genesis_time_ms": 0, "app_state": {}}
    ledger = InProcessLedger(Chain.from_genesis(genesis))
    bus = NatsBus(nats_url, ChainDirectory(ledger))
    pump = Machine(PUMP, ledger, bus=bus)
    forger = Machine(MALLORY, ledger, did=SENSOR.did, bus=bus)
    got: list[Reading] = []

    @pump.on_message(Reading)
    def on_reading(m: Machine, sender: str, reading: Reading) -> None:
        got.append(reading)

    async def main() -> dict[str, int]:
        await pump.start()
        await forger.start()
        try:
            await forger.send(PUMP.did, Reading(1, 1))
            for _ in range(500):
                if bus.refused():
                    break
                await asyncio.sleep(0.01)
            return dict(bus.refused())
        finally:
            await pump.stop()
            await forger.stop()
            await bus.close()

    refused = asyncio.run(main())
    assert got == [] and refused == {"msg.key_revoked": 1}
