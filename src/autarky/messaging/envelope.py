"""The signed envelope of every machine-to-machine message: seal, peek, open.

An envelope is a tagged COSE_Sign1 message (``autarky.crypto.cose``) signed with EdDSA under the
``MESSAGE`` domain (``external_aad = "AUTARKY-MSG-V1\\0"``), whose protected header names the
sender's key id (``<sender did>#<publicKeyMultibase>``) and the content type
``application/vnd.autarky.m2m+cbor``, and whose payload is this canonical CBOR map::

    {"type": str,            # e.g. "m2m/command", "m2m/reading" (1-64 of a-z 0-9 _ . / -)
     "sender": did,          # the account that signs; the kid's did part must be this
     "recipient": str,       # a did, or a dotted subject name for a topic (1-256 characters)
     "body": any,            # any canonical CBOR value (no floats)
     "nonce": bytes,         # 16 random bytes; (sender, nonce) is never accepted twice
     "issued_ms": int,       # sender's clock, ms since the Unix epoch
     "expires_ms": int,      # > issued_ms; refused from then on
     "correlation": bytes}   # optional (absent, never null): a reply carries its request's nonce

Receivers check, in this order of precedence (``errors.ENVELOPE_CODES_IN_PRECEDENCE``), stopping at
the first failure:

1. ``msg.too_large``: more than :data:`MAX_ENVELOPE_BYTES`, checked before any decoding;
2. ``msg.malformed``: not a canonical COSE_Sign1 of that shape (tagged or untagged, see
   ``crypto/cose.py``), the payload not exactly that map, a value of the wrong type or size, the kid
   not of the sender;
3. ``msg.wrong_recipient``: the receiver expects another recipient;
4. ``msg.not_yet_valid``: ``issued_ms`` is more than :data:`MAX_CLOCK_SKEW_MS` ahead of the receiver;
5. ``msg.expired``: ``now_ms >= expires_ms``;
6. ``msg.ttl_too_long``: it expires further ahead than the replay guard's ``max_ttl_ms``;
7. ``msg.unknown_key`` / ``msg.key_revoked``: from the :class:`~autarky.messaging.directory.Directory`;
8. ``msg.key_scope``: a scoped key whose actions do not name the message type;
9. ``msg.bad_signature``;
10. ``msg.replay`` / ``msg.overloaded``: from the :class:`~autarky.messaging.replay.ReplayGuard`, which
    remembers the nonce only now, so a message refused earlier leaves no trace.

Cheap checks on the bytes and the clock come before the directory and the signature, so a flood of
stale or misaddressed messages costs no signature checks; the replay guard comes last, so only
signed messages can occupy it. Time is always passed in (``now_ms``); this module reads no clock.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any

from autarky.crypto.cose import CoseError, Sign1, decode_sign1, encode_sign1, sign1
from autarky.crypto.did import is_did_key
from autarky.crypto.domains import Domain
from autarky.crypto.keys import SigningKey
from autarky.encoding import DecodeError, canonical_decode, canonical_encode
from autarky.messaging import errors
from autarky.messaging.directory import Directory, key_id, split_kid
from autarky.messaging.errors import MessageError
from autarky.messaging.replay import ReplayGuard

CONTENT_TYPE = "application/vnd.autarky.m2m+cbor"
DOMAIN = Domain.MESSAGE
MAX_ENVELOPE_BYTES = 64 * 1024
MAX_CLOCK_SKEW_MS = 5_000
DEFAULT_TTL_MS = 30_000
NONCE_BYTES = 16
MAX_CORRELATION_BYTES = 64
MAX_RECIPIENT_CHARS = 256
MAX_TIME_MS = (1 << 63) - 1

_REQUIRED = frozenset({"type", "sender", "recipient", "body", "nonce", "issued_ms", "expires_ms"})
_OPTIONAL = frozenset({"correlation"})
_MSG_TYPE = re.compile(r"[a-z0-9][a-z0-9_./-]{0,63}")
_RECIPIENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9:._/#-]{0,255}")  # MAX_RECIPIENT_CHARS


@dataclass(frozen=True, slots=True)
class Message:
    """A decoded envelope. From :func:`open_envelope` it is verified; from :func:`peek` it is not."""

    sender: str
    kid: str
    public_key: bytes  # the key the kid names; open_envelope checked it against the directory
    recipient: str
    type: str
    body: Any
    nonce: bytes
    issued_ms: int
    expires_ms: int
    correlation: bytes | None
    raw: bytes  # the envelope bytes exactly as received


def seal(
    key: SigningKey,
    sender: str,
    recipient: str,
    msg_type: str,
    body: Any,
    *,
    now_ms: int,
    ttl_ms: int = DEFAULT_TTL_MS,
    nonce: bytes | None = None,
    correlation: bytes | None = None,
) -> bytes:
    """Sign a message from ``sender`` (with one of its keys) to ``recipient``; returns the envelope bytes.

    Raises :class:`MessageError` with the code a receiver would give (``msg.malformed`` for a field
    out of range or a body outside canonical CBOR, ``msg.too_large`` past the size cap).
    """
    if nonce is None:
        nonce = secrets.token_bytes(NONCE_BYTES)
    if not _is_time(now_ms) or not _is_time(ttl_ms) or ttl_ms < 1 or not _is_time(now_ms + ttl_ms):
        raise errors.MALFORMED("now_ms and ttl_ms are integers, ttl_ms >= 1")
    payload: dict[str, Any] = {
        "type": msg_type,
        "sender": sender,
        "recipient": recipient,
        "body": body,
        "nonce": nonce,
        "issued_ms": now_ms,
        "expires_ms": now_ms + ttl_ms,
    }
    if correlation is not None:
        payload["correlation"] = correlation
    _check_payload(payload)
    try:
        payload_bytes = canonical_encode(payload)
    except TypeError as exc:
        raise errors.MALFORMED(f"body is not canonical CBOR data: {exc}") from exc
    kid = key_id(sender, key.public_key.raw).encode("ascii")
    data = sign1(key, DOMAIN, kid, CONTENT_TYPE, payload_bytes)
    if len(data) > MAX_ENVELOPE_BYTES:
        raise errors.TOO_LARGE(f"envelope of {len(data)} bytes exceeds {MAX_ENVELOPE_BYTES}")
    return data


def peek(data: bytes) -> Message:
    """Decode an envelope and check its shape (codes 1-2) WITHOUT checking the signature: for routing."""
    return _decode(data)[1]


def open_envelope(
    data: bytes,
    directory: Directory,
    *,
    now_ms: int,
    replay: ReplayGuard | None,
    recipient: str | None = None,
) -> Message:
    """Decode, check and verify an envelope (every check in the module docstring), or raise MessageError.

    ``replay`` None skips the replay check (and ``msg.ttl_too_long``): only for messages whose
    effect is idempotent. ``recipient`` None accepts any recipient.
    """
    cose, message = _decode(data)
    if recipient is not None and message.recipient != recipient:
        raise errors.WRONG_RECIPIENT(f"addressed to {message.recipient[:120]!r}, not {recipient[:120]!r}")
    if message.issued_ms > now_ms + MAX_CLOCK_SKEW_MS:
        raise errors.NOT_YET_VALID(f"issued at {message.issued_ms} ms, the receiver's time is {now_ms} ms")
    if now_ms >= message.expires_ms:
        raise errors.EXPIRED(f"expired at {message.expires_ms} ms, the receiver's time is {now_ms} ms")
    if replay is not None and message.expires_ms - now_ms > replay.max_ttl_ms:
        raise errors.TTL_TOO_LONG(f"expires more than {replay.max_ttl_ms} ms ahead of the receiver's time")
    info = directory.key(message.kid, now_ms)
    if info.account != message.sender or info.public_key != message.public_key:
        raise errors.UNKNOWN_KEY(f"the directory does not list {message.kid[:120]!r} for {message.sender}")
    if not info.active:
        raise errors.KEY_REVOKED(f"{message.kid[:120]!r} is not active")
    if not info.permits(message.type):
        raise errors.KEY_SCOPE(f"the key may sign {list(info.actions or ())}, not {message.type!r}")
    if not cose.verify(info.public_key, DOMAIN):
        raise errors.BAD_SIGNATURE(f"signature by {message.kid[:120]!r} does not verify")
    if replay is not None:
        replay.check_and_remember(message.sender, message.nonce, message.expires_ms, now_ms)
    return message


def untagged(data: bytes) -> bytes:
    """The same envelope without CBOR tag 18 (for senders that must send the bare array)."""
    cose = _decode(data)[0]
    return encode_sign1(cose, tagged=False)


# --- decoding ------------------------------------------------------------------------------------


def _decode(data: bytes) -> tuple[Sign1, Message]:
    if type(data) is not bytes:
        raise errors.MALFORMED("an envelope is bytes")
    if len(data) > MAX_ENVELOPE_BYTES:
        raise errors.TOO_LARGE(f"envelope of {len(data)} bytes exceeds {MAX_ENVELOPE_BYTES}")
    try:
        cose = decode_sign1(data, max_bytes=MAX_ENVELOPE_BYTES)
    except CoseError as exc:
        raise errors.MALFORMED(str(exc)) from exc
    if cose.content_type != CONTENT_TYPE:
        raise errors.MALFORMED(f"content type is {cose.content_type[:80]!r}, not {CONTENT_TYPE!r}")
    try:
        payload = canonical_decode(cose.payload)
    except DecodeError as exc:
        raise errors.MALFORMED(f"payload: {exc}") from exc
    _check_payload(payload)
    try:
        kid = cose.kid.decode("ascii")
        account, public_key = split_kid(kid)
    except ValueError as exc:  # UnicodeDecodeError is a ValueError
        raise errors.MALFORMED(f"kid: {exc}") from exc
    if account != payload["sender"]:
        raise errors.MALFORMED("the kid names a key of another account than the sender")
    message = Message(
        sender=payload["sender"],
        kid=kid,
        public_key=public_key,
        recipient=payload["recipient"],
        type=payload["type"],
        body=payload["body"],
        nonce=payload["nonce"],
        issued_ms=payload["issued_ms"],
        expires_ms=payload["expires_ms"],
        correlation=payload.get("correlation"),
        raw=data,
    )
    return cose, message


def _check_payload(payload: Any) -> None:
    """Raise ``msg.malformed`` unless ``payload`` is exactly the envelope map with valid values."""
    if type(payload) is not dict:
        raise errors.MALFORMED("the payload is a map")
    keys = payload.keys()
    if not keys >= _REQUIRED or not keys <= _REQUIRED | _OPTIONAL:
        missing = sorted(_REQUIRED - keys)
        extra = sorted(str(key)[:40] for key in keys - _REQUIRED - _OPTIONAL)
        raise errors.MALFORMED(f"payload fields: missing {missing}, unexpected {extra}")
    msg_type, sender, recipient = payload["type"], payload["sender"], payload["recipient"]
    if type(msg_type) is not str or not _MSG_TYPE.fullmatch(msg_type):
        raise errors.MALFORMED("type is 1-64 characters of a-z 0-9 _ . / - starting with a letter or digit")
    if not is_did_key(sender):
        raise errors.MALFORMED("sender is an Ed25519 did:key")
    if type(recipient) is not str or not _RECIPIENT.fullmatch(recipient):
        raise errors.MALFORMED(f"recipient is a did or subject name of 1-{MAX_RECIPIENT_CHARS} characters")
    nonce = payload["nonce"]
    if type(nonce) is not bytes or len(nonce) != NONCE_BYTES:
        raise errors.MALFORMED(f"nonce is {NONCE_BYTES} bytes")
    issued, expires = payload["issued_ms"], payload["expires_ms"]
    if not _is_time(issued) or not _is_time(expires) or expires <= issued:
        raise errors.MALFORMED("issued_ms and expires_ms are integers in [0, 2**63), expires_ms > issued_ms")
    correlation = payload.get("correlation")
    if "correlation" in payload and (
        type(correlation) is not bytes or not 1 <= len(correlation) <= MAX_CORRELATION_BYTES
    ):
        raise errors.MALFORMED(f"correlation, when present, is 1-{MAX_CORRELATION_BYTES} bytes")


def _is_time(value: Any) -> bool:
    return type(value) is int and 0 <= value <= MAX_TIME_MS


__all__ = [
    "CONTENT_TYPE",
    "DEFAULT_TTL_MS",
    "MAX_CLOCK_SKEW_MS",
    "MAX_ENVELOPE_BYTES",
    "NONCE_BYTES",
    "Message",
    "MessageError",
    "open_envelope",
    "peek",
    "seal",
    "untagged",
]
