"""The identity messages as typed, frozen values, parsed from a transaction's message maps.

Parsing checks the message alone, never the state, in two stages whose order is part of the
module's precedence (README.md):

1. shape: every required field is present, no unexpected field is, and every field has its type
   (``core.invalid_message``); fields that accept None may be left out;
2. values, code by code: ``identity.invalid_did``, ``identity.invalid_key``, ``identity.invalid_field``,
   ``identity.too_large``, ``identity.invalid_scope``, ``identity.bad_claim_signature``.

An ``identity/attest`` message is a signed claim (``claims.py``) with its ``"type"``; its claim is
parsed by ``claims.parse_signed_claim``, which verifies the claim signature here, before any state
is read (a signature is a property of the message alone).

The value checks are also used to validate the genesis accounts, so a genesis file and a transaction
are held to the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.crypto.keys import InvalidKey, check_public_key
from autarky.ledger.errors import INVALID_MESSAGE
from autarky.ledger.router import check_field_names, require_text
from autarky.ledger.tx import MAX_U64
from autarky.modules.identity.claims import SIGNED_CLAIM_FIELDS, SignedClaim, parse_signed_claim
from autarky.modules.identity.errors import INVALID_DID, INVALID_FIELD, INVALID_KEY, INVALID_SCOPE, TOO_LARGE

REGISTER = "identity/register"
ADD_KEY = "identity/add_key"
REMOVE_KEY = "identity/remove_key"
ROTATE = "identity/rotate"
REVOKE = "identity/revoke"
RECOVER = "identity/recover"
ATTEST = "identity/attest"
REVOKE_ATTESTATION = "identity/revoke_attestation"
SET_SERVICE = "identity/set_service"
REMOVE_SERVICE = "identity/remove_service"
PAUSE = "identity/pause"
RESUME = "identity/resume"
MESSAGE_TYPES = (
    REGISTER,
    ADD_KEY,
    REMOVE_KEY,
    ROTATE,
    REVOKE,
    RECOVER,
    ATTEST,
    REVOKE_ATTESTATION,
    SET_SERVICE,
    REMOVE_SERVICE,
    PAUSE,
    RESUME,
)

# Size caps. They bound the state one registration can occupy and the DID documents served from it.
MAX_TEXT_CHARS = 64
"""kind, maker, model and each capability."""
MAX_CAPABILITIES = 16
MAX_METADATA_ENTRIES = 16
MAX_METADATA_KEY_CHARS = 32
MAX_METADATA_VALUE_CHARS = 256
SERIAL_DIGEST_BYTES = 32
MAX_KEYS_PER_ACCOUNT = 8
MAX_ACTIONS = 16
MAX_ALLOWANCE_ASSETS = 16
MAX_ASSET_CHARS = 64
ATTESTATION_ID_BYTES = 32
MAX_SERVICES_PER_ACCOUNT = 8
MAX_SERVICE_ID_CHARS = 32
MAX_SERVICE_TYPE_CHARS = 64
MAX_SERVICE_ENDPOINT_CHARS = 256
MAX_PAUSE_REASON_CHARS = 256

# A message type as the router names it: ``module/action``, lower case.
_ACTION = re.compile(r"^[a-z][a-z0-9_]{0,31}/[a-z][a-z0-9_]{0,31}$")
# A service id is the fragment of ``<did>#<id>``; a service type a DID Core type name such as
# ``LinkedDomains`` or ``MQTTBroker``; an endpoint a URI with a scheme and no spaces or controls.
_SERVICE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_SERVICE_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]*")
_ENDPOINT = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[\x21-\x7e]+")

Actions = tuple[str, ...]
Allowance = tuple[tuple[str, int], ...]


@dataclass(frozen=True, slots=True)
class Register:
    did: str
    kind: str
    maker: str
    model: str
    serial_digest: bytes | None
    capabilities: tuple[str, ...]
    metadata: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class AddKey:
    did: str
    key: bytes
    actions: Actions | None
    allowance: Allowance | None


@dataclass(frozen=True, slots=True)
class RemoveKey:
    did: str
    key: bytes


@dataclass(frozen=True, slots=True)
class Rotate:
    did: str
    old_key: bytes
    new_key: bytes


@dataclass(frozen=True, slots=True)
class Revoke:
    did: str


@dataclass(frozen=True, slots=True)
class Pause:
    did: str
    reason: str


@dataclass(frozen=True, slots=True)
class Resume:
    did: str


@dataclass(frozen=True, slots=True)
class Recover:
    did: str
    new_key: bytes


@dataclass(frozen=True, slots=True)
class Attest:
    signed: SignedClaim


@dataclass(frozen=True, slots=True)
class RevokeAttestation:
    id: bytes


@dataclass(frozen=True, slots=True)
class SetService:
    did: str
    service_id: str
    service_type: str
    endpoint: str


@dataclass(frozen=True, slots=True)
class RemoveService:
    did: str
    service_id: str


# ---------------------------------------------------------------------------------------------------
# Parsers, one per message


def parse_register(message: Mapping[str, Any]) -> Register:
    required = ("did", "kind", "maker", "model", "capabilities", "metadata")
    check_field_names(message, required, ("serial_digest",))
    did = require_text(message, "did")
    kind, maker, model = (
        require_text(message, "kind"),
        require_text(message, "maker"),
        require_text(message, "model"),
    )
    serial_digest = _optional_bytes(message, "serial_digest")
    capabilities = _text_list(message, "capabilities")
    metadata = _text_map(message, "metadata")
    check_did(did, "did")
    descriptive = check_descriptive(kind, maker, model, serial_digest, capabilities, metadata)
    return Register(did, *descriptive)


def parse_add_key(message: Mapping[str, Any]) -> AddKey:
    check_field_names(message, ("did", "key"), ("actions", "allowance"))
    did = require_text(message, "did")
    key = _key_bytes(message, "key")
    actions = _optional_text_list(message, "actions")
    allowance = _optional_amount_map(message, "allowance")
    check_did(did, "did")
    check_key(key, "key")
    scoped_actions, scoped_allowance = check_scope(actions, allowance)
    return AddKey(did, key, scoped_actions, scoped_allowance)


def parse_remove_key(message: Mapping[str, Any]) -> RemoveKey:
    check_field_names(message, ("did", "key"), ())
    did = require_text(message, "did")
    key = _key_bytes(message, "key")
    check_did(did, "did")
    # A key being removed is looked up, not installed, but a key that could never have been
    # installed is named as such rather than as "not found".
    check_key(key, "key")
    return RemoveKey(did, key)


def parse_rotate(message: Mapping[str, Any]) -> Rotate:
    check_field_names(message, ("did", "old_key", "new_key"), ())
    did = require_text(message, "did")
    old_key = _key_bytes(message, "old_key")
    new_key = _key_bytes(message, "new_key")
    check_did(did, "did")
    check_key(old_key, "old_key")
    check_key(new_key, "new_key")
    return Rotate(did, old_key, new_key)


def parse_revoke(message: Mapping[str, Any]) -> Revoke:
    check_field_names(message, ("did",), ())
    did = require_text(message, "did")
    check_did(did, "did")
    return Revoke(did)


def parse_pause(message: Mapping[str, Any]) -> Pause:
    check_field_names(message, ("did", "reason"), ())
    did = require_text(message, "did")
    reason = require_text(message, "reason")
    check_did(did, "did")
    if len(reason) > MAX_PAUSE_REASON_CHARS:
        raise TOO_LARGE(f"reason is longer than {MAX_PAUSE_REASON_CHARS} characters")
    return Pause(did, reason)


def parse_resume(message: Mapping[str, Any]) -> Resume:
    check_field_names(message, ("did",), ())
    did = require_text(message, "did")
    check_did(did, "did")
    return Resume(did)


def parse_recover(message: Mapping[str, Any]) -> Recover:
    check_field_names(message, ("did", "new_key"), ())
    did = require_text(message, "did")
    new_key = _key_bytes(message, "new_key")
    check_did(did, "did")
    check_key(new_key, "new_key")
    return Recover(did, new_key)


def parse_attest(message: Mapping[str, Any]) -> Attest:
    return Attest(parse_signed_claim(message, ("type", *SIGNED_CLAIM_FIELDS)))


def parse_revoke_attestation(message: Mapping[str, Any]) -> RevokeAttestation:
    check_field_names(message, ("id",), ())
    value = message.get("id")
    if type(value) is not bytes:
        raise INVALID_MESSAGE("field 'id' must be bytes (an attestation id)")
    if len(value) != ATTESTATION_ID_BYTES:
        raise INVALID_FIELD(f"an attestation id is {ATTESTATION_ID_BYTES} bytes (SHA-256 of the claim)")
    return RevokeAttestation(value)


def parse_set_service(message: Mapping[str, Any]) -> SetService:
    check_field_names(message, ("did", "service_id", "service_type", "endpoint"), ())
    did = require_text(message, "did")
    service_id = require_text(message, "service_id")
    service_type = require_text(message, "service_type")
    endpoint = require_text(message, "endpoint")
    check_did(did, "did")
    check_service(service_id, service_type, endpoint)
    return SetService(did, service_id, service_type, endpoint)


def parse_remove_service(message: Mapping[str, Any]) -> RemoveService:
    check_field_names(message, ("did", "service_id"), ())
    did = require_text(message, "did")
    service_id = require_text(message, "service_id")
    check_did(did, "did")
    check_service_id(service_id)
    return RemoveService(did, service_id)


# ---------------------------------------------------------------------------------------------------
# Builders: the message maps clients put in a transaction body


def register(
    did: str,
    kind: str,
    maker: str = "",
    model: str = "",
    serial_digest: bytes | None = None,
    capabilities: tuple[str, ...] | list[str] = (),
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    return {
        "type": REGISTER,
        "did": did,
        "kind": kind,
        "maker": maker,
        "model": model,
        "serial_digest": serial_digest,
        "capabilities": list(capabilities),
        "metadata": dict(metadata or {}),
    }


def add_key(
    did: str, key: bytes, actions: list[str] | None = None, allowance: Mapping[str, int] | None = None
) -> dict[str, Any]:
    return {
        "type": ADD_KEY,
        "did": did,
        "key": key,
        "actions": None if actions is None else list(actions),
        "allowance": None if allowance is None else dict(allowance),
    }


def remove_key(did: str, key: bytes) -> dict[str, Any]:
    return {"type": REMOVE_KEY, "did": did, "key": key}


def rotate(did: str, old_key: bytes, new_key: bytes) -> dict[str, Any]:
    return {"type": ROTATE, "did": did, "old_key": old_key, "new_key": new_key}


def revoke(did: str) -> dict[str, Any]:
    return {"type": REVOKE, "did": did}


def pause(did: str, reason: str = "") -> dict[str, Any]:
    """The owner stops machine ``did``: the ledger refuses everything it signs until ``resume``."""
    return {"type": PAUSE, "did": did, "reason": reason}


def resume(did: str) -> dict[str, Any]:
    return {"type": RESUME, "did": did}


def recover(did: str, new_key: bytes) -> dict[str, Any]:
    return {"type": RECOVER, "did": did, "new_key": new_key}


def attest(signed: SignedClaim) -> dict[str, Any]:
    """Anchor ``signed`` (see ``claims.sign_claim``); the transaction's sender must be its issuer."""
    return {"type": ATTEST, **signed.to_cbor()}


def revoke_attestation(attestation_id: bytes) -> dict[str, Any]:
    return {"type": REVOKE_ATTESTATION, "id": attestation_id}


def set_service(did: str, service_id: str, service_type: str, endpoint: str) -> dict[str, Any]:
    return {
        "type": SET_SERVICE,
        "did": did,
        "service_id": service_id,
        "service_type": service_type,
        "endpoint": endpoint,
    }


def remove_service(did: str, service_id: str) -> dict[str, Any]:
    return {"type": REMOVE_SERVICE, "did": did, "service_id": service_id}


# ---------------------------------------------------------------------------------------------------
# Value checks, shared with genesis validation


def check_did(value: str, name: str) -> str:
    if not is_did_key(value):
        raise INVALID_DID(f"{name} must be an Ed25519 did:key with an acceptable key")
    return value


def check_key(value: bytes, name: str) -> bytes:
    try:
        return check_public_key(value)
    except InvalidKey as exc:
        raise INVALID_KEY(f"{name}: {exc}") from exc


def check_descriptive(
    kind: str,
    maker: str,
    model: str,
    serial_digest: bytes | None,
    capabilities: list[str],
    metadata: dict[str, str],
) -> tuple[str, str, str, bytes | None, tuple[str, ...], tuple[tuple[str, str], ...]]:
    """Check a registration's descriptive fields: every ``invalid_field`` check before ``too_large``."""
    if not kind:
        raise INVALID_FIELD("kind must not be empty")
    if serial_digest is not None and len(serial_digest) != SERIAL_DIGEST_BYTES:
        raise INVALID_FIELD(f"serial_digest must be {SERIAL_DIGEST_BYTES} bytes (a SHA-256 digest) or None")
    if any(not capability for capability in capabilities):
        raise INVALID_FIELD("capabilities must not be empty strings")
    if len(set(capabilities)) != len(capabilities):
        raise INVALID_FIELD("capabilities must not repeat")
    if any(not name for name in metadata):
        raise INVALID_FIELD("metadata keys must not be empty")
    for name, value in (("kind", kind), ("maker", maker), ("model", model)):
        if len(value) > MAX_TEXT_CHARS:
            raise TOO_LARGE(f"{name} is longer than {MAX_TEXT_CHARS} characters")
    if len(capabilities) > MAX_CAPABILITIES:
        raise TOO_LARGE(f"at most {MAX_CAPABILITIES} capabilities")
    if any(len(capability) > MAX_TEXT_CHARS for capability in capabilities):
        raise TOO_LARGE(f"a capability is longer than {MAX_TEXT_CHARS} characters")
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise TOO_LARGE(f"at most {MAX_METADATA_ENTRIES} metadata entries")
    for name, value in sorted(metadata.items()):
        if len(name) > MAX_METADATA_KEY_CHARS:
            raise TOO_LARGE(f"metadata key {name[:40]!r} is longer than {MAX_METADATA_KEY_CHARS} characters")
        if len(value) > MAX_METADATA_VALUE_CHARS:
            raise TOO_LARGE(f"metadata value of {name!r} exceeds {MAX_METADATA_VALUE_CHARS} characters")
    return kind, maker, model, serial_digest, tuple(capabilities), tuple(sorted(metadata.items()))


def check_scope(
    actions: list[str] | None, allowance: dict[str, int] | None
) -> tuple[Actions | None, Allowance | None]:
    """Check a key scope and return it in its stored form (sorted actions, sorted allowance pairs).

    ``actions`` None is the full scope. An allowance limits what a scoped key may spend; a full-scope
    key has none (it could otherwise install a key without one and escape it).
    """
    if actions is None:
        if allowance is not None:
            raise INVALID_SCOPE("an allowance applies only to a key limited to named actions")
        return None, None
    if not 1 <= len(actions) <= MAX_ACTIONS:
        raise INVALID_SCOPE(f"a scoped key names 1 to {MAX_ACTIONS} actions (None for the full scope)")
    for action in actions:
        if not _ACTION.fullmatch(action):
            raise INVALID_SCOPE(f"action {action[:70]!r} is not a message type such as 'bank/transfer'")
    if len(set(actions)) != len(actions):
        raise INVALID_SCOPE("actions must not repeat")
    if allowance is None:
        return tuple(sorted(actions)), None
    if len(allowance) > MAX_ALLOWANCE_ASSETS:
        raise INVALID_SCOPE(f"an allowance names at most {MAX_ALLOWANCE_ASSETS} assets")
    for asset, amount in sorted(allowance.items()):
        if not 1 <= len(asset) <= MAX_ASSET_CHARS:
            raise INVALID_SCOPE(f"asset names are 1 to {MAX_ASSET_CHARS} characters")
        if not 0 <= amount <= MAX_U64:
            raise INVALID_SCOPE(f"the allowance of {asset!r} must be between 0 and 2**64 - 1")
    return tuple(sorted(actions)), tuple(sorted(allowance.items()))


def check_service_id(service_id: str) -> str:
    _check_service_id_form(service_id)
    if len(service_id) > MAX_SERVICE_ID_CHARS:
        raise TOO_LARGE(f"service_id is longer than {MAX_SERVICE_ID_CHARS} characters")
    return service_id


def check_service(service_id: str, service_type: str, endpoint: str) -> None:
    """Check a service entry: every ``invalid_field`` check before ``too_large``."""
    _check_service_id_form(service_id)
    if not _SERVICE_TYPE.fullmatch(service_type):
        raise INVALID_FIELD("service_type must be a type name such as 'LinkedDomains' or 'MQTTBroker'")
    if not _ENDPOINT.fullmatch(endpoint):
        raise INVALID_FIELD(
            "endpoint must be a URI with a scheme (e.g. 'mqtts://broker.example:8883'), no spaces"
        )
    for name, value, limit in (
        ("service_id", service_id, MAX_SERVICE_ID_CHARS),
        ("service_type", service_type, MAX_SERVICE_TYPE_CHARS),
        ("endpoint", endpoint, MAX_SERVICE_ENDPOINT_CHARS),
    ):
        if len(value) > limit:
            raise TOO_LARGE(f"{name} is longer than {limit} characters")


def _check_service_id_form(service_id: str) -> None:
    if not _SERVICE_ID.fullmatch(service_id):
        raise INVALID_FIELD(
            "service_id must be letters, digits, '.', '_', '-', starting with a letter or digit"
        )


# ---------------------------------------------------------------------------------------------------
# Shape checks: core.invalid_message


def _key_bytes(message: Mapping[str, Any], name: str) -> bytes:
    value = message.get(name)
    if type(value) is not bytes:
        raise INVALID_MESSAGE(f"field {name!r} must be a 32-byte public key")
    return value


def _optional_bytes(message: Mapping[str, Any], name: str) -> bytes | None:
    value = message.get(name)
    if value is not None and type(value) is not bytes:
        raise INVALID_MESSAGE(f"field {name!r} must be bytes or None")
    return value


def _text_list(message: Mapping[str, Any], name: str) -> list[str]:
    value = message.get(name)
    if type(value) is not list or any(type(item) is not str for item in value):
        raise INVALID_MESSAGE(f"field {name!r} must be a list of text")
    return value


def _optional_text_list(message: Mapping[str, Any], name: str) -> list[str] | None:
    return None if message.get(name) is None else _text_list(message, name)


def _text_map(message: Mapping[str, Any], name: str) -> dict[str, str]:
    value = message.get(name)
    if type(value) is not dict or any(type(k) is not str or type(v) is not str for k, v in value.items()):
        raise INVALID_MESSAGE(f"field {name!r} must be a map from text to text")
    return value


def _optional_amount_map(message: Mapping[str, Any], name: str) -> dict[str, int] | None:
    value = message.get(name)
    if value is None:
        return None
    if type(value) is not dict or any(type(k) is not str or type(v) is not int for k, v in value.items()):
        raise INVALID_MESSAGE(f"field {name!r} must be a map from asset to integer amount, or None")
    return value
