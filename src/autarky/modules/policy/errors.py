"""The policy module's rejection codes, in order of precedence.

A message (or a use of a grant) is checked top to bottom and the first failing check decides its
code; README.md says which codes each entry point can return. The code strings are part of
consensus: never rename or renumber them; add new codes at the place in the order where they are
checked.

``core.invalid_message`` (a field is missing, unexpected or of the wrong type) comes before all of
these. Codes 1-5 need only the message and the block time; the rest read the state.

Codes 6-13 are also what :func:`autarky.modules.policy.check.check` returns, on the ledger and
offline on a device: they are raised as :class:`GrantRefused`, a :class:`TxError` a device can
catch by its own name.
"""

from __future__ import annotations

from autarky.ledger.errors import ErrorCode, TxError

# Checks on the message alone (and the injected block time), before any state is read.
INVALID_GRANTEE = ErrorCode(
    "policy.invalid_grantee", "the grantee is not an Ed25519 did:key, or is the sender itself"
)
INVALID_ACTION = ErrorCode("policy.invalid_action", "the action is not a valid action name")
INVALID_RESOURCE = ErrorCode("policy.invalid_resource", "the resource is not a valid resource path")
INVALID_LIMITS = ErrorCode(
    "policy.invalid_limits", "max_uses, spend_limit or delegable is out of range or not well formed"
)
INVALID_EXPIRY = ErrorCode("policy.invalid_expiry", "expires_ms is not later than the block time")

# Checks against the ledger state: finding the grant and walking its chain (check.py).
UNKNOWN_GRANT = ErrorCode("policy.unknown_grant", "no grant has this id")
BROKEN_CHAIN = ErrorCode(
    "policy.broken_chain",
    "the grant chain does not link up to a root grant, or one of its links widens its parent",
)
WRONG_GRANTEE = ErrorCode("policy.wrong_grantee", "the grant was not given to the key's account that acts")
NOT_COVERED = ErrorCode("policy.not_covered", "the grant does not cover this action on this resource")
REVOKED = ErrorCode("policy.revoked", "the grant, or a grant above it in its chain, is revoked")
EXPIRED = ErrorCode("policy.expired", "the grant, or a grant above it in its chain, has expired")
USES_EXHAUSTED = ErrorCode(
    "policy.uses_exhausted", "the grant, or a grant above it in its chain, has no uses left"
)
SPEND_OVER_LIMIT = ErrorCode(
    "policy.spend_over_limit",
    "the spend is over what the grant, or a grant above it in its chain, still allows in this asset",
)

# Delegation.
NOT_DELEGABLE = ErrorCode("policy.not_delegable", "the parent grant may not be delegated further")
WIDENS = ErrorCode(
    "policy.widens",
    "the delegation would give more than the delegator holds (resource, expiry, uses, spend or depth)",
)

# Revocation.
NOT_AUTHORISED = ErrorCode(
    "policy.not_authorised",
    "only a grantor in the grant's chain, or the owner of one, may revoke it",
)
ALREADY_REVOKED = ErrorCode("policy.already_revoked", "the grant is already revoked")

POLICY_CODES_IN_PRECEDENCE = (
    INVALID_GRANTEE,
    INVALID_ACTION,
    INVALID_RESOURCE,
    INVALID_LIMITS,
    INVALID_EXPIRY,
    UNKNOWN_GRANT,
    BROKEN_CHAIN,
    WRONG_GRANTEE,
    NOT_COVERED,
    REVOKED,
    EXPIRED,
    USES_EXHAUSTED,
    SPEND_OVER_LIMIT,
    NOT_DELEGABLE,
    WIDENS,
    NOT_AUTHORISED,
    ALREADY_REVOKED,
)
"""Every policy code, in order of precedence. Part of consensus: add codes, never rename one."""

CHECK_CODES_IN_PRECEDENCE = (
    UNKNOWN_GRANT,
    BROKEN_CHAIN,
    WRONG_GRANTEE,
    NOT_COVERED,
    REVOKED,
    EXPIRED,
    USES_EXHAUSTED,
    SPEND_OVER_LIMIT,
)
"""The codes a use of a grant can be refused with (``check.load_chain`` and ``check.check``)."""


class GrantRefused(TxError):
    """A grant does not allow what was asked. ``code`` is one of :data:`CHECK_CODES_IN_PRECEDENCE`.

    On the ledger it rejects the message like any :class:`TxError`; on a device it is the typed
    refusal of an offline check.
    """


def refuse(error: ErrorCode, detail: str = "") -> GrantRefused:
    assert error in CHECK_CODES_IN_PRECEDENCE, f"{error.code} is not a grant check code"
    return GrantRefused(error, detail)
