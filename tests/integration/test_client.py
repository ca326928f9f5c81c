"""The typed async client, against a real node: over HTTP, and in-process through the transport seam.

Async code runs with ``asyncio.run`` in the test thread; the node lives on its own loop (conftest.py).
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from autarky.crypto.keys import SigningKey
from autarky.modules.bank import messages as bank_messages
from autarky.node.node import Node, NodeSettings, init_data_dir
from autarky.web import (
    AutarkyClient,
    ClientError,
    NotFound,
    Rejected,
    Unavailable,
    create_app,
    verify_proof,
)
from autarky.web.testing import API_KEY, LiveNode, TestKeys, standard_genesis

T = TypeVar("T")


def run_with_client(live: LiveNode, use: Callable[[AutarkyClient], Awaitable[T]], **kwargs: object) -> T:
    async def main() -> T:
        async with AutarkyClient(live.url, **kwargs) as client:  # type: ignore[arg-type]
            return await use(client)

    return asyncio.run(main())


def test_send_commits_and_the_reads_agree(live_node: LiveNode, test_keys: TestKeys) -> None:
    recipient = SigningKey.generate().did

    async def use(client: AutarkyClient) -> None:
        before = await client.account(test_keys.bob.did)
        result = await client.send(test_keys.bob, recipient, "aut", 40)
        assert result.status == "committed" and result.ok and result.committed
        assert await client.balances(recipient) == {"aut": 40}
        after = await client.account(test_keys.bob.did)
        assert after.sequence == before.sequence + 1
        assert after.balances["aut"] == before.balances["aut"] - 41

        record = await client.tx(result.tx_hash)
        assert record["height"] == result.height and record["tx"]["sender"] == test_keys.bob.did
        block = await client.block(result.height or 0)
        assert result.tx_hash in block["txs"]
        latest = await client.block("latest")
        assert latest["header"]["height"] >= (result.height or 0)
        page = await client.blocks(limit=3)
        heights = [header["height"] for header in page["blocks"]]
        assert heights == list(range(heights[0], max(-1, heights[0] - 3), -1))

    run_with_client(live_node, use)


def test_submit_messages_with_several_messages_and_wait_false(
    live_node: LiveNode, test_keys: TestKeys
) -> None:
    first, second = SigningKey.generate().did, SigningKey.generate().did

    async def use(client: AutarkyClient) -> None:
        messages = [bank_messages.send(first, "aut", 3), bank_messages.send(second, "aut", 4)]
        result = await client.submit_messages(test_keys.faucet, messages, fee=2, wait=False)
        assert result.status == "accepted" and result.ok and not result.committed
        # A second transaction right away: the sequence counts the pending one.
        again = await client.send(test_keys.faucet, first, "aut", 1)
        assert again.status == "committed"
        assert await client.balances(first) == {"aut": 4}
        assert await client.balances(second) == {"aut": 4}

    run_with_client(live_node, use)


def test_a_committed_but_failed_transaction_is_not_an_exception(
    live_node: LiveNode, test_keys: TestKeys
) -> None:
    async def use(client: AutarkyClient) -> None:
        result = await client.send(test_keys.carol, SigningKey.generate().did, "aut", 10**12)
        assert result.committed and not result.ok
        assert result.code == "bank.insufficient_funds"

    run_with_client(live_node, use)


def test_proofs_and_did_documents(live_node: LiveNode, test_keys: TestKeys) -> None:
    async def use(client: AutarkyClient) -> None:
        node_key = (await client.status())["node_key"]
        present = await client.proof(f"bank/bal/{test_keys.battery.did}/kwh")
        assert present.value is not None and client.verify_proof(present, node_key)
        absent = await client.proof("bank/bal/nobody/aut")
        assert absent.value is None and verify_proof(absent, node_key, chain_id="test")
        document = await client.did_document(test_keys.solar.did)
        assert document["controller"] == test_keys.alice.did
        machines = await client.machines()
        assert machines["total"] == 3

    run_with_client(live_node, use)


def test_typed_errors(live_node: LiveNode, test_keys: TestKeys) -> None:
    async def use(client: AutarkyClient) -> None:
        with pytest.raises(NotFound) as not_found:
            await client.block(10**12)
        assert not_found.value.code == "api.not_found" and not_found.value.status == 404
        with pytest.raises(NotFound):
            await client.tx("00" * 32)
        with pytest.raises(Rejected) as bad_did:
            await client.account("did:web:example.com")
        assert bad_did.value.code == "api.invalid_did"
        with pytest.raises(Rejected) as malformed:
            await client.submit(b"\x00\x01")
        assert malformed.value.code == "core.malformed" and malformed.value.status == 400
        with pytest.raises(Rejected) as unauthorised:
            await client.admin_checkpoint()
        assert unauthorised.value.code == "api.unauthorized"
        assert issubclass(Rejected, ClientError) and issubclass(Unavailable, ClientError)

    run_with_client(live_node, use)


def test_a_resubmission_through_the_client_answers_exists(live_node: LiveNode, test_keys: TestKeys) -> None:
    tx = live_node.transfer(test_keys.faucet, SigningKey.generate().did, 9)

    async def use(client: AutarkyClient) -> None:
        first = await client.submit(tx)
        again = await client.submit(tx.raw)
        assert (first.status, again.status) == ("committed", "exists")
        assert again.receipt == first.receipt

    run_with_client(live_node, use)


def test_admin_with_the_key(live_node: LiveNode) -> None:
    answer = run_with_client(live_node, lambda client: client.admin_checkpoint(), api_key=API_KEY)
    assert answer["status"] == "ok"


def test_events_iterate_hello_block_and_tx(live_node: LiveNode, test_keys: TestKeys) -> None:
    recipient = SigningKey.generate().did

    async def use(client: AutarkyClient) -> list[str]:
        seen: list[str] = []
        sent = None
        async for event in client.events():
            seen.append(event["type"])
            if event["type"] == "hello":
                sent = await client.send(test_keys.faucet, recipient, "aut", 1, wait=False)
            elif event["type"] == "tx" and sent is not None and event["tx_hash"] == sent.tx_hash:
                break
        return seen

    seen = asyncio.run(asyncio.wait_for(_with_client(live_node, use), 30))
    assert seen[0] == "hello" and "block" in seen and seen[-1] == "tx"


async def _with_client(live: LiveNode, use: Callable[[AutarkyClient], Awaitable[T]]) -> T:
    async with AutarkyClient(live.url) as client:
        return await use(client)


def test_an_unreachable_node_is_unavailable() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, not listening: connections are refused

        async def main() -> None:
            async with AutarkyClient(f"http://127.0.0.1:{port}", timeout=5) as client:
                with pytest.raises(Unavailable) as unreachable:
                    await client.status()
                assert unreachable.value.code == "client.unreachable"

        asyncio.run(main())


def test_the_client_works_in_process_through_the_asgi_transport(tmp_path: Path, test_keys: TestKeys) -> None:
    """The transport seam: the same client, no socket, the node on the test's own loop."""

    async def main() -> None:
        init_data_dir(tmp_path / "node", standard_genesis(test_keys))
        node = await Node.open(NodeSettings(tmp_path / "node", block_interval_ms=5))
        await node.start()
        try:
            transport = httpx.ASGITransport(app=create_app(node))
            async with AutarkyClient("http://autarky.test", transport=transport) as client:
                status = await client.status()
                assert status["chain_id"] == "test"
                result = await client.send(test_keys.alice, test_keys.carol.did, "aut", 5)
                assert result.status == "committed"
                assert (await client.balances(test_keys.carol.did))["aut"] == 1_005
                answer = await client.proof(f"bank/bal/{test_keys.carol.did}/aut")
                assert verify_proof(answer, status["node_key"])
        finally:
            await node.stop()

    asyncio.run(main())
