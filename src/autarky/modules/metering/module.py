"""``MeteringModule``: metered energy per account and interval, and billing at shared infrastructure.

Other modules see metering only through the narrow interface below (economy design, issue 5):
``interval_ms``, ``energy`` and ``readings_complete`` (the energy market settles with them), plus
read-only queries for the API. Deposits are escrow locks (holder ``"metering"``); this module's
``end_block`` refunds the expired ones before the escrow's own backstop would.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from autarky.ledger.block import Event
from autarky.ledger.router import BlockEnv, Module, TxContext
from autarky.ledger.state import Overlay, StateReader
from autarky.modules.metering import handlers, keeper, messages
from autarky.modules.metering.expected import EscrowKeeper, IdentityKeeper
from autarky.modules.metering.genesis import init_genesis
from autarky.modules.metering.invariants import check_invariants
from autarky.modules.metering.messages import DIRECTIONS


class MeteringModule(Module):
    """Registered meters, signed readings, consumption records and infrastructure billing (SPEC C8)."""

    name: ClassVar[str] = "metering"
    message_types: ClassVar[tuple[str, ...]] = messages.MESSAGE_TYPES

    def __init__(self, identity: IdentityKeeper, escrow: EscrowKeeper) -> None:
        self.identity = identity
        self.escrow = escrow

    # -- Module ---------------------------------------------------------------------------------------

    def init_genesis(self, state: Overlay, config: Mapping[str, Any]) -> None:
        init_genesis(state, config)

    def handle(self, ctx: TxContext, message: Mapping[str, Any]) -> None:
        message_type = message["type"]
        if message_type == messages.READ:
            handlers.read(ctx, self.escrow, messages.parse_read(message, ctx.sender))
        elif message_type == messages.REGISTER:
            handlers.register(ctx, self.identity, messages.parse_register(message))
        elif message_type == messages.DEREGISTER:
            handlers.deregister(ctx, self.identity, messages.parse_deregister(message))
        elif message_type == messages.SET_TARIFF:
            handlers.set_tariff(ctx, self.identity, messages.parse_set_tariff(message))
        elif message_type == messages.DEPOSIT:
            handlers.deposit(ctx, self.escrow, messages.parse_deposit(message, ctx.sender))
        elif message_type == messages.WITHDRAW:
            handlers.withdraw(ctx, self.escrow, messages.parse_withdraw(message))
        else:
            raise AssertionError(f"the router sent {message_type!r} to metering")

    def end_block(self, state: Overlay, env: BlockEnv) -> list[Event]:
        return handlers.expire_deposits(state, env, self.escrow)

    def invariants(self, state: StateReader) -> list[str]:
        return check_invariants(state, self.escrow)

    # -- Narrow interface for other modules -----------------------------------------------------------

    def interval_ms(self, state: StateReader) -> int:
        """The length of a consumption interval (genesis parameter, default 900_000 = 15 minutes).

        Interval ``k`` is the time ``[k * interval_ms, (k + 1) * interval_ms)``.
        """
        return keeper.read_params(state).interval_ms

    def energy(self, state: StateReader, account: str, direction: str, interval: int) -> int:
        """The metered quantity (integer units, e.g. Wh) of all of ``account``'s meters of
        ``direction`` (``"export"``: delivered to the grid, ``"import"``: taken) attributed to
        interval ``interval``: each reading's increase since the meter's previous reading counts
        for the interval containing ``time_ms - 1`` (a reading taken exactly at an interval's end
        counts for that interval). 0 for an interval without records."""
        assert direction in DIRECTIONS, direction
        return keeper.usage(state, account, direction, interval)

    def readings_complete(self, state: StateReader, account: str, direction: str, interval: int) -> bool:
        """True when no later reading can change ``energy(state, account, direction, interval)``:
        every meter of ``account`` in ``direction`` has a reading timed at or after the interval's end
        ``(interval + 1) * interval_ms``, or was registered at or after it. True for an account with
        no such meter. Exact for a caller that asks once the block time has reached the interval's
        end (a meter registered later cannot report earlier readings)."""
        assert direction in DIRECTIONS, direction
        end_ms = (interval + 1) * self.interval_ms(state)
        return all(
            _reported_until(state, meter) >= end_ms
            for _, meter, _ in keeper.meters_of(state, account, direction)
        )

    # -- Queries (API, CLI, tests) --------------------------------------------------------------------

    def meter(self, state: StateReader, meter: str) -> keeper.MeterRecord | None:
        return keeper.read_meter(state, meter)

    def last_reading(self, state: StateReader, meter: str) -> keeper.LastReading | None:
        return keeper.read_last(state, meter)

    def meters_of(self, state: StateReader, subject: str) -> list[keeper.MeterRecord]:
        """The meters registered to ``subject``: export then import, each by meter DID."""
        found = []
        for _, meter, _ in keeper.meters_of(state, subject):
            record = keeper.read_meter(state, meter)
            assert record is not None, meter
            found.append(record)
        return found

    def tariff(self, state: StateReader, infra: str) -> keeper.Tariff | None:
        """The tariff billing at ``infra``: its own, else the default, else None."""
        return keeper.tariff(state, infra)

    def statements(self, state: StateReader, payer: str) -> list[tuple[str, str, keeper.Statement]]:
        return keeper.statements_of(state, payer)

    def deposits(self, state: StateReader, payer: str) -> list[keeper.DepositRecord]:
        return keeper.deposits_of(state, payer)


def _reported_until(state: StateReader, meter: str) -> int:
    """The time up to which ``meter``'s registration has reported: its last reading or registration."""
    record = keeper.read_meter(state, meter)
    assert record is not None, meter
    last = keeper.read_last(state, meter)
    return record.registered_ms if last is None else max(record.registered_ms, last.time_ms)
