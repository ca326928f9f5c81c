"""R3: idempotence. The same signed transaction submitted k times is applied exactly once.

A transaction is identified by the SHA-256 of its wire bytes. The node de-duplicates by that hash
permanently (the transaction index in SQLite), so a resubmission, whether it comes in sequence or
concurrently, before or after the commit, or after a restart, answers ``exists`` and, once the
original is committed, carries the original receipt. A *different* transaction with the same
sequence (other bytes, other hash) is not a duplicate: the sequence number makes sure at most one
of the two applies. It is refused ``core.bad_sequence`` at admission, and if an orderer puts both in
a block anyway, the second fails there with ``core.bad_sequence`` and changes nothing.

Checked at the node level (``Node.submit`` on the node's own loop), over real HTTP, and in the
executor through the in-memory ``Chain`` harness.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from autarky.crypto.keys import SigningKey
from autarky.engines.base import OrderedBatch
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.modules.bank import keeper
from autarky.modules.bank import messages as bank_messages
from autarky.modules.harness import Chain
from autarky.node.node import Node, NodeSettings, SubmitResult, init_data_dir
from autarky.web.testing import CHAIN_ID, LiveNode, TestKeys, standard_genesis

K = 5
FEE = 1


def transfer(key: SigningKey, to: str, amount: int, sequence: int, chain_id: str = CHAIN_ID) -> SignedTx:
    body = TxBody(chain_id, key.did, sequence, FEE, 0, (bank_messages.send(to, "aut", amount),))
    return sign_tx(body, key)


def balance(node: Node, did: str) -> int:
    return keeper.balance(node.state, did, "aut")


def committed_copies(node: Node, tx_hash: bytes) -> int:
    """How many receipts in the stored chain carry ``tx_hash`` (each stored block read once)."""
    return sum(
        1 for block in node.storage.iter_blocks(1) for receipt in block.receipts if receipt.tx_hash == tx_hash
    )


def assert_exists_with(result: SubmitResult, original: SubmitResult) -> None:
    assert result.status == "exists", result
    assert result.tx_hash == original.tx_hash
    assert result.height == original.height
    assert result.receipt == original.receipt


# --- node level ---------------------------------------------------------------------------------------


def test_sequential_resubmissions_apply_once_and_answer_exists(start_node: Callable[..., LiveNode]) -> None:
    live = start_node()
    keys = TestKeys.create()
    node = live.node
    alice_before, bob_before = (
        live.call(balance, node, keys.alice.did),
        live.call(balance, node, keys.bob.did),
    )
    tx = transfer(keys.alice, keys.bob.did, 7, live.sequence(keys.alice.did))

    first = live.run(node.submit(tx.raw, wait=True))
    assert first.status == "committed" and first.code is None and first.receipt is not None
    for _ in range(K):
        assert_exists_with(live.run(node.submit(tx.raw, wait=True)), first)
        assert_exists_with(live.run(node.submit(tx.raw, wait=False)), first)

    assert live.call(balance, node, keys.alice.did) == alice_before - 7 - FEE
    assert live.call(balance, node, keys.bob.did) == bob_before + 7
    assert live.call(committed_copies, node, tx.hash) == 1
    assert live.sequence(keys.alice.did) == tx.body.sequence + 1


def test_submit_many_of_known_transactions_answers_exists(start_node: Callable[..., LiveNode]) -> None:
    """A batch in which no transaction needs a signature check (all known) still gets one answer each."""
    live = start_node()
    keys = TestKeys.create()
    node = live.node
    tx = transfer(keys.alice, keys.bob.did, 5, live.sequence(keys.alice.did))
    first = live.run(node.submit(tx.raw, wait=True))
    assert first.status == "committed"

    answers = live.run(node.submit_many([tx.raw] * K))
    assert len(answers) == K
    for answer in answers:
        assert_exists_with(answer, first)
    fresh = transfer(keys.alice, keys.bob.did, 6, live.sequence(keys.alice.did))
    mixed = live.run(node.submit_many([tx.raw, fresh.raw, tx.raw]))
    assert [answer.status for answer in mixed] == ["exists", "accepted", "exists"]
    assert live.run(node.wait_committed(fresh.hash)).status == "committed"
    assert live.call(committed_copies, node, tx.hash) == 1


def test_concurrent_submissions_apply_once(start_node: Callable[..., LiveNode]) -> None:
    # A long block interval keeps the transaction pending while the copies arrive.
    live = start_node(block_interval_ms=200)
    keys = TestKeys.create()
    node = live.node
    bob_before = live.call(balance, node, keys.bob.did)
    tx = transfer(keys.alice, keys.bob.did, 11, live.sequence(keys.alice.did))

    async def submit_k_times() -> list[SubmitResult]:
        return list(await asyncio.gather(*(node.submit(tx.raw, wait=True) for _ in range(K))))

    results = live.run(submit_k_times())
    statuses = sorted(result.status for result in results)
    assert statuses == ["committed"] + ["exists"] * (K - 1), statuses
    live.wait_for_height(live.height() + 1)
    assert live.call(committed_copies, node, tx.hash) == 1
    assert live.call(balance, node, keys.bob.did) == bob_before + 11


def test_a_resubmission_while_pending_waits_for_the_original_receipt(
    start_node: Callable[..., LiveNode],
) -> None:
    """With ``wait=True`` a copy that arrives while the original is pending answers after the commit.

    Answering ``exists`` at once (before the block is durable) would tell a client that retried
    after a dropped connection "done" for a transaction that a crash in the next milliseconds loses:
    over HTTP that answer is a 200, the same as a committed one.
    """
    live = start_node(block_interval_ms=200)
    keys = TestKeys.create()
    node = live.node
    tx = transfer(keys.alice, keys.bob.did, 13, live.sequence(keys.alice.did))

    async def original_then_copy() -> tuple[SubmitResult, SubmitResult]:
        original = asyncio.create_task(node.submit(tx.raw, wait=True))
        while tx.hash not in node.mempool:
            await asyncio.sleep(0.001)
        copy = await node.submit(tx.raw, wait=True)
        return await original, copy

    original, copy = live.run(original_then_copy())
    assert original.status == "committed"
    assert_exists_with(copy, original)


def test_resubmission_after_a_restart_answers_exists_with_the_original_receipt(tmp_path: Path) -> None:
    keys = TestKeys.create()
    data_dir = tmp_path / "node"
    init_data_dir(data_dir, standard_genesis(keys))
    settings = NodeSettings(data_dir, block_interval_ms=5)
    tx = transfer(keys.alice, keys.bob.did, 17, 0)

    async def first_life() -> tuple[SubmitResult, int]:
        async with await Node.open(settings) as node:
            result = await node.submit(tx.raw, wait=True)
            return result, balance(node, keys.bob.did)

    async def second_life() -> tuple[list[SubmitResult], int, int]:
        async with await Node.open(settings) as node:
            again = [await node.submit(tx.raw, wait=True) for _ in range(K)]
            again += await asyncio.gather(*(node.submit(tx.raw, wait=True) for _ in range(K)))
            await node.wait_for_height(node.height + 2)
            return again, balance(node, keys.bob.did), committed_copies(node, tx.hash)

    original, bob_after_first = asyncio.run(first_life())
    assert original.status == "committed"
    again, bob_after_second, copies = asyncio.run(second_life())
    for result in again:
        assert_exists_with(result, original)
    assert bob_after_second == bob_after_first
    assert copies == 1


def test_same_sequence_other_bytes_is_refused_bad_sequence_at_admission(
    start_node: Callable[..., LiveNode],
) -> None:
    live = start_node(block_interval_ms=200)
    keys = TestKeys.create()
    node = live.node
    sequence = live.sequence(keys.alice.did)
    first = transfer(keys.alice, keys.bob.did, 1, sequence)
    rival = transfer(keys.alice, keys.bob.did, 2, sequence)
    assert first.hash != rival.hash

    pending = live.run(node.submit(first.raw, wait=False))
    assert pending.status == "accepted"
    refused_while_pending = live.run(node.submit(rival.raw, wait=True))
    assert (refused_while_pending.status, refused_while_pending.code) == ("rejected", "core.bad_sequence")

    committed = live.run(node.wait_committed(first.hash))
    assert committed.status == "committed" and committed.code is None
    refused_after = live.run(node.submit(rival.raw, wait=True))
    assert (refused_after.status, refused_after.code) == ("rejected", "core.bad_sequence")
    assert live.call(node.tx, rival.hash) is None
    assert live.sequence(keys.alice.did) == sequence + 1


def test_an_orderer_that_repeats_a_transaction_cannot_apply_it_twice(tmp_path: Path) -> None:
    """``apply_batch`` executes what the orderer delivers; a repeated transaction fails its sequence."""
    keys = TestKeys.create()
    data_dir = tmp_path / "node"
    init_data_dir(data_dir, standard_genesis(keys))
    tx = transfer(keys.alice, keys.bob.did, 19, 0)
    rival = transfer(keys.alice, keys.bob.did, 20, 0)

    async def deliver() -> dict[str, Any]:
        node = await Node.open(NodeSettings(data_dir))  # not started: this test is the orderer
        try:
            bob_before = balance(node, keys.bob.did)
            time_ms = node.header.time_ms + 1000
            await node.apply_batch(OrderedBatch(node.height + 1, time_ms, [tx, tx, rival]))
            await node.apply_batch(OrderedBatch(node.height + 1, time_ms + 1000, [tx]))
            record = node.tx(tx.hash)
            assert record is not None
            again = await node.submit(tx.raw, wait=True)
            return {
                "first": node.block(1),
                "second": node.block(2),
                "record": record,
                "again": again,
                "bob_gain": balance(node, keys.bob.did) - bob_before,
                "sequence": node.sequence(keys.alice.did),
            }
        finally:
            await node.stop()

    seen = asyncio.run(deliver())
    codes = [receipt.code for receipt in seen["first"].receipts]
    assert codes == ["ok", "core.bad_sequence", "core.bad_sequence"]
    assert [receipt.code for receipt in seen["second"].receipts] == ["core.bad_sequence"]
    assert (seen["record"].height, seen["record"].receipt.index, seen["record"].receipt.code) == (1, 0, "ok")
    assert seen["again"].status == "exists" and seen["again"].receipt == seen["record"].receipt
    assert seen["bob_gain"] == 19
    assert seen["sequence"] == 1


# --- the executor: both transactions in one block -----------------------------------------------------


def test_in_a_block_the_second_of_two_same_sequence_transactions_fails_and_changes_nothing() -> None:
    keys = TestKeys.create()
    genesis = standard_genesis(keys)
    first = transfer(keys.alice, keys.bob.did, 3, 0)
    rival = transfer(keys.alice, keys.carol.did, 4, 0)

    both = Chain.from_genesis(genesis)
    receipts = both.execute([first.raw, rival.raw, first.raw])
    assert [receipt.code for receipt in receipts] == ["ok", "core.bad_sequence", "core.bad_sequence"]
    assert [receipt.tx_hash for receipt in receipts] == [first.hash, rival.hash, first.hash]

    only_first = Chain.from_genesis(genesis)
    assert only_first.execute([first.raw])[0].ok
    assert both.root == only_first.root  # the refused copies wrote nothing, not even a fee
    assert both.sequence(keys.alice.did) == 1
    assert keeper.balance(both.state, keys.carol.did, "aut") == keeper.balance(
        Chain.from_genesis(genesis).state, keys.carol.did, "aut"
    )


# --- over HTTP ----------------------------------------------------------------------------------------


def test_over_http_k_submissions_apply_once(start_node: Callable[..., LiveNode]) -> None:
    live = start_node()
    keys = TestKeys.create()
    bob_before = live.call(balance, live.node, keys.bob.did)
    tx = live.transfer(keys.alice, keys.bob.did, 23)

    first = live.submit(tx)
    assert first.status_code == 200 and first.json()["status"] == "committed"
    for _ in range(K):
        again = live.submit(tx)
        assert again.status_code == 200
        assert again.json()["status"] == "exists"
        assert again.json()["receipt"] == first.json()["receipt"]
        assert again.json()["height"] == first.json()["height"]
    assert live.call(balance, live.node, keys.bob.did) == bob_before + 23
    assert live.call(committed_copies, live.node, tx.hash) == 1


def test_over_http_concurrent_submissions_apply_once(start_node: Callable[..., LiveNode]) -> None:
    live = start_node(block_interval_ms=100)
    keys = TestKeys.create()
    bob_before = live.call(balance, live.node, keys.bob.did)
    tx = live.transfer(keys.alice, keys.bob.did, 29)
    live.http  # noqa: B018 - create the shared client before the threads use it

    with ThreadPoolExecutor(K) as pool:
        answers = list(pool.map(lambda _: live.submit(tx), range(K)))
    assert all(answer.status_code == 200 for answer in answers), [a.text for a in answers]
    statuses = sorted(answer.json()["status"] for answer in answers)
    assert statuses == ["committed"] + ["exists"] * (K - 1)
    live.wait_for_height(live.height() + 1)
    assert live.call(balance, live.node, keys.bob.did) == bob_before + 29
    assert live.call(committed_copies, live.node, tx.hash) == 1
    later = live.submit(tx)
    committed = next(answer.json() for answer in answers if answer.json()["status"] == "committed")
    assert later.json()["status"] == "exists" and later.json()["receipt"] == committed["receipt"]


def test_over_http_same_sequence_other_bytes_is_refused(start_node: Callable[..., LiveNode]) -> None:
    live = start_node()
    keys = TestKeys.create()
    sequence = live.sequence(keys.alice.did)
    first = live.transfer(keys.alice, keys.bob.did, 31, sequence=sequence)
    rival = live.transfer(keys.alice, keys.bob.did, 32, sequence=sequence)
    assert live.submit(first).json()["status"] == "committed"
    refused = live.submit(rival)
    assert refused.status_code == 400
    assert refused.json()["code"] == "core.bad_sequence"
    assert refused.json()["error"]["code"] == "core.bad_sequence"
