"""The escrow module: lock funds under conditions, release to parties, refund on timeout (SPEC C7).

README.md is its specification. Other modules use :class:`EscrowModule`'s ``lock``, ``release``,
``refund``, ``get`` and ``locks_of``.
"""

from autarky.modules.escrow.keeper import ESCROW_ACCOUNT, Lock
from autarky.modules.escrow.module import EscrowModule

__all__ = ["ESCROW_ACCOUNT", "EscrowModule", "Lock"]
