"""What a receiver needs to know about senders, answered offline: keys and grants.

A :class:`Directory` answers two questions from what the receiver holds locally (a cache), never by
asking a node while a message waits:

* ``key(kid, now_ms)``: which account a key id belongs to, its public key, whether it is active and
  its scope; or :class:`~autarky.messaging.errors.MessageError` ``msg.unknown_key`` /
  ``msg.key_revoked``;
* ``authorize(grantee, grant_id, action, resource, now_ms)``: whether grant ``grant_id`` lets
  ``grantee`` do ``action`` on ``resource`` now, walking its delegation chain to the root; the
  answer names the grant used and the root grantor (the receiver decides whether it trusts that
  grantor), or a ``msg.*_grant`` / ``msg.grant_*`` error (``GRANT_CODES_IN_PRECEDENCE``).

Grants are decided by the ``policy`` module's own pure check (``autarky.modules.policy.check``), the
code the ledger runs, over the grant records the receiver holds; its ``policy.*`` refusals become
``msg.*`` codes (:func:`grant_error`). Grant ids are text: the hex of the 32-byte ledger id.

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
from autarky.crypto.hashing import sha256
from autarky.messaging import errors
from autarky.messaging.errors import MessageError
from autarky.modules.policy import messages as policy_messages
from autarky.modules.policy.check import GrantRecord, check_grant
from autarky.modules.policy.errors import GrantRefused
from autarky.modules.policy.messages import GRANT_ID_BYTES, MAX_DELEGATION_DEPTH

_DID_KEY_PREFIX = "did:key:"
MAX_KID_CHARS = 256
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

    ``valve-7`` covers ``valve-7`` and ``valve-7/flow``, never ``valve-70`` (the policy module's rule).
    """
    return policy_messages.covers(granted, requested)


_GRANT_CODES = {
    "policy.unknown_grant": errors.UNKNOWN_GRANT,
    "policy.broken_chain": errors.GRANT_CHAIN_INVALID,
    "policy.wrong_grantee": errors.NO_GRANT,
    "policy.not_covered": errors.NO_GRANT,
    "policy.revoked": errors.GRANT_REVOKED,
    "policy.expired": errors.GRANT_EXPIRED,
    "policy.uses_exhausted": errors.GRANT_EXHAUSTED,
    "policy.spend_over_limit": errors.GRANT_EXHAUSTED,
}


def grant_error(refused: GrantRefused) -> MessageError:
    """The ``msg.*`` refusal for a ``policy.*`` one (for every Directory that runs the policy check)."""
    return _GRANT_CODES[refused.code](f"{refused.code}: {refused.detail}")


def grant_record_id(grant_id: str) -> bytes:
    """The 32-byte record id that a text grant id names.

    The hex of the id (how ledger grants are named), or, for a :class:`StaticGrant` name that is not
    64 hex digits, the SHA-256 of the name.
    """
    if len(grant_id) == 2 * GRANT_ID_BYTES:
        try:
            return bytes.fromhex(grant_id)
        except ValueError:
            pass
    return sha256(grant_id.encode("utf-8", "surrogatepass"))


@dataclass(frozen=True, slots=True)
class StaticGrant:
    """A grant given by hand (tests, demos, a device provisioned without a ledger), named by text.

    The directory reads it as the ledger's record (``policy.check.GrantRecord``): its id is
    :func:`grant_record_id` of ``grant_id``; ``parent`` names the grant it was delegated from (None
    for a root); its depth, root grantor and how deep it may be delegated follow from its parents;
    ``revoked`` marks it revoked; ``uses`` counts its uses so far against ``max_uses``.
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
    an unregistered did:key works too); ``add_key`` registers a key directly; ``add_grant`` a grant
    record as the ledger stores it (``policy.check.GrantRecord``, e.g. ``policy.keeper.read_grant``)
    or a :class:`StaticGrant`. Grants are checked by the policy module's own code.
    Lookups are dictionary reads, so a receiver's cost per message is the signature check.
    """

    def __init__(
        self, documents: Iterable[Mapping[str, Any]] = (), grants: Iterable[GrantRecord | StaticGrant] = ()
    ) -> None:
        self._keys: dict[str, KeyInfo] = {}
        self._grants: dict[bytes, GrantRecord | StaticGrant] = {}
        self._names: dict[bytes, str] = {}  # record id -> the text id that commands name
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

    def add_grant(self, grant: GrantRecord | StaticGrant) -> None:
        """Add a grant, or replace it (a revocation, a new use count)."""
        if isinstance(grant, StaticGrant):
            record_id, name = grant_record_id(grant.grant_id), grant.grant_id
        else:
            record_id, name = grant.id, grant.id.hex()
        self._grants[record_id] = grant
        self._names[record_id] = name

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
        """The policy module's check of grant ``grant_id`` and every grant above it, offline."""
        try:
            allowed = check_grant(
                self._record,
                grant_record_id(grant_id),
                grantee=grantee,
                action=action,
                resource=resource,
                now_ms=now_ms,
            )
        except GrantRefused as refused:
            raise grant_error(refused) from refused
        chain = tuple(self._names[record_id] for record_id in allowed.chain)
        return GrantDecision(chain[0], allowed.root_grantor, chain)

    def _record(self, record_id: bytes) -> GrantRecord | None:
        """The ledger form of a grant; a :class:`StaticGrant` gets its depth and root from its parents."""
        grant = self._grants.get(record_id)
        if grant is None or isinstance(grant, GrantRecord):
            return grant
        ancestors: list[StaticGrant] = []
        parent = grant.parent
        while parent is not None and len(ancestors) <= MAX_DELEGATION_DEPTH:
            above = self._grants.get(grant_record_id(parent))
            if not isinstance(above, StaticGrant):
                break  # missing (load_chain refuses the chain), or a ledger record
            ancestors.append(above)
            parent = above.parent
        # A chain that does not end at a root within the depth bound is refused as broken anyway.
        depth = len(ancestors) if parent is None else MAX_DELEGATION_DEPTH + 1
        return GrantRecord(
            id=record_id,
            grantor=grant.grantor,
            grantee=grant.grantee,
            action=grant.action,
            resource=grant.resource,
            expires_ms=grant.expires_ms,
            max_uses=grant.max_uses,
            spend_limit=None,
            delegable=max(MAX_DELEGATION_DEPTH - depth, 0),
            parent=None if grant.parent is None else grant_record_id(grant.parent),
            root_grantor=ancestors[-1].grantor if ancestors else grant.grantor,
            depth=depth,
            created=0,
            revoked=0 if grant.revoked else None,
            uses=grant.uses,
            spent=(),
        )


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
    "grant_error",
    "grant_record_id",
    "key_id",
    "public_key_from_kid",
    "resource_covers",
    "split_kid",
]
