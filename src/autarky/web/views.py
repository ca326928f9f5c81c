"""Read views over a node: the JSON documents the API (and the dashboard) serve.

Everything here reads in-memory node state and so runs on the node's event loop thread, never in a
worker thread: the node replaces its state between blocks on that thread, so a read there always
sees one whole block. Storage reads (blocks, transactions) are thread-safe and may run anywhere.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol, cast

from autarky.crypto.did import is_did_key
from autarky.crypto.hashing import sha256
from autarky.ledger.executor import sequence_of
from autarky.ledger.state import StateReader
from autarky.ledger.tx import SignedTx
from autarky.modules.bank import keeper as bank
from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.policy import keeper as policy_keeper
from autarky.modules.policy.check import GrantRecord, check
from autarky.modules.policy.errors import GrantRefused
from autarky.node.node import Node, TxRecord
from autarky.node.storage import StoredBlock

ACCOUNT_PREFIX = "identity/acct/"


class IdentityReads(Protocol):
    """What the API reads from the identity module (``node.app.module("identity")``)."""

    def account(self, state: StateReader, account: str) -> Mapping[str, Any] | None: ...

    def did_document(self, state: StateReader, did: str) -> dict[str, Any]: ...

    def pause_record(self, state: StateReader, did: str) -> Any: ...


def identity_of(node: Node) -> IdentityReads:
    return cast(IdentityReads, node.app.module("identity"))


def jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: bytes become hex, map keys text, tuples lists."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).hex()
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    return str(value)


def short_did(did: str) -> str:
    """``did:key:z6MkhaXg…Y3x9`` style abbreviation for tables."""
    if did.startswith("did:key:") and len(did) > 24:
        return f"{did[8:16]}…{did[-4:]}"
    return did


def is_account_name(value: str) -> bool:
    """An account the API answers about: an Ed25519 did:key or a module account (``module:fees``)."""
    return is_did_key(value) or bank.is_module_account(value)


# -- blocks and transactions ---------------------------------------------------------------------


def block_json(block: StoredBlock) -> dict[str, Any]:
    return {
        "header": block.header.to_json(),
        "signature": None if block.signature is None else block.signature.hex(),
        "txs": [sha256(raw).hex() for raw in block.txs],
        "receipts": [receipt.to_json() for receipt in block.receipts],
        "end_events": [event.to_json() for event in block.end_events],
    }


def tx_body_json(tx: SignedTx) -> dict[str, Any]:
    body = tx.body
    return {
        "chain_id": body.chain_id,
        "sender": body.sender,
        "sequence": body.sequence,
        "fee": body.fee,
        "expiry_height": body.expiry_height,
        "messages": [jsonable(message) for message in body.messages],
        "memo": body.memo,
        "signatures": [{"public_key": pk.hex(), "signature": sig.hex()} for pk, sig in tx.signatures],
    }


def committed_tx_json(tx_hash: bytes, record: TxRecord) -> dict[str, Any]:
    return {
        "tx_hash": tx_hash.hex(),
        "status": "committed",
        "height": record.height,
        "index": record.receipt.index,
        "raw": record.raw.hex(),
        "tx": None if record.tx is None else tx_body_json(record.tx),
        "receipt": record.receipt.to_json(),
    }


def pending_tx_json(tx_hash: bytes) -> dict[str, Any]:
    return {
        "tx_hash": tx_hash.hex(),
        "status": "pending",
        "height": None,
        "index": None,
        "raw": None,
        "tx": None,
        "receipt": None,
    }


# -- accounts and machines -----------------------------------------------------------------------


def window_spent(
    state: StateReader, did: str, guard: Mapping[str, Any] | None, height: int
) -> dict[str, int]:
    """What ``did`` spent, per limited asset, in the window the next block is checked against."""
    if guard is None:
        return {}
    limits = guard.get("limits") or {}
    return {str(asset): bank.window_spent(state, did, str(asset), height + 1) for asset in limits}


def account_json(node: Node, did: str) -> dict[str, Any]:
    state = node.state
    record = identity_of(node).account(state, did) if is_did_key(did) else None
    guard = bank.guardrails(state, did)
    pause = identity_of(node).pause_record(state, did) if record is not None else None
    return {
        "did": did,
        "sequence": node.sequence(did),
        "committed_sequence": sequence_of(state, did),
        # "unregistered" | "active" | "paused" (its owner's kill-switch: see "pause") | "revoked"
        "status": "unregistered" if record is None else str(record["status"]),
        "pause": None if pause is None else pause.to_cbor(),
        "identity": None if record is None else jsonable(record),
        "balances": bank.balances(state, did),
        "guardrails": None if guard is None else jsonable(guard),
        "window_spent": window_spent(state, did, guard, node.height),
        "frozen": bank.is_frozen(state, did),
        "escrow": {
            "paid": escrow_locks(state, did, "payer"),
            "beneficiary": escrow_locks(state, did, "beneficiary"),
        },
    }


def escrow_locks(state: StateReader, did: str, role: str) -> list[dict[str, Any]]:
    """The open escrow locks ``did`` pays (``role`` "payer") or is named in ("beneficiary")."""
    found = escrow_keeper.locks_of(state, did) if role == "payer" else escrow_keeper.locks_for(state, did)
    return [lock.to_json() for lock in found]


def registered_accounts(node: Node) -> list[str]:
    """Every registered account's DID, in key order."""
    return [key[len(ACCOUNT_PREFIX) :] for key, _ in node.state.iter_prefix(ACCOUNT_PREFIX)]


def machine_json(node: Node, did: str) -> dict[str, Any] | None:
    state = node.state
    record = identity_of(node).account(state, did)
    if record is None:
        return None
    guard = bank.guardrails(state, did)
    return {
        "did": did,
        "short": short_did(did),
        "kind": str(record.get("kind", "")),
        "owner": record.get("owner"),
        "status": str(record.get("status", "")),
        "maker": str(record.get("maker", "")),
        "model": str(record.get("model", "")),
        "balances": bank.balances(state, did),
        "guardrails": None if guard is None else jsonable(guard),
        "frozen": bank.is_frozen(state, did),
    }


def machines_json(node: Node, offset: int, limit: int) -> dict[str, Any]:
    dids = registered_accounts(node)
    page = [machine_json(node, did) for did in dids[offset : offset + limit]]
    return {
        "machines": [m for m in page if m is not None],
        "total": len(dids),
        "offset": offset,
        "limit": limit,
    }


def supplies_json(node: Node) -> dict[str, int]:
    return bank.supplies(node.state)


# -- grants (module policy) ------------------------------------------------------------------------


def grant_json(node: Node, record: GrantRecord, now_ms: int) -> dict[str, Any]:
    """A grant record with its standing now: ``valid`` or the code the policy check refuses it with
    (the whole chain to its root is checked, as a device would)."""
    try:
        chain = policy_keeper.read_chain(node.state, record.id)
        check(chain, grantee=record.grantee, action=record.action, resource=record.resource, now_ms=now_ms)
        standing = "valid"
        chain_ids = [link.id.hex() for link in chain]
    except GrantRefused as exc:
        standing, chain_ids = exc.code, []
    data = jsonable(record.to_cbor())
    data["capability"] = record.capability
    data["standing"] = standing
    data["chain"] = chain_ids
    return cast(dict[str, Any], data)


def grants_json(
    node: Node, grantee: str | None, grantor: str | None, now_ms: int, limit: int
) -> dict[str, Any]:
    state = node.state
    ids: dict[bytes, None] = {}
    if grantee is not None:
        ids.update(dict.fromkeys(policy_keeper.grants_of_grantee(state, grantee)))
    if grantor is not None:
        ids.update(dict.fromkeys(policy_keeper.grants_of_grantor(state, grantor)))
    records = [r for r in (policy_keeper.read_grant(state, gid) for gid in ids) if r is not None]
    records.sort(key=lambda r: (-r.created, r.id))
    return {"grants": [grant_json(node, r, now_ms) for r in records[:limit]], "total": len(records)}


# -- provenance: explain a decision against this node --------------------------------------------


class NodeLedgerView:
    """An ``autarky.provenance.LedgerView`` over a node in this process (the dashboard's
    explanations): module reads of the current state, on the event loop thread; ``records`` are
    transaction records already read from storage (a worker-thread read, see ``Node.tx``)."""

    def __init__(self, node: Node, records: Mapping[bytes, TxRecord | None]) -> None:
        from autarky.modules.provenance import ProvenanceModule

        self.node = node
        self.records = records
        module = node.app.module("provenance")
        assert isinstance(module, ProvenanceModule)
        self.module = module
        self.state = node.state

    def tx(self, tx_hash: bytes) -> Mapping[str, Any] | None:
        record = self.records.get(tx_hash)
        if record is None:
            return None
        sender = None if record.tx is None else record.tx.body.sender
        return {"height": record.height, "code": record.receipt.code, "sender": sender}

    def decision_batch(self, machine: str, seq: int) -> Mapping[str, Any] | None:
        return self.module.decision_batch(self.state, machine, seq)

    def model(self, file_hash: bytes) -> Mapping[str, Any] | None:
        return self.module.model(self.state, file_hash)

    def anchor(self, anchor_id: bytes) -> Mapping[str, Any] | None:
        return self.module.anchor(self.state, anchor_id)
