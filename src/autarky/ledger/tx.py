"""Transactions: what a sender authorises, how it is encoded, hashed and signed.

Wire form (canonical CBOR)::

    [1, body_bytes, [[public_key, signature], ...]]

``body_bytes`` is the canonical CBOR of the body map::

    {"chain": str, "sender": did, "seq": int, "fee": int, "expiry": int, "msgs": [msg, ...], "memo": str}

and every signature covers ``domain_tag(TRANSACTION, chain) || body_bytes``. The first signature is
the sender's; further signatures are co-signers (an owner approving a large spend, a new key
proving possession). The transaction hash is SHA-256 of the whole wire form, so two byte-different
submissions are two transactions (the sequence number makes sure at most one applies).

A message is a map with a ``"type"`` (``module/action``) and that message's fields.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.crypto.domains import Domain, check_chain_id, domain_tag
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.encoding import DecodeError, canonical_decode, canonical_encode
from autarky.ledger.errors import MALFORMED, TxError

WIRE_VERSION = 1
MAX_TX_BYTES = 64 * 1024
MAX_MESSAGES = 32
MAX_SIGNATURES = 8
MAX_MEMO_BYTES = 256
MAX_U64 = 2**64 - 1
_BODY_KEYS = frozenset({"chain", "sender", "seq", "fee", "expiry", "msgs", "memo"})


@dataclass(frozen=True, slots=True)
class TxBody:
    chain_id: str
    sender: str
    sequence: int
    fee: int
    expiry_height: int
    messages: tuple[dict[str, Any], ...]
    memo: str = ""

    def to_cbor_map(self) -> dict[str, Any]:
        return {
            "chain": self.chain_id,
            "sender": self.sender,
            "seq": self.sequence,
            "fee": self.fee,
            "expiry": self.expiry_height,
            "msgs": list(self.messages),
            "memo": self.memo,
        }

    def encode(self) -> bytes:
        return canonical_encode(self.to_cbor_map())


@dataclass(frozen=True, slots=True)
class SignedTx:
    """A decoded, structurally valid transaction. Signatures are NOT yet verified."""

    body: TxBody
    body_bytes: bytes
    signatures: tuple[tuple[bytes, bytes], ...]
    raw: bytes
    hash: bytes = field(repr=False)

    @property
    def signers(self) -> tuple[bytes, ...]:
        return tuple(public_key for public_key, _ in self.signatures)

    def signed_payload(self) -> bytes:
        """The exact bytes every signature of this transaction covers."""
        return domain_tag(Domain.TRANSACTION, self.body.chain_id) + self.body_bytes


def _is_uint(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_U64


def _body_from_map(body: Any) -> TxBody:
    if type(body) is not dict or set(body) != _BODY_KEYS:
        raise MALFORMED(f"body must be a map with exactly the keys {sorted(_BODY_KEYS)}")
    chain, sender, msgs, memo = body["chain"], body["sender"], body["msgs"], body["memo"]
    if type(chain) is not str:
        raise MALFORMED("chain must be text")
    try:
        check_chain_id(chain)
    except ValueError as exc:
        raise MALFORMED(str(exc)) from exc
    if not is_did_key(sender):
        raise MALFORMED("sender must be an Ed25519 did:key")
    for name in ("seq", "fee", "expiry"):
        if not _is_uint(body[name]):
            raise MALFORMED(f"{name} must be an unsigned 64-bit integer")
    if type(msgs) is not list or not 1 <= len(msgs) <= MAX_MESSAGES:
        raise MALFORMED(f"msgs must be a list of 1 to {MAX_MESSAGES} messages")
    for msg in msgs:
        if type(msg) is not dict or type(msg.get("type")) is not str:
            raise MALFORMED("every message must be a map with a text 'type'")
    if type(memo) is not str or len(memo.encode("utf-8")) > MAX_MEMO_BYTES:
        raise MALFORMED(f"memo must be text of at most {MAX_MEMO_BYTES} bytes")
    return TxBody(chain, sender, body["seq"], body["fee"], body["expiry"], tuple(msgs), memo)


def decode_tx(raw: bytes, max_bytes: int = MAX_TX_BYTES) -> SignedTx:
    """Decode and structurally check a transaction. Raises :class:`TxError` with ``core.malformed``."""
    if type(raw) is not bytes:
        raise MALFORMED("transaction must be bytes")
    if len(raw) > max_bytes:
        raise MALFORMED(f"transaction of {len(raw)} bytes exceeds the limit of {max_bytes}")
    try:
        outer = canonical_decode(raw)
    except DecodeError as exc:
        raise MALFORMED(str(exc)) from exc
    if type(outer) is not list or len(outer) != 3 or type(outer[0]) is not int or outer[0] != WIRE_VERSION:
        raise MALFORMED(f"transaction must be [{WIRE_VERSION}, body_bytes, signatures]")
    body_bytes, sigs = outer[1], outer[2]
    if type(body_bytes) is not bytes or type(sigs) is not list:
        raise MALFORMED("body must be bytes and signatures a list")
    if not 1 <= len(sigs) <= MAX_SIGNATURES:
        raise MALFORMED(f"a transaction carries 1 to {MAX_SIGNATURES} signatures")
    signatures: list[tuple[bytes, bytes]] = []
    seen: list[bytes] = []
    for pair in sigs:
        if (
            type(pair) is not list
            or len(pair) != 2
            or type(pair[0]) is not bytes
            or type(pair[1]) is not bytes
            or len(pair[0]) != 32
            or len(pair[1]) != 64
        ):
            raise MALFORMED("each signature is [32-byte public key, 64-byte signature]")
        if pair[0] in seen:
            raise MALFORMED("a key signs a transaction at most once")
        seen.append(pair[0])
        signatures.append((pair[0], pair[1]))
    try:
        body_map = canonical_decode(body_bytes)
    except DecodeError as exc:
        raise MALFORMED(f"body: {exc}") from exc
    body = _body_from_map(body_map)
    return SignedTx(body, body_bytes, tuple(signatures), raw, sha256(raw))


def encode_signed(body_bytes: bytes, signatures: Sequence[tuple[bytes, bytes]]) -> bytes:
    return canonical_encode([WIRE_VERSION, body_bytes, [[pk, sig] for pk, sig in signatures]])


def sign_tx(body: TxBody, key: SigningKey, cosigners: Sequence[SigningKey] = ()) -> SignedTx:
    """Sign ``body`` with the sender's ``key`` and any co-signers; returns the decoded result."""
    body_bytes = body.encode()
    payload = domain_tag(Domain.TRANSACTION, body.chain_id) + body_bytes
    signatures = [(key.public_key.raw, key.sign(Domain.TRANSACTION, body_bytes, body.chain_id))]
    for cosigner in cosigners:
        signatures.append(
            (cosigner.public_key.raw, cosigner.sign(Domain.TRANSACTION, body_bytes, body.chain_id))
        )
    assert payload.endswith(body_bytes)
    raw = encode_signed(body_bytes, signatures)
    try:
        return decode_tx(raw)
    except TxError as exc:
        raise ValueError(f"cannot sign an invalid transaction: {exc.detail}") from exc
