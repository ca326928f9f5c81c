"""The lease messages as typed, frozen values: exact fields, parsing, value checks and builders.

Parsing checks the message alone, never the state, in two stages whose order is part of the
module's precedence (README.md):

1. shape: every required field is present, no unexpected field is, and every field has its type
   (``core.invalid_message``); ``monitor`` may be left out (None);
2. values, code by code, for ``lease/offer`` only: ``lease.invalid_kind``, ``lease.invalid_resource``,
   ``lease.invalid_price``, ``lease.invalid_asset``, ``lease.invalid_period``, ``lease.invalid_periods``
   (both against the chain's parameters), ``lease.invalid_service_level``, ``lease.invalid_monitor``.

Every other range (``start_ms``, ``periods``, a claim's periods) depends on the offer, the lease or
the block time, so the handlers check it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.ledger.errors import INVALID_MESSAGE
from autarky.ledger.router import check_field_names, require_field, require_text
from autarky.ledger.tx import MAX_U64
from autarky.modules.lease.errors import (
    INVALID_ASSET,
    INVALID_KIND,
    INVALID_MONITOR,
    INVALID_PERIOD,
    INVALID_PERIODS,
    INVALID_PRICE,
    INVALID_RESOURCE,
    INVALID_SERVICE_LEVEL,
)
from autarky.modules.lease.params import Params

OFFER = "lease/offer"
WITHDRAW_OFFER = "lease/withdraw_offer"
RESERVE = "lease/reserve"
CONFIRM_START = "lease/confirm_start"
END = "lease/end"
REPORT_BREACH = "lease/report_breach"
ACK_BREACH = "lease/ack_breach"
JUDGE_BREACH = "lease/judge_breach"
MESSAGE_TYPES = (
    OFFER,
    WITHDRAW_OFFER,
    RESERVE,
    CONFIRM_START,
    END,
    REPORT_BREACH,
    ACK_BREACH,
    JUDGE_BREACH,
)

ID_BYTES = 32
EVIDENCE_BYTES = 32
MAX_RESOURCE_CHARS = 128
MAX_SERVICE_METRICS = 16

_KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_SEGMENT = r"[a-z0-9][a-z0-9._-]*"
_RESOURCE = re.compile(rf"{_SEGMENT}(?:/{_SEGMENT})*")
_ASSET = re.compile(r"[a-z][a-z0-9]{0,15}")  # the bank's asset names
_METRIC = re.compile(r"[a-z][a-z0-9_]{0,31}")

ServiceLevel = tuple[tuple[str, int], ...]
"""``((metric, value), ...)`` sorted by metric, each metric once (e.g. ``(("uptime_bps", 9900),)``)."""


def is_kind(value: object) -> bool:
    return type(value) is str and _KIND.fullmatch(value) is not None


def is_resource(value: object) -> bool:
    return type(value) is str and len(value) <= MAX_RESOURCE_CHARS and _RESOURCE.fullmatch(value) is not None


def is_asset(value: object) -> bool:
    return type(value) is str and _ASSET.fullmatch(value) is not None


def is_metric(value: object) -> bool:
    return type(value) is str and _METRIC.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class Offer:
    resource_kind: str
    resource: str
    price_per_period: int
    asset: str
    period_ms: int
    min_periods: int
    max_periods: int
    service_level: ServiceLevel
    monitor: str | None


@dataclass(frozen=True, slots=True)
class WithdrawOffer:
    offer: bytes


@dataclass(frozen=True, slots=True)
class Reserve:
    offer: bytes
    start_ms: int
    periods: int


@dataclass(frozen=True, slots=True)
class ConfirmStart:
    lease: bytes


@dataclass(frozen=True, slots=True)
class End:
    lease: bytes


@dataclass(frozen=True, slots=True)
class ReportBreach:
    lease: bytes
    first_period: int
    periods: int
    metric: str
    evidence: bytes


@dataclass(frozen=True, slots=True)
class AckBreach:
    lease: bytes


@dataclass(frozen=True, slots=True)
class JudgeBreach:
    lease: bytes
    upheld: bool


Message = Offer | WithdrawOffer | Reserve | ConfirmStart | End | ReportBreach | AckBreach | JudgeBreach


# ---------------------------------------------------------------------------------------------------
# Parsers


def parse(message: Mapping[str, Any], sender: str, params: Params) -> Message:
    """The typed message; ``core.invalid_message`` or a ``lease.*`` code of the message alone."""
    message_type = message["type"]
    if message_type == OFFER:
        return parse_offer(message, sender, params)
    if message_type == RESERVE:
        check_field_names(message, ("offer", "start_ms", "periods"), ())
        return Reserve(
            _id(message, "offer"),
            require_field(message, "start_ms", int),
            require_field(message, "periods", int),
        )
    if message_type == REPORT_BREACH:
        check_field_names(message, ("lease", "first_period", "periods", "metric", "evidence"), ())
        lease = _id(message, "lease")
        first = require_field(message, "first_period", int)
        periods = require_field(message, "periods", int)
        metric = require_text(message, "metric")
        evidence = require_field(message, "evidence", bytes)
        if len(evidence) != EVIDENCE_BYTES:
            raise INVALID_MESSAGE(f"field 'evidence' must be a {EVIDENCE_BYTES}-byte hash")
        return ReportBreach(lease, first, periods, metric, evidence)
    if message_type == JUDGE_BREACH:
        check_field_names(message, ("lease", "upheld"), ())
        return JudgeBreach(_id(message, "lease"), require_field(message, "upheld", bool))
    if message_type == WITHDRAW_OFFER:
        check_field_names(message, ("offer",), ())
        return WithdrawOffer(_id(message, "offer"))
    check_field_names(message, ("lease",), ())
    lease = _id(message, "lease")
    if message_type == CONFIRM_START:
        return ConfirmStart(lease)
    if message_type == END:
        return End(lease)
    assert message_type == ACK_BREACH, message_type
    return AckBreach(lease)


def parse_offer(message: Mapping[str, Any], sender: str, params: Params) -> Offer:
    check_field_names(
        message,
        (
            "resource_kind",
            "resource",
            "price_per_period",
            "asset",
            "period_ms",
            "min_periods",
            "max_periods",
            "service_level",
        ),
        ("monitor",),
    )
    kind = require_text(message, "resource_kind")
    resource = require_text(message, "resource")
    price = require_field(message, "price_per_period", int)
    asset = require_text(message, "asset")
    period_ms = require_field(message, "period_ms", int)
    min_periods = require_field(message, "min_periods", int)
    max_periods = require_field(message, "max_periods", int)
    service_level = _service_level_shape(message)
    monitor = message.get("monitor")
    if monitor is not None and type(monitor) is not str:
        raise INVALID_MESSAGE("field 'monitor' must be text or None")

    if not is_kind(kind):
        raise INVALID_KIND(f"resource_kind {kind[:40]!r} is not [a-z][a-z0-9_-]{{0,31}}")
    if not is_resource(resource):
        raise INVALID_RESOURCE(
            f"resource {resource[:40]!r} is not 1 to {MAX_RESOURCE_CHARS} characters of "
            "/-separated segments [a-z0-9][a-z0-9._-]*"
        )
    if not 1 <= price <= MAX_U64:
        raise INVALID_PRICE("price_per_period must be from 1 to 2**64-1")
    if not is_asset(asset):
        raise INVALID_ASSET(f"asset {asset[:40]!r} is not an asset name ([a-z][a-z0-9]{{0,15}})")
    if not params.min_period_ms <= period_ms <= params.max_period_ms:
        raise INVALID_PERIOD(f"period_ms must be from {params.min_period_ms} to {params.max_period_ms}")
    if not 1 <= min_periods <= max_periods <= params.max_periods:
        raise INVALID_PERIODS(f"need 1 <= min_periods <= max_periods <= {params.max_periods}")
    checked_level = check_service_level(service_level)
    if monitor is not None and (not is_did_key(monitor) or monitor == sender):
        raise INVALID_MONITOR("monitor must be an Ed25519 did:key other than the provider")
    return Offer(kind, resource, price, asset, period_ms, min_periods, max_periods, checked_level, monitor)


def check_service_level(pairs: Mapping[str, int]) -> ServiceLevel:
    if len(pairs) > MAX_SERVICE_METRICS:
        raise INVALID_SERVICE_LEVEL(f"a service level names at most {MAX_SERVICE_METRICS} metrics")
    for metric, value in pairs.items():
        if not is_metric(metric):
            raise INVALID_SERVICE_LEVEL(f"metric {metric[:40]!r} is not [a-z][a-z0-9_]{{0,31}}")
        if not 0 <= value <= MAX_U64:
            raise INVALID_SERVICE_LEVEL(f"the value of {metric!r} must be from 0 to 2**64-1")
    return tuple(sorted(pairs.items()))


def _service_level_shape(message: Mapping[str, Any]) -> dict[str, int]:
    value = message.get("service_level")
    if type(value) is not dict or any(type(k) is not str or type(v) is not int for k, v in value.items()):
        raise INVALID_MESSAGE("field 'service_level' must be a map of metric names to integers")
    return value


def _id(message: Mapping[str, Any], name: str) -> bytes:
    value = message.get(name)
    if type(value) is not bytes or len(value) != ID_BYTES:
        raise INVALID_MESSAGE(f"field {name!r} must be a {ID_BYTES}-byte id")
    return value


# ---------------------------------------------------------------------------------------------------
# Builders: the message maps clients put in a transaction body


def offer(
    resource_kind: str,
    resource: str,
    price_per_period: int,
    asset: str,
    period_ms: int,
    min_periods: int,
    max_periods: int,
    service_level: Mapping[str, int] | None = None,
    monitor: str | None = None,
) -> dict[str, Any]:
    return {
        "type": OFFER,
        "resource_kind": resource_kind,
        "resource": resource,
        "price_per_period": price_per_period,
        "asset": asset,
        "period_ms": period_ms,
        "min_periods": min_periods,
        "max_periods": max_periods,
        "service_level": dict(service_level or {}),
        "monitor": monitor,
    }


def withdraw_offer(offer_id: bytes) -> dict[str, Any]:
    return {"type": WITHDRAW_OFFER, "offer": offer_id}


def reserve(offer_id: bytes, start_ms: int, periods: int) -> dict[str, Any]:
    return {"type": RESERVE, "offer": offer_id, "start_ms": start_ms, "periods": periods}


def confirm_start(lease_id: bytes) -> dict[str, Any]:
    return {"type": CONFIRM_START, "lease": lease_id}


def end(lease_id: bytes) -> dict[str, Any]:
    return {"type": END, "lease": lease_id}


def report_breach(
    lease_id: bytes, first_period: int, periods: int, metric: str, evidence: bytes
) -> dict[str, Any]:
    return {
        "type": REPORT_BREACH,
        "lease": lease_id,
        "first_period": first_period,
        "periods": periods,
        "metric": metric,
        "evidence": evidence,
    }


def ack_breach(lease_id: bytes) -> dict[str, Any]:
    return {"type": ACK_BREACH, "lease": lease_id}


def judge_breach(lease_id: bytes, upheld: bool) -> dict[str, Any]:
    return {"type": JUDGE_BREACH, "lease": lease_id, "upheld": upheld}
