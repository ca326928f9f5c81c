"""The data module's messages as typed, frozen values: exact fields, parsing and value checks.

=======================  ==================================================================================
``data/offer``           ``kind, name, description, price, asset, per, licence, required_attestations``,
                         optional ``period_ms`` (int or null) and ``content_hash`` (32 bytes or null)
``data/withdraw``        ``offer``: 32 bytes
``data/buy``             ``offer``: 32 bytes, and exactly one of ``periods`` / ``items``: int
``data/ack_delivery``    ``purchase``: 32 bytes, ``key_hash``: 32 bytes
=======================  ==================================================================================

Parsing checks the message alone, never the state, in two stages whose order is part of the
module's precedence (README.md):

1. shape: every required field is present, no unexpected field is, every field has its type (a
   bool is never an int; ``required_attestations`` is a list of maps of exactly ``claim`` and
   ``issuer``, both text): ``core.invalid_message``;
2. values, code by code: ``data.invalid_kind``, ``data.invalid_text``, ``data.invalid_price``,
   ``data.invalid_period``, ``data.invalid_attestations``. (``data.invalid_units`` needs the
   ``max_units`` parameter, so the handler checks it, first.)
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.ledger.errors import INVALID_MESSAGE
from autarky.ledger.router import check_field_names, require_field, require_text
from autarky.ledger.tx import MAX_U64
from autarky.modules.data.errors import (
    INVALID_ATTESTATIONS,
    INVALID_KIND,
    INVALID_PERIOD,
    INVALID_PRICE,
    INVALID_TEXT,
)
from autarky.modules.data.records import ID_BYTES, KINDS, PER, PER_PERIOD, Requirement

OFFER = "data/offer"
WITHDRAW = "data/withdraw"
BUY = "data/buy"
ACK_DELIVERY = "data/ack_delivery"
MESSAGE_TYPES = (OFFER, WITHDRAW, BUY, ACK_DELIVERY)

MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 1024
MAX_LICENCE_CHARS = 128
MIN_PERIOD_MS = 1_000
MAX_PERIOD_MS = 366 * 24 * 3600 * 1000
"""A period (or a per-item access window) is from one second to 366 days."""
MAX_REQUIRED_ATTESTATIONS = 8
MAX_CLAIM_CHARS = 64

# The schema names of identity's claims (modules/identity/claims.py): ``calibration/v1``.
_CLAIM = re.compile(r"[a-z0-9][a-z0-9._-]*(?:/[a-z0-9][a-z0-9._-]*)*")
# The bank's asset names (modules/bank/keeper.py).
_ASSET = re.compile(r"[a-z][a-z0-9]{0,15}")


@dataclass(frozen=True, slots=True)
class Offer:
    kind: str
    name: str
    description: str
    price: int
    asset: str
    per: str
    period_ms: int | None
    licence: str
    required_attestations: tuple[Requirement, ...]
    content_hash: bytes | None


@dataclass(frozen=True, slots=True)
class Withdraw:
    offer: bytes


@dataclass(frozen=True, slots=True)
class Buy:
    offer: bytes
    unit: str
    """``period`` when the message gave ``periods``, ``item`` when it gave ``items``."""
    units: int


@dataclass(frozen=True, slots=True)
class AckDelivery:
    purchase: bytes
    key_hash: bytes


# ---------------------------------------------------------------------------------------------------
# Parsers, one per message

_OFFER_REQUIRED = (
    "kind",
    "name",
    "description",
    "price",
    "asset",
    "per",
    "licence",
    "required_attestations",
)


def parse_offer(message: Mapping[str, Any]) -> Offer:
    check_field_names(message, _OFFER_REQUIRED, ("period_ms", "content_hash"))
    kind = require_text(message, "kind")
    name = require_text(message, "name")
    description = require_text(message, "description")
    price = require_field(message, "price", int)
    asset = require_text(message, "asset")
    per = require_text(message, "per")
    licence = require_text(message, "licence")
    requirements = _requirements(message)
    period_ms = _optional_int(message, "period_ms")
    content_hash = _optional_id(message, "content_hash")

    if kind not in KINDS:
        raise INVALID_KIND(f"kind {kind[:40]!r} is not one of {list(KINDS)}")
    check_text("name", name, 1, MAX_NAME_CHARS)
    check_text("description", description, 0, MAX_DESCRIPTION_CHARS)
    check_text("licence", licence, 1, MAX_LICENCE_CHARS)
    if not 1 <= price <= MAX_U64:
        raise INVALID_PRICE(f"price {price} is not from 1 to 2**64-1")
    if _ASSET.fullmatch(asset) is None:
        raise INVALID_PRICE(f"{asset[:40]!r} is not an asset name (1 to 16 of a-z, 0-9, a letter first)")
    check_period(per, period_ms)
    checked = check_requirements(requirements)
    return Offer(kind, name, description, price, asset, per, period_ms, licence, checked, content_hash)


def parse_withdraw(message: Mapping[str, Any]) -> Withdraw:
    check_field_names(message, ("offer",), ())
    return Withdraw(_id(message, "offer"))


def parse_buy(message: Mapping[str, Any]) -> Buy:
    check_field_names(message, ("offer",), ("periods", "items"))
    offer = _id(message, "offer")
    if ("periods" in message) == ("items" in message):
        raise INVALID_MESSAGE("data/buy takes exactly one of the fields 'periods' and 'items'")
    unit, field = ("period", "periods") if "periods" in message else ("item", "items")
    return Buy(offer, unit, require_field(message, field, int))


def parse_ack_delivery(message: Mapping[str, Any]) -> AckDelivery:
    check_field_names(message, ("purchase", "key_hash"), ())
    return AckDelivery(_id(message, "purchase"), _id(message, "key_hash"))


# ---------------------------------------------------------------------------------------------------
# Builders: the message maps clients put in a transaction body


def offer(
    *,
    kind: str,
    name: str,
    price: int,
    asset: str,
    per: str,
    licence: str,
    description: str = "",
    period_ms: int | None = None,
    required_attestations: Sequence[tuple[str, str]] = (),
    content_hash: bytes | None = None,
) -> dict[str, Any]:
    """``data/offer``; ``required_attestations`` as ``(claim, issuer)`` pairs."""
    return {
        "type": OFFER,
        "kind": kind,
        "name": name,
        "description": description,
        "price": price,
        "asset": asset,
        "per": per,
        "period_ms": period_ms,
        "licence": licence,
        "required_attestations": [
            {"claim": claim, "issuer": issuer} for claim, issuer in required_attestations
        ],
        "content_hash": content_hash,
    }


def withdraw(offer_id: bytes) -> dict[str, Any]:
    return {"type": WITHDRAW, "offer": offer_id}


def buy(offer_id: bytes, *, periods: int | None = None, items: int | None = None) -> dict[str, Any]:
    """``data/buy`` of ``periods`` (an offer per period) or ``items`` (per item): give one."""
    message: dict[str, Any] = {"type": BUY, "offer": offer_id}
    if periods is not None:
        message["periods"] = periods
    if items is not None:
        message["items"] = items
    return message


def ack_delivery(purchase_id: bytes, key_hash: bytes) -> dict[str, Any]:
    return {"type": ACK_DELIVERY, "purchase": purchase_id, "key_hash": key_hash}


# ---------------------------------------------------------------------------------------------------
# Value checks


def check_text(field: str, value: str, min_chars: int, max_chars: int) -> None:
    """``data.invalid_text`` unless ``value`` has ``min_chars..max_chars`` characters, none a control
    character (U+0000-U+001F, U+007F-U+009F). The rule uses code point numbers only, so it does not
    depend on the Unicode tables of a Python version."""
    if not min_chars <= len(value) <= max_chars:
        raise INVALID_TEXT(f"{field} has {len(value)} characters; it takes {min_chars} to {max_chars}")
    for character in value:
        point = ord(character)
        if point < 0x20 or 0x7F <= point <= 0x9F:
            raise INVALID_TEXT(f"{field} holds the control character U+{point:04X}")


def check_period(per: str, period_ms: int | None) -> None:
    if per not in PER:
        raise INVALID_PERIOD(f"per {per[:40]!r} is not one of {list(PER)}")
    if period_ms is None:
        if per == PER_PERIOD:
            raise INVALID_PERIOD("an offer priced per period needs period_ms")
        return
    if not MIN_PERIOD_MS <= period_ms <= MAX_PERIOD_MS:
        raise INVALID_PERIOD(f"period_ms {period_ms} is not from {MIN_PERIOD_MS} to {MAX_PERIOD_MS}")


def check_requirements(requirements: list[tuple[str, str]]) -> tuple[Requirement, ...]:
    if len(requirements) > MAX_REQUIRED_ATTESTATIONS:
        raise INVALID_ATTESTATIONS(f"an offer requires at most {MAX_REQUIRED_ATTESTATIONS} attestations")
    checked: list[Requirement] = []
    for claim, issuer in requirements:
        if len(claim) > MAX_CLAIM_CHARS or _CLAIM.fullmatch(claim) is None:
            raise INVALID_ATTESTATIONS(f"claim {claim[:40]!r} is not a schema name like calibration/v1")
        if not is_did_key(issuer):
            raise INVALID_ATTESTATIONS(f"issuer {issuer[:80]!r} is not an Ed25519 did:key")
        requirement = Requirement(claim, issuer)
        if requirement in checked:
            raise INVALID_ATTESTATIONS(f"{claim} by {issuer} is required twice")
        checked.append(requirement)
    return tuple(checked)


# ---------------------------------------------------------------------------------------------------
# Shape checks: core.invalid_message


def _id(message: Mapping[str, Any], name: str) -> bytes:
    value = message.get(name)
    if type(value) is not bytes or len(value) != ID_BYTES:
        raise INVALID_MESSAGE(f"field {name!r} must be {ID_BYTES} bytes")
    return value


def _optional_id(message: Mapping[str, Any], name: str) -> bytes | None:
    return None if message.get(name) is None else _id(message, name)


def _optional_int(message: Mapping[str, Any], name: str) -> int | None:
    value = message.get(name)
    if value is not None and type(value) is not int:
        raise INVALID_MESSAGE(f"field {name!r} must be an integer or null")
    return value


def _requirements(message: Mapping[str, Any]) -> list[tuple[str, str]]:
    value = message.get("required_attestations")
    problem = "field 'required_attestations' must be a list of maps of exactly 'claim' and 'issuer' (text)"
    if type(value) is not list:
        raise INVALID_MESSAGE(problem)
    pairs: list[tuple[str, str]] = []
    for entry in value:
        if type(entry) is not dict or len(entry) != 2 or "claim" not in entry or "issuer" not in entry:
            raise INVALID_MESSAGE(problem)
        claim, issuer = entry["claim"], entry["issuer"]
        if type(claim) is not str or type(issuer) is not str:
            raise INVALID_MESSAGE(problem)
        pairs.append((claim, issuer))
    return pairs
