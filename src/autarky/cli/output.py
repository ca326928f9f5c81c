"""Where the CLI writes: results to stdout, everything else (progress, warnings, errors) to stderr.

With ``--json`` a command prints exactly one JSON object on stdout and nothing else there, so
``autarky wallet balance pump-7 --json | jq .balances.aut`` always works; a failure then prints
``{"error": {"code", "message"}}`` on stdout and the message on stderr.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

from rich.console import Console
from rich.text import Text

stdout = Console(highlight=False, soft_wrap=True, emoji=False)
stderr = Console(stderr=True, highlight=False, soft_wrap=True, emoji=False)

_json_mode = False


def set_json_mode(enabled: bool) -> None:
    global _json_mode
    _json_mode = enabled


def json_mode() -> bool:
    return _json_mode


def emit(document: dict[str, Any], human: Callable[[], None]) -> None:
    """Print ``document`` as one JSON object in ``--json`` mode, else call ``human`` to render it."""
    if _json_mode:
        sys.stdout.write(json.dumps(document, sort_keys=True) + "\n")
        sys.stdout.flush()
    else:
        human()


def note(message: str) -> None:
    """A progress or information line: stderr, so stdout stays clean for results."""
    stderr.print(Text(message))


def warn(message: str) -> None:
    stderr.print(Text.assemble(("warning: ", "yellow"), message))


def error(message: str) -> None:
    stderr.print(Text.assemble(("error: ", "bold red"), message))


def fmt_amount(amount: int) -> str:
    """Base units with thousands separators (integers only; there are no decimals on the ledger)."""
    return f"{amount:,}"


def short(did: str | None) -> str:
    if did is None:
        return "-"
    if did.startswith("did:key:") and len(did) > 28:
        return f"{did[:16]}…{did[-6:]}"
    return did
