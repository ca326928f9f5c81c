"""The data module's stored records: offers and purchases, as frozen values with their CBOR form.

``from_cbor`` reads a stored value strictly (exact fields, exact types) and raises ``ValueError`` for
anything else, so invariants and light clients can tell a corrupted record from a good one.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ID_BYTES = 32

STREAM = "stream"
DATASET = "dataset"
KINDS = (STREAM, DATASET)

PER_PERIOD = "period"
PER_ITEM = "item"
PER = (PER_PERIOD, PER_ITEM)

OPEN = "open"
"""A purchase paid into escrow, waiting for the buyer to acknowledge the key's delivery."""
DELIVERED = "delivered"
"""The buyer acknowledged the delivery; the escrow paid the seller."""
REFUNDED = "refunded"
"""No acknowledgement by the deadline; the escrow refunded the buyer and the grant is revoked."""
STATUSES = (OPEN, DELIVERED, REFUNDED)

READ_ACTION = "read"
"""The action of the grant a purchase creates."""


def resource_of(offer_id: bytes) -> str:
    """The resource the purchase's grant covers: ``data/<offer id hex>``."""
    return f"data/{offer_id.hex()}"


@dataclass(frozen=True, slots=True)
class Requirement:
    """An attestation an offer says its seller holds: ``claim`` (a schema, e.g. ``calibration/v1``)
    by ``issuer`` (a did:key), about the seller."""

    claim: str
    issuer: str

    def to_cbor(self) -> dict[str, str]:
        return {"claim": self.claim, "issuer": self.issuer}


@dataclass(frozen=True, slots=True)
class OfferRecord:
    id: bytes
    seller: str
    kind: str
    name: str
    description: str
    price: int
    """Base units of ``asset`` per unit (one period or one item)."""
    asset: str
    per: str
    period_ms: int | None
    """Per period: the length of one paid period. Per item: the access window of a purchase, or None."""
    licence: str
    required_attestations: tuple[Requirement, ...]
    content_hash: bytes | None
    created: int
    withdrawn: int | None
    sold: int
    """How many purchases were made of this offer."""

    def to_cbor(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "seller": self.seller,
            "kind": self.kind,
            "name": self.name,
            "description": self.description,
            "price": self.price,
            "asset": self.asset,
            "per": self.per,
            "period_ms": self.period_ms,
            "licence": self.licence,
            "required_attestations": [requirement.to_cbor() for requirement in self.required_attestations],
            "content_hash": self.content_hash,
            "created": self.created,
            "withdrawn": self.withdrawn,
            "sold": self.sold,
        }

    @classmethod
    def from_cbor(cls, data: Any) -> OfferRecord:
        _require_map(data, _OFFER_FIELDS, "an offer record")
        requirements = data["required_attestations"]
        if type(requirements) is not list:
            raise ValueError("required_attestations is a list")
        parsed = []
        for entry in requirements:
            _require_map(entry, ("claim", "issuer"), "a required attestation")
            parsed.append(Requirement(_text(entry, "claim"), _text(entry, "issuer")))
        return cls(
            id=_id(data, "id"),
            seller=_text(data, "seller"),
            kind=_choice(data, "kind", KINDS),
            name=_text(data, "name"),
            description=_text(data, "description"),
            price=_int(data, "price"),
            asset=_text(data, "asset"),
            per=_choice(data, "per", PER),
            period_ms=_optional_int(data, "period_ms"),
            licence=_text(data, "licence"),
            required_attestations=tuple(parsed),
            content_hash=_optional_id(data, "content_hash"),
            created=_int(data, "created"),
            withdrawn=_optional_int(data, "withdrawn"),
            sold=_int(data, "sold"),
        )

    def to_json(self) -> dict[str, Any]:
        """Plain JSON data: ids and hashes as hex."""
        return {
            **self.to_cbor(),
            "id": self.id.hex(),
            "content_hash": None if self.content_hash is None else self.content_hash.hex(),
            "resource": resource_of(self.id),
        }


@dataclass(frozen=True, slots=True)
class PurchaseRecord:
    id: bytes
    offer: bytes
    buyer: str
    seller: str
    asset: str
    units: int
    """Periods (an offer per period) or items (per item)."""
    amount: int
    """``price * units``: what the buyer locked in escrow."""
    lock: bytes
    """The escrow lock holding ``amount`` while the purchase is open (closed once settled)."""
    grant: bytes
    """The ``read:data/<offer>`` grant from the seller to the buyer."""
    created: int
    bought_ms: int
    access_until_ms: int | None
    """The grant's expiry: the end of the paid periods (None: per-item access without a window)."""
    deliver_by_ms: int
    """The buyer must acknowledge the key's delivery before this block time, or is refunded."""
    status: str
    key_hash: bytes | None
    """What the buyer acknowledged: ``sha256`` of the key it received (``messaging.keydelivery``)."""
    settled: int | None

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    def to_cbor(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "offer": self.offer,
            "buyer": self.buyer,
            "seller": self.seller,
            "asset": self.asset,
            "units": self.units,
            "amount": self.amount,
            "lock": self.lock,
            "grant": self.grant,
            "created": self.created,
            "bought_ms": self.bought_ms,
            "access_until_ms": self.access_until_ms,
            "deliver_by_ms": self.deliver_by_ms,
            "status": self.status,
            "key_hash": self.key_hash,
            "settled": self.settled,
        }

    @classmethod
    def from_cbor(cls, data: Any) -> PurchaseRecord:
        _require_map(data, _PURCHASE_FIELDS, "a purchase record")
        return cls(
            id=_id(data, "id"),
            offer=_id(data, "offer"),
            buyer=_text(data, "buyer"),
            seller=_text(data, "seller"),
            asset=_text(data, "asset"),
            units=_int(data, "units"),
            amount=_int(data, "amount"),
            lock=_id(data, "lock"),
            grant=_id(data, "grant"),
            created=_int(data, "created"),
            bought_ms=_int(data, "bought_ms"),
            access_until_ms=_optional_int(data, "access_until_ms"),
            deliver_by_ms=_int(data, "deliver_by_ms"),
            status=_choice(data, "status", STATUSES),
            key_hash=_optional_id(data, "key_hash"),
            settled=_optional_int(data, "settled"),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            **self.to_cbor(),
            "id": self.id.hex(),
            "offer": self.offer.hex(),
            "lock": self.lock.hex(),
            "grant": self.grant.hex(),
            "key_hash": None if self.key_hash is None else self.key_hash.hex(),
        }


_OFFER_FIELDS = (
    "id",
    "seller",
    "kind",
    "name",
    "description",
    "price",
    "asset",
    "per",
    "period_ms",
    "licence",
    "required_attestations",
    "content_hash",
    "created",
    "withdrawn",
    "sold",
)
_PURCHASE_FIELDS = (
    "id",
    "offer",
    "buyer",
    "seller",
    "asset",
    "units",
    "amount",
    "lock",
    "grant",
    "created",
    "bought_ms",
    "access_until_ms",
    "deliver_by_ms",
    "status",
    "key_hash",
    "settled",
)


def _require_map(data: Any, fields: tuple[str, ...], what: str) -> None:
    if type(data) is not dict or sorted(str(name) for name in data) != sorted(fields):
        raise ValueError(f"{what} is a map of exactly {sorted(fields)}")


def _text(data: Mapping[str, Any], name: str) -> str:
    value = data[name]
    if type(value) is not str:
        raise ValueError(f"{name} is text")
    return value


def _int(data: Mapping[str, Any], name: str) -> int:
    value = data[name]
    if type(value) is not int or value < 0:
        raise ValueError(f"{name} is a non-negative integer")
    return value


def _optional_int(data: Mapping[str, Any], name: str) -> int | None:
    return None if data[name] is None else _int(data, name)


def _id(data: Mapping[str, Any], name: str) -> bytes:
    value = data[name]
    if type(value) is not bytes or len(value) != ID_BYTES:
        raise ValueError(f"{name} is {ID_BYTES} bytes")
    return value


def _optional_id(data: Mapping[str, Any], name: str) -> bytes | None:
    return None if data[name] is None else _id(data, name)


def _choice(data: Mapping[str, Any], name: str, choices: tuple[str, ...]) -> str:
    value = _text(data, name)
    if value not in choices:
        raise ValueError(f"{name} is one of {list(choices)}")
    return value
