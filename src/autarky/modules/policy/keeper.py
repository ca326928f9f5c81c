"""The policy module's state: the only functions that read or write keys under ``policy/``.

State keys (values are canonical CBOR; ids and their hex are lower case)::

    policy/grant/<id hex>                    the grant record (check.GrantRecord.to_cbor)
    policy/by_grantee/<did>/<id hex>         "action:resource" of a grant given to <did>
    policy/by_grantor/<did>/<id hex>         "action:resource" of a grant <did> gave
    policy/child/<parent id hex>/<id hex>    "action:resource" of a delegation of <parent>

A light client asks a proof for ``policy/grant/<id hex>`` of every grant of a chain; the index keys
let an API list grants by account (their keys sort by DID, then id) and walk a delegation tree down.
Grant records are never deleted: a revoked or expired grant stays, marked, so an audit can name it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace

from autarky.crypto.hashing import sha256
from autarky.encoding import canonical_encode, decode_trusted
from autarky.ledger.state import Overlay, StateReader, get_obj
from autarky.modules.policy.check import GrantRecord, load_chain

GRANT_PREFIX = "policy/grant/"
BY_GRANTEE_PREFIX = "policy/by_grantee/"
BY_GRANTOR_PREFIX = "policy/by_grantor/"
CHILD_PREFIX = "policy/child/"

GRANT_ID_TAG = "autarky/policy/grant-id"


def new_grant_id(tx_hash: bytes, message_index: int) -> bytes:
    """The id of the grant created by message ``message_index`` (0-based) of transaction ``tx_hash``.

    ``sha256(canonical_cbor(["autarky/policy/grant-id", tx_hash, message_index]))``: a client can
    compute it as soon as it has signed the transaction.
    """
    return sha256(canonical_encode([GRANT_ID_TAG, tx_hash, message_index]))


def grant_key(grant_id: bytes) -> str:
    return GRANT_PREFIX + grant_id.hex()


def by_grantee_key(did: str, grant_id: bytes) -> str:
    return f"{BY_GRANTEE_PREFIX}{did}/{grant_id.hex()}"


def by_grantor_key(did: str, grant_id: bytes) -> str:
    return f"{BY_GRANTOR_PREFIX}{did}/{grant_id.hex()}"


def child_key(parent: bytes, grant_id: bytes) -> str:
    return f"{CHILD_PREFIX}{parent.hex()}/{grant_id.hex()}"


# ---------------------------------------------------------------------------------------------------
# Reads


def read_grant(state: StateReader, grant_id: bytes) -> GrantRecord | None:
    value = get_obj(state, grant_key(grant_id))
    return None if value is None else GrantRecord.from_cbor(value)


def lookup(state: StateReader) -> Callable[[bytes], GrantRecord | None]:
    """``grant id -> record | None`` over ``state``, for :func:`check.load_chain`."""
    return lambda grant_id: read_grant(state, grant_id)


def read_chain(state: StateReader, grant_id: bytes) -> tuple[GrantRecord, ...]:
    """The chain from ``grant_id`` to its root; ``policy.unknown_grant`` / ``policy.broken_chain``."""
    return load_chain(lookup(state), grant_id)


def _ids_under(state: StateReader, prefix: str) -> list[bytes]:
    return [bytes.fromhex(key[len(prefix) :]) for key, _ in state.iter_prefix(prefix)]


def grants_of_grantee(state: StateReader, did: str) -> list[bytes]:
    """Ids of every grant given to ``did`` (revoked and expired ones too), in id order."""
    return _ids_under(state, f"{BY_GRANTEE_PREFIX}{did}/")


def grants_of_grantor(state: StateReader, did: str) -> list[bytes]:
    """Ids of every grant ``did`` gave (root grants and delegations), in id order."""
    return _ids_under(state, f"{BY_GRANTOR_PREFIX}{did}/")


def children_of(state: StateReader, grant_id: bytes) -> list[bytes]:
    """Ids of the direct delegations of ``grant_id``, in id order."""
    return _ids_under(state, f"{CHILD_PREFIX}{grant_id.hex()}/")


def iter_raw_grants(state: StateReader) -> Iterator[tuple[str, object]]:
    """(id hex, stored value) for every grant record, undecoded beyond CBOR (for invariants)."""
    for key, raw in state.iter_prefix(GRANT_PREFIX):
        yield key[len(GRANT_PREFIX) :], decode_trusted(raw)


def iter_index(state: StateReader, prefix: str) -> Iterator[tuple[str, object]]:
    """(the key after ``prefix``, stored value) for every entry of one index (for invariants)."""
    for key, raw in state.iter_prefix(prefix):
        yield key[len(prefix) :], decode_trusted(raw)


# ---------------------------------------------------------------------------------------------------
# Writes


def create_grant(state: Overlay, record: GrantRecord) -> None:
    """Store a new grant and its index entries. The caller has done every check."""
    assert state.get(grant_key(record.id)) is None, f"grant {record.id.hex()} exists"
    assert record.uses == 0 and record.spent == () and record.revoked is None
    state.set_obj(grant_key(record.id), record.to_cbor())
    state.set_obj(by_grantee_key(record.grantee, record.id), record.capability)
    state.set_obj(by_grantor_key(record.grantor, record.id), record.capability)
    if record.parent is not None:
        state.set_obj(child_key(record.parent, record.id), record.capability)


def mark_revoked(state: Overlay, record: GrantRecord, height: int) -> GrantRecord:
    assert record.revoked is None
    revoked = replace(record, revoked=height)
    state.set_obj(grant_key(record.id), revoked.to_cbor())
    return revoked


def record_use(state: Overlay, record: GrantRecord, spend: tuple[str, int] | None) -> GrantRecord:
    """Count one use (and ``spend``, if any) on ``record``; the caller has checked the limits."""
    spent = record.spent
    if spend is not None:
        asset, amount = spend
        totals = dict(spent)
        totals[asset] = totals.get(asset, 0) + amount
        spent = tuple(sorted(totals.items()))
    used = replace(record, uses=record.uses + 1, spent=spent)
    assert used.max_uses is None or used.uses <= used.max_uses
    state.set_obj(grant_key(record.id), used.to_cbor())
    return used
