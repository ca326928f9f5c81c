"""What the provenance module needs from other modules, and nothing more (Cosmos ``expected_keepers``).

A machine's owner may anchor the machine's decisions for it; the owner comes from ``identity``.
"""

from __future__ import annotations

from typing import Protocol

from autarky.ledger.state import StateReader


class IdentityKeeper(Protocol):
    def owner_of(self, state: StateReader, account: str) -> str | None:
        """The owner DID of a registered machine, else None."""
        ...
