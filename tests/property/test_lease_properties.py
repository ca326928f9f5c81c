"""Random reservations, confirmations, early ends, breach claims and block-time jumps, against a model.

Two providers offer three resources (one of them in two offers that share its calendar, one with a
monitor); three renters reserve random slots (often overlapping, in the past, too long), providers
and strangers confirm, renters end early, claim breaches of random periods, providers acknowledge
and monitors judge (often without the right), and block time jumps forward by random steps, so
periods come due, claims time out and reservations go unconfirmed.

A **step model** keeps every lease as plainly as the README states it: one state per period
(``open``, ``paid``, ``refunded``), brute-force end-of-block settlement over every lease and every
period (no due index, no closed formula), and every message's code from the README's precedence
table. After every step the chain must agree with it: the exact result code of the transaction,
every lease's status, outcome, paid and refunded amounts, every account's balance, and every
module's invariants (bank supply, escrow balance, the lease records against escrow). At the end
time jumps past every lease's settle-by time: every lease is closed, no escrow lock held by
``lease`` is left, and for every lease ``paid + refunded == price * periods booked`` exactly, with
the renter down exactly what the provider received.

``test_schedule_pro_rata_sums_exactly`` drives the pure ``schedule`` functions alone with many more
random programs. Runs derandomized under the ``ci`` profile (``tests/conftest.py``); a failure
prints the steps that reproduce it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.harness import Chain
from autarky.modules.lease import LeaseModule, LeaseRecord, keeper, schedule
from autarky.modules.lease import messages as lease
from autarky.modules.lease.records import Claim

CHAIN_ID = "lease-model"
T0 = 1_000_000
GRACE, WINDOW, TIMEOUT = 15_000, 5_000, 20_000
PARAMS = {"confirm_grace_ms": GRACE, "report_window_ms": WINDOW, "claim_timeout_ms": TIMEOUT}


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/lease-model/" + name.encode()))


P1, P2, R1, R2, R3, MONITOR = (make_key(n) for n in ("p1", "p2", "r1", "r2", "r3", "monitor"))
ACTORS = [P1, P2, R1, R2, R3, MONITOR]
RENTERS = [R1, R2, R3]
FUNDS = 1_000_000
GENESIS = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": T0,
    "app_state": {
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "balances": [{"account": key.did, "asset": "aut", "amount": FUNDS} for key in ACTORS],
        },
        "lease": {"params": PARAMS},
    },
}

# (provider, resource, price, period_ms, min, max, service level, monitor)
OFFERS = [
    (P1, "charger-1", 7, 10_000, 1, 8, {"uptime_bps": 9900}, MONITOR),
    (P1, "charger-1", 3, 10_000, 2, 6, {"uptime_bps": 9000}, None),  # same calendar, night price
    (P2, "tool/drill", 11, 25_000, 1, 4, {"torque_nm": 40, "uptime_bps": 9500}, None),
]
METRICS = ["uptime_bps", "torque_nm", "latency_ms"]


@dataclass
class ModelLease:
    id: bytes
    offer: int
    renter: str
    start: int
    periods: int  # booked
    status: str = "reserved"
    outcome: str | None = None
    states: list[str] = field(default_factory=list)  # per period: open, paid, refunded
    claim: tuple[int, int, int] | None = None  # first, count, deadline
    limit: int = 0  # periods that still run (booked, fewer after an early end)

    @property
    def price(self) -> int:
        return OFFERS[self.offer][2]

    @property
    def period(self) -> int:
        return OFFERS[self.offer][3]

    @property
    def provider(self) -> SigningKey:
        return OFFERS[self.offer][0]

    def end(self, k: int) -> int:
        return self.start + (k + 1) * self.period

    def begin(self, k: int) -> int:
        return self.start + k * self.period

    @property
    def confirm_by(self) -> int:
        return self.start + min(GRACE, self.periods * self.period)

    @property
    def settle_by(self) -> int:
        return self.start + self.periods * self.period + WINDOW + TIMEOUT

    def first_open(self) -> int:
        """The first period that is neither paid nor refunded (``limit`` if none)."""
        for k in range(self.limit):
            if self.states[k] == "open":
                return k
        return self.limit

    def paid(self) -> int:
        return self.price * self.states.count("paid")

    def refunded(self) -> int:
        return self.price * self.states.count("refunded")

    def open_slot(self) -> tuple[int, int] | None:
        if self.status == "closed":
            return None
        return self.start, self.start + self.limit * self.period


def chosen(right: SigningKey | None, anyone: SigningKey, wrong: bool) -> SigningKey:
    """The party a message needs, most of the time; any actor when ``wrong`` (or nobody is right)."""
    return anyone if wrong or right is None else right


signer_is_wrong = st.integers(0, 4).map(lambda n: n == 0)  # one message in five from anyone


class LeaseMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain.from_genesis(GENESIS)
        module = self.chain.app.module("lease")
        assert isinstance(module, LeaseModule)
        self.module = module
        self.now = T0
        self.leases: list[ModelLease] = []
        self.offer_ids: list[bytes] = []
        self.withdrawn = [False] * len(OFFERS)
        for provider, resource, price, period, low, high, level, monitor in OFFERS:
            message = lease.offer(
                "charger",
                resource,
                price,
                "aut",
                period,
                low,
                high,
                level,
                None if monitor is None else monitor.did,
            )
            tx = self._sign(provider, message)
            assert self._block([tx.raw]) == ["ok"]
            self.offer_ids.append(keeper.new_offer_id(tx.hash, 0))

    # -- running blocks ------------------------------------------------------------------------------

    def _sign(self, signer: SigningKey, message: dict[str, Any]) -> Any:
        body = TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, (message,))
        return sign_tx(body, signer)

    def _block(self, txs: list[bytes]) -> list[str]:
        receipts = self.chain.execute(txs, self.now)
        self._model_end_block()
        return [str(receipt.code) for receipt in receipts]

    def _send(self, signer: SigningKey, message: dict[str, Any], expected: str, step: int) -> bytes:
        """Advance time by ``step``, run one transaction, check its code against the model's."""
        self.now += step
        tx = self._sign(signer, message)
        (code,) = self.chain.execute([tx.raw], self.now)
        assert code.code == expected, (message["type"], code.code, expected, code.detail)
        event(f"{message['type']}: {expected}")
        return tx.hash  # type: ignore[no-any-return]

    # -- the model's end of block: brute force over every lease and period ----------------------------

    def _model_end_block(self) -> None:
        for model in self.leases:
            if model.status == "reserved" and self.now >= model.confirm_by:
                model.states = ["refunded"] * model.periods
                model.limit = 0
                model.status, model.outcome = "closed", "unconfirmed"
            elif model.status == "active":
                if model.claim is not None and self.now >= model.claim[2]:
                    model.claim = None
                for k in range(model.limit):
                    if model.states[k] != "open":
                        continue
                    blocked = model.claim is not None and k >= model.claim[0]
                    if blocked or model.end(k) + WINDOW > self.now:
                        break
                    model.states[k] = "paid"
                self._close_if_settled(model)

    @staticmethod
    def _close_if_settled(model: ModelLease) -> None:
        if model.status == "active" and all(state != "open" for state in model.states):
            model.status = "closed"
            model.outcome = "completed" if model.limit == model.periods else "ended"

    def _step(
        self, signer: SigningKey, message: dict[str, Any], expected: str, step: int, apply: Any
    ) -> None:
        self._send(signer, message, expected, step)
        if expected == "ok":
            apply()
        self._model_end_block()

    # -- rules -----------------------------------------------------------------------------------------

    @rule(
        renter=st.sampled_from([*RENTERS, *RENTERS, *ACTORS]),
        offer=st.sampled_from([0, 0, 1, 2, 2]),
        start=st.one_of(st.integers(0, 40_000), st.integers(-20_000, 150_000)),
        periods=st.one_of(st.integers(1, 4), st.integers(0, 9)),
        step=st.integers(0, 8_000),
    )
    def reserve(self, renter: SigningKey, offer: int, start: int, periods: int, step: int) -> None:
        now = self.now + step
        provider, resource, _, period, low, high, _, monitor = OFFERS[offer]
        start_ms = now + start
        if self.withdrawn[offer]:
            expected = "lease.offer_withdrawn"
        elif renter in (provider, monitor):
            expected = "lease.self_lease"
        elif not low <= periods <= high:
            expected = "lease.periods_out_of_range"
        elif start_ms < now:
            expected = "lease.invalid_start"
        elif self._overlaps(provider.did, resource, start_ms, start_ms + periods * period):
            expected = "lease.slot_taken"
        else:
            expected = "ok"
        tx_hash = self._send(renter, lease.reserve(self.offer_ids[offer], start_ms, periods), expected, step)
        if expected == "ok":
            lease_id = keeper.new_lease_id(tx_hash, 0)
            self.leases.append(
                ModelLease(
                    lease_id, offer, renter.did, start_ms, periods, states=["open"] * periods, limit=periods
                )
            )
        self._model_end_block()

    @rule(
        renter=st.sampled_from(RENTERS),
        offer=st.sampled_from([0, 2]),
        start=st.integers(0, 20_000),
        periods=st.integers(1, 4),
    )
    def rent(self, renter: SigningKey, offer: int, start: int, periods: int) -> None:
        """Reserve and, in the next block, confirm: the common path, so leases run and get claimed."""
        count = len(self.leases)
        self.reserve(renter, offer, start, periods, 0)
        if len(self.leases) > count:
            model = self.leases[-1]
            self._confirm(model, model.provider, 1)
            event("rent: running")

    def _overlaps(self, provider: str, resource: str, start: int, end: int) -> bool:
        for model in self.leases:
            slot = model.open_slot()
            same = OFFERS[model.offer][0].did == provider and OFFERS[model.offer][1] == resource
            if same and slot is not None and slot[0] < end and start < slot[1]:
                return True
        return False

    @rule(
        pick=st.integers(0, 10**6),
        anyone=st.sampled_from(ACTORS),
        wrong=signer_is_wrong,
        step=st.integers(0, 10_000),
    )
    def confirm(self, pick: int, anyone: SigningKey, wrong: bool, step: int) -> None:
        model = self._pick(pick, "reserved")
        if model is not None:
            self._confirm(model, chosen(model.provider, anyone, wrong), step)

    def _confirm(self, model: ModelLease, signer: SigningKey, step: int) -> None:
        now = self.now + step
        if signer != model.provider:
            expected = "lease.not_provider"
        elif model.status != "reserved":
            expected = "lease.not_reserved"
        elif now >= model.confirm_by:
            expected = "lease.confirm_too_late"
        else:
            expected = "ok"

        def apply() -> None:
            model.status = "active"
            for k in range(model.periods):
                if model.end(k) <= now:
                    model.states[k] = "refunded"

        self._step(signer, lease.confirm_start(model.id), expected, step, apply)

    @rule(
        pick=st.integers(0, 10**6),
        anyone=st.sampled_from(ACTORS),
        wrong=signer_is_wrong,
        step=st.integers(0, 20_000),
    )
    def end(self, pick: int, anyone: SigningKey, wrong: bool, step: int) -> None:
        model = self._pick(pick, "any")
        if model is None:
            return
        signer = chosen(self._key(model.renter), anyone, wrong)
        now = self.now + step
        started = sum(1 for k in range(model.limit) if model.begin(k) <= now)
        if signer.did != model.renter:
            expected = "lease.not_renter"
        elif model.status == "closed":
            expected = "lease.closed"
        elif model.status == "active" and started == model.limit:
            expected = "lease.nothing_to_end"
        else:
            expected = "ok"

        def apply() -> None:
            if model.status == "reserved":
                model.states = ["refunded"] * model.periods
                model.limit = 0
                model.status, model.outcome = "closed", "cancelled"
                return
            for k in range(started, model.limit):
                model.states[k] = "refunded"
            model.limit = started
            self._close_if_settled(model)
            if model.status == "closed":
                model.outcome = "ended"

        self._step(signer, lease.end(model.id), expected, step, apply)

    @rule(
        pick=st.integers(0, 10**6),
        anyone=st.sampled_from(ACTORS),
        wrong=signer_is_wrong,
        first=st.integers(-1, 8),
        count=st.one_of(st.integers(1, 2), st.integers(0, 3)),
        metric=st.sampled_from(["uptime_bps", "uptime_bps", *METRICS]),
        step=st.integers(0, 3_000),
    )
    def report(
        self, pick: int, anyone: SigningKey, wrong: bool, first: int, count: int, metric: str, step: int
    ) -> None:
        model = self._pick(pick, "active")
        if model is None:
            return
        signer = chosen(self._key(model.renter), anyone, wrong)
        now = self.now + step
        if first >= 0 and now >= model.start:  # mostly a claim of the period in progress or the last one
            current = (now - model.start) // model.period
            low = model.first_open()
            first = low + first % max(1, current + 1 - low)
            count = min(count, max(1, current + 1 - first))
        started = sum(1 for k in range(model.limit) if model.begin(k) <= now)
        if signer.did != model.renter:
            expected = "lease.not_renter"
        elif model.status != "active":
            expected = "lease.not_active"
        elif model.claim is not None:
            expected = "lease.claim_open"
        elif metric not in OFFERS[model.offer][6]:
            expected = "lease.unknown_metric"
        elif first < model.first_open() or count < 1 or first + count > started:
            expected = "lease.invalid_claim"
        elif model.end(first) + WINDOW <= now:
            expected = "lease.claim_too_late"
        else:
            expected = "ok"

        def apply() -> None:
            model.claim = (first, count, now + TIMEOUT)

        message = lease.report_breach(model.id, first, count, metric, sha256(b"evidence"))
        self._step(signer, message, expected, step, apply)

    @rule(
        pick=st.integers(0, 10**6),
        anyone=st.sampled_from(ACTORS),
        wrong=signer_is_wrong,
        by_monitor=st.booleans(),
        upheld=st.booleans(),
        step=st.integers(0, 20_000),
    )
    def resolve(
        self, pick: int, anyone: SigningKey, wrong: bool, by_monitor: bool, upheld: bool, step: int
    ) -> None:
        model = self._pick(pick, "claimed")
        if model is None:
            return
        monitor = OFFERS[model.offer][7]
        signer = chosen(monitor if by_monitor else model.provider, anyone, wrong)
        # A claim past its deadline is still open for the transactions of the block (end_block
        # dismisses it after them).
        if by_monitor:
            message = lease.judge_breach(model.id, upheld)
            not_allowed = monitor is None or signer != monitor
            role = "lease.not_monitor"
        else:
            message = lease.ack_breach(model.id)
            not_allowed = signer != model.provider
            role = "lease.not_provider"
            upheld = True
        if not_allowed:
            expected = role
        elif model.status != "active":
            expected = "lease.not_active"
        elif model.claim is None:
            expected = "lease.no_claim"
        else:
            expected = "ok"

        def apply() -> None:
            assert model.claim is not None
            first, count, _ = model.claim
            model.claim = None
            if not upheld:
                return
            for k in range(first):
                if model.states[k] == "open":
                    model.states[k] = "paid"
            for k in range(first, first + count):
                model.states[k] = "refunded"
            self._close_if_settled(model)

        self._step(signer, message, expected, step, apply)

    @rule(signer=st.sampled_from([P1, *ACTORS]), step=st.integers(0, 5_000))
    def withdraw(self, signer: SigningKey, step: int) -> None:
        offer = 1  # only the night price is ever withdrawn, so the other offers stay bookable
        if signer != OFFERS[offer][0]:
            expected = "lease.not_provider"
        elif self.withdrawn[offer]:
            expected = "lease.offer_withdrawn"
        else:
            expected = "ok"

        def apply() -> None:
            self.withdrawn[offer] = True

        self._step(signer, lease.withdraw_offer(self.offer_ids[offer]), expected, step, apply)

    def _pick(self, pick: int, kind: str) -> ModelLease | None:
        """A lease, preferably one in the state the rule is about (``reserved``, ``active`` or
        ``claimed``); any lease one time in four; None before the first reservation."""
        if not self.leases:
            return None
        if kind == "any":
            return self.leases[pick % len(self.leases)]
        if pick % 4:
            wanted = [
                model
                for model in self.leases
                if (model.claim is not None if kind == "claimed" else model.status == kind)
            ]
            if wanted:
                return wanted[pick % len(wanted)]
        return self.leases[pick % len(self.leases)]

    @staticmethod
    def _key(did: str) -> SigningKey:
        return next(key for key in ACTORS if key.did == did)

    @rule(step=st.integers(1, 30_000))
    def wait(self, step: int) -> None:
        self.now += step
        self._block([])

    # -- what must hold after every step -------------------------------------------------------------------

    @invariant()
    def chain_agrees_with_the_model(self) -> None:
        assert self.chain.invariants() == []
        state = self.chain.state
        expected = {key.did: FUNDS for key in ACTORS}
        for model in self.leases:
            record = self.module.lease(state, model.id)
            assert record is not None
            got = (record.status, record.outcome, record.paid, record.refunded, record.periods)
            assert got == (model.status, model.outcome, model.paid(), model.refunded(), model.limit), model
            expected[model.renter] -= model.price * model.periods - model.refunded()
            expected[model.provider.did] += model.paid()
        for key in ACTORS:
            assert bank_keeper.balance(state, key.did, "aut") == expected[key.did]

    def teardown(self) -> None:
        if not self.leases:
            return
        self.now = max(self.now, *(model.settle_by for model in self.leases)) + 1
        self._block([])
        self.chain_agrees_with_the_model()
        for model in self.leases:
            record = self.module.lease(self.chain.state, model.id)
            assert record is not None and record.status == "closed"
            assert record.paid + record.refunded == record.price_per_period * record.booked
        assert [lock for lock in escrow_keeper.all_locks(self.chain.state) if lock.holder == "lease"] == []
        event(f"outcomes: {sorted({model.outcome or '' for model in self.leases})}")


LeaseMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=50, deadline=None)
TestLeaseModel = LeaseMachine.TestCase


# ---------------------------------------------------------------------------------------------------
# The pure schedule: pro-rata refunds sum exactly


@st.composite
def schedule_programs(draw: Any) -> tuple[LeaseRecord, bool, list[tuple[str, int, int, int]]]:
    price = draw(st.integers(1, 10**12))
    period = draw(st.integers(1, 1_000))
    booked = draw(st.integers(1, 30))
    start = draw(st.integers(0, 3 * period))
    # Report windows of several periods leave several ended periods unpaid, so claims can start
    # after unpaid periods (which an upheld claim pays).
    window = draw(st.one_of(st.integers(0, 3 * period), st.integers(0, 2_000)))
    timeout = draw(st.integers(1, 5 * period + 3_000))
    record = LeaseRecord(
        id=b"\x00" * 32, offer=b"\x01" * 32, provider="p", renter="r", monitor="m", resource_kind="tool",
        resource="t", service_level=(("uptime_bps", 1),), asset="aut", price_per_period=price,
        period_ms=period, start_ms=start, booked=booked, periods=booked, lock=b"\x02" * 32,
        status="reserved", outcome=None, confirmed_ms=None, ended_ms=None, settled=0, paid=0, refunded=0,
        breached=0, claim=None, confirm_by_ms=start + min(draw(st.integers(0, 3_000)), booked * period),
        report_window_ms=window, claim_timeout_ms=timeout,
        settle_by_ms=start + booked * period + window + timeout, due_ms=None, created=1,
    )  # fmt: skip
    confirm_at_once = draw(st.integers(0, 4)) > 0
    step = st.one_of(st.integers(0, max(1, period // 3)), st.integers(0, 3 * period + 500))
    actions = draw(
        st.lists(
            st.tuples(
                st.sampled_from(["wait", "confirm", "end", "claim", "claim", "uphold", "uphold", "dismiss"]),
                step,
                st.integers(0, booked),
                st.integers(1, 4),
            ),
            max_size=25,
        )
    )
    return record, confirm_at_once, actions


@settings(max_examples=1500, deadline=None)
@given(schedule_programs())
def test_schedule_pro_rata_sums_exactly(
    program: tuple[LeaseRecord, bool, list[tuple[str, int, int, int]]],
) -> None:
    """Whatever happens, escrow's part never goes negative, amounts are whole periods, the total is
    conserved at every step, and by settle_by_ms the lease is closed with nothing left in escrow."""
    record, confirm_at_once, actions = program
    total = record.total
    now = 0
    escrow = total
    provider = renter = 0

    def take(step: schedule.Step) -> LeaseRecord:
        nonlocal escrow, provider, renter
        assert step.pay >= 0 and step.refund >= 0
        assert step.pay % record.price_per_period == 0 and step.refund % record.price_per_period == 0
        escrow -= step.pay + step.refund
        provider += step.pay
        renter += step.refund
        assert escrow == step.record.remaining >= 0
        assert provider == step.record.paid and renter == step.record.refunded
        assert provider + renter + escrow == total
        return step.record

    if confirm_at_once and now < record.confirm_by_ms:
        record = take(schedule.confirm(record, now))
    for kind, delta, first, count in actions:
        now += delta
        if record.status == "closed":
            break
        due = schedule.next_due(record)
        if due is not None and due <= now:
            record = take(schedule.advance(record, now))
        if kind == "confirm" and record.status == "reserved" and now < record.confirm_by_ms:
            record = take(schedule.confirm(record, now))
        elif kind == "end" and (record.status == "reserved" or record.started(now) < record.periods):
            if record.status != "closed":
                record = take(schedule.end_early(record, now))
        elif kind == "claim" and record.status == "active" and record.claim is None:
            started = record.started(now)
            first = max(record.settled, started - 1 - first % 3)  # the period in progress or one before
            count = 1 + count % max(1, started - first)
            if (
                first + count <= record.started(now)
                and record.period_end(first) + record.report_window_ms > now
            ):
                event("claim filed")
                record = schedule.file_claim(
                    record, Claim(first, count, "uptime_bps", b"", now, now + record.claim_timeout_ms)
                )
        elif kind in ("uphold", "dismiss") and record.status == "active" and record.claim is not None:
            before = "with" if record.claim.first > record.settled else "without"
            event(f"{kind}, {before} unpaid periods before")
            record = take(schedule.uphold(record, "m") if kind == "uphold" else schedule.dismiss(record, "m"))
        assert record.settled <= record.periods <= record.booked
    while record.status != "closed":
        due = schedule.next_due(record)
        assert due is not None and due <= record.settle_by_ms
        now = max(now, due)
        record = take(schedule.advance(record, now))
    assert escrow == 0 and provider + renter == total
    assert record.paid + record.refunded == record.price_per_period * record.booked
    assert record.outcome in ("completed", "ended", "cancelled", "unconfirmed")
