"""The identity module's state: keys, typed records, and the only functions that touch them.

State keys (values are canonical CBOR)::

    identity/acct/<did>                    the account record (see :class:`AccountRecord`)
    identity/key/<public key hex>          the DID of the registered account that holds this key
    identity/allow/<did>/<key hex>/<asset> amount of <asset> already spent against that key's allowance
    identity/svc/<did>/<service id>        a service of a registered account (see :class:`ServiceEntry`)
    identity/pause/<did>                   why and since when an account is paused (:class:`PauseRecord`)
    identity/att/<id hex>                  an anchored attestation (see :class:`AttestationRecord`)
    identity/attsub/<subject>/<height>/<id hex>   index by subject; the value is the issuer's DID
    identity/attiss/<issuer>/<height>/<id hex>    index by issuer; the value is the subject's DID

A key belongs to at most one registered account at a time: :func:`write_account` keeps the
``identity/key/`` index equal to the keys listed in the records, so every writer goes through it.
Key hex and id hex are lower case. ``<height>`` is the anchoring height as 20 decimal digits, so an
index lists a DID's attestations in the order they were anchored; :func:`anchor_attestation` writes
a record and both its index entries together, and nothing deletes them (revocation only marks the
record).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

from autarky.encoding import decode_trusted
from autarky.ledger.errors import UNKNOWN_SIGNER
from autarky.ledger.state import Overlay, StateReader, get_obj
from autarky.modules.identity.claims import Claim, decode_claim_bytes
from autarky.modules.identity.errors import ALLOWANCE_EXCEEDED
from autarky.modules.identity.messages import Actions, Allowance

ACCOUNT_PREFIX = "identity/acct/"
KEY_PREFIX = "identity/key/"
ALLOWANCE_PREFIX = "identity/allow/"
SERVICE_PREFIX = "identity/svc/"
ATTESTATION_PREFIX = "identity/att/"
SUBJECT_INDEX_PREFIX = "identity/attsub/"
ISSUER_INDEX_PREFIX = "identity/attiss/"
PAUSE_PREFIX = "identity/pause/"
HEIGHT_DIGITS = 20

ACTIVE = "active"
REVOKED = "revoked"
PAUSED = "paused"
STATUSES = (ACTIVE, REVOKED, PAUSED)
MAX_PAUSE_REASON_CHARS = 256


@dataclass(frozen=True, slots=True)
class KeyEntry:
    """One key of an account and its scope. ``actions`` None is the full scope (and then no allowance)."""

    key: bytes
    actions: Actions | None
    allowance: Allowance | None
    added: int

    @property
    def full(self) -> bool:
        return self.actions is None

    def to_cbor(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "actions": None if self.actions is None else list(self.actions),
            "allowance": None if self.allowance is None else dict(self.allowance),
            "added": self.added,
        }

    @classmethod
    def from_cbor(cls, data: dict[str, Any]) -> KeyEntry:
        actions, allowance = data["actions"], data["allowance"]
        return cls(
            key=data["key"],
            actions=None if actions is None else tuple(actions),
            allowance=None if allowance is None else tuple(sorted(allowance.items())),
            added=data["added"],
        )


@dataclass(frozen=True, slots=True)
class AccountRecord:
    """A registered account. ``owner`` None means the account answers only to its own keys."""

    owner: str | None
    kind: str
    maker: str
    model: str
    serial_digest: bytes | None
    capabilities: tuple[str, ...]
    metadata: tuple[tuple[str, str], ...]
    status: str
    registered: int
    keys: tuple[KeyEntry, ...]

    @property
    def active(self) -> bool:
        return self.status == ACTIVE

    @property
    def revoked(self) -> bool:
        return self.status == REVOKED

    def key_entry(self, key: bytes) -> KeyEntry | None:
        for entry in self.keys:
            if entry.key == key:
                return entry
        return None

    def full_key_count(self) -> int:
        return sum(1 for entry in self.keys if entry.full)

    def to_cbor(self) -> dict[str, Any]:
        return {
            "owner": self.owner,
            "kind": self.kind,
            "maker": self.maker,
            "model": self.model,
            "serial_digest": self.serial_digest,
            "capabilities": list(self.capabilities),
            "metadata": dict(self.metadata),
            "status": self.status,
            "registered": self.registered,
            "keys": [entry.to_cbor() for entry in self.keys],
        }

    @classmethod
    def from_cbor(cls, data: dict[str, Any]) -> AccountRecord:
        return cls(
            owner=data["owner"],
            kind=data["kind"],
            maker=data["maker"],
            model=data["model"],
            serial_digest=data["serial_digest"],
            capabilities=tuple(data["capabilities"]),
            metadata=tuple(sorted(data["metadata"].items())),
            status=data["status"],
            registered=data["registered"],
            keys=tuple(KeyEntry.from_cbor(entry) for entry in data["keys"]),
        )


def account_key(did: str) -> str:
    return ACCOUNT_PREFIX + did


def key_index_key(public_key: bytes) -> str:
    return KEY_PREFIX + public_key.hex()


def allowance_key(did: str, public_key: bytes, asset: str) -> str:
    return f"{ALLOWANCE_PREFIX}{did}/{public_key.hex()}/{asset}"


def _allowance_prefix(did: str, public_key: bytes) -> str:
    return f"{ALLOWANCE_PREFIX}{did}/{public_key.hex()}/"


# ---------------------------------------------------------------------------------------------------
# Reads


def read_raw_account(state: StateReader, did: str) -> dict[str, Any] | None:
    """The account record as stored (a plain map), or None when ``did`` is not registered."""
    value = get_obj(state, account_key(did))
    assert value is None or type(value) is dict, f"account record of {did} is not a map"
    return value


def read_account(state: StateReader, did: str) -> AccountRecord | None:
    raw = read_raw_account(state, did)
    return None if raw is None else AccountRecord.from_cbor(raw)


def read_key(state: StateReader, did: str, public_key: bytes) -> tuple[str, KeyEntry | None] | None:
    """(status, the key's entry or None if not listed) for a registered ``did``; None if unregistered.

    The authenticator's path, run for every transaction: it decodes only the key it looks for.
    """
    raw = read_raw_account(state, did)
    if raw is None:
        return None
    for entry in raw["keys"]:
        if entry["key"] == public_key:
            return raw["status"], KeyEntry.from_cbor(entry)
    return raw["status"], None


def key_holder(state: StateReader, public_key: bytes) -> str | None:
    """The DID of the registered account that holds ``public_key``, if any."""
    holder = get_obj(state, key_index_key(public_key))
    assert holder is None or type(holder) is str
    return holder


def iter_raw_accounts(state: StateReader) -> Iterator[tuple[str, Any]]:
    """(did, stored value) for every account record, undecoded beyond CBOR (for invariants)."""
    for key, raw in state.iter_prefix(ACCOUNT_PREFIX):
        yield key[len(ACCOUNT_PREFIX) :], decode_trusted(raw)


def iter_key_index(state: StateReader) -> Iterator[tuple[str, Any]]:
    """(public key hex, stored holder) for every key index entry."""
    for key, raw in state.iter_prefix(KEY_PREFIX):
        yield key[len(KEY_PREFIX) :], decode_trusted(raw)


def iter_allowance_spent(state: StateReader) -> Iterator[tuple[str, Any]]:
    """(the part of the state key after ``identity/allow/``, stored amount) for every allowance counter."""
    for key, raw in state.iter_prefix(ALLOWANCE_PREFIX):
        yield key[len(ALLOWANCE_PREFIX) :], decode_trusted(raw)


# ---------------------------------------------------------------------------------------------------
# Writes


def write_account(state: Overlay, did: str, record: AccountRecord) -> None:
    """Store ``record`` and bring the key index in line with its keys.

    Keys that the previous record listed and this one does not leave the index and lose their
    allowance counters; keys it adds enter the index. Callers check beforehand that an added key is
    held by no other account.
    """
    previous = read_account(state, did)
    old_keys = [] if previous is None else [entry.key for entry in previous.keys]
    new_keys = [entry.key for entry in record.keys]
    assert len(set(new_keys)) == len(new_keys), "an account lists a key at most once"
    for old in old_keys:
        if old not in new_keys:
            assert key_holder(state, old) == did
            state.delete(key_index_key(old))
            clear_allowance_spent(state, did, old)
    for new in new_keys:
        holder = key_holder(state, new)
        assert holder is None or holder == did, "a key belongs to at most one registered account"
        if holder is None:
            state.set_obj(key_index_key(new), did)
    state.set_obj(account_key(did), record.to_cbor())


def replace_key(record: AccountRecord, old_key: bytes, new_key: bytes, height: int) -> AccountRecord:
    """The record with ``old_key`` replaced by ``new_key``, same scope, in the same place."""
    keys = tuple(
        replace(entry, key=new_key, added=height) if entry.key == old_key else entry for entry in record.keys
    )
    return replace(record, keys=keys)


def move_allowance_spent(state: Overlay, did: str, old_key: bytes, new_key: bytes) -> None:
    """Carry the amounts spent by ``old_key`` over to ``new_key``: a rotation must not refill an allowance."""
    for key, raw in list(state.iter_prefix(_allowance_prefix(did, old_key))):
        asset = key[len(_allowance_prefix(did, old_key)) :]
        state.set(allowance_key(did, new_key, asset), raw)
        state.delete(key)


def clear_allowance_spent(state: Overlay, did: str, public_key: bytes) -> None:
    for key, _ in list(state.iter_prefix(_allowance_prefix(did, public_key))):
        state.delete(key)


def allowance_spent(state: StateReader, did: str, public_key: bytes, asset: str) -> int:
    spent = get_obj(state, allowance_key(did, public_key, asset))
    assert spent is None or type(spent) is int
    return 0 if spent is None else spent


def charge_allowance(state: Overlay, did: str, public_key: bytes, asset: str, amount: int) -> None:
    """Count ``amount`` of ``asset`` against the allowance of ``did``'s key ``public_key``.

    A no-op for unregistered (implicit) accounts, full-scope keys and scoped keys without an
    allowance. A scoped key with an allowance may spend only the assets it names, in total up to
    their amounts; beyond that, ``identity.allowance_exceeded``. If the key has left the account
    earlier in the same transaction, ``core.unknown_signer``.
    """
    assert type(amount) is int and amount >= 0, "amounts are non-negative integers"
    record = read_account(state, did)
    if record is None:
        return
    entry = record.key_entry(public_key)
    if entry is None:
        raise UNKNOWN_SIGNER("the signing key no longer belongs to this account")
    if entry.allowance is None:
        return
    limits = dict(entry.allowance)
    if asset not in limits:
        raise ALLOWANCE_EXCEEDED(f"this key has no allowance for {asset!r}")
    spent = allowance_spent(state, did, public_key, asset)
    if spent + amount > limits[asset]:
        raise ALLOWANCE_EXCEEDED(
            f"this key may spend {limits[asset]} {asset} in total; {spent} spent, {amount} more asked"
        )
    if amount > 0:
        state.set_obj(allowance_key(did, public_key, asset), spent + amount)


# ---------------------------------------------------------------------------------------------------
# Services of a registered account


@dataclass(frozen=True, slots=True)
class ServiceEntry:
    """One entry of a DID document's ``service`` list: ``<did>#<service_id>``, its type and endpoint."""

    service_id: str
    service_type: str
    endpoint: str
    set_height: int

    def to_cbor(self) -> dict[str, Any]:
        return {"type": self.service_type, "endpoint": self.endpoint, "set": self.set_height}


def service_key(did: str, service_id: str) -> str:
    return f"{SERVICE_PREFIX}{did}/{service_id}"


def read_services(state: StateReader, did: str) -> list[ServiceEntry]:
    """The services of ``did`` in service-id order."""
    prefix = f"{SERVICE_PREFIX}{did}/"
    entries = []
    for key, raw in state.iter_prefix(prefix):
        value = decode_trusted(raw)
        entries.append(ServiceEntry(key[len(prefix) :], value["type"], value["endpoint"], value["set"]))
    return entries


def has_service(state: StateReader, did: str, service_id: str) -> bool:
    return state.get(service_key(did, service_id)) is not None


def write_service(state: Overlay, did: str, entry: ServiceEntry) -> None:
    state.set_obj(service_key(did, entry.service_id), entry.to_cbor())


def delete_service(state: Overlay, did: str, service_id: str) -> None:
    assert has_service(state, did, service_id)
    state.delete(service_key(did, service_id))


def iter_raw_services(state: StateReader) -> Iterator[tuple[str, Any]]:
    """(the part of the state key after ``identity/svc/``, stored value) for every service entry."""
    for key, raw in state.iter_prefix(SERVICE_PREFIX):
        yield key[len(SERVICE_PREFIX) :], decode_trusted(raw)


# ---------------------------------------------------------------------------------------------------
# Attestations


@dataclass(frozen=True, slots=True)
class AttestationRecord:
    """An anchored attestation: the claim bytes as signed, the key and signature, the anchoring height,
    and the height of its revocation (None while not revoked)."""

    claim_bytes: bytes
    key: bytes
    signature: bytes
    anchored: int
    revoked: int | None

    @property
    def claim(self) -> Claim:
        return decode_claim_bytes(self.claim_bytes)

    def to_cbor(self) -> dict[str, Any]:
        return {
            "claim": self.claim_bytes,
            "key": self.key,
            "signature": self.signature,
            "anchored": self.anchored,
            "revoked": self.revoked,
        }

    @classmethod
    def from_cbor(cls, data: dict[str, Any]) -> AttestationRecord:
        return cls(data["claim"], data["key"], data["signature"], data["anchored"], data["revoked"])


def attestation_key(attestation_id: bytes) -> str:
    return ATTESTATION_PREFIX + attestation_id.hex()


def subject_index_key(subject: str, height: int, attestation_id: bytes) -> str:
    return f"{SUBJECT_INDEX_PREFIX}{subject}/{height:0{HEIGHT_DIGITS}d}/{attestation_id.hex()}"


def issuer_index_key(issuer: str, height: int, attestation_id: bytes) -> str:
    return f"{ISSUER_INDEX_PREFIX}{issuer}/{height:0{HEIGHT_DIGITS}d}/{attestation_id.hex()}"


def read_attestation(state: StateReader, attestation_id: bytes) -> AttestationRecord | None:
    value = get_obj(state, attestation_key(attestation_id))
    assert value is None or type(value) is dict, "an attestation record is a map"
    return None if value is None else AttestationRecord.from_cbor(value)


def anchor_attestation(
    state: Overlay, attestation_id: bytes, claim: Claim, record: AttestationRecord
) -> None:
    """Write a new attestation record and its two index entries."""
    assert read_attestation(state, attestation_id) is None, "an attestation is anchored once"
    assert record.revoked is None and claim.encode() == record.claim_bytes
    state.set_obj(attestation_key(attestation_id), record.to_cbor())
    state.set_obj(subject_index_key(claim.subject, record.anchored, attestation_id), claim.issuer)
    state.set_obj(issuer_index_key(claim.issuer, record.anchored, attestation_id), claim.subject)


def mark_attestation_revoked(state: Overlay, attestation_id: bytes, height: int) -> None:
    record = read_attestation(state, attestation_id)
    assert record is not None and record.revoked is None
    state.set_obj(attestation_key(attestation_id), replace(record, revoked=height).to_cbor())


def attestation_ids_about(state: StateReader, subject: str) -> list[bytes]:
    """The ids of the attestations about ``subject``, in anchoring order."""
    return [attestation_id for attestation_id, _ in attestations_about_with_issuers(state, subject)]


def attestation_ids_by(state: StateReader, issuer: str) -> list[bytes]:
    """The ids of the attestations ``issuer`` anchored, in anchoring order."""
    return [attestation_id for attestation_id, _ in attestations_by_with_subjects(state, issuer)]


def attestations_about_with_issuers(state: StateReader, subject: str) -> list[tuple[bytes, str]]:
    """(id, issuer) of the attestations about ``subject``, in anchoring order, from the index alone."""
    return _indexed(state, f"{SUBJECT_INDEX_PREFIX}{subject}/")


def attestations_by_with_subjects(state: StateReader, issuer: str) -> list[tuple[bytes, str]]:
    """(id, subject) of the attestations ``issuer`` anchored, in anchoring order, from the index alone."""
    return _indexed(state, f"{ISSUER_INDEX_PREFIX}{issuer}/")


def _indexed(state: StateReader, prefix: str) -> list[tuple[bytes, str]]:
    entries = []
    for key, raw in state.iter_prefix(prefix):
        other = decode_trusted(raw)
        assert type(other) is str, "an attestation index entry names a DID"
        entries.append((bytes.fromhex(key.rsplit("/", 1)[1]), other))
    return entries


def iter_raw_attestations(state: StateReader) -> Iterator[tuple[str, Any]]:
    """(id hex, stored value) for every attestation record (for invariants)."""
    for key, raw in state.iter_prefix(ATTESTATION_PREFIX):
        yield key[len(ATTESTATION_PREFIX) :], decode_trusted(raw)


def iter_subject_index(state: StateReader) -> Iterator[tuple[str, Any]]:
    """(the part of the key after ``identity/attsub/``, stored issuer) for every subject index entry."""
    for key, raw in state.iter_prefix(SUBJECT_INDEX_PREFIX):
        yield key[len(SUBJECT_INDEX_PREFIX) :], decode_trusted(raw)


def iter_issuer_index(state: StateReader) -> Iterator[tuple[str, Any]]:
    """(the part of the key after ``identity/attiss/``, stored subject) for every issuer index entry."""
    for key, raw in state.iter_prefix(ISSUER_INDEX_PREFIX):
        yield key[len(ISSUER_INDEX_PREFIX) :], decode_trusted(raw)


# ---------------------------------------------------------------------------------------------------
# The kill-switch: pause records


@dataclass(frozen=True, slots=True)
class PauseRecord:
    """Why an account is paused (``reason``, from its owner), by whom, and since which height."""

    reason: str
    by: str
    height: int

    def to_cbor(self) -> dict[str, Any]:
        return {"reason": self.reason, "by": self.by, "height": self.height}

    @classmethod
    def from_cbor(cls, data: dict[str, Any]) -> PauseRecord:
        return cls(data["reason"], data["by"], data["height"])


def pause_key(did: str) -> str:
    return PAUSE_PREFIX + did


def read_pause(state: StateReader, did: str) -> PauseRecord | None:
    value = get_obj(state, pause_key(did))
    return None if value is None else PauseRecord.from_cbor(value)


def write_pause(state: Overlay, did: str, record: PauseRecord | None) -> None:
    """Store the pause record of ``did``, or delete it (None)."""
    if record is None:
        state.delete(pause_key(did))
    else:
        state.set_obj(pause_key(did), record.to_cbor())


def iter_raw_pauses(state: StateReader) -> Iterator[tuple[str, Any]]:
    """(did, stored value) for every pause record (for invariants)."""
    for key, raw in state.iter_prefix(PAUSE_PREFIX):
        yield key[len(PAUSE_PREFIX) :], decode_trusted(raw)
