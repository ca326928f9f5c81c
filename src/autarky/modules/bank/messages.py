"""The bank's messages: their exact fields, and parsing from a transaction's message map.

Parsing checks shape only (exact key set, exact types; a bool is never an int) and raises
``core.invalid_message``; what the values mean is checked by the handlers, with ``bank.*`` codes.

=====================  ==============================================================
``bank/send``          ``to``: str, ``asset``: str, ``amount``: int
``bank/send_from``     ``from``: did:key, ``to``: str, ``asset``: str, ``amount``: int, ``grant``: 32 bytes
``bank/set_guardrails`` ``machine``: did:key, ``guardrails``: map or null (validated by the handler)
``bank/freeze``        ``machine``: did:key
``bank/unfreeze``      ``machine``: did:key
``bank/sweep``         ``machine``: did:key, ``to``: str or null (null sends to the owner)
=====================  ==============================================================
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.ledger.errors import INVALID_MESSAGE
from autarky.ledger.router import require_field

SEND = "bank/send"
SEND_FROM = "bank/send_from"
SET_GUARDRAILS = "bank/set_guardrails"
FREEZE = "bank/freeze"
UNFREEZE = "bank/unfreeze"
SWEEP = "bank/sweep"
MESSAGE_TYPES = (SEND, SET_GUARDRAILS, FREEZE, UNFREEZE, SWEEP, SEND_FROM)
GRANT_ID_BYTES = 32


@dataclass(frozen=True, slots=True)
class Send:
    to: str
    asset: str
    amount: int


@dataclass(frozen=True, slots=True)
class SendFrom:
    """Move ``amount`` of ``asset`` from ``payer`` (the message's ``from``) under the grant ``grant``."""

    payer: str
    to: str
    asset: str
    amount: int
    grant: bytes


@dataclass(frozen=True, slots=True)
class SetGuardrails:
    machine: str
    guardrails: Any


@dataclass(frozen=True, slots=True)
class Freeze:
    machine: str


@dataclass(frozen=True, slots=True)
class Unfreeze:
    machine: str


@dataclass(frozen=True, slots=True)
class Sweep:
    machine: str
    to: str | None


BankMessage = Send | SendFrom | SetGuardrails | Freeze | Unfreeze | Sweep


def _require_keys(message: Mapping[str, Any], *fields: str) -> None:
    # Keys may be integers in CBOR, so compare by membership rather than by sorting.
    if len(message) != len(fields) + 1 or not all(name in message for name in fields):
        raise INVALID_MESSAGE(f"{message['type']} takes exactly the fields {sorted(fields)} besides 'type'")


def _require_did(message: Mapping[str, Any], name: str) -> str:
    value = require_field(message, name, str)
    if not is_did_key(value):
        raise INVALID_MESSAGE(f"field {name!r} must be an Ed25519 did:key")
    return str(value)


def _require_machine(message: Mapping[str, Any]) -> str:
    return _require_did(message, "machine")


def _require_grant_id(message: Mapping[str, Any]) -> bytes:
    grant = require_field(message, "grant", bytes)
    if len(grant) != GRANT_ID_BYTES:
        raise INVALID_MESSAGE(f"field 'grant' must be a {GRANT_ID_BYTES}-byte grant id")
    return bytes(grant)


def parse(message: Mapping[str, Any]) -> BankMessage:
    """The typed message, or ``core.invalid_message``. The router has checked ``type`` is ours."""
    kind = message["type"]
    if kind == SEND:
        _require_keys(message, "to", "asset", "amount")
        return Send(
            require_field(message, "to", str),
            require_field(message, "asset", str),
            require_field(message, "amount", int),
        )
    if kind == SEND_FROM:
        _require_keys(message, "from", "to", "asset", "amount", "grant")
        return SendFrom(
            _require_did(message, "from"),
            require_field(message, "to", str),
            require_field(message, "asset", str),
            require_field(message, "amount", int),
            _require_grant_id(message),
        )
    if kind == SET_GUARDRAILS:
        _require_keys(message, "machine", "guardrails")
        return SetGuardrails(_require_machine(message), message["guardrails"])
    if kind == FREEZE:
        _require_keys(message, "machine")
        return Freeze(_require_machine(message))
    if kind == UNFREEZE:
        _require_keys(message, "machine")
        return Unfreeze(_require_machine(message))
    if kind == SWEEP:
        _require_keys(message, "machine", "to")
        to = message["to"]
        if to is not None and type(to) is not str:
            raise INVALID_MESSAGE("field 'to' must be str or null")
        return Sweep(_require_machine(message), to)
    raise AssertionError(f"bank routed a message it does not handle: {kind!r}")


# Builders, so callers (CLI, agents, tests) never spell a message map by hand.


def send(to: str, asset: str, amount: int) -> dict[str, Any]:
    return {"type": SEND, "to": to, "asset": asset, "amount": amount}


def send_from(payer: str, to: str, asset: str, amount: int, grant: bytes) -> dict[str, Any]:
    """``bank/send_from``: ``payer`` goes in the message's ``from`` field (a Python keyword)."""
    return {"type": SEND_FROM, "from": payer, "to": to, "asset": asset, "amount": amount, "grant": grant}


def set_guardrails(machine: str, guardrails: Mapping[str, Any] | None) -> dict[str, Any]:
    value = None if guardrails is None else dict(guardrails)
    return {"type": SET_GUARDRAILS, "machine": machine, "guardrails": value}


def freeze(machine: str) -> dict[str, Any]:
    return {"type": FREEZE, "machine": machine}


def unfreeze(machine: str) -> dict[str, Any]:
    return {"type": UNFREEZE, "machine": machine}


def sweep(machine: str, to: str | None = None) -> dict[str, Any]:
    return {"type": SWEEP, "machine": machine, "to": to}
