"""What a receiver needs to know about senders, answered offline: keys and grants.

A :class:`Directory` answers two questions from what the receiver holds locally (a cache), never by
asking a node while a message waits:

* ``key(kid, now_ms)``: which account a key id belongs to, its public key, whether it is active and
  its scope; or :class:`~autarky.messaging.errors.MessageError` ``msg.unknown_key`` /
  ``msg.key_revoked``;
* ``authorize(grantee, grant_id, action, resource, now_ms)``: whether grant ``grant_id`` lets
  ``grantee`` do ``action`` on ``resource`` now, walking its delegation chain to the root; the
  answer names the grant used and the root grantor (the receiver decides whether it trusts that
  grantor), or a ``msg.no_grant`` / ``msg.grant_*`` error (``GRANT_CODES_IN_PRECEDENCE``).

Two implementations: :class:`StaticDirectory` here (an explicit in-memory directory built from DID
documents and grant records handed to it: tests, benchmarks, a device provisioned by hand) and the
proof-checked cache in ``autarky.verify`` (entries checked against finalized headers).

Key ids are ``<account did>#<publicKeyMultibase>``, the verification method ids of the account's DID
document (``modules/identity/did_document.py``): the fragment is ``z`` + base58btc of ``0xed01`` +
the key, the same text as a did:key's method-specific id, so :func:`public_key_from_kid` reads the
key back without any lookup.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from autarky.crypto.did import InvalidDid, did_from_public_key, public_key_from_did
from autarky.messaging import errors

_DID_KEY_PREFIX = "did:key:"
MAX_KID_CHARS = 256
MAX_DELEGATION_DEPTH = 16
ACTIVE = "active"


def key_id(account: str, public_key: bytes) -> str:
    """``<account>#<publicKeyMultibase>``: the kid of ``public_key`` acting for ``account``."""
    return f"{account}#{did_from_public_key(public_key)[len(_DID_KEY_PREFIX) :]}"


def split_kid(kid: str) -> tuple[str, bytes]:
    """``(account did, public key)`` of a well-formed kid; raises ``ValueError`` otherwise."""
    if type(kid) is not str:
        raise ValueError("a key id is text")
    return _split_kid(kid)


@functools.lru_cache(maxsize=1 << 12)  # pure; receivers meet the same few kids again and again
def _split_kid(kid: str) -> tuple[str, bytes]:
    if type(kid) is not str or len(kid) > MAX_KID_CHARS or kid.count("#") != 1:
        raise ValueError("a key id is '<did>#<publicKeyMultibase>'")
    account, fragment = kid.split("#")
    try:
        public_key_from_did(account)
        return account, public_key_from_did(_DID_KEY_PREFIX + fragment)
    except InvalidDid as exc:
        raise ValueError(f"a key id is '<did:key>#<Ed25519 publicKeyMultibase>': {exc}") from exc


def public_key_from_kid(kid: str) -> bytes:
    """The 32-byte Ed25519 key named by a kid's fragment; raises ``ValueError``."""
    return split_kid(kid)[1]


@dataclass(frozen=True, slots=True)
class KeyInfo:
    """What the directory knows about one key of one account."""

    kid: str
    account: str
    public_key: bytes
    active: bool
    actions: tuple[str, ...] | None = None  # None: full scope; else the message types it may sign

    def permits(self, msg_type: str) -> bool:
        return self.actions is None or msg_type in self.actions


@dataclass(frozen=True, slots=True)
class GrantDecision:
    """A grant that allows the action: the leaf grant used, the root grantor, and the chain (leaf first)."""

    grant_id: str
    root_grantor: str
    chain: tuple[str, ...] = ()


class Directory(Protocol):
    """Keys and grants, answered offline (see the module docstring)."""

    def key(self, kid: str, now_ms: int) -> KeyInfo: ...

    def authorize(
        self, grantee: str, grant_id: str, action: str, resource: str, now_ms: int
    ) -> GrantDecision: ...


def resource_covers(granted: str, requested: str) -> bool:
    """A grant on ``granted`` covers ``requested`` when they are equal or ``requested`` is below it.

    ``valve-7`` covers ``valve-7`` and ``valve-7/flow``, never ``valve-70``.
    """
    return requested == granted or requested.startswith(granted + "/")


@dataclass(frozen=True, slots=True)
class StaticGrant:
    """A grant record as a device holds it: what the ledger's ``policy`` module stores, as proven.

    ``parent`` is the id of the grant this one was delegated from (None for a root grant);
    ``uses`` is how many times it has been used, as of the proof.
    """

    grant_id: str
    grantor: str
    grantee: str
    action: str
    resource: str
    expires_ms: int | None = None
    parent: str | None = None
    revoked: bool = False
    max_uses: int | None = None
    uses: int = 0


class StaticDirectory:
    """An explicit in-memory :class:`Directory` built from DID documents and grant records.

    Nothing is fetched: it knows exactly what it was given. ``add_document`` reads a W3C DID document
    as :func:`autarky.modules.identity.did_document.did_document` writes it (an implicit document for
    an unregistered did:key works too); ``add_key`` registers a key directly; ``add_grant`` a grant.
    Lookups are dictionary reads, so a receiver's cost per message is the signature check.
    """

    def __init__(
        self, documents: Iterable[Mapping[str, Any]] = (), grants: Iterable[StaticGrant] = ()
    ) -> None:
        self._keys: dict[str, KeyInfo] = {}
        self._grants: dict[str, StaticGrant] = {}
        for document in documents:
            self.add_document(document)
        for grant in grants:
            self.add_grant(grant)

    # --- building ---------------------------------------------------------------------------------

    def add_key(
        self, account: str, public_key: bytes, *, actions: Iterable[str] | None = None, active: bool = True
    ) -> str:
        """Register ``public_key`` for ``account`` (full scope unless ``actions``); returns its kid."""
        kid = key_id(account, public_key)
        scope = None if actions is None else tuple(sorted(actions))
        self._keys[kid] = KeyInfo(kid, account, public_key, active, scope)
        return kid

    def add_document(self, document: Mapping[str, Any]) -> list[str]:
        """Register every verification method of a DID document; returns their kids.

        Status and scopes come from the document's ``autarky`` object when it has one (a revoked
        account's keys are all inactive; ``actions`` None is full scope). A document without it is
        read by W3C rules alone: keys listed under ``assertionMethod`` have full scope, other keys
        may sign nothing. Raises ``ValueError`` for a document that does not hold together.
        """
        did = document.get("id")
        methods = document.get("verificationMethod")
        if type(did) is not str or type(methods) is not list:
            raise ValueError("a DID document has an 'id' and a 'verificationMethod' list")
        autarky = document.get("autarky")
        active = autarky.get("status", ACTIVE) == ACTIVE if isinstance(autarky, Mapping) else True
        scopes = _scopes(autarky) if isinstance(autarky, Mapping) else None
        assertion = document.get("assertionMethod") or []
        kids = []
        for method in methods:
            if not isinstance(method, Mapping) or type(method.get("id")) is not str:
                raise ValueError("each verification method has an 'id'")
            kid = method["id"]
            account, public_key = split_kid(kid)
            if account != did or key_id(did, public_key) != kid:
                raise ValueError(f"verification method {kid!r} does not belong to {did!r}")
            if method.get("publicKeyMultibase") != kid.split("#")[1]:
                raise ValueError(f"verification method {kid!r}: publicKeyMultibase does not match its id")
            actions: tuple[str, ...] | None = ()  # listed but with no scope: may sign nothing
            if scopes is not None:
                actions = scopes.get(kid, ())
            elif kid in assertion:
                actions = None
            self._keys[kid] = KeyInfo(kid, did, public_key, active, actions)
            kids.append(kid)
        return kids

    def revoke_account(self, account: str) -> None:
        """Mark every key of ``account`` inactive (what a device learns when the owner revokes it)."""
        for kid, info in list(self._keys.items()):
            if info.account == account:
                self._keys[kid] = KeyInfo(kid, account, info.public_key, False, info.actions)

    def remove_key(self, kid: str) -> None:
        self._keys.pop(kid, None)

    def add_grant(self, grant: StaticGrant) -> None:
        self._grants[grant.grant_id] = grant

    # --- the Directory protocol ---------------------------------------------------------------------

    def key(self, kid: str, now_ms: int) -> KeyInfo:
        info = self._keys.get(kid)
        if info is None:
            raise errors.UNKNOWN_KEY(f"{kid[:120]!r} is not a key this directory knows")
        if not info.active:
            raise errors.KEY_REVOKED(f"{kid[:120]!r} belongs to a revoked account")
        return info

    def authorize(
        self, grantee: str, grant_id: str, action: str, resource: str, now_ms: int
    ) -> GrantDecision:
        """Check grant ``grant_id`` and every grant above it; codes in ``GRANT_CODES_IN_PRECEDENCE`` order."""
        leaf = self._grants.get(grant_id)
        if leaf is None:
            raise errors.NO_GRANT(f"grant {grant_id[:80]!r} is unknown")
        if leaf.grantee != grantee:
            raise errors.NO_GRANT(f"grant {grant_id[:80]} was given to another grantee")
        if leaf.action != action or not resource_covers(leaf.resource, resource):
            raise errors.NO_GRANT(
                f"grant {grant_id[:80]} covers {leaf.action}:{leaf.resource}, not {action}:{resource}"
            )
        chain = self._chain(leaf)
        for link in chain:
            if link.revoked:
                raise errors.GRANT_REVOKED(f"grant {link.grant_id} is revoked")
        for link in chain:
            if link.expires_ms is not None and now_ms >= link.expires_ms:
                raise errors.GRANT_EXPIRED(f"grant {link.grant_id} expired at {link.expires_ms} ms")
        for link in chain:
            if link.max_uses is not None and link.uses >= link.max_uses:
                raise errors.GRANT_EXHAUSTED(f"grant {link.grant_id} has used all {link.max_uses} uses")
        return GrantDecision(leaf.grant_id, chain[-1].grantor, tuple(link.grant_id for link in chain))

    def _chain(self, leaf: StaticGrant) -> list[StaticGrant]:
        """The grants from ``leaf`` to its root, each link checked to be within its parent."""
        chain = [leaf]
        while chain[-1].parent is not None:
            child = chain[-1]
            if len(chain) > MAX_DELEGATION_DEPTH:
                raise errors.GRANT_CHAIN_INVALID(f"delegation deeper than {MAX_DELEGATION_DEPTH}")
            parent = self._grants.get(child.parent)  # type: ignore[arg-type]
            if parent is None:
                raise errors.GRANT_CHAIN_INVALID(f"grant {child.grant_id}: parent {child.parent} is unknown")
            problem = _widens(parent, child)
            if problem:
                raise errors.GRANT_CHAIN_INVALID(
                    f"grant {child.grant_id} {problem} its parent {parent.grant_id}"
                )
            chain.append(parent)
        return chain


def _widens(parent: StaticGrant, child: StaticGrant) -> str:
    """Why ``child`` is not a valid delegation of ``parent`` ('' when it is)."""
    if child.grantor != parent.grantee:
        return "was not delegated by the grantee of"
    if child.action != parent.action or not resource_covers(parent.resource, child.resource):
        return "covers more than"
    if parent.expires_ms is not None and (child.expires_ms is None or child.expires_ms > parent.expires_ms):
        return "outlives"
    if parent.max_uses is not None and (child.max_uses is None or child.max_uses > parent.max_uses):
        return "allows more uses than"
    return ""


def _scopes(autarky: Mapping[str, Any]) -> dict[str, tuple[str, ...] | None]:
    scopes: dict[str, tuple[str, ...] | None] = {}
    for entry in autarky.get("keys") or []:
        if not isinstance(entry, Mapping) or type(entry.get("id")) is not str:
            raise ValueError("each entry of autarky.keys has an 'id'")
        actions = entry.get("actions")
        if actions is not None and (type(actions) is not list or not all(type(a) is str for a in actions)):
            raise ValueError(f"autarky.keys {entry['id']!r}: actions is a list of text or null")
        scopes[entry["id"]] = None if actions is None else tuple(sorted(actions))
    return scopes


__all__ = [
    "Directory",
    "GrantDecision",
    "KeyInfo",
    "StaticDirectory",
    "StaticGrant",
    "key_id",
    "public_key_from_kid",
    "resource_covers",
    "split_kid",
]
