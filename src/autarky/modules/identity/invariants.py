"""What must hold in the identity state after every block. Run by tests; each broken rule is one line.

1. Every account record is well formed: a did:key, an owner that is None or another did:key, a
   known status, 1 to ``MAX_KEYS_PER_ACCOUNT`` distinct acceptable keys with at least one of full
   scope, and no allowance on a full-scope key.
2. The key index and the records agree both ways: every key a record lists is indexed to that
   record's DID, and every index entry names a registered account that lists the key.
3. Every allowance counter belongs to a listed key whose allowance names that asset, is positive,
   and does not exceed the allowance.
4. Every service entry belongs to a registered account, passes the ``set_service`` value rules, and
   no account has more than ``MAX_SERVICES_PER_ACCOUNT``.
5. Every attestation record is well formed: its id is the SHA-256 of its claim bytes, the claim
   passes the claim rules, the signature verifies under the record's key, and a revocation height
   is not before the anchoring height.
6. The subject and issuer indexes and the records agree both ways: each record has exactly one
   entry in each (at its anchoring height, naming the other party), and each entry names a record.
7. A pause record exists exactly for the accounts whose status is ``paused``, and is well formed
   (a reason of at most ``MAX_PAUSE_REASON_CHARS``, the owner that paused it, a height).

The checks read the raw stored values and report what they find rather than assert, so a
corrupted state produces a readable list instead of a crash.
"""

from __future__ import annotations

from typing import Any

from autarky.crypto.did import is_did_key
from autarky.crypto.keys import InvalidKey, check_public_key
from autarky.ledger.errors import TxError
from autarky.ledger.state import StateReader
from autarky.modules.identity.claims import attestation_id, decode_claim_bytes, verify_claim_signature
from autarky.modules.identity.keeper import (
    HEIGHT_DIGITS,
    PAUSED,
    STATUSES,
    iter_allowance_spent,
    iter_issuer_index,
    iter_key_index,
    iter_raw_accounts,
    iter_raw_attestations,
    iter_raw_pauses,
    iter_raw_services,
    iter_subject_index,
)
from autarky.modules.identity.messages import (
    MAX_KEYS_PER_ACCOUNT,
    MAX_PAUSE_REASON_CHARS,
    MAX_SERVICES_PER_ACCOUNT,
    check_service,
)

_RECORD_FIELDS = (
    "capabilities",
    "keys",
    "kind",
    "maker",
    "metadata",
    "model",
    "owner",
    "registered",
    "serial_digest",
    "status",
)
_KEY_FIELDS = ("actions", "added", "allowance", "key")


def check_invariants(state: StateReader) -> list[str]:
    problems: list[str] = []
    listed: dict[str, str] = {}  # key hex -> DID whose record lists it
    allowances: dict[tuple[str, str], dict[str, int] | None] = {}  # (DID, key hex) -> allowance
    owners: dict[str, Any] = {}  # DID -> owner, for the paused accounts
    for did, record in iter_raw_accounts(state):
        problems.extend(_check_record(did, record))
        if type(record) is dict and record.get("status") == PAUSED:
            owners[did] = record.get("owner")
        for entry in _key_entries(record):
            key_hex = entry["key"].hex()
            if key_hex in listed and listed[key_hex] != did:
                problems.append(f"key {key_hex} is listed by both {listed[key_hex]} and {did}")
            listed[key_hex] = did
            allowances[(did, key_hex)] = entry["allowance"]
    problems.extend(_check_key_index(state, listed))
    problems.extend(_check_pauses(state, owners))
    problems.extend(_check_allowance_counters(state, allowances))
    problems.extend(_check_services(state, set(listed.values())))
    problems.extend(_check_attestations(state))
    return problems


def _check_record(did: str, record: Any) -> list[str]:
    if type(record) is not dict or sorted(record) != list(_RECORD_FIELDS):
        return [f"account {did}: record is not a map with the fields {list(_RECORD_FIELDS)}"]
    problems: list[str] = []
    if not is_did_key(did):
        problems.append(f"account {did}: not an Ed25519 did:key")
    owner = record["owner"]
    if owner is not None and (not is_did_key(owner) or owner == did):
        problems.append(f"account {did}: owner {owner!r} is not another did:key")
    if record["status"] not in STATUSES:
        problems.append(f"account {did}: unknown status {record['status']!r}")
    keys = record["keys"]
    if type(keys) is not list or not 1 <= len(keys) <= MAX_KEYS_PER_ACCOUNT:
        return [*problems, f"account {did}: must list 1 to {MAX_KEYS_PER_ACCOUNT} keys"]
    entries = _key_entries(record)
    if len(entries) != len(keys):
        problems.append(f"account {did}: a key entry is malformed")
    raw_keys = [entry["key"] for entry in entries]
    if len(raw_keys) != len(set(raw_keys)):
        problems.append(f"account {did}: a key is listed twice")
    if not any(entry["actions"] is None for entry in entries):
        problems.append(f"account {did}: no full-scope key")
    for entry in entries:
        if entry["actions"] is None and entry["allowance"] is not None:
            problems.append(f"account {did}: full-scope key {entry['key'].hex()} has an allowance")
    return problems


def _key_entries(record: Any) -> list[dict[str, Any]]:
    """The well-formed key entries of a record (malformed ones are reported by ``_check_record``)."""
    if type(record) is not dict or type(record.get("keys")) is not list:
        return []
    entries = []
    for entry in record["keys"]:
        if type(entry) is not dict or sorted(entry) != list(_KEY_FIELDS):
            continue
        if not _acceptable_key(entry["key"]):
            continue
        if entry["actions"] is not None and type(entry["actions"]) is not list:
            continue
        if entry["allowance"] is not None and type(entry["allowance"]) is not dict:
            continue
        entries.append(entry)
    return entries


def _acceptable_key(value: Any) -> bool:
    try:
        check_public_key(value)
    except InvalidKey:
        return False
    return True


def _check_key_index(state: StateReader, listed: dict[str, str]) -> list[str]:
    problems: list[str] = []
    indexed: dict[str, Any] = dict(iter_key_index(state))
    for key_hex, holder in indexed.items():
        if listed.get(key_hex) != holder:
            problems.append(f"key index: {key_hex} -> {holder!r}, but that account does not list it")
    for key_hex, did in listed.items():
        if indexed.get(key_hex) != did:
            problems.append(f"account {did}: lists key {key_hex}, which is not indexed to it")
    return problems


def _check_allowance_counters(
    state: StateReader, allowances: dict[tuple[str, str], dict[str, int] | None]
) -> list[str]:
    problems: list[str] = []
    for path, spent in iter_allowance_spent(state):
        parts = path.split("/", 2)
        if len(parts) != 3:
            problems.append(f"allowance counter identity/allow/{path}: malformed key")
            continue
        did, key_hex, asset = parts
        allowance = allowances.get((did, key_hex))
        if allowance is None or asset not in allowance:
            problems.append(f"allowance counter {path}: no listed key has an allowance for {asset!r}")
        elif type(spent) is not int or not 0 < spent <= allowance[asset]:
            problems.append(f"allowance counter {path}: spent {spent!r} is outside 1..{allowance[asset]}")
    return problems


def _check_services(state: StateReader, registered: set[str]) -> list[str]:
    problems: list[str] = []
    counts: dict[str, int] = {}
    for path, value in iter_raw_services(state):
        did, _, service_id = path.partition("/")
        if did not in registered:
            problems.append(f"service {path}: {did} is not a registered account")
        counts[did] = counts.get(did, 0) + 1
        if type(value) is not dict or sorted(value) != ["endpoint", "set", "type"]:
            problems.append(f"service {path}: value is not a map of endpoint, set, type")
            continue
        try:
            check_service(service_id, value["type"], value["endpoint"])
        except (TxError, TypeError) as exc:
            problems.append(f"service {path}: {exc}")
    for did, count in counts.items():
        if count > MAX_SERVICES_PER_ACCOUNT:
            problems.append(f"account {did}: {count} services, more than {MAX_SERVICES_PER_ACCOUNT}")
    return problems


_ATTESTATION_FIELDS = ["anchored", "claim", "key", "revoked", "signature"]


def _check_attestations(state: StateReader) -> list[str]:
    problems: list[str] = []
    expected_subject: dict[str, str] = {}  # subject index path -> issuer it must hold
    expected_issuer: dict[str, str] = {}  # issuer index path -> subject it must hold
    for id_hex, record in iter_raw_attestations(state):
        where = f"attestation {id_hex}"
        if type(record) is not dict or sorted(record) != _ATTESTATION_FIELDS:
            problems.append(f"{where}: record is not a map with the fields {_ATTESTATION_FIELDS}")
            continue
        claim_bytes, anchored, revoked = record["claim"], record["anchored"], record["revoked"]
        if type(claim_bytes) is not bytes or attestation_id(claim_bytes).hex() != id_hex:
            problems.append(f"{where}: the id is not the SHA-256 of the claim bytes")
            continue
        try:
            claim = decode_claim_bytes(claim_bytes)
        except TxError as exc:
            problems.append(f"{where}: malformed claim: {exc}")
            continue
        if not verify_claim_signature(claim_bytes, record["key"], record["signature"]):
            problems.append(f"{where}: the signature does not verify under the record's key")
        if type(anchored) is not int or anchored < 0:
            problems.append(f"{where}: anchoring height {anchored!r} is not a height")
            continue
        if revoked is not None and (type(revoked) is not int or revoked < anchored):
            problems.append(f"{where}: revocation height {revoked!r} is not a height at or after {anchored}")
        height = f"{anchored:0{HEIGHT_DIGITS}d}"
        expected_subject[f"{claim.subject}/{height}/{id_hex}"] = claim.issuer
        expected_issuer[f"{claim.issuer}/{height}/{id_hex}"] = claim.subject
    problems.extend(_compare_index("subject", dict(iter_subject_index(state)), expected_subject))
    problems.extend(_compare_index("issuer", dict(iter_issuer_index(state)), expected_issuer))
    return problems


def _compare_index(name: str, stored: dict[str, object], expected: dict[str, str]) -> list[str]:
    problems: list[str] = []
    for path, value in stored.items():
        if expected.get(path) != value:
            problems.append(f"{name} index {path} -> {value!r}: no attestation record matches it")
    for path, value in expected.items():
        if path not in stored:
            problems.append(f"{name} index: entry {path} -> {value} is missing")
    return problems


def _check_pauses(state: StateReader, paused_owners: dict[str, Any]) -> list[str]:
    """Invariant 7: pause records and paused accounts agree both ways."""
    problems: list[str] = []
    recorded: list[str] = []
    for did, value in iter_raw_pauses(state):
        recorded.append(did)
        if did not in paused_owners:
            problems.append(f"pause record of {did}, which is not a paused account")
            continue
        if (
            type(value) is not dict
            or sorted(value) != ["by", "height", "reason"]
            or type(value["reason"]) is not str
            or len(value["reason"]) > MAX_PAUSE_REASON_CHARS
            or type(value["height"]) is not int
            or value["by"] != paused_owners[did]
        ):
            problems.append(f"pause record of {did} is malformed or not by its owner: {value!r}")
    for did in paused_owners:
        if did not in recorded:
            problems.append(f"{did} is paused without a pause record")
    return problems
