"""Random meter registrations, reading batches, tariffs, deposits, withdrawals and waits, against a model.

The world: a home and a neighbour with two general meters (owned by the home, co-signing every
registration), a car that charges at a charger through the charger's socket meter (an
infrastructure meter, so its readings bill the car), and the charger's owner setting the tariff.
Batches of readings are drawn around the block time so that they often go backwards, repeat or
reorder a time, come from the future, predate the registration, or come from a meter that is not
registered.

A **step model** written from ``modules/metering/README.md`` predicts the exact code of every
transaction, the usage record of every account, direction and interval, the car's statement at the
charger, every open deposit and both parties' balances; after every step the chain must equal it.
On top of the model, the properties the issue asks for:

* **value conserved**: the chain's invariants (bank: supply == balances; escrow: its account ==
  its open locks; metering: every deposit == its lock) hold after every block, and the car's plus
  the charger's balance never changes;
* **readings monotone**: no meter's stored last reading ever goes back in time or value;
* **no double counting**: for every account and direction, the sum of its interval records equals
  the sum over its meters' registrations of (last value - first value);
* **deposits end released or refunded**: no escrow lock held by metering lacks a deposit record,
  and at the end, once every expiry has passed, no deposit and no metering lock remains and what the
  car paid is exactly what the charger received.

Runs derandomized under the ``ci`` profile (``tests/conftest.py``); a failure prints its steps.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.block import Receipt
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.harness import Chain
from autarky.modules.metering import MeteringModule, keeper
from autarky.modules.metering import messages as metering

CHAIN_ID = "metering-model"
L = 60_000  # one-minute intervals, so a run crosses many of them
T0 = 1_800_000_000_000
BLOCK_MS = 1000
CAR_FUNDS = 5_000


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/metering-model/" + name.encode()))


HOME, NEIGHBOUR, CAR, CHARGER = (make_key(n) for n in ("home", "neighbour", "car", "charger"))
M1, M2, SOCKET = (make_key(n) for n in ("m1", "m2", "socket"))
METERS = {"m1": M1, "m2": M2, "socket": SOCKET}
SUBJECTS = {"home": HOME, "neighbour": NEIGHBOUR}

GENESIS: dict[str, Any] = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": T0,
    "app_state": {
        "identity": {
            "accounts": [
                {"did": M1.did, "owner": HOME.did, "kind": "meter"},
                {"did": M2.did, "owner": HOME.did, "kind": "meter"},
                {"did": SOCKET.did, "owner": CHARGER.did, "kind": "meter"},
            ]
        },
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "balances": [{"account": CAR.did, "asset": "aut", "amount": CAR_FUNDS}],
        },
        "metering": {"params": {"interval_ms": L}},
    },
}


@dataclass
class Registration:
    subject: str
    direction: str
    infra: str | None
    registered_ms: int
    first: int | None = None
    last: int | None = None


@dataclass
class DepositModel:
    lock: bytes
    expires_ms: int
    amount: int


class MeteringMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain.from_genesis(GENESIS, block_ms=BLOCK_MS)
        module = self.chain.app.module("metering")
        assert isinstance(module, MeteringModule)
        self.metering = module
        self.registered: dict[str, Registration] = {}
        self.history: list[Registration] = []  # every registration ever, for no-double-counting
        self.last: dict[str, tuple[int, int]] = {}
        self.usage: dict[tuple[str, str, int], int] = {}
        self.price: int | None = None
        self.deposits: dict[bytes, DepositModel] = {}
        self.statement = keeper.Statement()
        self.car = CAR_FUNDS
        self.charger = 0

    # -- driving the chain ---------------------------------------------------------------------------

    @property
    def now(self) -> int:
        return self.chain.headers[-1].time_ms

    def execute(
        self, signer: SigningKey, message: dict[str, Any], at: int, cosigner: SigningKey | None
    ) -> Receipt:
        body = TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, (message,))
        tx = sign_tx(body, signer, () if cosigner is None else (cosigner,))
        (receipt,) = self.chain.execute([tx.raw], at)
        self.end_block(at)
        return receipt

    def end_block(self, time_ms: int) -> None:
        """The model of metering's end_block: expired deposits go back to the car."""
        for lock, deposit in sorted(self.deposits.items()):
            if deposit.expires_ms <= time_ms:
                self.car += deposit.amount
                del self.deposits[lock]

    def check(self, receipt: Receipt, expected: str) -> None:
        assert receipt.code == expected, (receipt.code, expected, receipt.detail)
        event(f"{expected}")

    # -- rules ---------------------------------------------------------------------------------------

    @initialize(price=st.one_of(st.none(), st.integers(0, 7)))
    def start(self, price: int | None) -> None:
        """Most runs start with the home's meter and the car's socket registered, and a tariff."""
        self._register("m1", HOME, "export", None, 1_000)
        self._register("socket", CAR, "import", CHARGER.did, 1_000)
        if price is not None:
            self.set_tariff(price, 1_000)

    @rule(
        meter=st.sampled_from(["m1", "m2"]),
        subject=st.sampled_from(["home", "neighbour"]),
        direction=st.sampled_from(["export", "import"]),
        dt=st.integers(1, 5_000),
    )
    def register(self, meter: str, subject: str, direction: str, dt: int) -> None:
        self._register(meter, SUBJECTS[subject], direction, None, dt)

    @rule(dt=st.integers(1, 5_000))
    def register_socket(self, dt: int) -> None:
        self._register("socket", CAR, "import", CHARGER.did, dt)

    def _register(self, meter: str, subject: SigningKey, direction: str, infra: str | None, dt: int) -> None:
        at = self.now + dt
        message = metering.register(METERS[meter].did, subject.did, direction, "wh", infra)
        receipt = self.execute(subject, message, at, METERS[meter])
        if meter in self.registered:
            return self.check(receipt, "metering.already_registered")
        self.check(receipt, "ok")
        registration = Registration(subject.did, direction, infra, at)
        self.registered[meter] = registration
        self.history.append(registration)

    @rule(meter=st.sampled_from(sorted(METERS)), dt=st.integers(1, 5_000))
    def deregister(self, meter: str, dt: int) -> None:
        receipt = self.execute(METERS[meter], metering.deregister(METERS[meter].did), self.now + dt, None)
        if meter not in self.registered:
            return self.check(receipt, "metering.unknown_meter")
        self.check(receipt, "ok")
        del self.registered[meter]

    @rule(
        meter=st.sampled_from(sorted(METERS)),
        steps=st.lists(st.tuples(st.integers(-1_500, L), st.integers(-25, 60)), min_size=1, max_size=6),
        lag=st.integers(-1_000, 3 * L),
    )
    def read(self, meter: str, steps: list[tuple[int, int]], lag: int) -> None:
        """Readings after the meter's last one (each ``gap`` ms after the one before, a negative gap
        going back; each value the previous + ``step``), in a block ``lag`` ms after the latest
        reading (negative: some readings are in the future) and never before the next block time."""
        time_ms, value = self.last.get(meter, (self.now, 100))
        readings = []
        for gap, step in steps:
            time_ms, value = max(0, time_ms + gap), max(0, value + step)
            readings.append((value, time_ms))
        at = max(self.now + 1, max(t for _, t in readings) + lag)
        receipt = self.execute(METERS[meter], metering.read(readings), at, None)
        expected = self._expected_read_code(meter, readings, at)
        self.check(receipt, expected)
        if expected == "ok":
            self._apply_readings(meter, readings, at)

    @rule(energy=st.integers(0, 120), dt=st.integers(1, L))
    def charge(self, energy: int, dt: int) -> None:
        """The socket reports one plausible reading: the car charged ``energy`` Wh since the last."""
        at = self.now + dt
        value = self.last.get("socket", (0, 0))[1] + energy
        receipt = self.execute(SOCKET, metering.read([(value, at)]), at, None)
        expected = self._expected_read_code("socket", [(value, at)], at)
        self.check(receipt, expected)
        if expected == "ok":
            self._apply_readings("socket", [(value, at)], at)

    def _expected_read_code(self, meter: str, readings: list[tuple[int, int]], at: int) -> str:
        if any(time_ms > at for _, time_ms in readings):
            return "metering.future_reading"
        registration = self.registered.get(meter)
        if registration is None:
            return "metering.unknown_meter"
        last = self.last.get(meter)
        for value, time_ms in readings:
            if time_ms < registration.registered_ms:
                return "metering.before_registration"
            if last is not None and time_ms <= last[0]:
                return "metering.duplicate_reading"
            if last is not None and value < last[1]:
                return "metering.value_backwards"
            last = (time_ms, value)
        return "ok"

    def _apply_readings(self, meter: str, readings: list[tuple[int, int]], at: int) -> None:
        registration = self.registered[meter]
        quantity = 0
        for value, time_ms in readings:
            if registration.first is None:
                registration.first = value
            else:
                previous = self.last[meter][1]
                if value > previous:
                    key = (registration.subject, registration.direction, (time_ms - 1) // L)
                    self.usage[key] = self.usage.get(key, 0) + value - previous
                    quantity += value - previous
            registration.last = value
            self.last[meter] = (time_ms, value)
        if registration.infra is not None and quantity > 0 and self.price is not None:
            amount = quantity * self.price
            paid = self._pay(amount, at)
            s = self.statement
            self.statement = keeper.Statement(
                s.quantity + quantity, s.billed + amount, s.paid + paid, s.debt + amount - paid
            )
            event("bill paid in full" if paid == amount else "bill partly paid" if paid else "bill unpaid")

    def _pay(self, amount: int, at: int) -> int:
        paid = 0
        for deposit in sorted(self.deposits.values(), key=lambda d: (d.expires_ms, d.lock)):
            if paid == amount or deposit.expires_ms <= at:
                continue
            take = min(amount - paid, deposit.amount)
            deposit.amount -= take
            paid += take
            if deposit.amount == 0:
                del self.deposits[deposit.lock]
        self.charger += paid
        return paid

    @rule(price=st.integers(0, 7), dt=st.integers(1, 5_000))
    def set_tariff(self, price: int, dt: int) -> None:
        receipt = self.execute(CHARGER, metering.set_tariff(CHARGER.did, "aut", price), self.now + dt, None)
        self.check(receipt, "ok")
        self.price = price

    @rule(amount=st.integers(1, 1_500), expires_in=st.integers(-2_000, 20 * L), dt=st.integers(1, 5_000))
    def deposit(self, amount: int, expires_in: int, dt: int) -> None:
        at = self.now + dt
        funds = self.car  # during the block's transactions, before its end refunds expired deposits
        receipt = self.execute(CAR, metering.deposit(CHARGER.did, "aut", amount, at + expires_in), at, None)
        if expires_in <= 0:
            return self.check(receipt, "metering.invalid_expiry")
        if self.price is None:
            return self.check(receipt, "metering.no_tariff")
        if amount > funds:
            return self.check(receipt, "bank.insufficient_funds")
        self.check(receipt, "ok")
        lock = next(e.get("lock") for e in receipt.events if e.type == "metering.deposited")
        assert isinstance(lock, bytes)
        self.car -= amount
        settled = min(self.statement.debt, amount)
        if settled:
            event("deposit settles debt")
            s = self.statement
            self.statement = keeper.Statement(s.quantity, s.billed, s.paid + settled, s.debt - settled)
            self.charger += settled
        if amount > settled:
            self.deposits[lock] = DepositModel(lock, at + expires_in, amount - settled)
        self.end_block(at)  # a deposit cannot expire in its own block (expires_in > 0)

    @rule(data=st.data(), dt=st.integers(1, 5_000))
    def withdraw(self, data: st.DataObject, dt: int) -> None:
        if not self.deposits:
            return
        lock = data.draw(st.sampled_from(sorted(self.deposits)))
        asked = data.draw(st.one_of(st.none(), st.integers(1, 2 * self.deposits[lock].amount)))
        at = self.now + dt
        expired = self.deposits[lock].expires_ms <= at  # refunded by this block's end, after the tx
        holds = self.deposits[lock].amount
        receipt = self.execute(CAR, metering.withdraw(lock, asked), at, None)
        if expired:
            # The deposit is still open during the block's transactions.
            if asked is not None and asked > holds:
                return self.check(receipt, "metering.insufficient_deposit")
            self.check(receipt, "ok")
            return
        if asked is not None and asked > holds:
            return self.check(receipt, "metering.insufficient_deposit")
        self.check(receipt, "ok")
        taken = holds if asked is None else asked
        self.car += taken
        self.deposits[lock].amount -= taken
        if self.deposits[lock].amount == 0:
            del self.deposits[lock]

    @rule(dt=st.integers(1, 3 * L))
    def wait(self, dt: int) -> None:
        at = self.now + dt
        self.chain.execute([], at)
        self.end_block(at)

    # -- properties ----------------------------------------------------------------------------------

    @invariant()
    def chain_invariants_hold_and_no_lock_is_orphaned(self) -> None:
        state = self.chain.state
        assert self.chain.invariants() == []
        for lock in escrow_keeper.all_locks(state):
            assert lock.holder != "metering" or keeper.read_deposit(state, lock.id) is not None, lock

    @invariant()
    def value_is_conserved(self) -> None:
        state = self.chain.state
        car = bank_keeper.balance(state, CAR.did, "aut")
        charger = bank_keeper.balance(state, CHARGER.did, "aut")
        held = sum(d.amount for d in self.metering.deposits(state, CAR.did))
        assert (car, charger, held) == (self.car, self.charger, sum(d.amount for d in self.deposits.values()))
        assert car + charger + held == CAR_FUNDS

    @invariant()
    def state_equals_the_model(self) -> None:
        state = self.chain.state
        found = {}
        for key, value in keeper.iter_raw(state, keeper.USAGE_PREFIX):
            account, direction, interval = key.split("/")
            found[account, direction, int(interval)] = value
        assert found == self.usage
        for meter, (time_ms, value) in self.last.items():
            assert self.metering.last_reading(state, METERS[meter].did) == keeper.LastReading(time_ms, value)
        assert keeper.read_statement(state, CAR.did, CHARGER.did, "aut") == self.statement
        open_deposits = {d.lock: d.amount for d in self.metering.deposits(state, CAR.did)}
        assert open_deposits == {lock: d.amount for lock, d in self.deposits.items()}

    @invariant()
    def readings_are_monotone(self) -> None:
        previous = getattr(self, "_seen_last", {})
        current = {}
        for meter, key in METERS.items():
            last = self.metering.last_reading(self.chain.state, key.did)
            if last is not None:
                current[meter] = (last.time_ms, last.value)
                if meter in previous:
                    assert previous[meter][0] <= last.time_ms and previous[meter][1] <= last.value
        self._seen_last = current

    @invariant()
    def no_double_counting(self) -> None:
        counted: dict[tuple[str, str], int] = {}
        for registration in self.history:
            if registration.first is not None and registration.last is not None:
                key = (registration.subject, registration.direction)
                counted[key] = counted.get(key, 0) + registration.last - registration.first
        recorded: dict[tuple[str, str], int] = {}
        for (account, direction, _), energy in self.usage.items():
            recorded[account, direction] = recorded.get((account, direction), 0) + energy
        assert {k: v for k, v in counted.items() if v} == recorded

    def teardown(self) -> None:
        """Every deposit ends released or refunded: pass every expiry, nothing of metering is left."""
        latest = max((d.expires_ms for d in self.deposits.values()), default=self.now)
        at = max(latest, self.now) + 1
        self.chain.execute([], at)
        self.end_block(at)
        state = self.chain.state
        assert self.metering.deposits(state, CAR.did) == [] and self.deposits == {}
        assert [lock for lock in escrow_keeper.all_locks(state) if lock.holder == "metering"] == []
        assert bank_keeper.balance(state, "module:escrow", "aut") == 0
        paid = CAR_FUNDS - bank_keeper.balance(state, CAR.did, "aut")
        assert paid == bank_keeper.balance(state, CHARGER.did, "aut") == self.statement.paid
        assert self.chain.invariants() == []


MeteringMachine.TestCase.settings = settings(max_examples=100, stateful_step_count=50, deadline=None)
TestMeteringModel = MeteringMachine.TestCase
