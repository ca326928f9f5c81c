"""The audit trail: which key did what, under which grant, when (SPEC C3).

Every message of every transaction in a block becomes one :class:`AuditEntry`: the block height
and time, the transaction and message index, the account that sent it and the keys that signed it,
the action (the message type), the result code, the grants it involves (read from its receipt's
events: ``policy.grant_used`` names the grant that allowed an action; ``policy.granted``,
``policy.delegated`` and ``policy.revoked`` the grant acted on, so a search by grant shows its whole
life), and the parties: the sender and every DID the message names (the machine acted on, the
recipient, the grantee...).

Derived from blocks only, so any node can rebuild it: the node writes the entries of a block in the
same database transaction as the block (``Storage.commit_block``) and backfills them for blocks
stored before the trail existed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autarky.ledger.block import Receipt
from autarky.ledger.tx import SignedTx

GRANT_ATTRIBUTES = ("grant", "grant_id")
"""Event attributes that name a grant (``policy.grant_used`` and friends)."""
MAX_PARTIES = 16


@dataclass(frozen=True, slots=True)
class AuditEntry:
    height: int
    time_ms: int
    tx_index: int
    msg_index: int
    tx_hash: bytes
    sender: str
    signers: tuple[str, ...]  # public keys, lower-case hex
    action: str
    code: str
    grants: tuple[str, ...]
    parties: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "height": self.height,
            "time_ms": self.time_ms,
            "tx_index": self.tx_index,
            "msg_index": self.msg_index,
            "tx_hash": self.tx_hash.hex(),
            "sender": self.sender,
            "signers": list(self.signers),
            "action": self.action,
            "code": self.code,
            "ok": self.code == "ok",
            "grants": list(self.grants),
            "parties": list(self.parties),
        }


def block_entries(
    height: int, time_ms: int, txs: Sequence[SignedTx | None], receipts: Sequence[Receipt]
) -> list[AuditEntry]:
    """The audit entries of one block (``txs[i]`` None for bytes that did not decode: skipped)."""
    entries: list[AuditEntry] = []
    for tx, receipt in zip(txs, receipts, strict=True):
        if tx is None:
            continue
        grants = _grants(receipt)
        signers = tuple(key.hex() for key in tx.signers)
        for msg_index, message in enumerate(tx.body.messages):
            action = message.get("type")
            entries.append(
                AuditEntry(
                    height,
                    time_ms,
                    receipt.index,
                    msg_index,
                    tx.hash,
                    tx.body.sender,
                    signers,
                    action if type(action) is str else "?",
                    receipt.code,
                    grants,
                    _parties(tx.body.sender, message),
                )
            )
    return entries


def _grants(receipt: Receipt) -> tuple[str, ...]:
    found: dict[str, None] = {}
    for event in receipt.events:
        for name in GRANT_ATTRIBUTES:
            value = event.get(name)
            if isinstance(value, bytes):
                found.setdefault(value.hex(), None)
            elif isinstance(value, str) and value:
                found.setdefault(value, None)
    return tuple(found)


def _parties(sender: str, message: Mapping[str, Any]) -> tuple[str, ...]:
    parties: dict[str, None] = {sender: None}
    for name in sorted(message):
        value = message[name]
        values = value if isinstance(value, list) else [value]
        for item in values:
            if isinstance(item, str) and item.startswith("did:") and len(parties) < MAX_PARTIES:
                parties.setdefault(item, None)
    return tuple(parties)
