"""The lease module through the real executor: offers, reservations in escrow, confirmation, payment
per period, early end, breach claims and their confirmation, slots, parameters and invariants.

Layout: a small world (a charging station, a robot renter, a second renter, an SLA monitor, a
stranger) on the in-memory chain built by ``build_app``, every block at an explicit block time so
the period arithmetic is visible in the test, then one section per message and one for the
end-of-block settlement. After every block the world checks every module's invariants (bank supply,
escrow balance, the lease records against escrow) and that no value was created or destroyed. A
test that names a precedence puts two faults in one message and checks the one documented first
wins.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.executor import execute_genesis
from autarky.ledger.state import MappingState, Overlay
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.modules import build_app
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.escrow import EscrowModule
from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.harness import Chain
from autarky.modules.lease import LeaseModule, LeaseRecord, keeper, schedule
from autarky.modules.lease import messages as lease
from autarky.modules.lease.errors import LEASE_CODES_IN_PRECEDENCE
from autarky.modules.lease.params import DEFAULTS, Params, from_genesis

CHAIN_ID = "lease-test"
T0 = 1_000_000
MINUTE = 60_000
WINDOW = DEFAULTS.report_window_ms  # 60 s between a period's end and its payment
README = Path(__file__).resolve().parents[2] / "src/autarky/modules/lease/README.md"


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/lease-test/" + name.encode()))


STATION = make_key("station")  # the provider
ROBOT = make_key("robot")  # the renter
ROVER = make_key("rover")  # a second renter
MONITOR = make_key("monitor")
STRANGER = make_key("stranger")
POOR = make_key("poor")

GENESIS: dict[str, Any] = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": T0,
    "app_state": {
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "assets": ["kwh"],
            "balances": [
                {"account": ROBOT.did, "asset": "aut", "amount": 10_000},
                {"account": ROVER.did, "asset": "aut", "amount": 10_000},
                {"account": POOR.did, "asset": "aut", "amount": 5},
                {"account": STATION.did, "asset": "aut", "amount": 1},
            ],
        },
    },
}
SUPPLY = 20_006


class World:
    """The chain of GENESIS; every block is checked for invariants and conserved supply."""

    def __init__(self, genesis: dict[str, Any] | None = None) -> None:
        self.chain = Chain.from_genesis(genesis or GENESIS)
        module = self.chain.app.module("lease")
        assert isinstance(module, LeaseModule)
        self.lease: LeaseModule = module

    @property
    def now(self) -> int:
        return self.chain.headers[-1].time_ms

    def tx(self, signer: SigningKey, *msgs: dict[str, Any]) -> SignedTx:
        body = TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, tuple(msgs))
        return sign_tx(body, signer)

    def block(self, at: int, *txs: SignedTx) -> Any:
        receipts = self.chain.execute([tx.raw for tx in txs], at)
        assert self.chain.invariants() == []
        assert bank_keeper.supply(self.chain.state, "aut") == SUPPLY
        total = sum(
            amount for _, asset, amount in bank_keeper.all_balances(self.chain.state) if asset == "aut"
        )
        assert total == SUPPLY
        return receipts

    def run(self, signer: SigningKey, *msgs: dict[str, Any], at: int | None = None) -> Any:
        (receipt,) = self.block(self.now + 1000 if at is None else at, self.tx(signer, *msgs))
        return receipt

    def code(self, signer: SigningKey, *msgs: dict[str, Any], at: int | None = None) -> str:
        return str(self.run(signer, *msgs, at=at).code)

    def ok(self, signer: SigningKey, *msgs: dict[str, Any], at: int | None = None) -> Any:
        receipt = self.run(signer, *msgs, at=at)
        assert receipt.code == "ok", (receipt.code, receipt.detail)
        return receipt

    def tick(self, at: int) -> None:
        """An empty block at ``at`` (end_block settles whatever is due)."""
        self.block(at)

    def offer(
        self,
        provider: SigningKey = STATION,
        resource: str = "charger-3",
        price: int = 10,
        period_ms: int = MINUTE,
        min_periods: int = 1,
        max_periods: int = 60,
        service_level: dict[str, int] | None = None,
        monitor: SigningKey | None = MONITOR,
        at: int | None = None,
    ) -> bytes:
        level = {"uptime_bps": 9900} if service_level is None else service_level
        message = lease.offer(
            "charger", resource, price, "aut", period_ms, min_periods, max_periods, level,
            None if monitor is None else monitor.did,
        )  # fmt: skip
        tx = self.tx(provider, message)
        (receipt,) = self.block(self.now + 1000 if at is None else at, tx)
        assert receipt.code == "ok", receipt.detail
        return keeper.new_offer_id(tx.hash, 0)

    def reserve(
        self, offer: bytes, start_ms: int, periods: int, renter: SigningKey = ROBOT, at: int | None = None
    ) -> bytes:
        tx = self.tx(renter, lease.reserve(offer, start_ms, periods))
        (receipt,) = self.block(self.now + 1000 if at is None else at, tx)
        assert receipt.code == "ok", (receipt.code, receipt.detail)
        return keeper.new_lease_id(tx.hash, 0)

    def record(self, lease_id: bytes) -> LeaseRecord:
        record = self.lease.lease(self.chain.state, lease_id)
        assert record is not None
        return record

    def balance(self, account: SigningKey) -> int:
        return bank_keeper.balance(self.chain.state, account.did, "aut")

    def lock_amount(self, lease_id: bytes) -> int | None:
        lock = escrow_keeper.get(self.chain.state, self.record(lease_id).lock)
        return None if lock is None else lock.amount


@pytest.fixture
def world() -> World:
    return World()


def confirmed_lease(world: World, start: int, periods: int = 6, **offer: Any) -> tuple[bytes, bytes]:
    """An offer and a lease of ``periods`` minutes from ``start``, confirmed before the start."""
    offer_id = world.offer(**offer)
    lease_id = world.reserve(offer_id, start, periods)
    world.ok(STATION, lease.confirm_start(lease_id))
    return offer_id, lease_id


# ---------------------------------------------------------------------------------------------------
# lease/offer


def test_offer_is_stored_with_its_terms(world: World) -> None:
    receipt = world.run(
        STATION,
        lease.offer("compute", "gpu/a100-0", 7, "aut", 3_600_000, 2, 24, {"uptime_bps": 9990, "ram_gb": 80}),
    )
    assert receipt.code == "ok"
    (event,) = receipt.events
    assert event.type == "lease.offered" and event.get("resource") == "gpu/a100-0"
    (offer,) = world.lease.offers(world.chain.state)
    assert offer.id == event.get("offer") and offer.provider == STATION.did
    assert offer.service_level == (("ram_gb", 80), ("uptime_bps", 9990))
    assert offer.monitor is None and offer.withdrawn is None and offer.created == world.chain.height
    assert keeper.offers_of(world.chain.state, STATION.did) == [offer.id]


def _offer_message(**changes: Any) -> dict[str, Any]:
    message = lease.offer("charger", "charger-3", 10, "aut", MINUTE, 1, 60, {"uptime_bps": 9900}, MONITOR.did)
    message.update(changes)
    return message


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"resource_kind": "Charger"}, "lease.invalid_kind"),
        ({"resource_kind": ""}, "lease.invalid_kind"),
        ({"resource": "charger 3"}, "lease.invalid_resource"),
        ({"resource": "a/"}, "lease.invalid_resource"),
        ({"resource": "a" * 129}, "lease.invalid_resource"),
        ({"price_per_period": 0}, "lease.invalid_price"),
        ({"price_per_period": 2**64}, "lease.invalid_price"),
        ({"asset": "AUT"}, "lease.invalid_asset"),
        ({"period_ms": 999}, "lease.invalid_period"),
        ({"period_ms": DEFAULTS.max_period_ms + 1}, "lease.invalid_period"),
        ({"min_periods": 0}, "lease.invalid_periods"),
        ({"min_periods": 5, "max_periods": 4}, "lease.invalid_periods"),
        ({"max_periods": DEFAULTS.max_periods + 1}, "lease.invalid_periods"),
        ({"service_level": {"Uptime": 1}}, "lease.invalid_service_level"),
        ({"service_level": {"uptime": -1}}, "lease.invalid_service_level"),
        ({"service_level": {f"m{i}": i for i in range(17)}}, "lease.invalid_service_level"),
        ({"monitor": "did:web:example.com"}, "lease.invalid_monitor"),
        ({"monitor": STATION.did}, "lease.invalid_monitor"),
        ({"price_per_period": True}, "core.invalid_message"),
        ({"service_level": [["uptime", 1]]}, "core.invalid_message"),
        ({"service_level": {"uptime": "high"}}, "core.invalid_message"),
        ({"monitor": 7}, "core.invalid_message"),
        ({"extra": 1}, "core.invalid_message"),
    ],
)
def test_offer_refusals(world: World, changes: dict[str, Any], code: str) -> None:
    assert world.code(STATION, _offer_message(**changes)) == code
    assert world.lease.offers(world.chain.state) == []


def test_offer_monitor_may_be_left_out(world: World) -> None:
    message = _offer_message()
    del message["monitor"]
    assert world.code(STATION, message) == "ok"


def test_offer_precedence_follows_the_table(world: World) -> None:
    # Each pair: two faults, the one documented first wins.
    assert world.code(STATION, _offer_message(resource_kind="X", resource="/")) == "lease.invalid_kind"
    assert world.code(STATION, _offer_message(resource="/", price_per_period=0)) == "lease.invalid_resource"
    assert world.code(STATION, _offer_message(price_per_period=0, asset="A")) == "lease.invalid_price"
    assert world.code(STATION, _offer_message(asset="A", period_ms=1)) == "lease.invalid_asset"
    assert world.code(STATION, _offer_message(period_ms=1, min_periods=0)) == "lease.invalid_period"
    assert (
        world.code(STATION, _offer_message(min_periods=0, service_level={"X": 1})) == "lease.invalid_periods"
    )
    assert (
        world.code(STATION, _offer_message(service_level={"X": 1}, monitor="x"))
        == "lease.invalid_service_level"
    )


# ---------------------------------------------------------------------------------------------------
# lease/withdraw_offer


def test_withdraw_offer_stops_new_reservations_not_running_leases(world: World) -> None:
    offer_id = world.offer()
    running = world.reserve(offer_id, world.now + 10 * MINUTE, 2)
    assert world.code(STRANGER, lease.withdraw_offer(offer_id)) == "lease.not_provider"
    receipt = world.ok(STATION, lease.withdraw_offer(offer_id))
    assert receipt.events[0].type == "lease.offer_withdrawn"
    offer = world.lease.offer(world.chain.state, offer_id)
    assert offer is not None and offer.withdrawn == world.chain.height
    assert world.code(STATION, lease.withdraw_offer(offer_id)) == "lease.offer_withdrawn"
    assert world.code(ROVER, lease.reserve(offer_id, world.now + 60 * MINUTE, 1)) == "lease.offer_withdrawn"
    assert world.code(STATION, lease.withdraw_offer(b"\x01" * 32)) == "lease.unknown_offer"
    world.ok(STATION, lease.confirm_start(running))
    assert world.record(running).status == "active"


# ---------------------------------------------------------------------------------------------------
# lease/reserve


def test_reserve_locks_the_whole_price_in_escrow(world: World) -> None:
    offer_id = world.offer(price=25)
    start = world.now + 5 * MINUTE
    tx = world.tx(ROBOT, lease.reserve(offer_id, start, 4))
    (receipt,) = world.block(world.now + 1000, tx)
    assert [event.type for event in receipt.events] == ["escrow.locked", "lease.reserved"]
    lease_id = keeper.new_lease_id(tx.hash, 0)
    assert receipt.events[1].get("lease") == lease_id and receipt.events[1].get("amount") == 100
    record = world.record(lease_id)
    assert (record.status, record.booked, record.periods, record.settled) == ("reserved", 4, 4, 0)
    assert record.end_ms == start + 4 * MINUTE
    assert record.confirm_by_ms == start + min(DEFAULTS.confirm_grace_ms, 4 * MINUTE)  # capped at the length
    assert record.settle_by_ms == record.end_ms + WINDOW + DEFAULTS.claim_timeout_ms
    assert world.balance(ROBOT) == 10_000 - 100
    lock = escrow_keeper.get(world.chain.state, record.lock)
    assert lock is not None and (lock.amount, lock.holder, lock.payer) == (100, "lease", ROBOT.did)
    assert lock.expires_ms == record.settle_by_ms + 1 and lock.beneficiaries == (STATION.did,)
    assert world.lease.slots(world.chain.state, STATION.did, "charger-3") == [
        (start, record.end_ms, lease_id)
    ]
    roles = keeper.leases_of(world.chain.state, ROBOT.did) + keeper.leases_of(world.chain.state, STATION.did)
    assert roles == [(lease_id, "renter"), (lease_id, "provider")]


def test_reserve_refusals(world: World) -> None:
    offer_id = world.offer(min_periods=2, max_periods=10)
    soon = world.now + 10 * MINUTE
    assert world.code(ROBOT, lease.reserve(b"\x02" * 32, soon, 2)) == "lease.unknown_offer"
    assert world.code(STATION, lease.reserve(offer_id, soon, 2)) == "lease.self_lease"
    assert world.code(MONITOR, lease.reserve(offer_id, soon, 2)) == "lease.self_lease"
    assert world.code(ROBOT, lease.reserve(offer_id, soon, 1)) == "lease.periods_out_of_range"
    assert world.code(ROBOT, lease.reserve(offer_id, soon, 11)) == "lease.periods_out_of_range"
    past = world.now  # the next block is later than this
    assert world.code(ROBOT, lease.reserve(offer_id, past, 2)) == "lease.invalid_start"
    far = world.now + 1000 + DEFAULTS.max_advance_ms + 1
    assert world.code(ROBOT, lease.reserve(offer_id, far, 2)) == "lease.invalid_start"
    assert world.code(POOR, lease.reserve(offer_id, soon, 2)) == "bank.insufficient_funds"
    assert world.code(ROBOT, {**lease.reserve(offer_id, soon, 2), "periods": "2"}) == "core.invalid_message"
    assert world.code(ROBOT, {**lease.reserve(offer_id, soon, 2), "offer": b"x"}) == "core.invalid_message"
    # Precedence: self_lease before periods, periods before the start, the start before funds.
    assert world.code(STATION, lease.reserve(offer_id, past, 1)) == "lease.self_lease"
    assert world.code(ROBOT, lease.reserve(offer_id, past, 1)) == "lease.periods_out_of_range"
    assert world.code(POOR, lease.reserve(offer_id, past, 2)) == "lease.invalid_start"
    assert world.lease.leases_of(world.chain.state, ROBOT.did) == []


def test_reserve_may_start_in_the_block_itself(world: World) -> None:
    offer_id = world.offer()
    at = world.now + 1000
    lease_id = world.reserve(offer_id, at, 1, at=at)
    assert world.record(lease_id).start_ms == at


def test_reserve_overflowing_amount_is_escrows_refusal(world: World) -> None:
    offer_id = world.offer(price=2**63, max_periods=2)
    assert world.code(ROBOT, lease.reserve(offer_id, world.now + MINUTE, 2)) == "escrow.invalid_amount"


def test_reserve_in_an_unknown_asset_is_the_banks_refusal(world: World) -> None:
    receipt = world.ok(STATION, {**_offer_message(), "asset": "gold"})
    offer_id = receipt.events[0].get("offer")
    assert world.code(ROBOT, lease.reserve(offer_id, world.now + MINUTE, 1)) == "bank.unknown_asset"


def test_no_overlapping_reservations_of_one_resource(world: World) -> None:
    offer_id = world.offer()
    base = world.now + 60 * MINUTE
    world.reserve(offer_id, base, 4)  # [base, base + 4 min)
    for start, periods in [(base, 1), (base - MINUTE, 2), (base + 3 * MINUTE, 5), (base - 5 * MINUTE, 20)]:
        assert world.code(ROVER, lease.reserve(offer_id, start, periods)) == "lease.slot_taken", (
            start,
            periods,
        )
    # Touching slots do not overlap, before or after.
    world.reserve(offer_id, base + 4 * MINUTE, 1, renter=ROVER)
    world.reserve(offer_id, base - 2 * MINUTE, 2, renter=ROVER)
    # A second offer of the same resource (a night price) shares the calendar ...
    night = world.offer(price=5)
    assert world.code(ROVER, lease.reserve(night, base + MINUTE, 1)) == "lease.slot_taken"
    # ... another resource, or another provider's resource of the same name, does not.
    world.reserve(world.offer(resource="charger-4"), base, 4, renter=ROVER)
    world.reserve(world.offer(provider=ROVER, resource="charger-3"), base, 4)
    assert len(world.lease.slots(world.chain.state, STATION.did, "charger-3")) == 3


# ---------------------------------------------------------------------------------------------------
# lease/confirm_start and the unconfirmed reservation


def test_confirm_start_refusals(world: World) -> None:
    offer_id = world.offer()
    start = world.now + 2 * MINUTE
    lease_id = world.reserve(offer_id, start, 6)
    assert world.code(STATION, lease.confirm_start(b"\x03" * 32)) == "lease.unknown_lease"
    assert world.code(ROBOT, lease.confirm_start(lease_id)) == "lease.not_provider"
    world.ok(STATION, lease.confirm_start(lease_id))
    assert world.code(STATION, lease.confirm_start(lease_id)) == "lease.not_reserved"
    late = world.reserve(offer_id, start + 10 * MINUTE, 2, renter=ROVER)
    confirm_by = world.record(late).confirm_by_ms
    assert world.code(ROBOT, lease.confirm_start(late), at=confirm_by) == "lease.not_provider"
    assert world.code(STATION, lease.confirm_start(late), at=confirm_by + 1) == "lease.not_reserved"


def test_confirm_too_late_is_refused_in_the_deadline_block(world: World) -> None:
    offer_id = world.offer()
    lease_id = world.reserve(offer_id, world.now + MINUTE, 10)
    confirm_by = world.record(lease_id).confirm_by_ms
    receipt = world.run(STATION, lease.confirm_start(lease_id), at=confirm_by)
    assert receipt.code == "lease.confirm_too_late"
    record = world.record(lease_id)  # end_block of that same block refunded it
    assert (record.status, record.outcome, record.refunded) == ("closed", "unconfirmed", 100)
    assert world.balance(ROBOT) == 10_000 and world.lock_amount(lease_id) is None
    assert world.lease.slots(world.chain.state, STATION.did, "charger-3") == []


def test_unconfirmed_reservation_is_refunded_in_full(world: World) -> None:
    offer_id = world.offer()
    lease_id = world.reserve(offer_id, world.now + MINUTE, 10)
    confirm_by = world.record(lease_id).confirm_by_ms
    world.tick(confirm_by - 1)
    assert world.record(lease_id).status == "reserved" and world.balance(ROBOT) == 9_900
    world.tick(confirm_by)
    record = world.record(lease_id)
    assert (record.status, record.outcome, record.periods, record.due_ms) == (
        "closed",
        "unconfirmed",
        0,
        None,
    )
    assert world.balance(ROBOT) == 10_000 and world.balance(STATION) == 1
    # The freed slot can be booked again.
    world.reserve(offer_id, confirm_by + MINUTE, 1, renter=ROVER)


def test_late_confirmation_refunds_the_periods_that_ended_unserved(world: World) -> None:
    offer_id = world.offer()
    start = world.now + 1000
    lease_id = world.reserve(offer_id, start, 10, at=start)
    receipt = world.ok(
        STATION, lease.confirm_start(lease_id), at=start + 2 * MINUTE + 5
    )  # periods 0, 1 ended
    assert receipt.events[0].get("late_periods") == 2
    record = world.record(lease_id)
    assert (record.settled, record.refunded, record.paid) == (2, 20, 0)
    assert world.balance(ROBOT) == 10_000 - 80


def test_confirm_grace_is_capped_at_the_lease_length(world: World) -> None:
    offer_id = world.offer(period_ms=1_000, max_periods=1000)
    lease_id = world.reserve(offer_id, world.now + 5_000, 3)  # 3 s long, grace 5 min
    record = world.record(lease_id)
    assert record.confirm_by_ms == record.end_ms


# ---------------------------------------------------------------------------------------------------
# Payment per period (end_block)


def test_each_period_is_paid_after_its_report_window(world: World) -> None:
    start = world.now + 10_000
    _, lease_id = confirmed_lease(world, start, periods=3)
    assert world.record(lease_id).due_ms == start + MINUTE + WINDOW
    world.tick(start + MINUTE + WINDOW - 1)
    assert world.balance(STATION) == 1 and world.record(lease_id).settled == 0
    world.tick(start + MINUTE + WINDOW)
    assert world.balance(STATION) == 11 and world.record(lease_id).settled == 1
    assert world.lock_amount(lease_id) == 20
    # A gap of several periods pays everything due in one go.
    world.tick(start + 3 * MINUTE + WINDOW)
    record = world.record(lease_id)
    assert (record.status, record.outcome, record.settled, record.paid) == ("closed", "completed", 3, 30)
    assert world.balance(STATION) == 31 and world.balance(ROBOT) == 10_000 - 30
    assert world.lock_amount(lease_id) is None and record.due_ms is None
    assert world.lease.slots(world.chain.state, STATION.did, "charger-3") == []


def test_a_reserved_lease_is_not_paid_before_confirmation(world: World) -> None:
    offer_id = world.offer()
    start = world.now + 1000
    lease_id = world.reserve(offer_id, start, 10, at=start)
    world.tick(start + MINUTE + WINDOW)
    assert world.record(lease_id).paid == 0 and world.balance(STATION) == 1


def test_schedule_next_due_and_payable_agree() -> None:
    record = _record(start_ms=1_000, period_ms=100, periods=5, settled=1, report_window_ms=10)
    assert schedule.next_due(record) == 1_000 + 2 * 100 + 10
    assert schedule.payable(record, 1_209) == 0
    assert schedule.payable(record, 1_210) == 1
    assert schedule.payable(record, 10**9) == 4
    claimed = dataclasses.replace(record, claim=_claim(first=3, deadline_ms=5_000))
    assert schedule.payable(claimed, 10**9) == 2  # stops at the claim
    assert schedule.next_due(dataclasses.replace(claimed, settled=3)) == 5_000


def _claim(first: int, deadline_ms: int) -> Any:
    from autarky.modules.lease.records import Claim

    return Claim(first, 1, "uptime_bps", b"\x00" * 32, 0, deadline_ms)


def _record(**changes: Any) -> LeaseRecord:
    base = LeaseRecord(
        id=b"\x00" * 32, offer=b"\x01" * 32, provider="p", renter="r", monitor=None, resource_kind="tool",
        resource="t", service_level=(), asset="aut", price_per_period=3, period_ms=100, start_ms=0,
        booked=5, periods=5, lock=b"\x02" * 32, status="active", outcome=None, confirmed_ms=0,
        ended_ms=None, settled=0, paid=0, refunded=0, breached=0, claim=None, confirm_by_ms=0,
        report_window_ms=0, claim_timeout_ms=100, settle_by_ms=10**6, due_ms=None, created=1,
    )  # fmt: skip
    return dataclasses.replace(base, **changes)


# ---------------------------------------------------------------------------------------------------
# lease/end


def test_end_refunds_the_periods_that_have_not_started(world: World) -> None:
    start = world.now + 10_000
    _, lease_id = confirmed_lease(world, start, periods=6)
    receipt = world.ok(ROBOT, lease.end(lease_id), at=start + 2 * MINUTE + 1)  # period 2 running
    refund = next(event for event in receipt.events if event.type == "lease.refunded")
    assert (refund.get("periods"), refund.get("amount"), refund.get("reason")) == (3, 30, "ended")
    record = world.record(lease_id)
    assert (record.status, record.periods, record.ended_ms) == ("active", 3, start + 2 * MINUTE + 1)
    # The slot shrank to the end of the period in progress: the next minute can be booked.
    world.reserve(world.offer(), start + 3 * MINUTE, 1, renter=ROVER)
    world.tick(start + 3 * MINUTE + WINDOW)
    record = world.record(lease_id)
    assert (record.status, record.outcome, record.paid, record.refunded) == ("closed", "ended", 30, 30)
    assert world.balance(ROBOT) == 10_000 - 30


def test_end_before_confirmation_cancels_and_before_start_refunds_all(world: World) -> None:
    offer_id = world.offer()
    start = world.now + 10 * MINUTE
    waiting = world.reserve(offer_id, start, 2)
    receipt = world.ok(ROBOT, lease.end(waiting))
    assert receipt.events[0].get("reason") == "cancelled"
    assert world.record(waiting).outcome == "cancelled" and world.balance(ROBOT) == 10_000
    confirmed = world.reserve(offer_id, start, 2)
    world.ok(STATION, lease.confirm_start(confirmed))
    world.ok(ROBOT, lease.end(confirmed))
    record = world.record(confirmed)
    assert (record.status, record.outcome, record.periods, record.refunded) == ("closed", "ended", 0, 20)
    assert (
        world.balance(ROBOT) == 10_000
        and world.lease.slots(world.chain.state, STATION.did, "charger-3") == []
    )


def test_end_refusals(world: World) -> None:
    start = world.now + 10_000
    _, lease_id = confirmed_lease(world, start, periods=2)
    assert world.code(ROBOT, lease.end(b"\x04" * 32)) == "lease.unknown_lease"
    assert world.code(STATION, lease.end(lease_id)) == "lease.not_renter"
    assert world.code(ROBOT, lease.end(lease_id), at=start + MINUTE) == "lease.nothing_to_end"
    world.tick(start + 2 * MINUTE + WINDOW)
    assert world.code(ROBOT, lease.end(lease_id)) == "lease.closed"
    assert world.code(STATION, lease.end(lease_id)) == "lease.not_renter"  # the role comes first


# ---------------------------------------------------------------------------------------------------
# Breach claims


EVIDENCE = sha256(b"monitor report: 87% uptime")


def test_claim_upheld_by_the_monitor_refunds_the_claimed_periods(world: World) -> None:
    start = world.now + 10_000
    _, lease_id = confirmed_lease(world, start, periods=6)
    receipt = world.ok(
        ROBOT, lease.report_breach(lease_id, 1, 2, "uptime_bps", EVIDENCE), at=start + 2 * MINUTE
    )
    assert receipt.events[0].type == "lease.breach_reported"
    assert receipt.events[0].get("deadline_ms") == start + 2 * MINUTE + DEFAULTS.claim_timeout_ms
    # While the claim is open, period 0 is paid but nothing from period 1 on.
    world.tick(start + 5 * MINUTE)
    record = world.record(lease_id)
    assert record.settled == 1 and record.paid == 10 and record.claim is not None
    receipt = world.ok(MONITOR, lease.judge_breach(lease_id, True), at=start + 5 * MINUTE)
    assert [event.type for event in receipt.events][:2] == ["lease.breach_upheld", "lease.refunded"]
    record = world.record(lease_id)
    # Periods 1 and 2 refunded; period 3 (ended at 4 min, window passed at 5 min) paid in the same
    # block's end_block, as payment resumed.
    assert (record.settled, record.paid, record.refunded, record.breached) == (4, 20, 20, 2)
    assert record.claim is None
    world.tick(start + 6 * MINUTE + WINDOW)
    record = world.record(lease_id)
    assert (record.outcome, record.paid, record.refunded) == ("completed", 40, 20)
    assert world.balance(STATION) == 41 and world.balance(ROBOT) == 10_000 - 40


def test_claim_acknowledged_by_the_provider_pays_the_periods_before_it(world: World) -> None:
    start = world.now + 10_000
    _, lease_id = confirmed_lease(world, start, periods=4, monitor=None)
    world.ok(ROBOT, lease.report_breach(lease_id, 1, 1, "uptime_bps", EVIDENCE), at=start + MINUTE + 30_000)
    receipt = world.ok(STATION, lease.ack_breach(lease_id), at=start + MINUTE + 40_000)
    types = [event.type for event in receipt.events]
    assert types == [
        "lease.breach_upheld",
        "lease.paid",
        "lease.refunded",
        "escrow.released",
        "escrow.refunded",
    ]
    record = world.record(lease_id)
    assert (record.settled, record.paid, record.refunded) == (2, 10, 10)


def test_claim_rejected_or_unanswered_is_dismissed_and_payment_resumes(world: World) -> None:
    start = world.now + 10_000
    _, lease_id = confirmed_lease(world, start, periods=6)
    world.ok(ROBOT, lease.report_breach(lease_id, 0, 1, "uptime_bps", EVIDENCE), at=start + 30_000)
    world.tick(start + 3 * MINUTE)
    assert world.record(lease_id).settled == 0  # blocked by the claim
    receipt = world.ok(MONITOR, lease.judge_breach(lease_id, False))
    assert (
        receipt.events[0].type == "lease.breach_dismissed" and receipt.events[0].get("reason") == "rejected"
    )
    assert world.record(lease_id).settled == 2  # paid in the same block's end_block
    # A second claim, nobody answers: dismissed at its deadline, then paid.
    world.ok(ROBOT, lease.report_breach(lease_id, 3, 1, "uptime_bps", EVIDENCE), at=start + 4 * MINUTE)
    deadline = world.record(lease_id).claim.deadline_ms  # type: ignore[union-attr]
    world.tick(deadline - 1)
    assert world.record(lease_id).settled == 3
    world.tick(deadline)
    record = world.record(lease_id)
    assert record.claim is None and record.status == "closed" and record.paid == 60 and record.breached == 0


def test_report_breach_refusals(world: World) -> None:
    start = world.now + 10_000
    offer_id, lease_id = confirmed_lease(world, start, periods=6)
    claim = lease.report_breach
    # Period 0 ended at start + 1 min; its report window closes at start + 2 min. In the first block
    # at that time the claim comes (transactions run before end_block pays the period): too late.
    window_closed = start + 2 * MINUTE
    assert (
        world.code(ROBOT, claim(lease_id, 0, 1, "uptime_bps", EVIDENCE), at=window_closed)
        == "lease.claim_too_late"
    )
    assert world.record(lease_id).settled == 1  # that block's end_block paid period 0
    at = start + 2 * MINUTE + 1  # periods 0, 1, 2 started; period 0 settled
    assert (
        world.code(ROBOT, claim(b"\x05" * 32, 0, 1, "uptime_bps", EVIDENCE), at=at) == "lease.unknown_lease"
    )
    assert world.code(STATION, claim(lease_id, 0, 1, "uptime_bps", EVIDENCE), at=at) == "lease.not_renter"
    assert world.code(ROBOT, claim(lease_id, 0, 1, "latency_ms", EVIDENCE), at=at) == "lease.unknown_metric"
    assert world.code(ROBOT, claim(lease_id, 0, 0, "uptime_bps", EVIDENCE), at=at) == "lease.invalid_claim"
    assert world.code(ROBOT, claim(lease_id, 2, 2, "uptime_bps", EVIDENCE), at=at) == "lease.invalid_claim"
    assert world.code(ROBOT, claim(lease_id, -1, 2, "uptime_bps", EVIDENCE), at=at) == "lease.invalid_claim"
    assert world.code(ROBOT, claim(lease_id, 0, 1, "uptime_bps", EVIDENCE), at=at) == "lease.invalid_claim"
    bad_evidence = {**claim(lease_id, 1, 1, "uptime_bps", EVIDENCE), "evidence": b"short"}
    assert world.code(ROBOT, bad_evidence, at=at) == "core.invalid_message"
    world.ok(ROBOT, claim(lease_id, 1, 1, "uptime_bps", EVIDENCE), at=at)
    assert world.code(ROBOT, claim(lease_id, 2, 1, "uptime_bps", EVIDENCE)) == "lease.claim_open"
    assert (
        world.code(ROBOT, claim(lease_id, 2, 1, "nope", EVIDENCE)) == "lease.claim_open"
    )  # open claim first
    # A lease that is not running yet.
    waiting = world.reserve(offer_id, start + 60 * MINUTE, 1, renter=ROVER)
    assert world.code(ROVER, claim(waiting, 0, 1, "uptime_bps", EVIDENCE)) == "lease.not_active"
    assert world.code(ROBOT, claim(waiting, 0, 1, "uptime_bps", EVIDENCE)) == "lease.not_renter"


def test_settled_periods_cannot_be_claimed(world: World) -> None:
    start = world.now + 10_000
    _, lease_id = confirmed_lease(world, start, periods=6)
    world.tick(start + MINUTE + WINDOW)  # period 0 paid
    assert world.record(lease_id).settled == 1
    code = world.code(ROBOT, lease.report_breach(lease_id, 0, 2, "uptime_bps", EVIDENCE))
    assert code == "lease.invalid_claim"


def test_ack_and_judge_refusals(world: World) -> None:
    start = world.now + 10_000
    offer_id, lease_id = confirmed_lease(world, start, periods=6)
    assert world.code(STATION, lease.ack_breach(lease_id)) == "lease.no_claim"
    assert world.code(MONITOR, lease.judge_breach(lease_id, True)) == "lease.no_claim"
    assert world.code(ROBOT, lease.ack_breach(lease_id)) == "lease.not_provider"
    assert world.code(STATION, lease.judge_breach(lease_id, True)) == "lease.not_monitor"
    assert world.code(STATION, lease.ack_breach(b"\x06" * 32)) == "lease.unknown_lease"
    waiting = world.reserve(offer_id, start + 60 * MINUTE, 1, renter=ROVER)
    assert world.code(STATION, lease.ack_breach(waiting)) == "lease.not_active"
    assert world.code(MONITOR, lease.judge_breach(waiting, False)) == "lease.not_active"
    _, unmonitored = confirmed_lease(world, start + 120 * MINUTE, periods=1, monitor=None, resource="bay-2")
    assert world.code(MONITOR, lease.judge_breach(unmonitored, True)) == "lease.not_monitor"
    judge = {**lease.judge_breach(lease_id, True), "upheld": 1}
    assert world.code(MONITOR, judge) == "core.invalid_message"


def test_a_claim_can_still_run_after_an_early_end(world: World) -> None:
    start = world.now + 10_000
    _, lease_id = confirmed_lease(world, start, periods=6)
    world.ok(ROBOT, lease.report_breach(lease_id, 0, 2, "uptime_bps", EVIDENCE), at=start + MINUTE + 10_000)
    world.ok(ROBOT, lease.end(lease_id), at=start + MINUTE + 20_000)  # periods 2..5 refunded
    assert world.record(lease_id).periods == 2
    world.ok(MONITOR, lease.judge_breach(lease_id, True))
    record = world.record(lease_id)
    assert (record.status, record.outcome, record.paid, record.refunded) == ("closed", "ended", 0, 60)
    assert world.balance(ROBOT) == 10_000


def test_every_lease_is_settled_by_its_settle_by_time(world: World) -> None:
    start = world.now + 10_000
    _, lease_id = confirmed_lease(world, start, periods=3)
    # The latest possible claim: on the last period, at the end of its report window.
    last_window = start + 3 * MINUTE + WINDOW
    world.ok(ROBOT, lease.report_breach(lease_id, 2, 1, "uptime_bps", EVIDENCE), at=last_window - 1)
    record = world.record(lease_id)
    world.tick(record.settle_by_ms)
    assert world.record(lease_id).status == "closed"
    assert world.lock_amount(lease_id) is None


# ---------------------------------------------------------------------------------------------------
# Genesis and parameters


def test_a_chain_without_lease_settings_writes_no_lease_key() -> None:
    chain = Chain.from_genesis(GENESIS)
    assert not any(key.startswith("lease/") for key in chain.data)
    assert keeper.params(chain.state) == DEFAULTS


def test_genesis_parameters_are_validated_and_stored() -> None:
    genesis = {**GENESIS, "app_state": {**GENESIS["app_state"], "lease": {"params": {"report_window_ms": 0}}}}
    chain = Chain.from_genesis(genesis)
    assert keeper.params(chain.state) == dataclasses.replace(DEFAULTS, report_window_ms=0)
    assert execute_genesis(genesis, build_app()).header.state_root == chain.root
    assert from_genesis({}) is None
    for bad in (
        {"params": {"report_window_ms": -1}},
        {"params": {"claim_timeout_ms": 0}},
        {"params": {"max_periods": True}},
        {"params": {"nope": 1}},
        {"params": {"min_period_ms": 10, "max_period_ms": 5}},
        {"params": []},
        {"offers": []},
    ):
        with pytest.raises(ValueError, match="lease genesis"):
            from_genesis(bad)


def test_parameters_are_copied_into_the_lease() -> None:
    params = Params(report_window_ms=0, claim_timeout_ms=5_000, confirm_grace_ms=0)
    genesis = {**GENESIS, "app_state": {**GENESIS["app_state"], "lease": {"params": params.to_cbor()}}}
    world = World(genesis)
    start = world.now + 10_000
    _, lease_id = confirmed_lease(world, start, periods=2)
    record = world.record(lease_id)
    assert (record.report_window_ms, record.claim_timeout_ms, record.confirm_by_ms) == (0, 5_000, start)
    world.tick(start + MINUTE)  # no report window: paid as soon as the period ends
    assert world.record(lease_id).settled == 1


# ---------------------------------------------------------------------------------------------------
# Invariants find what they claim to find; replay; the spec's tables


def orphan_lock(state: Overlay, lock_id: bytes) -> None:
    """A copy of an open lock under another id: a lock the module holds but no record names."""
    lock = escrow_keeper.get(state, lock_id)
    assert lock is not None
    escrow_keeper.create(state, dataclasses.replace(lock, id=b"\x09" * 32, locked=lock.amount))


def test_invariants_catch_corruption(world: World) -> None:
    start = world.now + 10_000
    _, lease_id = confirmed_lease(world, start, periods=4)
    world.tick(start + MINUTE + WINDOW)
    _, closed = confirmed_lease(world, start + 60 * MINUTE, periods=1, resource="bay-1")
    world.ok(ROBOT, lease.end(closed))
    escrow = world.chain.app.module("escrow")
    assert isinstance(escrow, EscrowModule)
    record = world.record(lease_id)
    key = keeper.lease_key(lease_id)

    def rewrite(**changes: Any) -> Any:
        return lambda state: state.set_obj(key, dataclasses.replace(record, **changes).to_cbor())

    def move_lock(state: Overlay) -> None:
        lock = escrow_keeper.get(state, record.lock)
        assert lock is not None
        escrow_keeper.set_amount(state, lock, lock.amount - 10)

    cases = {
        "paid": rewrite(paid=record.paid + 10),
        "settled": rewrite(settled=record.settled + 1),
        "periods": rewrite(periods=record.booked + 1),
        "status": rewrite(status="paused"),
        "outcome": rewrite(outcome="completed"),
        "due": rewrite(due_ms=record.due_ms + 1),  # type: ignore[operator]
        "closed with lock": lambda state: state.set_obj(
            key, dataclasses.replace(record, status="closed", outcome="completed").to_cbor()
        ),
        "lock amount": move_lock,
        "malformed": lambda state: state.set_obj(key, {"renter": ROBOT.did}),
        "slot missing": lambda state: state.delete(keeper.slot_key(record)),
        "slot value": lambda state: state.set_obj(keeper.slot_key(record), 1),
        "due missing": lambda state: state.delete(keeper.due_key(record.due_ms, lease_id)),  # type: ignore[arg-type]
        "account index": lambda state: state.delete(keeper.by_account_key(ROBOT.did, lease_id)),
        "offer index": lambda state: state.set_obj(keeper.offers_of_key(STATION.did, b"\x07" * 32), "x"),
        "orphan lock": lambda state: orphan_lock(state, record.lock),
        "overlap": lambda state: state.set_obj(
            keeper.lease_key(b"\x08" * 32), dataclasses.replace(record, id=b"\x08" * 32).to_cbor()
        ),
    }
    for name, edit in cases.items():
        state = Overlay(MappingState(dict(world.chain.data)))
        edit(state)
        assert world.lease.invariants(state) != [], name


def test_replay_reaches_the_same_roots(world: World) -> None:
    start = world.now + 10_000
    _, lease_id = confirmed_lease(world, start, periods=4)
    world.ok(ROBOT, lease.report_breach(lease_id, 0, 1, "uptime_bps", EVIDENCE), at=start + 30_000)
    world.ok(STATION, lease.ack_breach(lease_id))
    world.tick(start + 10 * MINUTE)
    assert world.chain.replay().root == world.chain.root


def test_readme_lists_every_code_in_precedence_order() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("## Errors, in order of precedence", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| \d+ +\| `(lease\.[a-z_]+)`", table, flags=re.MULTILINE)
    assert listed == [code.code for code in LEASE_CODES_IN_PRECEDENCE]
    assert len({code.code for code in LEASE_CODES_IN_PRECEDENCE}) == len(LEASE_CODES_IN_PRECEDENCE)


def test_readme_example_runs() -> None:
    text = README.read_text(encoding="utf-8")
    example = text.split("## Example", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", example, flags=re.DOTALL)[:1]
    exec(compile(code, str(README), "exec"), {})
