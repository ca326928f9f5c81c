"""Delivering a dataset's or stream's decryption key to its buyer: signed, encrypted, checked.

After a ``data/buy`` (module ``data``) the seller hands the buyer the key that decrypts what it
sold, machine to machine, off the ledger. The key travels in an ordinary signed envelope
(:func:`autarky.messaging.envelope.seal`, COSE_Sign1 under the ``MESSAGE`` domain) of type
``m2m/data_key``, from the seller to the buyer, whose body is::

    {"offer": 32 bytes, "purchase": 32 bytes, "grant": 32 bytes, "sealed": bytes}

``sealed`` is a libsodium sealed box (X25519 + XSalsa20-Poly1305, an ephemeral sender key) to the
buyer's Ed25519 key converted to Curve25519 (``crypto_sign_ed25519_pk_to_curve25519``): by default
the key inside the buyer's did:key. Only the holder of that key's secret opens it. Inside is the
canonical CBOR map ``{"offer": 32 bytes, "purchase": 32 bytes, "key": 32 bytes}``, which must name
the same offer and purchase as the signed body: a seller's sealed key cannot be moved into another
delivery. The signature covers the ciphertext, so the buyer knows who sent it and that nobody
changed it; the encryption keeps the key from everyone who sees the message on the way (a NATS
server, an MQTT bridge, a log).

The buyer accepts a delivery (:func:`open_key`) when, in this order of precedence
(:data:`KEY_DELIVERY_CODES_IN_PRECEDENCE`), the first failure deciding:

1. the envelope opens (every ``msg.*`` envelope code, with the buyer as recipient and the sender's
   key from the buyer's :class:`~autarky.messaging.directory.Directory`);
2. ``msg.bad_key_delivery``: the type is not ``m2m/data_key`` or the body is not the map above;
3. ``msg.wrong_offer``: the body names another offer than the one the buyer bought;
4. ``msg.not_seller``: the sender is not that offer's seller;
5. the grant codes (``msg.unknown_grant`` ... ``msg.grant_exhausted``): the buyer does not hold a
   live grant ``read`` on ``data/<offer id hex>`` (the directory runs the policy module's check);
6. ``msg.untrusted_grant``: the grant's root grantor is not the seller;
7. ``msg.undecryptable``: the sealed box does not open with the buyer's key, or what is inside is not
   a 32-byte key for this offer and purchase.

What the key decrypts is the seller's business; :func:`encrypt_content` / :func:`decrypt_content`
are the secret-box pair the examples use (XSalsa20-Poly1305, a random nonce in front), and
:func:`key_hash` is what the buyer acknowledges on the ledger (``data/ack_delivery``), so both
sides can later show which key was delivered.

Nothing here reads a clock: ``now_ms`` is passed in. Randomness (the sealed box's ephemeral key,
content nonces, new keys) comes from libsodium.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.secret
import nacl.utils

from autarky.crypto.did import InvalidDid, public_key_from_did
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.encoding import DecodeError, canonical_decode, canonical_encode
from autarky.messaging import errors
from autarky.messaging.directory import Directory
from autarky.messaging.envelope import Message, open_envelope, seal
from autarky.messaging.errors import MessageCode, MessageError
from autarky.messaging.replay import ReplayGuard

KEY_DELIVERY_TYPE = "m2m/data_key"
KEY_BYTES = 32
ID_BYTES = 32
DEFAULT_KEY_TTL_MS = 24 * 3600 * 1000
"""A delivery stays valid for a day by default: it may travel as a file, not only over NATS."""
READ_ACTION = "read"
KEY_HASH_TAG = "autarky/data/key-hash"

BAD_KEY_DELIVERY = MessageCode(
    "msg.bad_key_delivery", "not a key delivery: the type is not m2m/data_key or the body is malformed"
)
WRONG_OFFER = MessageCode("msg.wrong_offer", "the delivery names another offer than the one bought")
NOT_SELLER = MessageCode("msg.not_seller", "the sender is not the offer's seller")
UNDECRYPTABLE = MessageCode(
    "msg.undecryptable",
    "the sealed key does not open with the buyer's key, or does not hold a key for this offer and purchase",
)

KEY_DELIVERY_CODES_IN_PRECEDENCE = (
    *errors.ENVELOPE_CODES_IN_PRECEDENCE,
    BAD_KEY_DELIVERY,
    WRONG_OFFER,
    NOT_SELLER,
    *errors.GRANT_CODES_IN_PRECEDENCE,
    errors.UNTRUSTED_GRANT,
    UNDECRYPTABLE,
)
"""What :func:`open_key` checks, top to bottom (``msg.stale_directory`` appears twice: the directory
is asked about the key, and later the grant)."""

_BODY_FIELDS = ("grant", "offer", "purchase", "sealed")
_SEALED_FIELDS = ("key", "offer", "purchase")


@dataclass(frozen=True, slots=True)
class DeliveredKey:
    """A key delivery the buyer accepted."""

    offer: bytes
    purchase: bytes
    grant: bytes
    key: bytes
    seller: str
    root_grantor: str
    message: Message

    @property
    def key_hash(self) -> bytes:
        return key_hash(self.key)


def new_data_key() -> bytes:
    """A fresh random 32-byte content key."""
    return nacl.utils.random(KEY_BYTES)


def key_hash(data_key: bytes) -> bytes:
    """``sha256(canonical_cbor(["autarky/data/key-hash", key]))``: what ``data/ack_delivery`` records."""
    return sha256(canonical_encode([KEY_HASH_TAG, data_key]))


def encrypt_content(data_key: bytes, plaintext: bytes) -> bytes:
    """Encrypt a dataset (or a stream message) with ``data_key``: nonce || XSalsa20-Poly1305 box."""
    return bytes(nacl.secret.SecretBox(_checked_key(data_key)).encrypt(plaintext))


def decrypt_content(data_key: bytes, ciphertext: bytes) -> bytes:
    """The plaintext of :func:`encrypt_content`; ``ValueError`` for a wrong key or altered bytes."""
    try:
        return bytes(nacl.secret.SecretBox(_checked_key(data_key)).decrypt(ciphertext))
    except nacl.exceptions.CryptoError as exc:
        raise ValueError(f"the content does not decrypt with this key: {exc}") from None


def seal_key(
    seller_key: SigningKey,
    *,
    seller: str,
    buyer: str,
    offer: bytes,
    purchase: bytes,
    grant: bytes,
    data_key: bytes,
    now_ms: int,
    ttl_ms: int = DEFAULT_KEY_TTL_MS,
    buyer_public_key: bytes | None = None,
) -> bytes:
    """The signed envelope carrying ``data_key`` to ``buyer``, sealed to the buyer's key.

    ``seller_key`` signs for ``seller`` (the offer's seller). ``buyer_public_key`` is the buyer's
    Ed25519 key to encrypt to; by default the key inside the ``buyer`` did:key. Raises
    :class:`MessageError` (``msg.malformed``) for ids or a key of the wrong size, or a buyer that is
    not a did:key.
    """
    for name, value in (("offer", offer), ("purchase", purchase), ("grant", grant)):
        if type(value) is not bytes or len(value) != ID_BYTES:
            raise errors.MALFORMED(f"{name} is a {ID_BYTES}-byte id")
    recipient_key = _encryption_key(buyer, buyer_public_key)
    inner = canonical_encode({"offer": offer, "purchase": purchase, "key": _checked_key(data_key)})
    sealed = bytes(nacl.public.SealedBox(recipient_key).encrypt(inner))
    body = {"offer": offer, "purchase": purchase, "grant": grant, "sealed": sealed}
    return seal(seller_key, seller, buyer, KEY_DELIVERY_TYPE, body, now_ms=now_ms, ttl_ms=ttl_ms)


def open_key(
    data: bytes,
    buyer_key: SigningKey,
    directory: Directory,
    *,
    buyer: str,
    offer: bytes,
    seller: str,
    now_ms: int,
    replay: ReplayGuard | None = None,
) -> DeliveredKey:
    """Check a key delivery for the buyer and open it (the checks of the module docstring, in order).

    ``offer`` and ``seller`` are what the buyer knows of the offer it bought (from the ledger, ideally
    from a proved ``data/offer/<id hex>``); ``buyer_key`` is the buyer's Ed25519 key the delivery was
    sealed to; ``directory`` knows the seller's keys and the buyer's grant. ``replay`` None accepts
    the same delivery again (opening a key twice is harmless). Raises :class:`MessageError`.
    """
    message = open_envelope(data, directory, now_ms=now_ms, replay=replay, recipient=buyer)
    body = _body(message)
    if body["offer"] != offer:
        raise WRONG_OFFER(f"the delivery is for offer {body['offer'].hex()}, not {offer.hex()}")
    if message.sender != seller:
        raise NOT_SELLER(f"sent by {message.sender}; the offer's seller is {seller}")
    resource = f"data/{offer.hex()}"
    decision = directory.authorize(buyer, body["grant"].hex(), READ_ACTION, resource, now_ms)
    if decision.root_grantor != seller:
        raise errors.UNTRUSTED_GRANT(f"the grant comes from {decision.root_grantor}, not the seller {seller}")
    data_key = _unseal(body, buyer_key)
    return DeliveredKey(
        body["offer"], body["purchase"], body["grant"], data_key, seller, decision.root_grantor, message
    )


# ---------------------------------------------------------------------------------------------------


def _checked_key(data_key: bytes) -> bytes:
    if type(data_key) is not bytes or len(data_key) != KEY_BYTES:
        raise errors.MALFORMED(f"a data key is {KEY_BYTES} bytes")
    return data_key


def _encryption_key(buyer: str, buyer_public_key: bytes | None) -> nacl.public.PublicKey:
    try:
        ed25519 = public_key_from_did(buyer) if buyer_public_key is None else buyer_public_key
    except InvalidDid as exc:
        raise errors.MALFORMED(f"the buyer is not an Ed25519 did:key: {exc}") from exc
    try:
        return nacl.public.PublicKey(nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(ed25519))
    except (nacl.exceptions.RuntimeError, nacl.exceptions.ValueError, nacl.exceptions.TypeError) as exc:
        raise errors.MALFORMED(f"the buyer's key has no Curve25519 form: {exc}") from exc


def _decryption_key(buyer_key: SigningKey) -> nacl.public.PrivateKey:
    # The Ed25519 secret key (seed || public key) converted to Curve25519. The seed leaves the
    # SigningKey only here, for the conversion libsodium needs; it is not kept.
    _, secret = nacl.bindings.crypto_sign_seed_keypair(buyer_key.seed)
    return nacl.public.PrivateKey(nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(secret))


def _body(message: Message) -> dict[str, Any]:
    body = message.body
    if message.type != KEY_DELIVERY_TYPE:
        raise BAD_KEY_DELIVERY(f"type {message.type!r}, not {KEY_DELIVERY_TYPE!r}")
    if type(body) is not dict or sorted(str(name) for name in body) != list(_BODY_FIELDS):
        raise BAD_KEY_DELIVERY(f"the body is a map of exactly {list(_BODY_FIELDS)}")
    for name in ("offer", "purchase", "grant"):
        if type(body[name]) is not bytes or len(body[name]) != ID_BYTES:
            raise BAD_KEY_DELIVERY(f"{name} is a {ID_BYTES}-byte id")
    if type(body["sealed"]) is not bytes:
        raise BAD_KEY_DELIVERY("sealed is bytes")
    return body


def _unseal(body: dict[str, Any], buyer_key: SigningKey) -> bytes:
    try:
        inner_bytes = nacl.public.SealedBox(_decryption_key(buyer_key)).decrypt(body["sealed"])
        inner = canonical_decode(bytes(inner_bytes))
    except (nacl.exceptions.CryptoError, DecodeError) as exc:
        raise UNDECRYPTABLE(f"the sealed key does not open with the buyer's key: {exc}") from None
    if type(inner) is not dict or sorted(str(name) for name in inner) != list(_SEALED_FIELDS):
        raise UNDECRYPTABLE(f"the sealed content is not a map of exactly {list(_SEALED_FIELDS)}")
    if inner["offer"] != body["offer"] or inner["purchase"] != body["purchase"]:
        raise UNDECRYPTABLE(
            "the sealed key was made for another offer or purchase than the signed body names"
        )
    data_key = inner["key"]
    if type(data_key) is not bytes or len(data_key) != KEY_BYTES:
        raise UNDECRYPTABLE(f"the sealed key is not {KEY_BYTES} bytes")
    return data_key


__all__ = [
    "BAD_KEY_DELIVERY",
    "DEFAULT_KEY_TTL_MS",
    "KEY_DELIVERY_CODES_IN_PRECEDENCE",
    "KEY_DELIVERY_TYPE",
    "NOT_SELLER",
    "UNDECRYPTABLE",
    "WRONG_OFFER",
    "DeliveredKey",
    "MessageError",
    "decrypt_content",
    "encrypt_content",
    "key_hash",
    "new_data_key",
    "open_key",
    "seal_key",
]
