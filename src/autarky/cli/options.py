"""What the command groups share: the common options, and parsers of ids, durations and times.

Every write command takes ``--from`` (which identity signs), ``--fee``, ``--password-file`` and
``--key-file``; every command ``--json``. Ids of ledger records (locks, orders, offers, leases,
jobs, purchases) are 32 bytes written as 64 hex characters.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated

import typer

from autarky.cli.errors import UsageProblem

JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]
PasswordFileOpt = Annotated[
    Path | None, typer.Option("--password-file", help="Read keystore passwords from this file.")
]
KeyFileOpt = Annotated[Path | None, typer.Option("--key-file", help="Key file that unlocks the keystore.")]
FeeOpt = Annotated[int, typer.Option("--fee", min=0, help="Transaction fee in base units of the fee asset.")]
FromOpt = Annotated[str, typer.Option("--from", help="Local name of the signing identity.")]
NodeOpt = Annotated[
    str | None,
    typer.Option(
        "--node", help="Node API URL (default: the global --node, $AUTARKY_NODE_URL or the config)."
    ),
]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_DURATION = re.compile(r"(\d+)(ms|s|m|h|d)?")
_UNIT_MS = {None: 1000, "ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_hex32(text: str, what: str) -> bytes:
    """A 32-byte id or hash from 64 hex characters; ``what`` names it in the error ("a lock id")."""
    try:
        raw = bytes.fromhex(text)
    except ValueError:
        raw = b""
    if len(raw) != 32:
        raise UsageProblem(f"{text[:80]!r} is not {what} (64 hex characters)")
    return raw


def parse_duration_ms(text: str, option: str) -> int:
    """``90`` or ``90s``, ``500ms``, ``15m``, ``2h``, ``7d`` in milliseconds (at least 1 ms)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None or int(match.group(1)) == 0:
        raise UsageProblem(f"{option} {text!r} is not a duration such as 90s, 15m, 2h or 7d")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def parse_time_ms(text: str, option: str) -> int:
    """``now``, ``+DURATION`` from now, milliseconds since the epoch, or an ISO 8601 date-time (UTC
    unless it names an offset)."""
    text = text.strip()
    if text == "now":
        return time.time_ns() // 1_000_000
    if text.startswith("+"):
        return time.time_ns() // 1_000_000 + parse_duration_ms(text[1:], option)
    if text.isdigit():
        return int(text)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageProblem(
            f"{option} {text!r} is not a time: use now, +5m, milliseconds since the epoch or ISO 8601"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - _EPOCH) // timedelta(milliseconds=1)


def iso(time_ms: int | None) -> str:
    """A block time as ``2026-11-22T03:08:36Z`` ("-" for none)."""
    if time_ms is None:
        return "-"
    try:
        return (_EPOCH + timedelta(milliseconds=time_ms)).strftime("%Y-%m-%dT%H:%M:%SZ")
    except OverflowError:
        return f"{time_ms} ms"
