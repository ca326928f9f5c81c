"""The escrow module's messages (user locks): exact fields and parsing (``core.invalid_message``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autarky.ledger.errors import INVALID_MESSAGE
from autarky.ledger.router import check_field_names, require_field, require_text

LOCK = "escrow/lock"
RELEASE = "escrow/release"
REFUND = "escrow/refund"
MESSAGE_TYPES = (LOCK, RELEASE, REFUND)


@dataclass(frozen=True, slots=True)
class LockMsg:
    asset: str
    amount: int
    beneficiaries: tuple[Any, ...]
    arbiter: Any
    expires_ms: int
    purpose: str


@dataclass(frozen=True, slots=True)
class ReleaseMsg:
    lock: bytes
    to: str
    amount: int


@dataclass(frozen=True, slots=True)
class RefundMsg:
    lock: bytes


def _lock_id(message: Mapping[str, Any]) -> bytes:
    value: bytes = require_field(message, "lock", bytes)
    if len(value) != 32:
        raise INVALID_MESSAGE("field 'lock' must be 32 bytes")
    return value


def parse_lock(message: Mapping[str, Any]) -> LockMsg:
    check_field_names(message, ("asset", "amount", "beneficiaries", "expires_ms"), ("arbiter", "purpose"))
    beneficiaries = require_field(message, "beneficiaries", list)
    purpose = message.get("purpose", "")
    if type(purpose) is not str:
        raise INVALID_MESSAGE("field 'purpose' must be text")
    return LockMsg(
        asset=require_text(message, "asset"),
        amount=require_field(message, "amount", int),
        beneficiaries=tuple(beneficiaries),
        arbiter=message.get("arbiter"),
        expires_ms=require_field(message, "expires_ms", int),
        purpose=purpose,
    )


def parse_release(message: Mapping[str, Any]) -> ReleaseMsg:
    check_field_names(message, ("lock", "to", "amount"), ())
    return ReleaseMsg(_lock_id(message), require_text(message, "to"), require_field(message, "amount", int))


def parse_refund(message: Mapping[str, Any]) -> RefundMsg:
    check_field_names(message, ("lock",), ())
    return RefundMsg(_lock_id(message))


# -- builders (clients, tests) ---------------------------------------------------------------------


def lock(
    asset: str,
    amount: int,
    beneficiaries: list[str],
    expires_ms: int,
    arbiter: str | None = None,
    purpose: str = "",
) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": LOCK,
        "asset": asset,
        "amount": amount,
        "beneficiaries": beneficiaries,
        "expires_ms": expires_ms,
    }
    if arbiter is not None:
        message["arbiter"] = arbiter
    if purpose:
        message["purpose"] = purpose
    return message


def release(lock_id: bytes, to: str, amount: int) -> dict[str, Any]:
    return {"type": RELEASE, "lock": lock_id, "to": to, "amount": amount}


def refund(lock_id: bytes) -> dict[str, Any]:
    return {"type": REFUND, "lock": lock_id}
