"""Why a machine-to-machine message is refused: stable ``msg.*`` codes, in order of precedence.

A receiver checks an envelope top to bottom and the first failing check decides the code (see
``README.md`` in this folder and ``docs/messaging.md``). Codes are stable names that devices log and
send back in signed replies: never rename one; add new codes where they are checked.

Exception tree::

    Exception
    └── MessageError            .code (str, one of the codes below), .detail, .error (MessageCode)

A refused message is never a bug and never an operational fault: :class:`MessageError` is the only
exception the envelope decoder, the directory and the command handler raise for bad input.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MessageCode:
    """A stable refusal code and a one-line summary a person understands."""

    code: str
    summary: str

    def __call__(self, detail: str = "") -> MessageError:
        return MessageError(self, detail)


class MessageError(Exception):
    """A message is refused with a stable code (``msg.*``)."""

    def __init__(self, error: MessageCode, detail: str = "") -> None:
        self.error = error
        self.code = error.code
        self.detail = detail or error.summary
        super().__init__(f"{error.code}: {self.detail}")


# Checks on the bytes alone.
TOO_LARGE = MessageCode("msg.too_large", "the envelope is larger than the size cap")
MALFORMED = MessageCode(
    "msg.malformed", "the bytes are not a canonical COSE_Sign1 envelope with a well-formed payload"
)
# Checks against the receiver and its clock.
WRONG_RECIPIENT = MessageCode("msg.wrong_recipient", "the message is addressed to someone else")
NOT_YET_VALID = MessageCode(
    "msg.not_yet_valid", "the message was issued in the future (beyond the clock skew)"
)
EXPIRED = MessageCode("msg.expired", "the message has expired")
TTL_TOO_LONG = MessageCode(
    "msg.ttl_too_long", "the message expires further ahead than this receiver remembers nonces"
)
# Checks against the directory (offline, from its cache).
STALE_DIRECTORY = MessageCode(
    "msg.stale_directory",
    "the receiver's cached directory entry is older than its freshness bound; refresh the directory",
)
UNKNOWN_KEY = MessageCode("msg.unknown_key", "the signing key is not a known key of the sender")
KEY_REVOKED = MessageCode("msg.key_revoked", "the signing key or its account is revoked")
KEY_SCOPE = MessageCode("msg.key_scope", "the signing key's scope does not name this message type")
BAD_SIGNATURE = MessageCode("msg.bad_signature", "the signature does not verify")
# Stateful checks: only for messages whose signature verified.
REPLAY = MessageCode("msg.replay", "this message (sender and nonce) was already received")
OVERLOADED = MessageCode(
    "msg.overloaded", "the replay guard is full of unexpired nonces; try again when some expire"
)
# Command handler: checks on a verified command.
BAD_COMMAND = MessageCode(
    "msg.bad_command", "not a command, or its body is not {action, resource, grant, args}"
)
UNKNOWN_ACTION = MessageCode("msg.unknown_action", "this device has no such action")
UNKNOWN_GRANT = MessageCode("msg.unknown_grant", "the receiver knows no grant with this id")
NO_GRANT = MessageCode(
    "msg.no_grant", "the grant was given to someone else, or does not cover this action on this resource"
)
GRANT_REVOKED = MessageCode("msg.grant_revoked", "the grant, or a grant above it, is revoked")
GRANT_EXPIRED = MessageCode("msg.grant_expired", "the grant, or a grant above it, has expired")
GRANT_EXHAUSTED = MessageCode(
    "msg.grant_exhausted", "the grant, or a grant above it, has no uses (or spend) left"
)
GRANT_CHAIN_INVALID = MessageCode(
    "msg.grant_chain_invalid", "the delegation chain is broken or a delegate holds more than its delegator"
)
UNTRUSTED_GRANT = MessageCode(
    "msg.untrusted_grant", "the grant's root grantor is not an authority of this device"
)
ACTION_FAILED = MessageCode("msg.action_failed", "the device accepted the command but its action failed")
# A request's reply that does not answer it.
WRONG_REPLY = MessageCode(
    "msg.wrong_reply", "the reply is not from the addressee or does not answer this request"
)

ENVELOPE_CODES_IN_PRECEDENCE = (
    TOO_LARGE,
    MALFORMED,
    WRONG_RECIPIENT,
    NOT_YET_VALID,
    EXPIRED,
    TTL_TOO_LONG,
    STALE_DIRECTORY,
    UNKNOWN_KEY,
    KEY_REVOKED,
    KEY_SCOPE,
    BAD_SIGNATURE,
    REPLAY,
    OVERLOADED,
)
"""What :func:`autarky.messaging.envelope.open_envelope` checks, top to bottom."""

GRANT_CODES_IN_PRECEDENCE = (
    STALE_DIRECTORY,
    UNKNOWN_GRANT,
    GRANT_CHAIN_INVALID,
    NO_GRANT,
    GRANT_REVOKED,
    GRANT_EXPIRED,
    GRANT_EXHAUSTED,
)
"""What a :class:`~autarky.messaging.directory.Directory` may raise from ``authorize``, top to bottom.

A directory with a freshness bound (``autarky.verify``) refuses a stale entry before saying anything
about it; then the policy module's check order (``policy.unknown_grant``, ``broken_chain``,
``wrong_grantee`` and ``not_covered``, ``revoked``, ``expired``, ``uses_exhausted``), one ``msg.*``
code each (``directory.grant_error``)."""

COMMAND_CODES_IN_PRECEDENCE = (
    *ENVELOPE_CODES_IN_PRECEDENCE,
    BAD_COMMAND,
    UNKNOWN_ACTION,
    *GRANT_CODES_IN_PRECEDENCE,
    UNTRUSTED_GRANT,
    ACTION_FAILED,
)
"""What :class:`~autarky.messaging.commands.CommandHandler` checks, top to bottom.

``msg.stale_directory`` appears twice: the directory is asked about the key, and later the grant."""

ALL_CODES = tuple(dict.fromkeys((*COMMAND_CODES_IN_PRECEDENCE, WRONG_REPLY)))
"""Every code, once."""
