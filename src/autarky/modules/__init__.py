"""Ledger modules and the standard wiring of a chain's application.

``build_app()`` is the one place that decides which modules a chain runs, in which order (the
order of their ``ante`` hooks and ``end_block`` calls), and how they see each other.
"""

from __future__ import annotations

from autarky.ledger.router import App, Module


def build_app(fast_path: bool = True) -> App:
    """The standard application. ``fast_path=False`` runs only the reference path (for the
    equality tests of ``modules/bank/fast.py``)."""
    import functools

    from autarky.modules.bank import BankModule
    from autarky.modules.bank.fast import try_send
    from autarky.modules.escrow import EscrowModule
    from autarky.modules.identity import IdentityModule
    from autarky.modules.policy import PolicyModule
    from autarky.modules.validators import ValidatorsModule

    identity = IdentityModule()
    policy = PolicyModule(identity=identity)
    bank = BankModule(identity=identity, policy=policy)
    escrow = EscrowModule(bank)
    # policy has no ante hook, end_block or genesis state, so its place in the order changes no
    # result and no state root of a chain that never uses it.
    modules: list[Module] = [identity, bank, ValidatorsModule(), policy]
    # The machine economy (issue 5). Order matters for end_block: oracle and metering first (the
    # market reads their results), then the markets, and escrow last (its backstop refunds run after
    # every module has settled what was due in this block).
    # [slot: oracle]
    from autarky.modules.oracle import OracleModule

    oracle = OracleModule(escrow=escrow)
    modules.append(oracle)
    # [slot: metering]
    from autarky.modules.metering import MeteringModule

    metering = MeteringModule(identity=identity, escrow=escrow)
    modules.append(metering)
    # [slot: market]
    from autarky.modules.market import MarketModule

    modules.append(MarketModule(escrow=escrow, metering=metering, oracle=oracle))
    # [slot: lease]
    from autarky.modules.lease import LeaseModule

    modules.append(LeaseModule(escrow=escrow))
    # [slot: jobs]
    from autarky.modules.jobs import JobsModule

    modules.append(JobsModule(escrow=escrow, identity=identity))
    # [slot: data]
    from autarky.modules.data import DataModule

    modules.append(DataModule(escrow=escrow, policy=policy))
    # [slot: provenance] (no money, no end_block: its place changes no other module's result)
    from autarky.modules.provenance import ProvenanceModule

    modules.append(ProvenanceModule(identity=identity))
    # [slot: escrow]
    modules.append(escrow)
    app = App(modules, authenticator=identity)
    if fast_path:
        app.fast_path = functools.partial(try_send, app)
    return app


__all__ = ["build_app"]
