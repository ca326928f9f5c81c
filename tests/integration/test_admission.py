"""Bulk admission through worker processes (``Node.submit_many``) gives the same answers as one by one."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from autarky.crypto.domains import Domain
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, encode_signed, sign_tx
from autarky.node.genesis import dev_genesis
from autarky.node.node import Node, NodeSettings, init_data_dir

CHAIN = "admission"


def _key(i: int) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(f"admission/{i}".encode()).digest())


def _transfer(sender: SigningKey, to: SigningKey, sequence: int, chain: str = CHAIN) -> bytes:
    body = TxBody(
        chain, sender.did, sequence, 1, 0, ({"type": "bank/send", "to": to.did, "asset": "aut", "amount": 5},)
    )
    return sign_tx(body, sender).raw


async def _run(data_dir: Path, processes: int) -> list[tuple[str, str | None]]:
    keys = [_key(i) for i in range(4)]
    init_data_dir(data_dir, dev_genesis(CHAIN, time_ms=0, allocations=[(k.did, "aut", 10_000) for k in keys]))
    node = await Node.open(NodeSettings(data_dir=data_dir, block_interval_ms=5, verify_processes=processes))
    async with node:
        good = [_transfer(keys[i % 4], keys[(i + 1) % 4], i // 4) for i in range(40)]
        body = TxBody(
            CHAIN,
            keys[0].did,
            10,
            1,
            0,
            ({"type": "bank/send", "to": keys[1].did, "asset": "aut", "amount": 1},),
        )
        message_domain = keys[0].sign(Domain.MESSAGE, body.encode())
        forged = encode_signed(body.encode(), [(keys[0].public_key.raw, message_domain)])
        batch = [*good, good[3], b"\x00garbage", _transfer(keys[0], keys[1], 10, chain="other"), forged]
        first = await node.submit_many(batch, chunk=7)
        for raw in good:
            outcome = await node.wait_committed(sign_hash(raw), 30)
            assert outcome.status == "committed" and outcome.code is None
        again = await node.submit_many(good[:2])
        assert [r.status for r in again] == ["exists", "exists"]
        assert all(r.receipt is not None and r.receipt.ok for r in again)
    return [(r.status, r.code) for r in first]


def sign_hash(raw: bytes) -> bytes:
    return hashlib.sha256(raw).digest()


def _expected() -> list[tuple[str, str | None]]:
    return [
        *[("accepted", None)] * 40,
        ("exists", None),
        ("rejected", "core.malformed"),
        ("rejected", "core.wrong_chain"),
        ("rejected", "core.bad_signature"),
    ]


def test_submit_many_in_worker_processes(tmp_path: Path) -> None:
    assert asyncio.run(_run(tmp_path / "node", processes=2)) == _expected()


def test_submit_many_in_threads_answers_the_same(tmp_path: Path) -> None:
    assert asyncio.run(_run(tmp_path / "node", processes=0)) == _expected()
