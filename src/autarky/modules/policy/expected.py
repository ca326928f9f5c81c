"""What the policy module needs from other modules, and nothing more (Cosmos ``expected_keepers``).

Policy asks ``identity`` one question: who owns an account, so that the owner of a machine that
gave a grant (or a delegation) can revoke it. ``build_app`` passes the real ``IdentityModule``.
"""

from __future__ import annotations

from typing import Protocol

from autarky.ledger.state import StateReader


class IdentityKeeper(Protocol):
    def owner_of(self, state: StateReader, account: str) -> str | None:
        """The owner DID of a registered machine, else None."""
        ...
