"""``PolicyModule``: capability grants (SPEC C3), and the interface other modules use to require one.

Other modules see policy only through the narrow interface below: ``use_grant`` inside a
transaction (it checks the chain, counts the use on every link and names the grant in the
receipt), ``issue_grant`` / ``revoke_issued`` for a module whose own message stands for the
grantor's consent (``data/buy``), and the read-only queries. Devices check grants offline with
:mod:`.check` directly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from autarky.crypto.did import is_did_key
from autarky.crypto.hashing import sha256
from autarky.encoding import canonical_encode
from autarky.ledger.block import Event
from autarky.ledger.router import Module, TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.modules.policy import handlers, keeper
from autarky.modules.policy.check import Allowed, GrantRecord, check
from autarky.modules.policy.expected import IdentityKeeper
from autarky.modules.policy.invariants import check_invariants
from autarky.modules.policy.messages import (
    DELEGATE,
    GRANT,
    MESSAGE_TYPES,
    REVOKE,
    is_action,
    is_resource,
    parse_delegate,
    parse_grant,
    parse_revoke,
)

ISSUED_GRANT_ID_TAG = "autarky/policy/issued-grant-id"


def issued_grant_id(issuer: str, reference: bytes) -> bytes:
    """The id of the grant module ``issuer`` issues for its record ``reference`` (e.g. a purchase id).

    ``sha256(canonical_cbor(["autarky/policy/issued-grant-id", issuer, reference]))``: another tag
    and shape than :func:`keeper.new_grant_id`, so it never equals the id of a grant given by a
    ``policy/grant`` message.
    """
    return sha256(canonical_encode([ISSUED_GRANT_ID_TAG, issuer, reference]))


class PolicyModule(Module):
    name: ClassVar[str] = "policy"
    message_types: ClassVar[tuple[str, ...]] = MESSAGE_TYPES

    def __init__(self, identity: IdentityKeeper) -> None:
        self.identity = identity

    # -- Module ---------------------------------------------------------------------------------------

    def init_genesis(self, state: Overlay, config: Mapping[str, Any]) -> None:
        # Grants are given by transactions only (their ids come from transaction hashes), so a
        # chain that never uses policy has no policy/ key and keeps its state root.
        if config:
            raise ValueError("policy genesis takes no settings: grants are given by transactions")

    def handle(self, ctx: TxContext, message: Mapping[str, Any]) -> None:
        message_type = message["type"]
        if message_type == GRANT:
            handlers.grant(
                ctx, parse_grant(message, ctx.sender), keeper.new_grant_id(ctx.tx.hash, ctx.message_index)
            )
        elif message_type == DELEGATE:
            handlers.delegate(
                ctx, parse_delegate(message, ctx.sender), keeper.new_grant_id(ctx.tx.hash, ctx.message_index)
            )
        elif message_type == REVOKE:
            handlers.revoke(ctx, self.identity, parse_revoke(message))
        else:
            raise AssertionError(f"the router sent {message_type!r} to policy")

    def invariants(self, state: StateReader) -> list[str]:
        return check_invariants(state)

    # -- Narrow interface for other modules -----------------------------------------------------------

    def use_grant(
        self,
        ctx: TxContext,
        grant_id: bytes,
        action: str,
        resource: str,
        spend: tuple[str, int] | None = None,
    ) -> Allowed:
        """The transaction's sender uses ``grant_id`` to do ``action`` on ``resource``.

        Walks the chain to its root (:func:`check.check`; ``policy.*`` codes in their precedence),
        counts the use (and ``spend``, an ``(asset, amount)``) on every link, and emits
        ``policy.grant_used {grant, grantee, action, resource, root_grantor, asset, amount}``.
        Returns the grant id and root grantor: the caller decides whether it accepts that root as
        an authority (and raises its own code if not; the message's writes then roll back).
        """
        return handlers.use(ctx, grant_id, action, resource, spend)

    def check_grant(
        self,
        state: StateReader,
        grant_id: bytes,
        *,
        grantee: str,
        action: str,
        resource: str,
        now_ms: int,
        spend: tuple[str, int] | None = None,
    ) -> Allowed:
        """The same decision as ``use_grant`` without recording anything (for queries and APIs)."""
        chain = keeper.read_chain(state, grant_id)
        return check(chain, grantee=grantee, action=action, resource=resource, now_ms=now_ms, spend=spend)

    def grant(self, state: StateReader, grant_id: bytes) -> GrantRecord | None:
        """The stored record of ``grant_id``, or None."""
        return keeper.read_grant(state, grant_id)

    def chain(self, state: StateReader, grant_id: bytes) -> tuple[GrantRecord, ...]:
        """The records from ``grant_id`` up to its root (``policy.unknown_grant`` if there is none)."""
        return keeper.read_chain(state, grant_id)

    def grants_of_grantee(self, state: StateReader, did: str) -> list[bytes]:
        return keeper.grants_of_grantee(state, did)

    def grants_of_grantor(self, state: StateReader, did: str) -> list[bytes]:
        return keeper.grants_of_grantor(state, did)

    def children_of(self, state: StateReader, grant_id: bytes) -> list[bytes]:
        return keeper.children_of(state, grant_id)

    # -- Grants issued by another module (not by a policy message) -------------------------------------

    def issue_grant(
        self,
        ctx: TxContext,
        *,
        issuer: str,
        reference: bytes,
        grantor: str,
        grantee: str,
        action: str,
        resource: str,
        expires_ms: int | None,
    ) -> bytes:
        """Create a root grant from ``grantor`` to ``grantee`` on behalf of module ``issuer``.

        For a module whose own message stands for the grantor's consent: a ``data/buy`` creates
        ``read:data/<offer>`` from the seller (whose ``data/offer`` is the standing consent) to the
        buyer. The grant is an ordinary root grant (not delegable, no use or spend limit): checked,
        listed, delegated from and revoked like any other. Its id is
        :func:`issued_grant_id` ``(issuer, reference)``. Emits ``policy.granted`` like
        ``policy/grant``. The caller has checked everything; a bad argument is a bug (assertion).
        """
        assert is_did_key(grantor) and is_did_key(grantee) and grantor != grantee, (grantor, grantee)
        assert is_action(action) and is_resource(resource), (action, resource)
        assert expires_ms is None or expires_ms > ctx.env.time_ms, (expires_ms, ctx.env.time_ms)
        grant_id = issued_grant_id(issuer, reference)
        record = GrantRecord(
            id=grant_id,
            grantor=grantor,
            grantee=grantee,
            action=action,
            resource=resource,
            expires_ms=expires_ms,
            max_uses=None,
            spend_limit=None,
            delegable=0,
            parent=None,
            root_grantor=grantor,
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
            grantor=grantor,
            grantee=grantee,
            action=action,
            resource=resource,
        )
        return grant_id

    def revoke_issued(self, state: Overlay, *, issuer: str, reference: bytes, height: int) -> list[Event]:
        """Revoke the grant module ``issuer`` issued for ``reference`` (e.g. a purchase refunded in
        ``end_block``, where there is no transaction).

        Returns the ``policy.revoked {grant, by}`` event (``by`` is ``module:<issuer>``), or no event
        when the grant is already revoked (its grantor may have revoked it). The grant must exist
        (an assertion: the caller issued it).
        """
        grant_id = issued_grant_id(issuer, reference)
        record = keeper.read_grant(state, grant_id)
        assert record is not None, f"{issuer} issued no grant for {reference.hex()}"
        if record.revoked is not None:
            return []
        keeper.mark_revoked(state, record, height)
        return [Event("policy.revoked", (("by", f"module:{issuer}"), ("grant", grant_id)))]
