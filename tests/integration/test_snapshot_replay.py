"""C5 snapshots and replay: a node rebuilt from genesis, or from a snapshot plus new blocks, reaches
the same state root; a damaged snapshot or a damaged database is refused, never trusted.

One node (checkpointing every 4 blocks, so its state is split between the base table and the
log) runs blocks with varied transactions: successes, failures inside a block (insufficient funds,
self transfer, guardrail cap, frozen wallet) and refusals an orderer might still deliver (a
signature from another domain, another chain). Then:

* replaying its blocks from genesis (the CLI's replay and the in-memory ``Chain``) reproduces every
  header hash and the final state root;
* a snapshot exported from it and imported into a new data directory opens as a node; fed the
  same ordered batches (``apply_batch`` with identical times), both nodes produce identical
  blocks;
* a snapshot with a changed state value, a changed state root, a dropped item or a forged
  signature is refused before anything is written;
* a database whose ``state`` table was edited behind the node's back (after a checkpoint) refuses
  to open with ``CorruptState``.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from autarky.crypto.domains import Domain
from autarky.crypto.keys import SigningKey
from autarky.encoding import canonical_decode, canonical_encode
from autarky.engines.base import OrderedBatch
from autarky.ledger.block import BlockHeader
from autarky.ledger.tx import SignedTx, TxBody, decode_tx, encode_signed, sign_tx
from autarky.modules.bank import messages as bank
from autarky.modules.harness import Chain
from autarky.modules.identity import messages as identity
from autarky.node.errors import ConfigError, CorruptState
from autarky.node.node import DB_FILE, GENESIS_FILE, Node, NodeSettings, init_data_dir
from autarky.node.replay import replay_data_dir
from autarky.node.snapshot import SnapshotError, export_snapshot, import_snapshot, read_snapshot
from autarky.node.storage import Storage
from autarky.web.testing import CHAIN_ID, TestKeys, standard_genesis

KEYS = TestKeys.create()
NEWCOMER = SigningKey.from_seed(b"\x5a" * 32)
GUARDRAILS = {
    "window_blocks": 10,
    "limits": {"aut": {"per_tx": 100, "per_window": 250, "cosign_above": 60}},
    "allowlist": None,
}


def settings(data_dir: Path) -> NodeSettings:
    return NodeSettings(data_dir, block_interval_ms=5, checkpoint_blocks=4)


class Signer:
    """Signs transactions with consecutive sequences per key, starting from given sequences."""

    def __init__(self, start: dict[str, int] | None = None) -> None:
        self.next: dict[str, int] = dict(start or {})

    def sign(self, key: SigningKey, *messages: dict[str, Any], fee: int = 1) -> SignedTx:
        sequence = self.next.get(key.did, 0)
        self.next[key.did] = sequence + 1
        return sign_tx(TxBody(CHAIN_ID, key.did, sequence, fee, 0, messages), key)


Spec = tuple[SigningKey, tuple[dict[str, Any], ...]]


def varied_rounds() -> list[list[Spec]]:
    """Rounds of (sender, messages); a round's transactions are admitted in order and share blocks."""
    alice, bob, carol, battery, solar = KEYS.alice, KEYS.bob, KEYS.carol, KEYS.battery, KEYS.solar
    return [
        [
            (alice, (bank.send(bob.did, "aut", 100),)),
            (carol, (bank.send(bob.did, "aut", 10**9),)),  # bank.insufficient_funds
            (bob, (bank.send(bob.did, "aut", 1),)),  # bank.self_transfer
            (solar, (bank.send(carol.did, "aut", 7),)),
        ],
        [
            (alice, (bank.set_guardrails(battery.did, GUARDRAILS),)),
            (battery, (bank.send(bob.did, "kwh", 3),)),
            (NEWCOMER, (identity.register(NEWCOMER.did, "meter", "Acme", "M-1"),)),  # holds no funds
        ],
        [
            (battery, (bank.send(bob.did, "aut", 1000),)),  # bank.per_tx_cap
            (alice, (bank.freeze(battery.did),)),
            (battery, (bank.send(bob.did, "aut", 5),)),  # bank.account_frozen (in ante)
        ],
        [
            (alice, (bank.unfreeze(battery.did),)),
            (bob, (bank.send(alice.did, "aut", 50), bank.send(carol.did, "aut", 2**64 - 1))),
        ],
        [(battery, (bank.send(bob.did, "aut", 40),)), (alice, (bank.sweep(solar.did, None),))],
    ]


def refusals_an_orderer_might_deliver(node: Node) -> list[SignedTx]:
    """Transactions a node would not admit but another orderer could still put in a block."""
    alice, bob = KEYS.alice, KEYS.bob
    body = TxBody(CHAIN_ID, alice.did, node.sequence(alice.did), 1, 0, (bank.send(bob.did, "aut", 1),))
    body_bytes = body.encode()
    as_message = alice.sign(Domain.MESSAGE, body_bytes)
    wrong_domain = decode_tx(encode_signed(body_bytes, [(alice.public_key.raw, as_message)]))
    other_chain = sign_tx(TxBody("other", bob.did, 0, 1, 0, (bank.send(alice.did, "aut", 1),)), bob)
    stale = sign_tx(TxBody(CHAIN_ID, alice.did, 0, 1, 0, (bank.send(bob.did, "aut", 2),)), alice)
    return [wrong_domain, other_chain, stale]


async def run_first_node(data_dir: Path) -> dict[str, int]:
    """Run the varied rounds, then one block of refusals; return every key's next sequence."""
    async with await Node.open(settings(data_dir)) as node:
        for round_specs in varied_rounds():
            hashes = []
            for key, messages in round_specs:
                tx = sign_tx(TxBody(CHAIN_ID, key.did, node.sequence(key.did), 1, 0, messages), key)
                admitted = await node.submit(tx.raw)
                assert admitted.status == "accepted", admitted
                hashes.append(tx.hash)
            results = await asyncio.gather(*(node.wait_committed(tx_hash) for tx_hash in hashes))
            assert [result.status for result in results] == ["committed"] * len(hashes), results
    # Not started: this test is the orderer now, and delivers what no node would admit.
    node = await Node.open(settings(data_dir))
    try:
        await node.apply_batch(
            OrderedBatch(node.height + 1, node.header.time_ms + 1000, refusals_an_orderer_might_deliver(node))
        )
        keys = (KEYS.alice, KEYS.bob, KEYS.carol, KEYS.battery, KEYS.solar, NEWCOMER)
        return {key.did: node.sequence(key.did) for key in keys}
    finally:
        await node.stop()


def later_batches(signer: Signer, first_height: int, first_time_ms: int) -> list[OrderedBatch]:
    alice, bob, carol = KEYS.alice, KEYS.bob, KEYS.carol
    blocks: list[list[SignedTx]] = [
        [
            signer.sign(alice, bank.send(carol.did, "aut", 9)),
            signer.sign(bob, bank.send(alice.did, "aut", 8)),
        ],
        [],
        [signer.sign(carol, bank.send(bob.did, "aut", 10**7))],  # bank.insufficient_funds
        [signer.sign(alice, bank.send(bob.did, "aut", 1)) for _ in range(5)],
        # Above the battery's cosign_above and signed by the battery alone: bank.cosign_required.
        [signer.sign(KEYS.battery, bank.send(bob.did, "aut", 70))],
        [],
        [signer.sign(bob, bank.send(carol.did, "aut", 3))],
    ]
    return [
        OrderedBatch(first_height + offset, first_time_ms + 1000 * (offset + 1), txs)
        for offset, txs in enumerate(blocks)
    ]


def stored_blocks(data_dir: Path) -> tuple[list[BlockHeader], list[tuple[bytes, ...]], list[list[str]]]:
    storage = Storage(data_dir / DB_FILE)
    try:
        top = storage.applied_height
        assert top is not None
        headers = storage.headers(0, top + 1)
        blocks = [block for block in storage.iter_blocks(1)]
    finally:
        storage.close()
    return headers, [block.txs for block in blocks], [[r.code for r in block.receipts] for block in blocks]


@pytest.fixture(scope="module")
def first_node(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Signer]:
    data_dir = tmp_path_factory.mktemp("snapshot-replay") / "first"
    init_data_dir(data_dir, standard_genesis(KEYS))
    sequences = asyncio.run(run_first_node(data_dir))
    return data_dir, Signer(sequences)


def test_the_first_node_ran_successes_and_failures(first_node: tuple[Path, Signer]) -> None:
    data_dir, _ = first_node
    _, _, codes = stored_blocks(data_dir)
    flat = [code for block in codes for code in block]
    assert flat.count("ok") >= 8
    for expected in (
        "bank.insufficient_funds",
        "bank.self_transfer",
        "bank.per_tx_cap",
        "bank.account_frozen",
        "core.bad_signature",
        "core.wrong_chain",
        "core.bad_sequence",
    ):
        assert expected in flat, (expected, flat)


def test_replay_from_genesis_reproduces_every_header_and_the_state_root(
    first_node: tuple[Path, Signer],
) -> None:
    data_dir, _ = first_node
    headers, txs, _ = stored_blocks(data_dir)

    report = replay_data_dir(data_dir)
    assert report.equal, report.to_json()
    assert report.height == headers[-1].height
    assert report.state_root == headers[-1].state_root.hex()

    chain = Chain.from_genesis(canonical_decode((data_dir / GENESIS_FILE).read_bytes()))
    assert chain.headers[0].hash == headers[0].hash
    for header, block_txs in zip(headers[1:], txs, strict=True):
        chain.execute(block_txs, header.time_ms)
        assert chain.headers[-1] == header
    assert chain.root == headers[-1].state_root
    assert chain.invariants() == []


def apply_all(data_dir: Path, batches: Sequence[OrderedBatch]) -> list[BlockHeader]:
    async def run() -> list[BlockHeader]:
        node = await Node.open(settings(data_dir))
        try:
            for batch in batches:
                await node.apply_batch(batch)
            return node.storage.headers(batches[0].height, batches[-1].height + 1)
        finally:
            await node.stop()

    return asyncio.run(run())


def test_a_node_restored_from_a_snapshot_continues_identically(
    first_node: tuple[Path, Signer], tmp_path: Path
) -> None:
    data_dir, signer = first_node
    original = tmp_path / "original"
    # A copy of the first node, so this test's new blocks do not change the shared fixture.
    original.mkdir()
    for name in (DB_FILE, GENESIS_FILE, "node_key.json", "node_key.secret"):
        (original / name).write_bytes((data_dir / name).read_bytes())
    storage = Storage(original / DB_FILE)
    storage.close()

    snapshot = tmp_path / "snapshot.cbor"
    exported = export_snapshot(original, snapshot)
    assert read_snapshot(snapshot) == exported
    restored = tmp_path / "restored"
    imported = import_snapshot(snapshot, restored)
    assert imported.state_root == exported.state_root and imported.height == exported.height
    with pytest.raises(ConfigError):
        replay_data_dir(restored)  # blocks before the snapshot are not there to replay

    headers, _, _ = stored_blocks(original)
    batches = later_batches(Signer(signer.next), headers[-1].height + 1, headers[-1].time_ms)
    from_original = apply_all(original, batches)
    from_restored = apply_all(restored, batches)
    assert [h.hash for h in from_restored] == [h.hash for h in from_original]
    assert from_restored[-1].state_root == from_original[-1].state_root
    assert from_original[0].prev_hash.hex() == exported.block_hash

    _, _, original_codes = stored_blocks(original)
    assert "bank.cosign_required" in original_codes[-3] and "bank.insufficient_funds" in original_codes[-5]
    assert replay_data_dir(original).equal


def _tampered_snapshot(path: Path, target: Path, change: Any) -> Path:
    document = canonical_decode(path.read_bytes())
    change(document)
    target.write_bytes(canonical_encode(document))
    return target


def _change_value(document: dict[str, Any]) -> None:
    key, value = document["state"][0]
    document["state"][0] = [key, value + b"\x00"]


def _change_root(document: dict[str, Any]) -> None:
    header = canonical_decode(document["header"])
    header["state_root"] = bytes(32)
    document["header"] = canonical_encode(header)


def _change_value_and_root(document: dict[str, Any]) -> None:
    """The consistent forgery: new state, matching root; only the header signature can catch it."""
    from autarky.ledger.smt import SparseMerkleTree

    _change_value(document)
    header = canonical_decode(document["header"])
    header["state_root"] = SparseMerkleTree.from_items([(k, v) for k, v in document["state"]]).root
    document["header"] = canonical_encode(header)


def _drop_item(document: dict[str, Any]) -> None:
    del document["state"][-1]


def _add_item(document: dict[str, Any]) -> None:
    document["state"].append(["zzz/extra", b"\x01"])


def _other_signer(document: dict[str, Any]) -> None:
    document["node_key"] = NEWCOMER.did


@pytest.mark.parametrize(
    "change", [_change_value, _change_root, _change_value_and_root, _drop_item, _add_item, _other_signer]
)
def test_a_tampered_snapshot_is_refused_before_anything_is_written(
    first_node: tuple[Path, Signer], tmp_path: Path, change: Any
) -> None:
    data_dir, _ = first_node
    snapshot = tmp_path / "snapshot.cbor"
    export_snapshot(data_dir, snapshot)
    tampered = _tampered_snapshot(snapshot, tmp_path / "tampered.cbor", change)
    with pytest.raises(SnapshotError):
        read_snapshot(tampered)
    target = tmp_path / "restored"
    with pytest.raises(SnapshotError):
        import_snapshot(tampered, target)
    assert not target.exists(), "a refused snapshot left files behind"


def test_a_truncated_snapshot_is_refused(first_node: tuple[Path, Signer], tmp_path: Path) -> None:
    data_dir, _ = first_node
    snapshot = tmp_path / "snapshot.cbor"
    export_snapshot(data_dir, snapshot)
    truncated = tmp_path / "truncated.cbor"
    truncated.write_bytes(snapshot.read_bytes()[:-7])
    with pytest.raises(SnapshotError):
        import_snapshot(truncated, tmp_path / "restored")
    assert not (tmp_path / "restored").exists()


def _copy_of(data_dir: Path, target: Path) -> Path:
    target.mkdir()
    for name in (DB_FILE, GENESIS_FILE, "node_key.json", "node_key.secret"):
        (target / name).write_bytes((data_dir / name).read_bytes())
    return target


def _checkpointed_copy(data_dir: Path, target: Path) -> Path:
    copy = _copy_of(data_dir, target)
    storage = Storage(copy / DB_FILE)
    try:
        storage.checkpoint()  # the whole state is now in the base table, the log is empty
    finally:
        storage.close()
    db = sqlite3.connect(copy / DB_FILE)
    try:
        assert db.execute("SELECT COUNT(*) FROM state_log").fetchone()[0] == 0
    finally:
        db.close()
    return copy


def test_the_checkpointed_copy_opens(first_node: tuple[Path, Signer], tmp_path: Path) -> None:
    """The control for the tampering tests below: an untouched checkpointed database opens."""
    copy = _checkpointed_copy(first_node[0], tmp_path / "copy")

    async def open_and_close() -> int:
        node = await Node.open(settings(copy))
        await node.stop()
        return node.height

    assert asyncio.run(open_and_close()) > 0


def _append_a_byte(db: sqlite3.Connection) -> int:
    key, value = db.execute("SELECT key, value FROM state ORDER BY key LIMIT 1").fetchone()
    return db.execute("UPDATE state SET value = ? WHERE key = ?", (value + b"\x00", key)).rowcount


def _rewrite_a_balance(db: sqlite3.Connection) -> int:
    key, value = db.execute(
        "SELECT key, value FROM state WHERE key LIKE 'bank/bal/%' ORDER BY key LIMIT 1"
    ).fetchone()
    forged = canonical_encode(canonical_decode(value) + 1)  # one base unit more: still a valid amount
    return db.execute("UPDATE state SET value = ? WHERE key = ?", (forged, key)).rowcount


def _delete_a_row(db: sqlite3.Connection) -> int:
    return db.execute(
        "DELETE FROM state WHERE key = (SELECT key FROM state ORDER BY key DESC LIMIT 1)"
    ).rowcount


def _insert_a_row(db: sqlite3.Connection) -> int:
    forged = ("bank/bal/" + NEWCOMER.did + "/aut", canonical_encode(10**6))
    return db.execute("INSERT INTO state VALUES (?, ?)", forged).rowcount


@pytest.mark.parametrize("edit", [_append_a_byte, _rewrite_a_balance, _delete_a_row, _insert_a_row])
def test_a_node_whose_stored_state_was_tampered_refuses_to_open(
    first_node: tuple[Path, Signer], tmp_path: Path, edit: Any
) -> None:
    copy = _checkpointed_copy(first_node[0], tmp_path / "copy")
    db = sqlite3.connect(copy / DB_FILE)
    try:
        with db:
            assert edit(db) == 1
    finally:
        db.close()
    with pytest.raises(CorruptState):
        asyncio.run(Node.open(settings(copy)))
