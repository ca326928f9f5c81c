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

The ``autarky`` object carries what the ledger knows about the machine: ``registered``, ``status``,
``owner``, ``kind``, ``maker``, ``model``, ``serial_digest`` (hex), ``capabilities``, ``metadata``,
``registered_height`` and ``keys`` (each with its ``id``, ``actions``, ``allowance`` and ``added``
height; ``actions`` None is the full scope). The document is plain JSON data.
"""

from __future__ import annotations

from typing import Any

import base58

from autarky.crypto.did import InvalidDid, public_key_from_did
from autarky.ledger.state import StateReader
from autarky.modules.identity.keeper import ACTIVE, KeyEntry, read_account

CONTEXT = ("https://www.w3.org/ns/did/v1", "https://w3id.org/security/multikey/v1")
VERIFICATION_METHOD_TYPE = "Multikey"
_ED25519_MULTICODEC = b"\xed\x01"


def public_key_multibase(public_key: bytes) -> str:
    return "z" + base58.b58encode(_ED25519_MULTICODEC + public_key).decode("ascii")


def did_document(state: StateReader, did: str) -> dict[str, Any]:
    """The DID document of ``did``; raises :class:`autarky.crypto.did.InvalidDid` for a non-did:key."""
    did_key = public_key_from_did(did)  # raises InvalidDid, a ValueError
    record = read_account(state, did)
    if record is None:
        implicit_key = KeyEntry(did_key, None, None, 0)
        return _document(did, None, [implicit_key], authenticating=True, autarky=_implicit(did, did_key))
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
    }
    return _document(did, record.owner, entries, authenticating=record.status == ACTIVE, autarky=autarky)


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
    did: str, owner: str | None, entries: list[KeyEntry], *, authenticating: bool, autarky: dict[str, Any]
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


__all__ = ["CONTEXT", "InvalidDid", "did_document", "public_key_multibase"]
