"""The oracle messages as typed, frozen values: parsing, value checks and builders.

Parsing checks the message alone (with the module's parameters), never the state, in two stages
whose order is part of the module's precedence (README.md):

1. shape: every required field is present, no unexpected field is, and every field has its type
   (``core.invalid_message``; a bool is never an int; ``round_ms`` may be None or left out);
2. values, code by code: ``oracle.invalid_feed``, ``oracle.invalid_reporters``,
   ``oracle.invalid_quorum``, ``oracle.invalid_timing``, ``oracle.invalid_decimals``,
   ``oracle.invalid_description``, ``oracle.invalid_round``, ``oracle.invalid_value``,
   ``oracle.invalid_reward``. (``oracle/fund``'s asset, amount and expiry are checked by the
   escrow when it locks the budget, after the oracle's own codes.)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.ledger.errors import INVALID_MESSAGE
from autarky.ledger.router import check_field_names, require_field, require_text
from autarky.ledger.tx import MAX_U64
from autarky.modules.oracle.errors import (
    INVALID_DECIMALS,
    INVALID_DESCRIPTION,
    INVALID_FEED,
    INVALID_QUORUM,
    INVALID_REPORTERS,
    INVALID_REWARD,
    INVALID_ROUND,
    INVALID_TIMING,
    INVALID_VALUE,
)
from autarky.modules.oracle.params import Params
from autarky.modules.oracle.records import (
    MAX_DECIMALS,
    MAX_DESCRIPTION_BYTES,
    MAX_FEED_CHARS,
    MAX_HEARTBEAT_MS,
    is_feed_name,
    is_value,
)

CREATE_FEED = "oracle/create_feed"
SET_REPORTERS = "oracle/set_reporters"
REPORT = "oracle/report"
FUND = "oracle/fund"
DEFUND = "oracle/defund"
MESSAGE_TYPES = (CREATE_FEED, SET_REPORTERS, REPORT, FUND, DEFUND)


@dataclass(frozen=True, slots=True)
class CreateFeed:
    feed: str
    reporters: tuple[str, ...]
    """Sorted and distinct."""
    quorum: int
    heartbeat_ms: int
    round_ms: int
    """``round_ms`` as given, or ``heartbeat_ms`` when it was None."""
    decimals: int
    description: str


@dataclass(frozen=True, slots=True)
class SetReporters:
    feed: str
    reporters: tuple[str, ...]
    quorum: int


@dataclass(frozen=True, slots=True)
class Report:
    feed: str
    round: int
    value: int


@dataclass(frozen=True, slots=True)
class Fund:
    feed: str
    asset: str
    amount: int
    reward: int
    expires_ms: int


@dataclass(frozen=True, slots=True)
class Defund:
    feed: str


# ---------------------------------------------------------------------------------------------------
# Parsers, one per message


def parse_create_feed(message: Mapping[str, Any], params: Params) -> CreateFeed:
    check_field_names(
        message, ("feed", "reporters", "quorum", "heartbeat_ms", "decimals", "description"), ("round_ms",)
    )
    feed = require_text(message, "feed")
    reporters = _text_list(message, "reporters")
    quorum = require_field(message, "quorum", int)
    heartbeat_ms = require_field(message, "heartbeat_ms", int)
    round_ms = _optional_int(message, "round_ms")
    decimals = require_field(message, "decimals", int)
    description = require_text(message, "description")
    check_feed(feed)
    checked = check_reporters(reporters, params)
    check_quorum(quorum, checked)
    if not 1 <= heartbeat_ms <= MAX_HEARTBEAT_MS:
        raise INVALID_TIMING(f"heartbeat_ms must be from 1 to {MAX_HEARTBEAT_MS} (366 days)")
    if round_ms is None:
        round_ms = heartbeat_ms
    elif not 1 <= round_ms <= heartbeat_ms:
        raise INVALID_TIMING(f"round_ms must be from 1 to heartbeat_ms ({heartbeat_ms}), or None")
    if not 0 <= decimals <= MAX_DECIMALS:
        raise INVALID_DECIMALS(f"decimals must be from 0 to {MAX_DECIMALS}")
    if len(description.encode("utf-8")) > MAX_DESCRIPTION_BYTES:
        raise INVALID_DESCRIPTION(f"the description is at most {MAX_DESCRIPTION_BYTES} bytes of UTF-8")
    return CreateFeed(feed, checked, quorum, heartbeat_ms, round_ms, decimals, description)


def parse_set_reporters(message: Mapping[str, Any], params: Params) -> SetReporters:
    check_field_names(message, ("feed", "reporters", "quorum"), ())
    feed = require_text(message, "feed")
    reporters = _text_list(message, "reporters")
    quorum = require_field(message, "quorum", int)
    check_feed(feed)
    checked = check_reporters(reporters, params)
    check_quorum(quorum, checked)
    return SetReporters(feed, checked, quorum)


def parse_report(message: Mapping[str, Any]) -> Report:
    check_field_names(message, ("feed", "round", "value"), ())
    feed = require_text(message, "feed")
    round_number = require_field(message, "round", int)
    value = require_field(message, "value", int)
    check_feed(feed)
    if not 1 <= round_number <= MAX_U64:
        raise INVALID_ROUND("round must be from 1 to 2**64-1")
    if not is_value(value):
        raise INVALID_VALUE("value must be from -2**63 to 2**63-1")
    return Report(feed, round_number, value)


def parse_fund(message: Mapping[str, Any]) -> Fund:
    check_field_names(message, ("feed", "asset", "amount", "reward", "expires_ms"), ())
    feed = require_text(message, "feed")
    asset = require_text(message, "asset")
    amount = require_field(message, "amount", int)
    reward = require_field(message, "reward", int)
    expires_ms = require_field(message, "expires_ms", int)
    check_feed(feed)
    if not 1 <= reward <= MAX_U64 or reward > amount:
        raise INVALID_REWARD("reward must be from 1 to 2**64-1 and at most the amount")
    return Fund(feed, asset, amount, reward, expires_ms)


def parse_defund(message: Mapping[str, Any]) -> Defund:
    check_field_names(message, ("feed",), ())
    feed = require_text(message, "feed")
    check_feed(feed)
    return Defund(feed)


# ---------------------------------------------------------------------------------------------------
# Builders: the message maps clients put in a transaction body


def create_feed(
    feed: str,
    reporters: Sequence[str],
    quorum: int,
    heartbeat_ms: int,
    *,
    decimals: int = 0,
    description: str = "",
    round_ms: int | None = None,
) -> dict[str, Any]:
    return {
        "type": CREATE_FEED,
        "feed": feed,
        "reporters": list(reporters),
        "quorum": quorum,
        "heartbeat_ms": heartbeat_ms,
        "round_ms": round_ms,
        "decimals": decimals,
        "description": description,
    }


def set_reporters(feed: str, reporters: Sequence[str], quorum: int) -> dict[str, Any]:
    return {"type": SET_REPORTERS, "feed": feed, "reporters": list(reporters), "quorum": quorum}


def report(feed: str, round_number: int, value: int) -> dict[str, Any]:
    return {"type": REPORT, "feed": feed, "round": round_number, "value": value}


def fund(feed: str, asset: str, amount: int, reward: int, expires_ms: int) -> dict[str, Any]:
    return {
        "type": FUND,
        "feed": feed,
        "asset": asset,
        "amount": amount,
        "reward": reward,
        "expires_ms": expires_ms,
    }


def defund(feed: str) -> dict[str, Any]:
    return {"type": DEFUND, "feed": feed}


# ---------------------------------------------------------------------------------------------------
# Value checks


def check_feed(feed: str) -> None:
    if not is_feed_name(feed):
        raise INVALID_FEED(
            f"feed {feed[:40]!r} is not 1 to {MAX_FEED_CHARS} characters of /-separated segments "
            "[a-z0-9][a-z0-9._-]* (the last segment not 'rounds')"
        )


def check_reporters(reporters: list[str], params: Params) -> tuple[str, ...]:
    """The reporters, sorted; ``oracle.invalid_reporters`` unless 1..max_reporters distinct did:keys."""
    if not 1 <= len(reporters) <= params.max_reporters:
        raise INVALID_REPORTERS(f"name 1 to {params.max_reporters} reporters")
    for reporter in reporters:
        if not is_did_key(reporter):
            raise INVALID_REPORTERS(f"reporter {reporter[:80]!r} is not an Ed25519 did:key")
    if len(set(reporters)) != len(reporters):
        raise INVALID_REPORTERS("a reporter is named twice")
    return tuple(sorted(reporters))


def check_quorum(quorum: int, reporters: tuple[str, ...]) -> None:
    if not 1 <= quorum <= len(reporters):
        raise INVALID_QUORUM(f"quorum must be from 1 to the number of reporters ({len(reporters)})")


# ---------------------------------------------------------------------------------------------------
# Shape checks: core.invalid_message


def _text_list(message: Mapping[str, Any], name: str) -> list[str]:
    value = message.get(name)
    if type(value) is not list or any(type(item) is not str for item in value):
        raise INVALID_MESSAGE(f"field {name!r} must be a list of text")
    return value


def _optional_int(message: Mapping[str, Any], name: str) -> int | None:
    value = message.get(name)
    if value is not None and type(value) is not int:
        raise INVALID_MESSAGE(f"field {name!r} must be an integer or None")
    return value
