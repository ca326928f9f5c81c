"""What the bank module needs from other modules, and nothing more (Cosmos ``expected_keepers``).

The bank sees the ``identity`` module only through :class:`IdentityKeeper`. Anything that
implements these four methods can be wired in (``build_app`` passes the real ``IdentityModule``;
a test may pass a fake). States are typed as :class:`Overlay` because the bank only ever calls
them from inside a transaction, which keeps the requirement on implementers as small as possible.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

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

    def charge_allowance(self, state: Overlay, account: str, key: bytes, asset: str, amount: int) -> None:
        """Charge a debit against a scoped key's allowance.

        Raises ``identity.allowance_exceeded`` when a scoped key would go past its allowance;
        does nothing for a full-scope key.
        """
        ...
