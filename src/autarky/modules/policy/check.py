"""Deciding whether a grant allows an action: the same pure code on the ledger and on a device.

The ledger (``PolicyModule.use_grant``) and an offline device (from grant records it has checked
against a state proof, see SPEC C3) both call :func:`check` with the chain of grant records from
the leaf (the grant the acting account holds) up to its root (the grant its root grantor gave)::

    chain = load_chain(lookup, grant_id)          # lookup: grant id -> GrantRecord | None
    allowed = check(chain, grantee=did, action="actuate", resource="valve-7", now_ms=now)
    allowed.root_grantor                          # the consumer decides whether it accepts this authority

:func:`check` walks the whole chain every time, so a revocation, an expiry or an exhausted use or
spend count anywhere above the leaf refuses the leaf too. It raises :class:`GrantRefused` with
these codes, in this order of precedence (README.md explains each):

1. ``policy.unknown_grant`` (only :func:`load_chain`: the leaf is not found)
2. ``policy.broken_chain``: empty or too long; a link whose parent id is not the next link's id, whose
   grantor is not the next link's grantee, whose depth or root grantor does not follow, or that
   widens the next link (another action, a resource not covered, a later expiry, more uses, more
   spend, a deeper delegation); a root that is not a root
3. ``policy.wrong_grantee``: the leaf was given to someone else
4. ``policy.not_covered``: another action, or a resource the leaf's resource does not cover
5. ``policy.revoked``: some link is revoked
6. ``policy.expired``: some link has ``expires_ms <= now_ms``
7. ``policy.uses_exhausted``: some link has ``uses >= max_uses``
8. ``policy.spend_over_limit``: with a spend, some link has a spend limit that does not name the
   asset or whose remaining amount is below the spend

Use and spend counts are those of the records given: the ledger records each use on every link
(``PolicyModule.use_grant``); a device checking offline sees the counts of the state it has a proof of.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.ledger.tx import MAX_U64
from autarky.modules.policy.errors import (
    BROKEN_CHAIN,
    EXPIRED,
    NOT_COVERED,
    REVOKED,
    SPEND_OVER_LIMIT,
    UNKNOWN_GRANT,
    USES_EXHAUSTED,
    WRONG_GRANTEE,
    refuse,
)
from autarky.modules.policy.messages import (
    GRANT_ID_BYTES,
    MAX_DELEGATION_DEPTH,
    MAX_SPEND_ASSETS,
    SpendLimit,
    capability,
    covers,
    is_action,
    is_asset,
    is_resource,
)

MAX_CHAIN_LENGTH = MAX_DELEGATION_DEPTH + 1

_RECORD_FIELDS = (
    "action",
    "created",
    "delegable",
    "depth",
    "expires_ms",
    "grantee",
    "grantor",
    "id",
    "max_uses",
    "parent",
    "resource",
    "revoked",
    "root_grantor",
    "spend_limit",
    "spent",
    "uses",
)


@dataclass(frozen=True, slots=True)
class GrantRecord:
    """One grant as stored at ``policy/grant/<id hex>`` (README.md, "State").

    ``spend_limit`` None means spending is not limited by this grant; a limit allows only the
    assets it names. ``spent`` lists what was spent under this grant or any grant below it, per
    asset, sorted, amounts > 0; ``uses`` counts the uses of this grant and of every grant below it.
    """

    id: bytes
    grantor: str
    grantee: str
    action: str
    resource: str
    expires_ms: int | None
    max_uses: int | None
    spend_limit: SpendLimit | None
    delegable: int
    parent: bytes | None
    root_grantor: str
    depth: int
    created: int
    revoked: int | None
    uses: int
    spent: SpendLimit

    @property
    def capability(self) -> str:
        return capability(self.action, self.resource)

    @property
    def is_root(self) -> bool:
        return self.parent is None

    def spent_of(self, asset: str) -> int:
        for name, amount in self.spent:
            if name == asset:
                return amount
        return 0

    def limit_of(self, asset: str) -> int | None:
        """What this grant allows of ``asset`` in total: None if unlimited, 0 if the limit omits it."""
        if self.spend_limit is None:
            return None
        for name, amount in self.spend_limit:
            if name == asset:
                return amount
        return 0

    def expired_at(self, now_ms: int) -> bool:
        return self.expires_ms is not None and now_ms >= self.expires_ms

    def to_cbor(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "grantor": self.grantor,
            "grantee": self.grantee,
            "action": self.action,
            "resource": self.resource,
            "expires_ms": self.expires_ms,
            "max_uses": self.max_uses,
            "spend_limit": None if self.spend_limit is None else [list(pair) for pair in self.spend_limit],
            "delegable": self.delegable,
            "parent": self.parent,
            "root_grantor": self.root_grantor,
            "depth": self.depth,
            "created": self.created,
            "revoked": self.revoked,
            "uses": self.uses,
            "spent": [list(pair) for pair in self.spent],
        }

    @classmethod
    def from_cbor(cls, data: Any) -> GrantRecord:
        """The record from its stored map; ValueError (naming the problem) if it is not well formed.

        Strict, because a device decodes records it received over the network (after checking
        their proof) and invariants decode whatever the state holds.
        """
        if type(data) is not dict or sorted(str(key) for key in data) != list(_RECORD_FIELDS):
            raise ValueError(f"a grant record is a map with exactly the fields {list(_RECORD_FIELDS)}")
        record = cls(
            id=_id(data["id"], "id"),
            grantor=_did(data["grantor"], "grantor"),
            grantee=_did(data["grantee"], "grantee"),
            action=_checked(data["action"], is_action, "action"),
            resource=_checked(data["resource"], is_resource, "resource"),
            expires_ms=_optional_uint(data["expires_ms"], "expires_ms"),
            max_uses=_optional_uint(data["max_uses"], "max_uses"),
            spend_limit=_optional_pairs(data["spend_limit"], "spend_limit"),
            delegable=_uint(data["delegable"], "delegable"),
            parent=None if data["parent"] is None else _id(data["parent"], "parent"),
            root_grantor=_did(data["root_grantor"], "root_grantor"),
            depth=_uint(data["depth"], "depth"),
            created=_uint(data["created"], "created"),
            revoked=_optional_uint(data["revoked"], "revoked"),
            uses=_uint(data["uses"], "uses"),
            spent=_pairs(data["spent"], "spent", 1),
        )
        if record.delegable > MAX_DELEGATION_DEPTH or record.depth > MAX_DELEGATION_DEPTH:
            raise ValueError(f"delegable and depth are at most {MAX_DELEGATION_DEPTH}")
        if record.max_uses == 0:
            raise ValueError("max_uses is None or at least 1")
        return record


@dataclass(frozen=True, slots=True)
class Allowed:
    """What a successful check found: the grant used, its root grantor and the chain's ids (leaf first)."""

    grant_id: bytes
    root_grantor: str
    chain: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class Headroom:
    """What a chain still allows, the minimum over its links (for delegation: a child gets at most this).

    ``uses`` None: no link limits uses. ``spend`` None: no link limits spending; otherwise the only
    assets that may be spent (those every limited link names) and the amount left of each.
    """

    uses: int | None
    spend: SpendLimit | None


# ---------------------------------------------------------------------------------------------------
# Loading and checking a chain


def load_chain(lookup: Callable[[bytes], GrantRecord | None], grant_id: bytes) -> tuple[GrantRecord, ...]:
    """The chain of records from ``grant_id`` up to its root, through ``lookup``.

    ``policy.unknown_grant`` if the grant itself is not found; ``policy.broken_chain`` if a parent is
    missing, a record is not the one asked for, or the chain is longer than a chain can be.
    """
    record = lookup(grant_id)
    if record is None:
        raise refuse(UNKNOWN_GRANT, f"no grant {grant_id.hex()}")
    chain = [record]
    while True:
        if record.id != grant_id:
            raise refuse(BROKEN_CHAIN, f"the record looked up as {grant_id.hex()} is grant {record.id.hex()}")
        if record.parent is None:
            return tuple(chain)
        if len(chain) >= MAX_CHAIN_LENGTH:
            raise refuse(BROKEN_CHAIN, f"a chain has at most {MAX_CHAIN_LENGTH} grants")
        grant_id = record.parent
        parent = lookup(grant_id)
        if parent is None:
            missing = f"grant {record.id.hex()} names a parent {grant_id.hex()} that is missing"
            raise refuse(BROKEN_CHAIN, missing)
        record = parent
        chain.append(record)


def check(
    chain: Sequence[GrantRecord],
    *,
    grantee: str,
    action: str,
    resource: str,
    now_ms: int,
    spend: tuple[str, int] | None = None,
) -> Allowed:
    """Whether ``chain`` (leaf first, root last) lets ``grantee`` do ``action`` on ``resource`` now.

    ``spend`` is an optional ``(asset, amount)`` the action spends. Raises :class:`GrantRefused` with
    the codes of the module docstring, in that order; returns :class:`Allowed` otherwise.
    """
    assert spend is None or (type(spend[1]) is int and spend[1] > 0), "a spend is a positive amount"
    check_links(chain)
    leaf = chain[0]
    if leaf.grantee != grantee:
        raise refuse(WRONG_GRANTEE, f"grant {leaf.id.hex()} was given to {leaf.grantee}, not {grantee}")
    if leaf.action != action or not covers(leaf.resource, resource):
        asked = capability(action, resource)
        raise refuse(NOT_COVERED, f"grant {leaf.id.hex()} allows {leaf.capability}, not {asked[:160]}")
    for link in chain:
        if link.revoked is not None:
            raise refuse(REVOKED, f"grant {link.id.hex()} was revoked at height {link.revoked}")
    for link in chain:
        if link.expired_at(now_ms):
            raise refuse(EXPIRED, f"grant {link.id.hex()} expired at {link.expires_ms} ms (now {now_ms})")
    for link in chain:
        if link.max_uses is not None and link.uses >= link.max_uses:
            raise refuse(USES_EXHAUSTED, f"grant {link.id.hex()} has used all {link.max_uses} of its uses")
    if spend is not None:
        asset, amount = spend
        for link in chain:
            limit = link.limit_of(asset)
            if limit is not None and link.spent_of(asset) + amount > limit:
                left = limit - link.spent_of(asset)
                raise refuse(
                    SPEND_OVER_LIMIT, f"grant {link.id.hex()} allows {left} more {asset[:40]}, not {amount}"
                )
    return Allowed(leaf.id, chain[-1].grantor, tuple(link.id for link in chain))


def check_grant(
    lookup: Callable[[bytes], GrantRecord | None],
    grant_id: bytes,
    *,
    grantee: str,
    action: str,
    resource: str,
    now_ms: int,
    spend: tuple[str, int] | None = None,
) -> Allowed:
    """:func:`load_chain` then :func:`check`: everything a device needs, given a lookup of checked records."""
    chain = load_chain(lookup, grant_id)
    return check(chain, grantee=grantee, action=action, resource=resource, now_ms=now_ms, spend=spend)


def check_links(chain: Sequence[GrantRecord]) -> None:
    """``policy.broken_chain`` unless every link hangs from the next and attenuates it."""
    if not 1 <= len(chain) <= MAX_CHAIN_LENGTH:
        raise refuse(BROKEN_CHAIN, f"a chain holds 1 to {MAX_CHAIN_LENGTH} grants, not {len(chain)}")
    root = chain[-1]
    if root.parent is not None or root.depth != 0 or root.root_grantor != root.grantor:
        raise refuse(BROKEN_CHAIN, f"grant {root.id.hex()} ends the chain but is not a root grant")
    for child, parent in itertools.pairwise(chain):
        problem = link_problem(parent, child)
        if problem is not None:
            raise refuse(BROKEN_CHAIN, f"grant {child.id.hex()} under {parent.id.hex()}: {problem}")


def link_problem(parent: GrantRecord, child: GrantRecord) -> str | None:
    """Why ``child`` is not a valid delegation of ``parent`` as stored, or None.

    These are the static rules (records alone); at creation the handler also holds the child to
    what the parent's chain has left (:func:`headroom`), which implies them.
    """
    if child.parent != parent.id:
        return "its parent id is another grant"
    if child.grantor != parent.grantee:
        return "its grantor is not the parent's grantee"
    if child.depth != parent.depth + 1 or child.root_grantor != parent.root_grantor:
        return "its depth or root grantor does not follow from the parent"
    if child.action != parent.action:
        return f"it allows action {child.action!r}, the parent {parent.action!r}"
    if not covers(parent.resource, child.resource):
        return f"resource {child.resource!r} is not covered by {parent.resource!r}"
    if parent.expires_ms is not None and (child.expires_ms is None or child.expires_ms > parent.expires_ms):
        return "it expires later than the parent"
    if parent.max_uses is not None and (child.max_uses is None or child.max_uses > parent.max_uses):
        return "it allows more uses than the parent"
    if parent.delegable < 1 or child.delegable > parent.delegable - 1:
        return "it may be delegated deeper than the parent allows"
    if parent.spend_limit is not None:
        if child.spend_limit is None:
            return "it has no spend limit and the parent has one"
        parent_limits = dict(parent.spend_limit)
        for asset, amount in child.spend_limit:
            if asset not in parent_limits:
                return f"it allows spending {asset}, which the parent's limit does not name"
            if amount > parent_limits[asset]:
                return f"it allows {amount} {asset}, the parent {parent_limits[asset]}"
    return None


def headroom(chain: Sequence[GrantRecord]) -> Headroom:
    """What the whole chain still allows: the minimum over its links of uses and spend left."""
    uses: int | None = None
    spend: dict[str, int] | None = None
    for link in chain:
        if link.max_uses is not None:
            left = max(link.max_uses - link.uses, 0)
            uses = left if uses is None else min(uses, left)
        if link.spend_limit is not None:
            link_left = {asset: max(amount - link.spent_of(asset), 0) for asset, amount in link.spend_limit}
            if spend is None:
                spend = link_left
            else:
                spend = {
                    asset: min(left, link_left[asset]) for asset, left in spend.items() if asset in link_left
                }
    return Headroom(uses, None if spend is None else tuple(sorted(spend.items())))


# ---------------------------------------------------------------------------------------------------
# Strict decoding helpers


def _id(value: Any, name: str) -> bytes:
    if type(value) is not bytes or len(value) != GRANT_ID_BYTES:
        raise ValueError(f"{name} must be a {GRANT_ID_BYTES}-byte grant id")
    return value


def _did(value: Any, name: str) -> str:
    if not is_did_key(value):
        raise ValueError(f"{name} must be an Ed25519 did:key")
    return str(value)


def _checked(value: Any, test: Callable[[object], bool], name: str) -> str:
    if not test(value):
        raise ValueError(f"{name} {str(value)[:40]!r} is not valid")
    return str(value)


def _uint(value: Any, name: str) -> int:
    if type(value) is not int or not 0 <= value <= MAX_U64:
        raise ValueError(f"{name} must be an integer from 0 to 2**64-1")
    return value


def _optional_uint(value: Any, name: str) -> int | None:
    return None if value is None else _uint(value, name)


def _optional_pairs(value: Any, name: str) -> SpendLimit | None:
    return None if value is None else _pairs(value, name, 0)


def _pairs(value: Any, name: str, minimum: int) -> SpendLimit:
    """Sorted ``[[asset, amount >= minimum], ...]`` with each asset once."""
    if type(value) is not list:
        raise ValueError(f"{name} must be a list of [asset, amount] pairs")
    pairs: list[tuple[str, int]] = []
    for pair in value:
        if type(pair) is not list or len(pair) != 2 or not is_asset(pair[0]):
            raise ValueError(f"{name} must be a list of [asset, amount] pairs")
        pairs.append((pair[0], _uint(pair[1], name)))
        if pair[1] < minimum:
            raise ValueError(f"{name} amounts are at least {minimum}")
    result = tuple(pairs)
    if [asset for asset, _ in result] != sorted({asset for asset, _ in result}):
        raise ValueError(f"{name} must be sorted by asset, each asset once")
    if name == "spend_limit" and len(result) > MAX_SPEND_ASSETS:
        raise ValueError(f"a spend limit names at most {MAX_SPEND_ASSETS} assets")
    return result


def lookup_in(records: Mapping[bytes, GrantRecord]) -> Callable[[bytes], GrantRecord | None]:
    """A lookup over records a device already holds (e.g. a cache of proof-checked grants)."""
    return records.get
