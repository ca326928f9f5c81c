"""The ``nats`` engine end to end: real nats-servers (3, JetStream R3, file storage, sync always) and
three Autarky validator nodes in this process, each executing every block itself.

Checked here (issue 3, "Done when"): every node reaches the same state root and certifies it; a
server SIGKILLed during writes loses no acknowledged transaction and the cluster continues; a
stopped node catches up from the stream; a resubmission after the JetStream duplicate window is
applied once (R3); a log entry deleted from the stream stops a node that reads it; a node whose
state root disagrees stops accepting writes and says why. Node processes killed with SIGKILL are
exercised by ``test_cluster_cli.py`` and ``autarky bench cluster --fault kill-node``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import nats
import pytest

from autarky.crypto.keys import SigningKey
from autarky.engines.nats import NatsSettings
from autarky.engines.nats_server import LocalCluster
from autarky.engines.ordering import subject, verify_certificate
from autarky.ledger.executor import sequence_of
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.modules.bank import messages as bank_messages
from autarky.node.genesis import dev_genesis
from autarky.node.node import Node, NodeSettings, SubmitResult, init_data_dir
from autarky.node.snapshot import export_snapshot, import_snapshot

pytestmark = pytest.mark.timeout(180)

CHAIN_ID = "nats-test"


def _key(name: str) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(b"nats-engine-test/" + name.encode()).digest())


ACCOUNTS = [_key(f"account-{i}") for i in range(12)]
NODE_KEYS = [_key(f"node-{i}") for i in range(3)]


def _genesis() -> dict[str, Any]:
    return dev_genesis(
        CHAIN_ID,
        time_ms=1_767_225_600_000,
        allocations=[(key.did, "aut", 10**9) for key in ACCOUNTS],
        validators=[key.public_key.raw for key in NODE_KEYS],
    )


def _transfers(
    count: int, sequences: dict[str, int], senders: Sequence[SigningKey] = ACCOUNTS
) -> list[SignedTx]:
    txs = []
    for i in range(count):
        sender = senders[i % len(senders)]
        recipient = ACCOUNTS[(ACCOUNTS.index(sender) + 1) % len(ACCOUNTS)]
        sequence = sequences.get(sender.did, 0)
        sequences[sender.did] = sequence + 1
        body = TxBody(CHAIN_ID, sender.did, sequence, 1, 0, (bank_messages.send(recipient.did, "aut", 3),))
        txs.append(sign_tx(body, sender))
    return txs


def _retryable(result: SubmitResult) -> bool:
    return result.status == "rejected" and (result.code or "").startswith(("engine.", "mempool.full"))


def _home(tx: SignedTx) -> int:
    """The node a sender's transactions go to (a sender talks to one node)."""
    return [key.did for key in ACCOUNTS].index(tx.body.sender) % 3


class Harness:
    def __init__(self, base: Path, cluster: LocalCluster, duplicate_window_s: float) -> None:
        self.base = base
        self.cluster = cluster
        self.duplicate_window_s = duplicate_window_s
        self.nodes: list[Node] = []
        self.genesis = _genesis()

    def settings(self, index: int, name: str | None = None) -> NodeSettings:
        urls = list(self.cluster.urls)
        own = urls[index % len(urls)]
        nats_settings = NatsSettings(
            servers=(own, *[url for url in urls if url != own]),
            monitor_urls=tuple(self.cluster.monitor_urls),
            replicas=3,
            duplicate_window_s=self.duplicate_window_s,
            block_interval_ms=20,
            heartbeat_ms=500,
        )
        return NodeSettings(
            data_dir=self.base / (name or f"node{index}"),
            engine="nats",
            nats=nats_settings,
            verify_processes=0,
        )

    async def open(self, index: int, key: SigningKey | None, name: str | None = None) -> Node:
        settings = self.settings(index, name)
        if not (settings.data_dir / "ledger.sqlite").exists():
            init_data_dir(settings.data_dir, self.genesis, key)
        node = await Node.open(settings)
        await node.start()
        return node

    async def start(self) -> None:
        for index, key in enumerate(NODE_KEYS):
            self.nodes.append(await self.open(index, key))

    async def stop(self) -> None:
        for node in self.nodes:
            if node.started:
                await node.stop()

    async def submit(
        self, txs: Sequence[SignedTx], patience_s: float = 60.0, via: Sequence[int] | None = None
    ) -> list[SubmitResult]:
        """Each transaction to its sender's node, as a client would: what the cluster cannot take yet
        (``engine.unavailable`` while the stream elects a leader, say) is sent again, the same bytes,
        until it is acknowledged; the test then asserts that every one was. ``via`` limits the nodes
        a client uses (a client would stop sending to a node it knows is broken)."""
        homes = list(via) if via is not None else list(range(len(self.nodes)))
        results: dict[bytes, SubmitResult] = {}
        pending = list(txs)
        deadline = time.monotonic() + patience_s
        while True:
            by_node: dict[int, list[SignedTx]] = {}
            for tx in pending:
                by_node.setdefault(homes[_home(tx) % len(homes)], []).append(tx)
            answers = await asyncio.gather(
                *(self.nodes[i].submit_many([tx.raw for tx in part]) for i, part in by_node.items())
            )
            for part, part_answers in zip(by_node.values(), answers, strict=True):
                for tx, answer in zip(part, part_answers, strict=True):
                    results[tx.hash] = answer
            pending = [tx for tx in pending if _retryable(results[tx.hash])]
            if not pending or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.25)
        refused = [results[tx.hash] for tx in txs if not results[tx.hash].ok]
        assert not refused, f"{len(refused)} of {len(txs)} transactions never acknowledged: {refused[:3]}"
        return [results[tx.hash] for tx in txs]

    async def settle(self, txs: Sequence[SignedTx], nodes: Sequence[Node] | None = None) -> None:
        """Wait until every transaction is committed on every node, then until the nodes agree."""
        nodes = list(nodes or self.nodes)
        for index, node in enumerate(nodes):
            for number, tx in enumerate(txs):
                outcome = await node.wait_committed(tx.hash, 60)
                assert outcome.status == "committed", (
                    f"transaction {number} of {len(txs)} not committed on node {index}",
                    outcome,
                    {key: node.status().get(key) for key in ("height", "final_height", "fault", "engine")},
                )
        await self.converge(nodes)

    async def converge(self, nodes: Sequence[Node] | None = None) -> int:
        nodes = list(nodes or self.nodes)
        target = max(node.height for node in nodes)
        for node in nodes:
            await node.wait_for_height(target, 60)
        roots = {node.storage.header(target).state_root for node in nodes}  # type: ignore[union-attr]
        assert len(roots) == 1, f"state roots differ at height {target}"
        return target


def run(
    test: Callable[[Harness], Awaitable[None]], tmp_path: Path, duplicate_window_s: float = 120.0
) -> None:
    async def main() -> None:
        cluster = LocalCluster.create(tmp_path / "nats", 3)
        try:
            await cluster.start()
            harness = Harness(tmp_path, cluster, duplicate_window_s)
            try:
                await harness.start()
                await test(harness)
            finally:
                await harness.stop()
        finally:
            cluster.stop()

    asyncio.run(main())


def test_every_node_reaches_the_same_root_and_certifies_it(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        txs = _transfers(300, {})
        await h.submit(txs)
        await h.settle(txs)
        height = await h.converge()
        for node in h.nodes:
            assert await node.wait_final(height, 20), node.status()
            certificate = node.certificate(node.final_height)
            assert certificate is not None
            assert verify_certificate(certificate, CHAIN_ID, node.validators) == []
            header = node.storage.header(certificate.height)
            assert header is not None and header.state_root == certificate.state_root
            assert node.fault is None
        # Every transfer applied once: each sender's sequence counts its own transfers.
        state = h.nodes[0].state
        for key in ACCOUNTS:
            assert sequence_of(state, key.did) == 25
        assert h.nodes[0].app.invariants(state) == []

    run(body, tmp_path)


def _acknowledged(result: SubmitResult) -> bool:
    return result.status in ("accepted", "exists")


async def _stream_leader(h: Harness) -> Any:
    nc = await nats.connect(h.cluster.urls)
    try:
        info = await nc.jetstream().stream_info(h.nodes[0].engine.status()["stream"])
    finally:
        await nc.close()
    return h.cluster.server(info.cluster.leader)


@pytest.mark.parametrize("fault", ["kill", "pause"])
def test_the_stream_leader_killed_or_paused_during_writes_loses_no_acknowledged_transaction(
    tmp_path: Path, fault: str
) -> None:
    async def body(h: Harness) -> None:
        sequences: dict[str, int] = {}
        acknowledged: list[SignedTx] = []
        victim = None
        for round_number in range(12):
            txs = _transfers(60, sequences)
            # A transfer the cluster could not take is resubmitted (same bytes) until it is taken.
            await h.submit(txs)
            acknowledged.extend(txs)
            if round_number == 4:
                victim = await _stream_leader(h)
                victim.kill() if fault == "kill" else victim.pause()  # SIGKILL or SIGSTOP, mid-run
            if round_number == 9 and victim is not None:
                victim.start() if fault == "kill" else victim.resume()
        await h.settle(acknowledged)
        for node in h.nodes:
            assert node.fault is None, node.fault
        state = h.nodes[0].state
        assert sum(sequence_of(state, key.did) for key in ACCOUNTS) == len(acknowledged)

    run(body, tmp_path)


def test_a_stopped_node_catches_up_from_the_stream(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        sequences: dict[str, int] = {}
        first = _transfers(60, sequences)
        await h.submit(first)
        await h.settle(first)
        await h.nodes[2].stop()
        # Senders homed on node 2 go through node 0 meanwhile.
        later = _transfers(90, sequences)
        live = h.nodes[:2]
        answers = await asyncio.gather(*(live[min(_home(tx), 1)].submit(tx.raw) for tx in later))
        assert {a.status for a in answers} == {"accepted"}
        await h.settle(later, live)
        h.nodes[2] = await h.open(2, None)
        await h.settle(later)
        height = await h.converge()
        assert height >= live[0].height

    run(body, tmp_path)


def test_a_node_started_from_a_snapshot_continues_from_the_stream(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        sequences: dict[str, int] = {}
        first = _transfers(60, sequences)
        await h.submit(first)
        await h.settle(first)
        snapshot = tmp_path / "snapshot.cbor"
        info = await asyncio.to_thread(export_snapshot, h.nodes[0].settings.data_dir, snapshot)
        imported = await asyncio.to_thread(import_snapshot, snapshot, tmp_path / "from-snapshot")
        assert imported.height == info.height
        later = _transfers(60, sequences)
        await h.submit(later)
        newcomer = await h.open(1, None, name="from-snapshot")
        h.nodes.append(newcomer)
        await h.settle(later)
        assert newcomer.fault is None
        # De-duplication survives the snapshot: a transfer from before it answers `exists`.
        again = await newcomer.submit(first[0].raw, wait=True)
        assert again.status == "exists"

    run(body, tmp_path)


def test_a_resubmission_after_the_duplicate_window_is_applied_once(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        (tx,) = _transfers(1, {})
        first = await h.nodes[0].submit(tx.raw, wait=True)
        assert first.status == "committed" and first.code is None
        await asyncio.sleep(1.5)  # past the stream's duplicate window (1 s here)
        # Straight into the stream, as a client of an edge node coming back online would.
        nc = await nats.connect(h.cluster.urls[1])
        try:
            ack = await nc.jetstream().publish(
                subject(CHAIN_ID, "tx"), tx.raw, headers={"Nats-Msg-Id": tx.hash.hex()}
            )
            assert not ack.duplicate, "JetStream's window is over: the entry is appended again"
        finally:
            await nc.close()
        (follow,) = _transfers(1, {tx.body.sender: 1})
        await h.nodes[0].submit(follow.raw, wait=True)
        await h.settle([follow])
        for node in h.nodes:
            record = node.tx(tx.hash)
            assert record is not None and record.height == first.height
            assert sequence_of(node.state, tx.body.sender) == 2
        again = await h.nodes[1].submit(tx.raw)
        assert again.status == "exists" and again.height == first.height

    run(body, tmp_path, duplicate_window_s=1.0)


def test_a_deleted_log_entry_stops_a_node_that_reads_it(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        txs = _transfers(30, {})
        await h.submit(txs)
        await h.settle(txs)
        nc = await nats.connect(h.cluster.urls[0])
        try:
            js = nc.jetstream()
            stream = h.nodes[0].engine.status()["stream"]
            message = await js.get_last_msg(stream, subject(CHAIN_ID, "tx"))
            await js.delete_msg(stream, message.seq)
        finally:
            await nc.close()
        # A new node (not a validator) joins from genesis and reads the log from the start.
        newcomer = await h.open(0, None, name="newcomer")
        h.nodes.append(newcomer)
        for _ in range(100):
            if newcomer.fault is not None:
                break
            await asyncio.sleep(0.1)
        assert newcomer.fault is not None and "log integrity" in newcomer.fault
        assert "missing, altered or out of order" in newcomer.fault
        assert newcomer.status()["fault"] == newcomer.fault
        with pytest.raises(Exception, match="stopped accepting writes"):
            await newcomer.submit(_transfers(1, {ACCOUNTS[0].did: 3})[0].raw)

    run(body, tmp_path)


def test_a_node_with_a_wrong_state_root_is_detected_and_reported(tmp_path: Path) -> None:
    async def body(h: Harness) -> None:
        wrong = h.nodes[2]
        validators_module = wrong.app.module("validators")

        def sabotage(state: Any, env: Any) -> list[Any]:
            state.set("sabotage/height", env.height.to_bytes(8, "big"))  # a write no other node makes
            return []

        validators_module.end_block = sabotage  # type: ignore[method-assign]
        txs = _transfers(30, {})
        await h.submit(txs)
        for _ in range(100):
            if wrong.fault is not None:
                break
            await asyncio.sleep(0.1)
        assert wrong.fault is not None and "state diverged" in wrong.fault, wrong.status()
        assert wrong.status()["engine"]["halted"] is not None
        assert h.nodes[0].fault is None and h.nodes[1].fault is None
        with pytest.raises(Exception, match="stopped accepting writes"):
            await wrong.submit(txs[0].raw)

    run(body, tmp_path)
