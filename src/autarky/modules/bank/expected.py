"""What the bank module needs from other modules, and nothing more (Cosmos ``expected_keepers``).

The bank sees the ``identity`` module only through :class:`IdentityKeeper` and the ``policy``
module only through :class:`PolicyKeeper`. Anything that implements these methods can be wired in
(``build_app`` passes the real ``IdentityModule`` and ``PolicyModule``; a test may pass a fake).
States are typed as :class:`Overlay` because the bank only ever calls them from inside a
transaction, which keeps the requirement on implementers as small as possible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from autarky.ledger.router import TxContext
from autarky.ledger.state import Overlay


class IdentityKeeper(Protocol):
    def owner_of(self, state: Overlay, account: str) -> str | None:
        """The owner DID of a registered machine, else None."""
        ...

    def account(self, state: Overlay, account: str) -> Mapping[str, Any] | None:
        """The directory entry of ``account``, or None if it is not registered."""
        ...

    def is_machine(self, state: Overlay, account: str) -> bool:
        """True when ``account`` is registered with an owner."""
        ...

    def charge_signer_allowance(self, ctx: TxContext, asset: str, amount: int) -> None:
        """Charge a debit by the transaction's signing key against its allowance (as below)."""
        ...

    def charge_allowance(self, state: Overlay, account: str, key: bytes, asset: str, amount: int) -> None:
        """Charge a debit against a scoped key's allowance.

        Raises ``identity.allowance_exceeded`` when a scoped key would go past its allowance;
        does nothing for a full-scope key.
        """
        ...


class GrantUse(Protocol):
    """What a use of a grant returns: the grant that allowed it and the root of its chain."""

    @property
    def grant_id(self) -> bytes: ...

    @property
    def root_grantor(self) -> str: ...


class PolicyKeeper(Protocol):
    def use_grant(
        self,
        ctx: TxContext,
        grant_id: bytes,
        action: str,
        resource: str,
        spend: tuple[str, int] | None = None,
    ) -> GrantUse:
        """Check that the transaction's sender may use ``grant_id`` for ``action`` on ``resource``
        (spending ``spend``), walking its chain to the root, and record the use on every link.

        Raises ``policy.*`` codes (``policy.unknown_grant`` ... ``policy.spend_over_limit``);
        names the grant in the receipt with a ``policy.grant_used`` event.
        """
        ...
