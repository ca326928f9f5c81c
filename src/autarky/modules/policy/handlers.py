"""One handler per policy message, and the use of a grant by another module's message.

Each is a ladder of guard clauses in the order of precedence of ``errors.py`` (the parser has
already run the message-only checks), then the writes, then one event::

    grant:    invalid_expiry
    delegate: invalid_expiry, unknown_grant, broken_chain, wrong_grantee, revoked, expired,
              uses_exhausted, not_delegable, widens
    revoke:   unknown_grant, broken_chain, not_authorised, already_revoked
    use:      unknown_grant, broken_chain, wrong_grantee, not_covered, revoked, expired,
              uses_exhausted, spend_over_limit

A grant's grantor is the transaction's sender. Giving a root grant needs no authority: a grant
means something only to a consumer that accepts its root grantor as an authority over the
resource (a device its owner or itself, the bank the account whose funds move).
"""

from __future__ import annotations

from autarky.ledger.router import TxContext
from autarky.modules.policy import keeper
from autarky.modules.policy.check import Allowed, GrantRecord, check, headroom, link_problem
from autarky.modules.policy.errors import (
    ALREADY_REVOKED,
    INVALID_EXPIRY,
    NOT_AUTHORISED,
    NOT_DELEGABLE,
    WIDENS,
)
from autarky.modules.policy.expected import IdentityKeeper
from autarky.modules.policy.messages import Delegate, Grant, Revoke, covers, is_action, is_resource


def grant(ctx: TxContext, msg: Grant, grant_id: bytes) -> None:
    """``policy/grant``: a root grant from the sender to ``msg.grantee``."""
    _require_future(ctx, msg.expires_ms)

    record = GrantRecord(
        id=grant_id,
        grantor=ctx.sender,
        grantee=msg.grantee,
        action=msg.action,
        resource=msg.resource,
        expires_ms=msg.expires_ms,
        max_uses=msg.max_uses,
        spend_limit=msg.spend_limit,
        delegable=msg.delegable,
        parent=None,
        root_grantor=ctx.sender,
        depth=0,
        created=ctx.height,
        revoked=None,
        uses=0,
        spent=(),
    )
    keeper.create_grant(ctx.state, record)
    ctx.emit(
        "policy.granted",
        grant=grant_id,
        grantor=ctx.sender,
        grantee=msg.grantee,
        action=msg.action,
        resource=msg.resource,
    )


def delegate(ctx: TxContext, msg: Delegate, grant_id: bytes) -> None:
    """``policy/delegate``: the grantee of ``msg.parent`` passes on part of what it holds."""
    _require_future(ctx, msg.expires_ms)
    chain = keeper.read_chain(ctx.state, msg.parent)
    parent = chain[0]
    # The sender must hold the parent, and the whole chain above it must still be live.
    check(chain, grantee=ctx.sender, action=parent.action, resource=parent.resource, now_ms=ctx.env.time_ms)
    if parent.delegable < 1:
        raise NOT_DELEGABLE(f"grant {parent.id.hex()} may not be delegated further")
    depth = _depth(msg.delegable, parent)
    _require_attenuated(chain, msg, depth)

    record = GrantRecord(
        id=grant_id,
        grantor=ctx.sender,
        grantee=msg.grantee,
        action=parent.action,
        resource=msg.resource,
        expires_ms=msg.expires_ms,
        max_uses=msg.max_uses,
        spend_limit=msg.spend_limit,
        delegable=depth,
        parent=parent.id,
        root_grantor=parent.root_grantor,
        depth=parent.depth + 1,
        created=ctx.height,
        revoked=None,
        uses=0,
        spent=(),
    )
    assert link_problem(parent, record) is None, link_problem(parent, record)
    keeper.create_grant(ctx.state, record)
    ctx.emit(
        "policy.delegated",
        grant=grant_id,
        parent=parent.id,
        grantor=ctx.sender,
        grantee=msg.grantee,
        action=parent.action,
        resource=msg.resource,
        depth=record.depth,
    )


def revoke(ctx: TxContext, identity: IdentityKeeper, msg: Revoke) -> None:
    """``policy/revoke``: by a grantor in the grant's chain, or the owner of one of them."""
    chain = keeper.read_chain(ctx.state, msg.grant)
    if not _may_revoke(ctx, identity, chain):
        raise NOT_AUTHORISED(f"{ctx.sender} is no grantor in the chain of {msg.grant.hex()}, nor owns one")
    record = chain[0]
    if record.revoked is not None:
        raise ALREADY_REVOKED(f"grant {record.id.hex()} was revoked at height {record.revoked}")

    keeper.mark_revoked(ctx.state, record, ctx.height)
    ctx.emit("policy.revoked", grant=record.id, by=ctx.sender)


def use(
    ctx: TxContext, grant_id: bytes, action: str, resource: str, spend: tuple[str, int] | None
) -> Allowed:
    """The transaction's sender uses ``grant_id`` for ``action`` on ``resource`` (spending ``spend``).

    Checks the chain (:func:`check.check`), then counts the use, and the spend, on every link, and
    emits ``policy.grant_used`` so the receipt names the grant.
    """
    assert is_action(action) and is_resource(resource), (action, resource)
    chain = keeper.read_chain(ctx.state, grant_id)
    allowed = check(
        chain, grantee=ctx.sender, action=action, resource=resource, now_ms=ctx.env.time_ms, spend=spend
    )

    for link in chain:
        keeper.record_use(ctx.state, link, spend)
    asset, amount = (None, None) if spend is None else spend
    ctx.emit(
        "policy.grant_used",
        grant=grant_id,
        grantee=ctx.sender,
        action=action,
        resource=resource,
        root_grantor=allowed.root_grantor,
        asset=asset,
        amount=amount,
    )
    return allowed


# ---------------------------------------------------------------------------------------------------
# Guards


def _require_future(ctx: TxContext, expires_ms: int | None) -> None:
    if expires_ms is not None and expires_ms <= ctx.env.time_ms:
        raise INVALID_EXPIRY(f"expires_ms {expires_ms} is not after the block time {ctx.env.time_ms}")


def _depth(delegable: int | bool, parent: GrantRecord) -> int:
    """The child's delegation depth: True is as deep as the parent allows, False is none."""
    if delegable is True:
        return parent.delegable - 1
    if delegable is False:
        return 0
    return delegable


def _require_attenuated(chain: tuple[GrantRecord, ...], msg: Delegate, depth: int) -> None:
    """``policy.widens`` unless the child asks no more than the parent's chain has left."""
    parent = chain[0]
    room = headroom(chain)
    if not covers(parent.resource, msg.resource):
        raise WIDENS(f"resource {msg.resource!r} is not {parent.resource!r} or below it")
    if parent.expires_ms is not None and (msg.expires_ms is None or msg.expires_ms > parent.expires_ms):
        raise WIDENS(f"the parent expires at {parent.expires_ms} ms; the delegation may not outlive it")
    if room.uses is not None and (msg.max_uses is None or msg.max_uses > room.uses):
        raise WIDENS(f"the parent's chain has {room.uses} uses left; max_uses must be at most that")
    if room.spend is not None:
        left = dict(room.spend)
        if msg.spend_limit is None:
            raise WIDENS(f"the parent's chain limits spending to {left}; give a spend limit within it")
        for asset, amount in msg.spend_limit:
            if asset not in left:
                raise WIDENS(f"the parent's chain allows no spending of {asset}")
            if amount > left[asset]:
                raise WIDENS(f"the parent's chain allows {left[asset]} more {asset}, not {amount}")
    if depth > parent.delegable - 1:
        raise WIDENS(f"the parent allows delegation {parent.delegable - 1} levels below the delegate")


def _may_revoke(ctx: TxContext, identity: IdentityKeeper, chain: tuple[GrantRecord, ...]) -> bool:
    for link in chain:
        if ctx.sender == link.grantor:
            return True
    return any(identity.owner_of(ctx.state, link.grantor) == ctx.sender for link in chain)
