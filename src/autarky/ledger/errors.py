"""Expected rejections: a closed set of result codes with stable names.

A transaction that cannot be applied is not a bug and not an operational fault: it is *rejected*
with a :class:`TxError` carrying an :class:`ErrorCode`. Every replica must return the same code for
the same transaction, so codes are checked in a documented order of precedence (see
``ARCHITECTURE.md`` and each module's README) and are never renamed: the code string is part of
consensus (it is hashed into the block's result root).

Codes are namespaced by their owner: ``core.*`` for the executor, ``bank.*``, ``identity.*`` for
modules. The human-readable ``detail`` is not hashed and may change between versions.
"""

from __future__ import annotations

from dataclasses import dataclass

OK = "ok"


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """A stable rejection code and a one-line summary a person understands."""

    code: str
    summary: str

    def __call__(self, detail: str = "") -> TxError:
        return TxError(self, detail)


class TxError(Exception):
    """A transaction (or one of its messages) is rejected with a stable code."""

    def __init__(self, error: ErrorCode, detail: str = "") -> None:
        self.error = error
        self.code = error.code
        self.detail = detail or error.summary
        super().__init__(f"{error.code}: {self.detail}")


# Core codes, in order of precedence: the executor checks them top to bottom and stops at the first.
MALFORMED = ErrorCode("core.malformed", "transaction bytes are not a well-formed canonical transaction")
WRONG_CHAIN = ErrorCode("core.wrong_chain", "transaction is for another chain id")
EXPIRED = ErrorCode("core.expired", "transaction expiry height has passed")
BAD_SIGNATURE = ErrorCode("core.bad_signature", "a signature does not verify")
UNKNOWN_SIGNER = ErrorCode("core.unknown_signer", "the signing key is not an active key of the sender")
ACCOUNT_REVOKED = ErrorCode("core.account_revoked", "the sender account is revoked")
ACCOUNT_PAUSED = ErrorCode("core.account_paused", "the sender account is paused by its owner")
BAD_SEQUENCE = ErrorCode("core.bad_sequence", "sequence number is not the sender's next one")
KEY_SCOPE = ErrorCode("core.key_scope", "the signing key's scope does not allow this message")
UNKNOWN_MESSAGE = ErrorCode("core.unknown_message", "no module handles this message type")
INVALID_MESSAGE = ErrorCode("core.invalid_message", "message fields are missing or have the wrong type")

CORE_CODES_IN_PRECEDENCE = (
    MALFORMED,
    WRONG_CHAIN,
    EXPIRED,
    BAD_SIGNATURE,
    UNKNOWN_SIGNER,
    ACCOUNT_REVOKED,
    ACCOUNT_PAUSED,
    BAD_SEQUENCE,
    KEY_SCOPE,
    UNKNOWN_MESSAGE,
    INVALID_MESSAGE,
)
