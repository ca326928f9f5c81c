"""The lease module's state: the only functions that read or write keys under ``lease/``.

State keys (values are canonical CBOR; ids and their hex are lower case)::

    lease/params                                         the parameters (only if genesis set them)
    lease/offer/<offer id hex>                           the offer record
    lease/offers_of/<provider>/<offer id hex>            the offer's resource (an index)
    lease/lease/<lease id hex>                           the lease record
    lease/by_account/<did>/<lease id hex>                "renter" or "provider" (an index)
    lease/slot/<resource id hex>/<start:016d>/<lease id hex>   the slot's end time, while open
    lease/due/<due:016d>/<lease id hex>                  True: end_block's work order

``resource id = sha256(canonical_cbor(["autarky/lease/resource", provider, resource]))``: a resource
is a provider's name for one thing, whatever offers it appears in, so two offers of the same
resource share its slots. Open slots of a resource never overlap (invariant), so sorted by start
their ends are sorted too, and an overlap check reads only the slots that start before the new
slot's end. Records are never deleted: a closed lease or a withdrawn offer stays for the history;
only the slot and due entries of a closed lease go.
"""

from __future__ import annotations

from collections.abc import Iterator

from autarky.crypto.hashing import sha256
from autarky.encoding import canonical_encode, decode_trusted
from autarky.ledger.state import Overlay, StateReader, get_obj
from autarky.modules.lease.params import DEFAULTS, MAX_TIME_MS, Params, from_cbor
from autarky.modules.lease.records import CLOSED, LeaseRecord, OfferRecord

PARAMS_KEY = "lease/params"
OFFER_PREFIX = "lease/offer/"
OFFERS_OF_PREFIX = "lease/offers_of/"
LEASE_PREFIX = "lease/lease/"
BY_ACCOUNT_PREFIX = "lease/by_account/"
SLOT_PREFIX = "lease/slot/"
DUE_PREFIX = "lease/due/"

OFFER_ID_TAG = "autarky/lease/offer-id"
LEASE_ID_TAG = "autarky/lease/lease-id"
RESOURCE_ID_TAG = "autarky/lease/resource"
RENTER = "renter"
PROVIDER = "provider"


def new_offer_id(tx_hash: bytes, message_index: int) -> bytes:
    """``sha256(canonical_cbor(["autarky/lease/offer-id", tx_hash, message_index]))``."""
    return sha256(canonical_encode([OFFER_ID_TAG, tx_hash, message_index]))


def new_lease_id(tx_hash: bytes, message_index: int) -> bytes:
    """``sha256(canonical_cbor(["autarky/lease/lease-id", tx_hash, message_index]))``."""
    return sha256(canonical_encode([LEASE_ID_TAG, tx_hash, message_index]))


def resource_id(provider: str, resource: str) -> bytes:
    return sha256(canonical_encode([RESOURCE_ID_TAG, provider, resource]))


def _ms(value: int) -> str:
    assert 0 <= value <= MAX_TIME_MS, value
    return f"{value:016d}"


def offer_key(offer_id: bytes) -> str:
    return OFFER_PREFIX + offer_id.hex()


def offers_of_key(provider: str, offer_id: bytes) -> str:
    return f"{OFFERS_OF_PREFIX}{provider}/{offer_id.hex()}"


def lease_key(lease_id: bytes) -> str:
    return LEASE_PREFIX + lease_id.hex()


def by_account_key(account: str, lease_id: bytes) -> str:
    return f"{BY_ACCOUNT_PREFIX}{account}/{lease_id.hex()}"


def slot_prefix(provider: str, resource: str) -> str:
    return f"{SLOT_PREFIX}{resource_id(provider, resource).hex()}/"


def slot_key(record: LeaseRecord) -> str:
    return f"{slot_prefix(record.provider, record.resource)}{_ms(record.start_ms)}/{record.id.hex()}"


def due_key(due_ms: int, lease_id: bytes) -> str:
    return f"{DUE_PREFIX}{_ms(due_ms)}/{lease_id.hex()}"


# ---------------------------------------------------------------------------------------------------
# Parameters


def params(state: StateReader) -> Params:
    value = get_obj(state, PARAMS_KEY)
    return DEFAULTS if value is None else from_cbor(value)


def set_params(state: Overlay, value: Params) -> None:
    state.set_obj(PARAMS_KEY, value.to_cbor())


# ---------------------------------------------------------------------------------------------------
# Offers


def read_offer(state: StateReader, offer_id: bytes) -> OfferRecord | None:
    value = get_obj(state, offer_key(offer_id))
    return None if value is None else OfferRecord.from_cbor(offer_id, value)


def offers(state: StateReader) -> Iterator[OfferRecord]:
    """Every offer (withdrawn ones too), in id order."""
    for key, raw in state.iter_prefix(OFFER_PREFIX):
        yield OfferRecord.from_cbor(bytes.fromhex(key[len(OFFER_PREFIX) :]), decode_trusted(raw))


def offers_of(state: StateReader, provider: str) -> list[bytes]:
    prefix = f"{OFFERS_OF_PREFIX}{provider}/"
    return [bytes.fromhex(key[len(prefix) :]) for key, _ in state.iter_prefix(prefix)]


def save_offer(state: Overlay, record: OfferRecord) -> None:
    state.set_obj(offer_key(record.id), record.to_cbor())
    state.set_obj(offers_of_key(record.provider, record.id), record.resource)


# ---------------------------------------------------------------------------------------------------
# Leases


def read_lease(state: StateReader, lease_id: bytes) -> LeaseRecord | None:
    value = get_obj(state, lease_key(lease_id))
    return None if value is None else LeaseRecord.from_cbor(lease_id, value)


def leases_of(state: StateReader, account: str) -> list[tuple[bytes, str]]:
    """``(lease id, role)`` of every lease ``account`` rents or provides, in id order."""
    prefix = f"{BY_ACCOUNT_PREFIX}{account}/"
    return [
        (bytes.fromhex(key[len(prefix) :]), decode_trusted(raw)) for key, raw in state.iter_prefix(prefix)
    ]


def slots(state: StateReader, provider: str, resource: str) -> list[tuple[int, int, bytes]]:
    """``(start_ms, end_ms, lease id)`` of the open slots of a resource, by start time."""
    prefix = slot_prefix(provider, resource)
    found: list[tuple[int, int, bytes]] = []
    for key, raw in state.iter_prefix(prefix):
        start, lease_hex = key[len(prefix) :].split("/")
        found.append((int(start), decode_trusted(raw), bytes.fromhex(lease_hex)))
    return found


def overlapping(state: StateReader, provider: str, resource: str, start_ms: int, end_ms: int) -> bytes | None:
    """The id of an open slot of the resource overlapping ``[start_ms, end_ms)``, or None.

    Open slots never overlap, so in start order their ends increase too: the scan stops at the
    first slot that starts at or after ``end_ms``.
    """
    prefix = slot_prefix(provider, resource)
    for key, raw in state.iter_prefix(prefix):
        start, lease_hex = key[len(prefix) :].split("/")
        if int(start) >= end_ms:
            return None
        if decode_trusted(raw) > start_ms:
            return bytes.fromhex(lease_hex)
    return None


def create_lease(state: Overlay, record: LeaseRecord) -> None:
    """Store a new lease with its indexes, its slot and its due entry. The caller checked everything."""
    assert state.get(lease_key(record.id)) is None, f"lease {record.id.hex()} exists"
    assert record.status != CLOSED and record.due_ms is not None
    state.set_obj(lease_key(record.id), record.to_cbor())
    state.set_obj(by_account_key(record.renter, record.id), RENTER)
    state.set_obj(by_account_key(record.provider, record.id), PROVIDER)
    state.set_obj(slot_key(record), record.end_ms)
    state.set_obj(due_key(record.due_ms, record.id), True)


def update_lease(state: Overlay, before: LeaseRecord, after: LeaseRecord) -> None:
    """Store ``after`` in place of ``before``, moving its due entry and shrinking or freeing its slot."""
    assert before.id == after.id and before.status != CLOSED
    state.set_obj(lease_key(after.id), after.to_cbor())
    if before.due_ms != after.due_ms:
        assert before.due_ms is not None
        state.delete(due_key(before.due_ms, before.id))
        if after.due_ms is not None:
            state.set_obj(due_key(after.due_ms, after.id), True)
    if after.status == CLOSED:
        state.delete(slot_key(after))
    elif after.end_ms != before.end_ms:
        state.set_obj(slot_key(after), after.end_ms)


def due(state: StateReader, now_ms: int) -> list[bytes]:
    """Ids of the leases with work due at ``now_ms``, in due time then id order."""
    found: list[bytes] = []
    for key, _ in state.iter_prefix(DUE_PREFIX):
        due_ms, lease_hex = key[len(DUE_PREFIX) :].split("/")
        if int(due_ms) > now_ms:
            break
        found.append(bytes.fromhex(lease_hex))
    return found


def iter_raw(state: StateReader, prefix: str) -> Iterator[tuple[str, object]]:
    """(the key after ``prefix``, decoded value) for every key under ``prefix`` (for invariants)."""
    for key, raw in state.iter_prefix(prefix):
        yield key[len(prefix) :], decode_trusted(raw)
