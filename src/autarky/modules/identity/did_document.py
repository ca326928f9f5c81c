"""W3C DID Core documents resolved from ledger state.

Every key is a ``Multikey`` verification method whose ``publicKeyMultibase`` is ``z`` + base58btc of
the multicodec-prefixed key (``0xed01``), the same encoding as the did:key itself, so the did's own
key has the id ``<did>#<fingerprint>`` exactly as the did:key method specifies.

* A registered account lists every key under ``verificationMethod``; its active full-scope keys are
  its ``authentication`` and ``assertionMethod``. Scoped keys act for the account only for the
  actions (and allowance) named in the ``autarky`` extension, so they are not listed there. A
  revoked account keeps its methods listed (so old signatures can still be attributed) but has
  no ``authentication`` or ``assertionMethod``.
* An unregistered did:key resolves to its implicit document: its own key, full scope.
* ``controller`` is the owner's DID when the account has an owner, and absent otherwise.

* ``service`` lists the account's services (``identity/set_service``) in service-id order, each as
  ``{"id": "<did>#<service id>", "type": ..., "serviceEndpoint": ...}``; an empty list when it has none
  (an unregistered did:key never has any).

The ``autarky`` object carries what the ledger knows about the machine: ``registered``, ``status``,
``owner``, ``kind``, ``maker``, ``model``, ``serial_digest`` (hex), ``capabilities``, ``metadata``,
``registered_height`` and ``keys`` (each with its ``id``, ``actions``, ``allowance`` and ``added``
height; ``actions`` None is the full scope). It also lists the attestations anchored about the DID
as their subject (any did:key can be one, registered or not): ``attestations``, newest first and at
most ``MAX_DOCUMENT_ATTESTATIONS`` of them, each ``{"id" (hex), "issuer", "schema", "valid_from_ms",
"valid_until_ms", "anchored", "revoked"}`` (heights; ``revoked`` None while in force), and
``attestations_total``, how many there are in all (``GET /api/v1/attestations?subject=`` pages
through them). With ``now_ms``, each entry also has ``valid`` and ``verdict`` (a reason of
``attestations.check_attestation``) at that time. The document is plain JSON data.
"""

from __future__ import annotations

from typing import Any

import base58

from autarky.crypto.did import InvalidDid, public_key_from_did
from autarky.ledger.state import StateReader
from autarky.modules.identity.attestations import summary, verdict_in_state
from autarky.modules.identity.keeper import (
    ACTIVE,
    KeyEntry,
    attestation_ids_about,
    read_account,
    read_attestation,
    read_services,
)

CONTEXT = ("https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1")
VERIFICATION_METHOD_TYPE = "Multikey"
MAX_DOCUMENT_ATTESTATIONS = 64
_ED25519_MULTICODEC = b"\xed\x01"


def public_key_multibase(public_key: bytes) -> str:
    return "z" + base58.b58encode(_ED25519_MULTICODEC + public_key).decode("ascii")


def did_document(state: StateReader, did: str, now_ms: int | None = None) -> dict[str, Any]:
    """The DID document of ``did``; raises :class:`autarky.crypto.did.InvalidDid` for a non-did:key.

    ``now_ms`` (optional) is the time at which the listed attestations are checked.
    """
    did_key = public_key_from_did(did)  # raises InvalidDid, a ValueError
    record = read_account(state, did)
    if record is None:
        implicit_key = KeyEntry(did_key, None, None, 0)
        autarky = {**_implicit(did, did_key), **_attestations(state, did, now_ms)}
        return _document(state, did, None, [implicit_key], authenticating=True, autarky=autarky)
    entries = list(record.keys)
    autarky = {
        "registered": True,
        "status": record.status,
        "owner": record.owner,
        "kind": record.kind,
        "maker": record.maker,
        "model": record.model,
        "serial_digest": None if record.serial_digest is None else record.serial_digest.hex(),
        "capabilities": list(record.capabilities),
        "metadata": dict(record.metadata),
        "registered_height": record.registered,
        "keys": [_key_json(did, entry) for entry in entries],
        **_attestations(state, did, now_ms),
    }
    authenticating = record.status == ACTIVE
    return _document(state, did, record.owner, entries, authenticating=authenticating, autarky=autarky)


def _attestations(state: StateReader, did: str, now_ms: int | None) -> dict[str, Any]:
    ids = attestation_ids_about(state, did)
    listed = []
    for attestation_id in reversed(ids[-MAX_DOCUMENT_ATTESTATIONS:]):
        record = read_attestation(state, attestation_id)
        assert record is not None, "the subject index names only anchored attestations"
        entry = summary(attestation_id, record)
        del entry["subject"]
        if now_ms is not None:
            verdict = verdict_in_state(state, record, now_ms)
            entry["valid"] = verdict.valid
            entry["verdict"] = verdict.reason
        listed.append(entry)
    return {"attestations": listed, "attestations_total": len(ids)}


def _implicit(did: str, did_key: bytes) -> dict[str, Any]:
    return {
        "registered": False,
        "status": ACTIVE,
        "owner": None,
        "kind": None,
        "maker": None,
        "model": None,
        "serial_digest": None,
        "capabilities": [],
        "metadata": {},
        "registered_height": None,
        "keys": [{"id": _method_id(did, did_key), "actions": None, "allowance": None, "added": None}],
    }


def _document(
    state: StateReader,
    did: str,
    owner: str | None,
    entries: list[KeyEntry],
    *,
    authenticating: bool,
    autarky: dict[str, Any],
) -> dict[str, Any]:
    methods = [
        {
            "id": _method_id(did, entry.key),
            "type": VERIFICATION_METHOD_TYPE,
            "controller": did,
            "publicKeyMultibase": public_key_multibase(entry.key),
        }
        for entry in entries
    ]
    usable = [_method_id(did, entry.key) for entry in entries if entry.full] if authenticating else []
    document: dict[str, Any] = {"@context": list(CONTEXT), "id": did}
    if owner is not None:
        document["controller"] = owner
    document["verificationMethod"] = methods
    document["authentication"] = usable
    document["assertionMethod"] = list(usable)
    document["service"] = [
        {"id": f"{did}#{entry.service_id}", "type": entry.service_type, "serviceEndpoint": entry.endpoint}
        for entry in read_services(state, did)
    ]
    document["autarky"] = autarky
    return document


def _method_id(did: str, public_key: bytes) -> str:
    return f"{did}#{public_key_multibase(public_key)}"


def _key_json(did: str, entry: KeyEntry) -> dict[str, Any]:
    return {
        "id": _method_id(did, entry.key),
        "actions": None if entry.actions is None else list(entry.actions),
        "allowance": None if entry.allowance is None else dict(entry.allowance),
        "added": entry.added,
    }


__all__ = ["CONTEXT", "MAX_DOCUMENT_ATTESTATIONS", "InvalidDid", "did_document", "public_key_multibase"]
