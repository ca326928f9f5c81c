"""The escrow keeper: the only code that reads or writes keys under ``escrow/``.

State layout (canonical CBOR values)::

    escrow/lock/<id hex>                  the lock record (Lock.to_cbor)
    escrow/payer/<payer>/<id hex>         True   (every lock a payer has open)
    escrow/to/<beneficiary>/<id hex>      True   (every lock naming the account as beneficiary)
    escrow/due/<expires_ms:016d>/<id hex> True   (the backstop refund order)

The funds of every open lock sit in :data:`ESCROW_ACCOUNT`; its balance in an asset equals the sum
of the open locks' amounts in that asset (invariant).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from autarky.crypto.hashing import sha256
from autarky.encoding import canonical_encode
from autarky.ledger.state import Overlay, StateReader, get_obj

ESCROW_ACCOUNT = "module:escrow"
USER_HOLDER = "escrow"
"""The holder of locks made with the ``escrow/lock`` message (released by payer or arbiter)."""

LOCK_PREFIX = "escrow/lock/"
PAYER_PREFIX = "escrow/payer/"
TO_PREFIX = "escrow/to/"
DUE_PREFIX = "escrow/due/"
LOCK_ID_TAG = "autarky/escrow/lock-id"
MAX_EXPIRY_MS = 10**16 - 1
"""Expiry times are written with 16 digits in the due index (year 2286)."""


@dataclass(frozen=True, slots=True)
class Lock:
    id: bytes
    payer: str
    asset: str
    amount: int
    """What remains locked."""
    locked: int
    """What was locked at the start."""
    holder: str
    purpose: str
    expires_ms: int
    beneficiaries: tuple[str, ...]
    arbiter: str | None
    height: int

    def to_cbor(self) -> dict[str, Any]:
        # In canonical key order (shorter first, then bytewise), so encoding does not reorder it.
        return {
            "asset": self.asset,
            "payer": self.payer,
            "amount": self.amount,
            "height": self.height,
            "holder": self.holder,
            "locked": self.locked,
            "arbiter": self.arbiter,
            "purpose": self.purpose,
            "expires_ms": self.expires_ms,
            "beneficiaries": list(self.beneficiaries),
        }

    @classmethod
    def from_cbor(cls, lock_id: bytes, value: Any) -> Lock:
        return cls(
            id=lock_id,
            payer=value["payer"],
            asset=value["asset"],
            amount=value["amount"],
            locked=value["locked"],
            holder=value["holder"],
            purpose=value["purpose"],
            expires_ms=value["expires_ms"],
            beneficiaries=tuple(value["beneficiaries"]),
            arbiter=value["arbiter"],
            height=value["height"],
        )

    def to_json(self) -> dict[str, Any]:
        fields = self.to_cbor()
        document = {key: fields[key] for key in _JSON_ORDER}
        document["id"] = self.id.hex()
        return document


_JSON_ORDER = (
    "payer",
    "asset",
    "amount",
    "locked",
    "holder",
    "purpose",
    "expires_ms",
    "beneficiaries",
    "arbiter",
    "height",
)
"""The order of a lock's fields in the API's JSON (as it always was)."""


def new_lock_id(tx_hash: bytes, index: int) -> bytes:
    """The id of the ``index``-th lock (0-based) a transaction opens, in the order they are opened."""
    return sha256(canonical_encode([LOCK_ID_TAG, tx_hash, index]))


def _due_key(lock: Lock) -> str:
    return f"{DUE_PREFIX}{lock.expires_ms:016d}/{lock.id.hex()}"


def get(state: StateReader, lock_id: bytes) -> Lock | None:
    value = get_obj(state, LOCK_PREFIX + lock_id.hex())
    return None if value is None else Lock.from_cbor(lock_id, value)


def create(state: Overlay, lock: Lock) -> None:
    assert get(state, lock.id) is None, "lock ids are unique"
    assert lock.amount == lock.locked > 0 and lock.expires_ms <= MAX_EXPIRY_MS
    state.set_obj(LOCK_PREFIX + lock.id.hex(), lock.to_cbor())
    state.set_obj(f"{PAYER_PREFIX}{lock.payer}/{lock.id.hex()}", True)
    for beneficiary in lock.beneficiaries:
        state.set_obj(f"{TO_PREFIX}{beneficiary}/{lock.id.hex()}", True)
    state.set_obj(_due_key(lock), True)


def set_amount(state: Overlay, lock: Lock, amount: int) -> None:
    """Write what remains of ``lock``; at 0 the lock and its index entries are deleted."""
    assert 0 <= amount < lock.amount
    if amount > 0:
        value = lock.to_cbor()
        value["amount"] = amount
        state.set_obj(LOCK_PREFIX + lock.id.hex(), value)
        return
    state.delete(LOCK_PREFIX + lock.id.hex())
    state.delete(f"{PAYER_PREFIX}{lock.payer}/{lock.id.hex()}")
    for beneficiary in lock.beneficiaries:
        state.delete(f"{TO_PREFIX}{beneficiary}/{lock.id.hex()}")
    state.delete(_due_key(lock))


def _ids(state: StateReader, prefix: str) -> Iterator[bytes]:
    for key, _ in state.iter_prefix(prefix):
        yield bytes.fromhex(key[len(prefix) :])


def locks_of(state: StateReader, account: str) -> list[Lock]:
    """The open locks ``account`` pays, in id order."""
    return [lock for lock in (get(state, i) for i in _ids(state, f"{PAYER_PREFIX}{account}/")) if lock]


def locks_for(state: StateReader, account: str) -> list[Lock]:
    """The open locks naming ``account`` as a beneficiary, in id order."""
    return [lock for lock in (get(state, i) for i in _ids(state, f"{TO_PREFIX}{account}/")) if lock]


def due(state: StateReader, now_ms: int) -> list[bytes]:
    """The ids of the locks whose expiry is at or before ``now_ms``, in expiry then id order."""
    result: list[bytes] = []
    for key, _ in state.iter_prefix(DUE_PREFIX):
        expires, _, id_hex = key[len(DUE_PREFIX) :].partition("/")
        if int(expires) > now_ms:
            break
        result.append(bytes.fromhex(id_hex))
    return result


def all_locks(state: StateReader) -> list[Lock]:
    """Every open lock, in id order (invariants, exports)."""
    return [
        Lock.from_cbor(bytes.fromhex(key[len(LOCK_PREFIX) :]), get_obj(state, key))
        for key, _ in state.iter_prefix(LOCK_PREFIX)
    ]


def index_keys(state: StateReader) -> list[str]:
    """Every index key (payer, beneficiary, due), for the invariants."""
    return [key for prefix in (PAYER_PREFIX, TO_PREFIX, DUE_PREFIX) for key, _ in state.iter_prefix(prefix)]


def index_keys_of(lock: Lock) -> list[str]:
    keys = [f"{PAYER_PREFIX}{lock.payer}/{lock.id.hex()}", _due_key(lock)]
    keys.extend(f"{TO_PREFIX}{beneficiary}/{lock.id.hex()}" for beneficiary in lock.beneficiaries)
    return keys
