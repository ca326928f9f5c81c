"""Signed machine-to-machine messages: COSE_Sign1 envelopes, NATS transport, device command handling.

* ``envelope``: :func:`seal`, :func:`open_envelope`, :func:`peek`, :class:`Message` (the one envelope);
* ``errors``: :class:`MessageError` and the ``msg.*`` codes in order of precedence;
* ``directory``: the :class:`Directory` protocol (keys and grants, answered offline) and
  :class:`StaticDirectory`;
* ``replay``: :class:`ReplayGuard`, bounded memory of seen nonces;
* ``transport``: :class:`Agent` on NATS subjects (publish/subscribe, request/reply) and a local
  development server;
* ``commands``: :class:`CommandHandler`, a device that obeys only granted, signed, fresh commands.

See ``docs/messaging.md`` for a guide and ``README.md`` in this folder for the wire format and codes.
"""

from autarky.messaging.directory import (
    Directory,
    GrantDecision,
    KeyInfo,
    StaticDirectory,
    StaticGrant,
    key_id,
    public_key_from_kid,
)
from autarky.messaging.envelope import MAX_ENVELOPE_BYTES, Message, open_envelope, peek, seal
from autarky.messaging.errors import MessageCode, MessageError
from autarky.messaging.replay import ReplayGuard

__all__ = [
    "MAX_ENVELOPE_BYTES",
    "Directory",
    "GrantDecision",
    "KeyInfo",
    "Message",
    "MessageCode",
    "MessageError",
    "ReplayGuard",
    "StaticDirectory",
    "StaticGrant",
    "key_id",
    "open_envelope",
    "peek",
    "public_key_from_kid",
    "seal",
]
