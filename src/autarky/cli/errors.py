"""The CLI's failures, and how every other failure is turned into one of them at the edge.

    CliError                 a one-line message that names what to do, and an exit code
    ├── UsageProblem         exit 2: a wrong option, setting, file or name; nothing was attempted
    ├── NodeUnreachable      exit 2: no node answers at the address (start one, or pass --node)
    └── OperationFailed      exit 1: the operation was attempted and refused
        └── TxRefused        exit 1: the ledger (or the node's admission) refused a transaction; has its code

:func:`translate` maps the typed errors of the layers below (configuration, keystore, genesis,
snapshot, API client) to these; anything it does not know is a bug and keeps its traceback.
"""

from __future__ import annotations

from typing import Any

from pydantic_settings import SettingsError

from autarky.crypto.keystore import (
    CorruptKeystore,
    KeystoreError,
    KeystoreExists,
    MissingSecret,
    WrongSecret,
)
from autarky.node.errors import ConfigError, NodeError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


class CliError(Exception):
    exit_code = EXIT_FAILED
    code = "cli.error"

    def __init__(
        self, message: str, *, code: str | None = None, details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.details = details or {}

    def to_json(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, **self.details}}


class UsageProblem(CliError):
    exit_code = EXIT_USAGE
    code = "cli.usage"


class NodeUnreachable(CliError):
    exit_code = EXIT_USAGE
    code = "cli.node_unreachable"


class OperationFailed(CliError):
    exit_code = EXIT_FAILED
    code = "cli.failed"


class TxRefused(OperationFailed):
    """A transaction that was rejected at admission or failed in its block, with its ledger code."""


# Hints for the ledger codes a person meets most often: what to do next.
_HINTS = {
    "bank.window_limit": "wait for older spends to leave the window, or ask the owner to raise --per-window",
    "bank.per_tx_cap": "send a smaller amount, or ask the owner to raise --per-tx",
    "bank.cosign_required": "add the owner's co-signature with --cosign OWNER",
    "bank.counterparty_not_allowed": "ask the owner to allow it: `wallet guardrails set ... --allow NAME`",
    "bank.account_frozen": "the owner can lift it with `autarky wallet unfreeze MACHINE --owner OWNER`",
    "bank.insufficient_funds": "check the balance with `autarky wallet balance NAME`",
    "bank.insufficient_fee": "fund the sender's fee asset first",
    "bank.not_owner": "sign with the machine's registered owner (--owner)",
    "bank.fee_too_low": "raise --fee to the chain's minimum",
    "core.unknown_signer": "this key does not sign for the account (rotated or revoked? see `identity show`)",
    "core.bad_sequence": "another transaction from this sender is in flight; retry",
    "identity.already_registered": "the machine is registered already; see `autarky identity show NAME`",
    "identity.not_authorised": "sign with the account itself or its owner (--by-owner OWNER)",
}


def tx_refused(
    code: str | None, detail: str, tx_hash: str | None = None, height: int | None = None
) -> TxRefused:
    code = code or "unknown"
    hint = _HINTS.get(code)
    where = f" (tx {tx_hash[:16]}…, block {height})" if tx_hash and height is not None else ""
    message = f"refused: {code}: {detail}{where}"
    if hint:
        message += f"; {hint}"
    return TxRefused(message, code=code, details={"tx_hash": tx_hash, "height": height, "detail": detail})


def translate(exc: BaseException) -> CliError | None:
    """The :class:`CliError` for a known failure of a lower layer, or None for a bug."""
    if isinstance(exc, CliError):
        return exc
    if isinstance(exc, WrongSecret):
        return UsageProblem(
            f"{exc}; check the password (--password-file, AUTARKY_PASSWORD) or --key-file",
            code="cli.wrong_secret",
        )
    if isinstance(exc, MissingSecret):
        return UsageProblem(
            f"{exc}; give --password-file, set AUTARKY_PASSWORD, or --key-file", code="cli.missing_secret"
        )
    if isinstance(exc, KeystoreExists):
        return UsageProblem(f"{exc}; choose another name", code="cli.exists")
    if isinstance(exc, CorruptKeystore | KeystoreError):
        return UsageProblem(f"keystore: {exc}", code="cli.keystore")
    if isinstance(exc, ConfigError):
        return UsageProblem(str(exc), code="cli.config")
    if isinstance(exc, SettingsError):
        cause = f" ({exc.__cause__})" if exc.__cause__ else ""
        return UsageProblem(
            f"invalid configuration from the environment: {exc}{cause}; check the AUTARKY_* variables",
            code="cli.config",
        )
    if isinstance(exc, NodeError):
        return OperationFailed(f"node: {exc}", code="cli.node")
    from autarky.cli.remote import translate_client_error

    return translate_client_error(exc)
