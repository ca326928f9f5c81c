"""What a machine's actions raise, and the refusal explained in words.

::

    AgentError
    ├── ActionRefused       the pre-check refused a transaction: it was never submitted
    │   └── MachinePaused   the owner paused the machine on the ledger (core.account_paused)
    ├── NotStarted          an action before ``await machine.start()``
    └── AgentFileError      an agent file (``autarky agent run FILE.py``) that cannot be run
        ├── AgentFileNotFound   no file at that path
        ├── AgentFileFailed     importing it raised (a syntax error, an exception at module level)
        └── NoMachineDefined    it defines no machine, several without saying which, or not
                                the one named (``FILE.py:NAME``)

``ActionRefused.code`` is the ledger's stable code (``bank.per_tx_cap``), ``detail`` the ledger's
own text and ``explanation`` a sentence for the machine's owner: what the machine wanted and which
rule stopped it (:func:`explain`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any


class AgentError(Exception):
    """Base of the agent runtime's errors."""


class NotStarted(AgentError):
    """The machine must be started (``await machine.start()``) before it acts."""


class ActionRefused(AgentError):
    """The ledger's pre-check refused the transaction; the machine did not sign it."""

    def __init__(self, code: str, detail: str, explanation: str) -> None:
        self.code = code
        self.detail = detail
        self.explanation = explanation
        super().__init__(f"{code}: {explanation}")


class MachinePaused(ActionRefused):
    """The machine's account is paused by its owner (``identity/pause``): it may not act."""


class AgentFileError(AgentError):
    """An agent file that cannot be run; ``code`` is stable (``agent.file_not_found``, ...)."""

    code = "agent.file_error"


class AgentFileNotFound(AgentFileError):
    code = "agent.file_not_found"


class AgentFileFailed(AgentFileError):
    code = "agent.file_failed"


class NoMachineDefined(AgentFileError):
    code = "agent.no_machine"


_NUMBER = re.compile(r"\d+")


def _numbers(text: str) -> list[int]:
    return [int(match) for match in _NUMBER.findall(text)]


def _payments(messages: Sequence[Mapping[str, Any]]) -> str:
    """'a payment of 900 aut' / 'payments of 900 aut' from the messages, if they are bank sends."""
    sends = [m for m in messages if m.get("type") in ("bank/send", "bank/send_from")]
    if len(sends) == 1:
        send = sends[0]
        return f"this payment of {send.get('amount')} {send.get('asset')} to {_short(send.get('to'))}"
    if sends:
        return f"these {len(sends)} payments"
    kinds = ", ".join(sorted({str(m.get("type")) for m in messages}))
    return f"this transaction ({kinds})"


def _short(did: Any) -> str:
    text = str(did)
    return text if len(text) <= 24 else text[:16] + "…" + text[-6:]


def explain(code: str, detail: str, messages: Sequence[Mapping[str, Any]] = ()) -> str:
    """A sentence saying why the ledger would refuse ``messages`` with ``code`` (and ``detail``)."""
    what = _payments(messages)
    numbers = _numbers(detail)
    if code == "bank.per_tx_cap" and len(numbers) >= 2:
        asset = detail.split()[1] if len(detail.split()) > 1 else ""
        return (
            f"{what} exceeds the per-transaction cap of {numbers[-1]} {asset} set by the owner's "
            f"guardrails ({numbers[0]} {asset} in this transaction, the fee included)"
        )
    if code == "bank.window_limit" and len(numbers) >= 3:
        asset = detail.split()[1] if len(detail.split()) > 1 else ""
        return (
            f"{what} would bring spending to {numbers[0]} {asset} in the last {numbers[1]} blocks, over "
            f"the limit of {numbers[2]} {asset} per window set by the owner's guardrails"
        )
    if code == "bank.cosign_required":
        return f"{what} is above the amount the owner's guardrails allow without the owner's co-signature"
    if code == "bank.counterparty_not_allowed":
        return f"{what} goes to a counterparty that is not in the allowlist set by the owner's guardrails"
    if code == "bank.account_frozen":
        return "the owner has frozen this machine's wallet: it cannot pay anything, not even fees"
    if code in ("bank.insufficient_funds", "bank.insufficient_fee"):
        return f"the machine's balance does not cover {what} and its fee"
    if code == "core.account_paused":
        reason = paused_reason(detail)
        why = f" ({reason})" if reason else ""
        return f"the owner has paused this machine on the ledger{why}; it does nothing until resumed"
    if code == "core.account_revoked":
        return "this machine's identity is revoked; only its owner can recover it"
    if code == "core.key_scope":
        return f"the machine's key is not allowed to send this kind of message ({detail})"
    if code == "identity.allowance_exceeded":
        return f"{what} exceeds the spending allowance of the machine's key"
    if code == "core.bad_sequence":
        return f"the machine's transaction counter is out of step with the ledger ({detail})"
    return f"the ledger would refuse {what}: {detail}"


def paused_reason(detail: str) -> str:
    """The owner's reason in a ``core.account_paused`` detail ("<did> is paused by its owner: <reason>")."""
    marker = "paused by its owner"
    if marker not in detail:
        return detail
    return detail.split(marker, 1)[1].removeprefix(":").strip()
