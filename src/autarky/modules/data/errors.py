"""The data module's rejection codes, in order of precedence, and the buyer's agent's refusal codes.

A message is checked top to bottom and the first failing check decides its code; README.md says
which codes each message can return. The code strings are part of consensus: never rename or
renumber them; add new codes at the place in the order where they are checked.

``core.invalid_message`` (a field is missing, unexpected or of the wrong type) comes before all of
these. Codes 1-6 need only the message (and the module's parameters); the rest read the state.
``data/buy`` checks the escrow's codes (``bank.unknown_asset``, then the bank's guarded-debit codes
from ``bank.account_frozen`` to ``bank.insufficient_funds``) after ``data.amount_too_large``.

The buyer's agent (``agent.py``) runs off the ledger, before a purchase is signed. Its refusals are
:class:`OfferRefused` with the codes of :data:`AGENT_CODES_IN_PRECEDENCE`; they are stable names a
machine logs, never seen by the ledger.
"""

from __future__ import annotations

from autarky.ledger.errors import ErrorCode, TxError

# Checks on the message alone (and the parameters).
INVALID_KIND = ErrorCode("data.invalid_kind", "kind is neither stream nor dataset")
INVALID_TEXT = ErrorCode(
    "data.invalid_text", "name, description or licence is empty, too long or holds control characters"
)
INVALID_PRICE = ErrorCode("data.invalid_price", "price is not 1..2**64-1, or asset is not an asset name")
INVALID_PERIOD = ErrorCode(
    "data.invalid_period",
    "per is neither period nor item, or period_ms is missing (per period) or out of range",
)
INVALID_ATTESTATIONS = ErrorCode(
    "data.invalid_attestations",
    "required_attestations has too many entries, a claim that is not a schema name, an issuer that "
    "is not a did:key, or an entry twice",
)
INVALID_UNITS = ErrorCode("data.invalid_units", "periods or items is not from 1 to the max_units parameter")

# Checks against the ledger state.
UNKNOWN_OFFER = ErrorCode("data.unknown_offer", "no offer has this id")
NOT_SELLER = ErrorCode("data.not_seller", "only the offer's seller may do this")
OFFER_WITHDRAWN = ErrorCode("data.offer_withdrawn", "the offer is withdrawn")
WRONG_UNIT = ErrorCode(
    "data.wrong_unit", "the offer is priced per period and the purchase counts items, or the reverse"
)
SELF_PURCHASE = ErrorCode("data.self_purchase", "a seller cannot buy its own offer")
AMOUNT_TOO_LARGE = ErrorCode("data.amount_too_large", "price times units is more than 2**64-1")
UNKNOWN_PURCHASE = ErrorCode("data.unknown_purchase", "no purchase has this id")
NOT_BUYER = ErrorCode("data.not_buyer", "only the purchase's buyer may acknowledge its delivery")
ALREADY_SETTLED = ErrorCode("data.already_settled", "the purchase is already delivered or refunded")
DELIVERY_OVERDUE = ErrorCode(
    "data.delivery_overdue", "the delivery deadline has passed; the purchase is refunded, not paid"
)

DATA_CODES_IN_PRECEDENCE = (
    INVALID_KIND,
    INVALID_TEXT,
    INVALID_PRICE,
    INVALID_PERIOD,
    INVALID_ATTESTATIONS,
    INVALID_UNITS,
    UNKNOWN_OFFER,
    NOT_SELLER,
    OFFER_WITHDRAWN,
    WRONG_UNIT,
    SELF_PURCHASE,
    AMOUNT_TOO_LARGE,
    UNKNOWN_PURCHASE,
    NOT_BUYER,
    ALREADY_SETTLED,
    DELIVERY_OVERDUE,
)
"""Every ledger code of the data module, in order of precedence. Part of consensus."""

# The buyer's agent (off the ledger). OFFER_WITHDRAWN above comes first, then these.
LICENCE_REFUSED = ErrorCode("data.licence_refused", "the buyer does not accept the offer's licence")
PRICE_TOO_HIGH = ErrorCode("data.price_too_high", "the price per unit is above what the buyer pays")
ATTESTATION_MISSING = ErrorCode(
    "data.attestation_missing", "no attestation about the seller by the named issuer with the named claim"
)
ATTESTATION_REVOKED = ErrorCode(
    "data.attestation_revoked", "the required attestation, or its issuer's account, is revoked"
)
ATTESTATION_EXPIRED = ErrorCode(
    "data.attestation_expired", "the required attestation is outside its validity window"
)
ATTESTATION_INVALID = ErrorCode(
    "data.attestation_invalid",
    "the required attestation does not check (malformed, bad signature, or a key the issuer no longer holds)",
)

AGENT_CODES_IN_PRECEDENCE = (
    OFFER_WITHDRAWN,
    LICENCE_REFUSED,
    PRICE_TOO_HIGH,
    ATTESTATION_MISSING,
    ATTESTATION_REVOKED,
    ATTESTATION_EXPIRED,
    ATTESTATION_INVALID,
)
"""What the buyer's agent refuses an offer with, in order (per requirement, in the offer's order)."""


class OfferRefused(TxError):
    """The buyer's agent refuses an offer; ``code`` is one of :data:`AGENT_CODES_IN_PRECEDENCE`."""


def refuse(error: ErrorCode, detail: str = "") -> OfferRefused:
    assert error in AGENT_CODES_IN_PRECEDENCE, f"{error.code} is not an agent code"
    return OfferRefused(error, detail)
