"""Ledger modules and the standard wiring of a chain's application.

``build_app()`` is the one place that decides which modules a chain runs, in which order (the
order of their ``ante`` hooks and ``end_block`` calls), and how they see each other.
"""

from __future__ import annotations

from autarky.ledger.router import App


def build_app() -> App:
    from autarky.modules.bank import BankModule
    from autarky.modules.identity import IdentityModule

    identity = IdentityModule()
    bank = BankModule(identity=identity)
    return App([identity, bank], authenticator=identity)


__all__ = ["build_app"]
