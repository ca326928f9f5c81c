"""``JobsModule``: jobs with a bounty in escrow, accepted, attested and paid (SPEC C7, jobs).

Wires the messages, the end-of-block settlement and the invariants into the router. Money moves only
through the escrow module it is given (``expected.EscrowKeeper``); the poster's owner comes from
``identity``. Other modules and the API read jobs through the queries at the end of the class.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from autarky.ledger.block import Event
from autarky.ledger.router import BlockEnv, Module, TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.modules.jobs import handlers, keeper, messages
from autarky.modules.jobs.expected import EscrowKeeper, IdentityKeeper
from autarky.modules.jobs.invariants import check_invariants
from autarky.modules.jobs.params import Params, from_genesis
from autarky.modules.jobs.records import JobRecord


class JobsModule(Module):
    name: ClassVar[str] = "jobs"
    message_types: ClassVar[tuple[str, ...]] = messages.MESSAGE_TYPES

    def __init__(self, escrow: EscrowKeeper, identity: IdentityKeeper) -> None:
        self.escrow = escrow
        self.identity = identity

    # -- Module ---------------------------------------------------------------------------------------

    def init_genesis(self, state: Overlay, config: Mapping[str, Any]) -> None:
        # Only settings given at genesis are stored: a chain that never configures jobs keeps the
        # state root it would have without this module.
        params = from_genesis(config)
        if params is not None:
            keeper.set_params(state, params)

    def handle(self, ctx: TxContext, message: Mapping[str, Any]) -> None:
        msg = messages.parse(message, ctx.sender)
        if isinstance(msg, messages.Post):
            job_id = keeper.new_job_id(ctx.tx.hash, ctx.message_index)
            handlers.post(ctx, self.escrow, self.identity, keeper.params(ctx.state), msg, job_id)
        elif isinstance(msg, messages.Cancel):
            handlers.cancel(ctx, self.escrow, self.identity, msg)
        elif isinstance(msg, messages.Accept):
            handlers.accept(ctx, self.identity, msg)
        elif isinstance(msg, messages.Complete):
            handlers.complete(ctx, msg)
        elif isinstance(msg, messages.Attest):
            handlers.attest(ctx, self.identity, msg)
        elif isinstance(msg, messages.Dispute):
            handlers.dispute(ctx, self.escrow, self.identity, msg)
        else:
            handlers.resolve(ctx, self.escrow, msg)

    def end_block(self, state: Overlay, env: BlockEnv) -> list[Event]:
        return handlers.settle_due(state, self.escrow, env.time_ms)

    def invariants(self, state: StateReader) -> list[str]:
        return check_invariants(state, self.escrow)

    # -- Queries (API, agents, other modules) -----------------------------------------------------------

    def params(self, state: StateReader) -> Params:
        return keeper.params(state)

    def job(self, state: StateReader, job_id: bytes) -> JobRecord | None:
        return keeper.read_job(state, job_id)

    def jobs_of(self, state: StateReader, account: str) -> list[tuple[JobRecord, str]]:
        """``(job, role)`` for every job ``account`` has a part in, in id order."""
        found: list[tuple[JobRecord, str]] = []
        for job_id, role in keeper.jobs_of(state, account):
            job = keeper.read_job(state, job_id)
            assert job is not None
            found.append((job, role))
        return found

    def jobs_in(self, state: StateReader, status: str) -> list[JobRecord]:
        """Every job in ``status``, in id order."""
        found = [keeper.read_job(state, job_id) for job_id in keeper.jobs_in(state, status)]
        return [job for job in found if job is not None]

    def may_attest(self, state: StateReader, job: JobRecord, account: str) -> bool:
        """Whether ``account`` may attest ``job``'s completion (an agent's question before it signs)."""
        return handlers.may_attest(state, self.identity, job, account)
