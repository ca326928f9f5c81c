"""The policy messages as typed, frozen values, and the vocabulary of grants.

Actions and resources
---------------------
People write a capability as ``action:resource`` (``actuate:valve-7``, ``read:stream/weather-12``,
``charge:station-3``, ``spend:energy-market``). The two parts are validated text:

* an **action** is 1 to 32 characters: a lower-case letter, then lower-case letters, digits, ``_``
  or ``-`` (``[a-z][a-z0-9_-]{0,31}``);
* a **resource** is 1 to 128 characters: one or more segments joined by ``/``, each segment a
  lower-case letter or digit followed by lower-case letters, digits, ``.``, ``_`` or ``-``
  (``[a-z0-9][a-z0-9._-]*``). No empty segment, no leading or trailing ``/``, no ``:``.

A grant on resource ``R`` covers ``R`` itself and every resource below it: ``R + "/" + more``
(``stream`` covers ``stream/weather-12``; ``valve-7`` does not cover ``valve-70``). A delegation may
keep its parent's resource or narrow it that way; see :func:`covers`.

Parsing
-------
Parsing checks the message alone (and the sender, for self-grants), never the state, in two
stages whose order is part of the module's precedence (README.md):

1. shape: every required field is present, no unexpected field is, and every field has its type
   (``core.invalid_message``); fields that accept None, and ``delegable``, may be left out;
2. values, code by code: ``policy.invalid_grantee``, ``policy.invalid_action``,
   ``policy.invalid_resource``, ``policy.invalid_limits``, ``policy.invalid_expiry`` (only the range
   here; the handler compares the expiry with the block time).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.ledger.errors import INVALID_MESSAGE
from autarky.ledger.router import check_field_names, require_text
from autarky.ledger.tx import MAX_U64
from autarky.modules.policy.errors import (
    INVALID_ACTION,
    INVALID_EXPIRY,
    INVALID_GRANTEE,
    INVALID_LIMITS,
    INVALID_RESOURCE,
)

GRANT = "policy/grant"
DELEGATE = "policy/delegate"
REVOKE = "policy/revoke"
MESSAGE_TYPES = (GRANT, DELEGATE, REVOKE)

GRANT_ID_BYTES = 32
MAX_ACTION_CHARS = 32
MAX_RESOURCE_CHARS = 128
MAX_SPEND_ASSETS = 16
MAX_DELEGATION_DEPTH = 8
"""How many delegations may hang below a root grant; a chain holds at most 9 grants."""

_ACTION = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_SEGMENT = r"[a-z0-9][a-z0-9._-]*"
_RESOURCE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
# The bank's asset names (modules/bank/keeper.py): a spend limit names assets in the same form.
_ASSET = re.compile(r"[a-z][a-z0-9]{0,15}")

SpendLimit = tuple[tuple[str, int], ...]
"""``((asset, amount), ...)`` sorted by asset, each asset once."""


def is_action(value: object) -> bool:
    return type(value) is str and _ACTION.fullmatch(value) is not None


def is_resource(value: object) -> bool:
    return type(value) is str and len(value) <= MAX_RESOURCE_CHARS and _RESOURCE.fullmatch(value) is not None


def is_asset(value: object) -> bool:
    return type(value) is str and _ASSET.fullmatch(value) is not None


def covers(granted: str, resource: str) -> bool:
    """True when a grant on ``granted`` covers ``resource``: equal, or ``granted + "/" + more``."""
    return resource == granted or resource.startswith(granted + "/")


def capability(action: str, resource: str) -> str:
    """The ``action:resource`` text people write."""
    return f"{action}:{resource}"


def parse_capability(text: str) -> tuple[str, str]:
    """``"actuate:valve-7"`` -> ``("actuate", "valve-7")``; ValueError when either part is invalid."""
    action, separator, resource = text.partition(":")
    if not separator or not is_action(action) or not is_resource(resource):
        raise ValueError(f"{text[:80]!r} is not action:resource (e.g. actuate:valve-7)")
    return action, resource


@dataclass(frozen=True, slots=True)
class Grant:
    grantee: str
    action: str
    resource: str
    expires_ms: int | None
    max_uses: int | None
    spend_limit: SpendLimit | None
    delegable: int
    """How many levels of delegation may hang below this grant (0: none)."""


@dataclass(frozen=True, slots=True)
class Delegate:
    parent: bytes
    grantee: str
    resource: str
    expires_ms: int | None
    max_uses: int | None
    spend_limit: SpendLimit | None
    delegable: int | bool
    """An explicit depth, or True for as deep as the parent allows, False for none."""


@dataclass(frozen=True, slots=True)
class Revoke:
    grant: bytes


# ---------------------------------------------------------------------------------------------------
# Parsers, one per message

_LIMIT_FIELDS = ("expires_ms", "max_uses", "spend_limit", "delegable")


def parse_grant(message: Mapping[str, Any], sender: str) -> Grant:
    check_field_names(message, ("grantee", "action", "resource"), _LIMIT_FIELDS)
    grantee = require_text(message, "grantee")
    action = require_text(message, "action")
    resource = require_text(message, "resource")
    expires_ms, max_uses, spend_limit, delegable = _limit_fields(message)
    check_grantee(grantee, sender)
    if not is_action(action):
        raise INVALID_ACTION(f"action {action[:40]!r} is not [a-z][a-z0-9_-]{{0,31}}")
    check_resource(resource)
    checked_limits = check_limits(max_uses, spend_limit)
    depth = _root_depth(delegable)
    check_expiry_range(expires_ms)
    return Grant(grantee, action, resource, expires_ms, max_uses, checked_limits, depth)


def parse_delegate(message: Mapping[str, Any], sender: str) -> Delegate:
    check_field_names(message, ("parent", "grantee", "resource"), _LIMIT_FIELDS)
    parent = _grant_id(message, "parent")
    grantee = require_text(message, "grantee")
    resource = require_text(message, "resource")
    expires_ms, max_uses, spend_limit, delegable = _limit_fields(message)
    check_grantee(grantee, sender)
    check_resource(resource)
    checked_limits = check_limits(max_uses, spend_limit)
    if type(delegable) is not bool:
        check_depth(delegable)
    check_expiry_range(expires_ms)
    return Delegate(parent, grantee, resource, expires_ms, max_uses, checked_limits, delegable)


def parse_revoke(message: Mapping[str, Any]) -> Revoke:
    check_field_names(message, ("grant",), ())
    return Revoke(_grant_id(message, "grant"))


# ---------------------------------------------------------------------------------------------------
# Builders: the message maps clients put in a transaction body


def grant(
    grantee: str,
    action: str,
    resource: str,
    *,
    expires_ms: int | None = None,
    max_uses: int | None = None,
    spend_limit: Mapping[str, int] | Sequence[tuple[str, int]] | None = None,
    delegable: bool | int = False,
) -> dict[str, Any]:
    return {
        "type": GRANT,
        "grantee": grantee,
        "action": action,
        "resource": resource,
        "expires_ms": expires_ms,
        "max_uses": max_uses,
        "spend_limit": _spend_limit_value(spend_limit),
        "delegable": delegable,
    }


def delegate(
    parent: bytes,
    grantee: str,
    resource: str,
    *,
    expires_ms: int | None = None,
    max_uses: int | None = None,
    spend_limit: Mapping[str, int] | Sequence[tuple[str, int]] | None = None,
    delegable: bool | int = False,
) -> dict[str, Any]:
    return {
        "type": DELEGATE,
        "parent": parent,
        "grantee": grantee,
        "resource": resource,
        "expires_ms": expires_ms,
        "max_uses": max_uses,
        "spend_limit": _spend_limit_value(spend_limit),
        "delegable": delegable,
    }


def revoke(grant_id: bytes) -> dict[str, Any]:
    return {"type": REVOKE, "grant": grant_id}


def _spend_limit_value(
    spend_limit: Mapping[str, int] | Sequence[tuple[str, int]] | None,
) -> list[list[Any]] | None:
    if spend_limit is None:
        return None
    pairs = spend_limit.items() if isinstance(spend_limit, Mapping) else spend_limit
    return [[asset, amount] for asset, amount in pairs]


# ---------------------------------------------------------------------------------------------------
# Value checks, shared with the record checks of check.py


def check_grantee(grantee: str, sender: str) -> None:
    if not is_did_key(grantee):
        raise INVALID_GRANTEE(f"grantee {grantee[:80]!r} is not an Ed25519 did:key")
    if grantee == sender:
        raise INVALID_GRANTEE("an account cannot grant to itself")


def check_resource(resource: str) -> None:
    if not is_resource(resource):
        raise INVALID_RESOURCE(
            f"resource {resource[:40]!r} is not 1 to {MAX_RESOURCE_CHARS} characters of "
            "/-separated segments [a-z0-9][a-z0-9._-]*"
        )


def check_limits(max_uses: int | None, spend_limit: list[list[Any]] | None) -> SpendLimit | None:
    """Check ``max_uses`` and a spend limit; return the limit in its stored form (sorted pairs)."""
    if max_uses is not None and not 1 <= max_uses <= MAX_U64:
        raise INVALID_LIMITS("max_uses must be from 1 to 2**64-1, or None for unlimited")
    if spend_limit is None:
        return None
    if len(spend_limit) > MAX_SPEND_ASSETS:
        raise INVALID_LIMITS(f"a spend limit names at most {MAX_SPEND_ASSETS} assets")
    pairs: dict[str, int] = {}
    for asset, amount in spend_limit:
        if not is_asset(asset):
            raise INVALID_LIMITS(f"spend limit: {asset[:40]!r} is not an asset name")
        if asset in pairs:
            raise INVALID_LIMITS(f"spend limit names {asset!r} twice")
        if not 0 <= amount <= MAX_U64:
            raise INVALID_LIMITS(f"spend limit of {asset!r} must be from 0 to 2**64-1")
        pairs[asset] = amount
    return tuple(sorted(pairs.items()))


def check_depth(delegable: int) -> int:
    if not 0 <= delegable <= MAX_DELEGATION_DEPTH:
        raise INVALID_LIMITS(f"delegable must be true, false or a depth from 0 to {MAX_DELEGATION_DEPTH}")
    return delegable


def _root_depth(delegable: int | bool) -> int:
    """A root grant's depth: True is the deepest a chain allows, False none."""
    if delegable is True:
        return MAX_DELEGATION_DEPTH
    if delegable is False:
        return 0
    return check_depth(delegable)


def check_expiry_range(expires_ms: int | None) -> None:
    if expires_ms is not None and not 0 <= expires_ms <= MAX_U64:
        raise INVALID_EXPIRY("expires_ms must be a block time in ms from 0 to 2**64-1, or None")


# ---------------------------------------------------------------------------------------------------
# Shape checks: core.invalid_message


def _grant_id(message: Mapping[str, Any], name: str) -> bytes:
    value = message.get(name)
    if type(value) is not bytes or len(value) != GRANT_ID_BYTES:
        raise INVALID_MESSAGE(f"field {name!r} must be a {GRANT_ID_BYTES}-byte grant id")
    return value


def _optional_int(message: Mapping[str, Any], name: str) -> int | None:
    value = message.get(name)
    if value is not None and type(value) is not int:
        raise INVALID_MESSAGE(f"field {name!r} must be an integer or None")
    return value


def _optional_spend_limit(message: Mapping[str, Any]) -> list[list[Any]] | None:
    value = message.get("spend_limit")
    if value is None:
        return None
    if type(value) is not list or any(
        type(pair) is not list or len(pair) != 2 or type(pair[0]) is not str or type(pair[1]) is not int
        for pair in value
    ):
        raise INVALID_MESSAGE("field 'spend_limit' must be a list of [asset, amount] pairs, or None")
    return value


def _delegable(message: Mapping[str, Any]) -> int | bool:
    value = message.get("delegable", False)
    if type(value) is not bool and type(value) is not int:
        raise INVALID_MESSAGE("field 'delegable' must be true, false or an integer depth")
    return value


def _limit_fields(
    message: Mapping[str, Any],
) -> tuple[int | None, int | None, list[list[Any]] | None, int | bool]:
    return (
        _optional_int(message, "expires_ms"),
        _optional_int(message, "max_uses"),
        _optional_spend_limit(message),
        _delegable(message),
    )
