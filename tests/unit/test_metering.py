"""The metering module through the real executor: meters, readings, usage records, billing.

Layout: a small world (a home with its inverter and a heat-pump meter, a neighbour, a car, a charger
with its socket meter, a stranger) on the in-memory chain built by ``build_app``, then one section
per behaviour: parsing and message-only codes, register / deregister, readings and attribution,
the interface the market uses (``energy``, ``readings_complete``), tariffs, deposits, billing and
debt, end-of-block expiry, genesis, invariants, the README example and the codes' precedence
against the README. A test that names a precedence puts two faults in one message and checks that
the one documented first wins.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.block import Receipt
from autarky.ledger.executor import execute_genesis
from autarky.ledger.state import MappingState, Overlay
from autarky.ledger.tx import MAX_U64, SignedTx, TxBody, sign_tx
from autarky.modules import build_app
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.harness import Chain
from autarky.modules.metering import MeteringModule, keeper
from autarky.modules.metering import messages as metering
from autarky.modules.metering.errors import METERING_CODES_IN_PRECEDENCE
from autarky.modules.metering.genesis import parse_params

CHAIN_ID = "metering-test"
L = 900_000
T0 = 1_800_000_000_000  # a multiple of L
K0 = T0 // L
G0 = T0 - 60_000  # genesis: a minute before interval K0, so meters registered early can read in it
BLOCK_MS = 1000
HOUR = 3_600_000


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/metering-test/" + name.encode()))


HOME = make_key("home")
INVERTER = make_key("inverter")  # owned by HOME
PUMP = make_key("pump-meter")  # owned by HOME
NEIGHBOUR = make_key("neighbour")
CAR = make_key("car")
CHARGER = make_key("charger")  # an implicit account: its own controller
SOCKET = make_key("socket")  # owned by CHARGER
SOCKET_2 = make_key("socket-2")  # owned by CHARGER
STRANGER = make_key("stranger")
LOOSE = make_key("loose-meter")  # an implicit account nobody owns

GENESIS: dict[str, Any] = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": G0,
    "app_state": {
        "identity": {
            "accounts": [
                {"did": INVERTER.did, "owner": HOME.did, "kind": "inverter"},
                {"did": PUMP.did, "owner": HOME.did, "kind": "meter"},
                {"did": SOCKET.did, "owner": CHARGER.did, "kind": "meter"},
                {"did": SOCKET_2.did, "owner": CHARGER.did, "kind": "meter"},
            ]
        },
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "assets": ["kwh"],
            "balances": [
                {"account": HOME.did, "asset": "aut", "amount": 10_000},
                {"account": CAR.did, "asset": "aut", "amount": 10_000},
                {"account": CAR.did, "asset": "kwh", "amount": 500},
                {"account": NEIGHBOUR.did, "asset": "aut", "amount": 1_000},
            ],
        },
        "metering": {"params": {"interval_ms": L}},
    },
}


class World:
    """The chain of GENESIS; one transaction per block, invariants checked after every block."""

    def __init__(self, genesis: dict[str, Any] | None = None) -> None:
        self.chain = Chain.from_genesis(genesis or GENESIS, block_ms=BLOCK_MS)
        module = self.chain.app.module("metering")
        assert isinstance(module, MeteringModule)
        self.metering: MeteringModule = module

    @property
    def now(self) -> int:
        return self.chain.headers[-1].time_ms

    def tx(self, signer: SigningKey, *msgs: dict[str, Any], cosigners: Sequence[SigningKey] = ()) -> SignedTx:
        body = TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, tuple(msgs))
        return sign_tx(body, signer, tuple(cosigners))

    def run(
        self,
        signer: SigningKey,
        *msgs: dict[str, Any],
        at: int | None = None,
        cosigners: Sequence[SigningKey] = (),
    ) -> Receipt:
        (receipt,) = self.chain.execute([self.tx(signer, *msgs, cosigners=cosigners).raw], at)
        assert self.chain.invariants() == []
        assert orphaned_metering_locks(self.chain.state) == []
        return receipt

    def code(self, signer: SigningKey, *msgs: dict[str, Any], **options: Any) -> str:
        return self.run(signer, *msgs, **options).code

    def ok(self, signer: SigningKey, *msgs: dict[str, Any], **options: Any) -> Receipt:
        receipt = self.run(signer, *msgs, **options)
        assert receipt.code == "ok", receipt.detail
        return receipt

    def block(self, at: int) -> None:
        self.chain.execute([], at)
        assert self.chain.invariants() == []

    def read(self, meter: SigningKey, *readings: tuple[int, int], at: int | None = None) -> Receipt:
        """Readings ``(value, time_ms)``; the block is at ``at``, else at the last reading's time."""
        return self.run(meter, metering.read(readings), at=readings[-1][1] if at is None else at)

    def energy(self, account: SigningKey, interval: int, direction: str = "export") -> int:
        return self.metering.energy(self.chain.state, account.did, direction, interval)

    def complete(self, account: SigningKey, interval: int, direction: str = "export") -> bool:
        return self.metering.readings_complete(self.chain.state, account.did, direction, interval)

    def balance(self, account: SigningKey | str, asset: str = "aut") -> int:
        did = account if isinstance(account, str) else account.did
        return bank_keeper.balance(self.chain.state, did, asset)

    def statement(self, payer: SigningKey, infra: SigningKey, asset: str = "aut") -> keeper.Statement:
        return keeper.read_statement(self.chain.state, payer.did, infra.did, asset)

    def deposit(self, payer: SigningKey, amount: int, expires_ms: int, asset: str = "aut") -> bytes:
        receipt = self.ok(payer, metering.deposit(CHARGER.did, asset, amount, expires_ms))
        lock = next(e.get("lock") for e in receipt.events if e.type == "metering.deposited")
        assert isinstance(lock, bytes)
        return lock


def orphaned_metering_locks(state: Any) -> list[str]:
    """Escrow locks held by metering that no open deposit record expects."""
    return [
        lock.id.hex()
        for lock in escrow_keeper.all_locks(state)
        if lock.holder == "metering" and keeper.read_deposit(state, lock.id) is None
    ]


@pytest.fixture
def world() -> World:
    return World()


def register_inverter(world: World) -> None:
    world.ok(HOME, metering.register(INVERTER.did, HOME.did, "export", "wh"))


def register_socket(world: World, meter: SigningKey = SOCKET, subject: SigningKey = CAR) -> None:
    world.ok(
        subject, metering.register(meter.did, subject.did, "import", "wh", CHARGER.did), cosigners=[meter]
    )


# ---------------------------------------------------------------------------------------------------
# Parsing: core.invalid_message and the message-only codes


def register_message(**changes: Any) -> dict[str, Any]:
    return {**metering.register(INVERTER.did, HOME.did, "export", "wh"), **changes}


@pytest.mark.parametrize(
    "message",
    [
        {"type": "metering/register", "meter": INVERTER.did, "subject": HOME.did, "direction": "export"},
        register_message(extra=1),
        register_message(unit=7),
        register_message(infra=b"x"),
        {"type": "metering/read", "readings": {"value": 1, "time_ms": 1}},
        {"type": "metering/read", "readings": [[1, 1]]},
        {"type": "metering/read", "readings": [{"value": 1}]},
        {"type": "metering/read", "readings": [{"value": 1, "time_ms": 1, "seq": 2}]},
        {"type": "metering/read", "readings": [{"value": True, "time_ms": 1}]},
        {"type": "metering/read", "readings": [{"value": 1, "time_ms": 1, "meter": 5}]},
        {**metering.set_tariff(CHARGER.did, "aut", 1), "price_per_unit": "1"},
        {**metering.deposit(CHARGER.did, "aut", 1, T0 + HOUR), "amount": None},
        {**metering.withdraw(b"\x00" * 32), "lock": b"\x00" * 31},
        {**metering.withdraw(b"\x00" * 32), "amount": "all"},
        {"type": "metering/deregister"},
    ],
)
def test_shape_errors_are_invalid_message(world: World, message: dict[str, Any]) -> None:
    assert world.code(HOME, message) == "core.invalid_message"


def test_optional_fields_may_be_left_out(world: World) -> None:
    message = register_message()
    del message["infra"]
    world.ok(HOME, message)
    world.ok(
        INVERTER, {"type": "metering/read", "readings": [{"value": 1, "time_ms": T0, "meter": None}]}, at=T0
    )
    world.ok(
        INVERTER,
        {"type": "metering/read", "readings": [{"value": 2, "time_ms": T0 + 1, "meter": INVERTER.did}]},
        at=T0 + 1,
    )


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"meter": "did:key:nope"}, "metering.invalid_account"),
        ({"subject": "module:fees"}, "metering.invalid_account"),
        ({"infra": "charger-7"}, "metering.invalid_account"),
        ({"direction": "import", "infra": HOME.did}, "metering.invalid_account"),
        ({"direction": "both"}, "metering.invalid_direction"),
        ({"direction": "export", "infra": CHARGER.did}, "metering.invalid_direction"),
        ({"unit": "Wh"}, "metering.invalid_unit"),
        ({"unit": ""}, "metering.invalid_unit"),
        ({"unit": "w" * 17}, "metering.invalid_unit"),
        # precedence: account before direction before unit
        ({"meter": "x", "direction": "both", "unit": "Wh"}, "metering.invalid_account"),
        ({"direction": "both", "unit": "Wh"}, "metering.invalid_direction"),
    ],
)
def test_register_message_codes(world: World, changes: dict[str, Any], code: str) -> None:
    assert world.code(HOME, register_message(**changes)) == code


def test_read_batch_limits(world: World) -> None:
    register_inverter(world)
    assert world.code(INVERTER, {"type": "metering/read", "readings": []}) == "metering.invalid_reading"
    too_many = [(index, T0 + index) for index in range(metering.MAX_READINGS + 1)]
    assert world.code(INVERTER, metering.read(too_many), at=T0 + HOUR) == "metering.invalid_reading"
    most = [(index, T0 + index) for index in range(metering.MAX_READINGS)]
    world.ok(INVERTER, metering.read(most), at=T0 + HOUR)
    assert world.energy(HOME, K0) == metering.MAX_READINGS - 1


@pytest.mark.parametrize(
    ("readings", "code"),
    [
        ([{"value": -1, "time_ms": T0}], "metering.invalid_reading"),
        ([{"value": 1, "time_ms": -5}], "metering.invalid_reading"),
        ([{"value": MAX_U64 + 1, "time_ms": T0}], "metering.invalid_reading"),
        ([{"value": 1, "time_ms": T0, "meter": HOME.did}], "metering.wrong_meter"),
        # the whole batch is checked code by code: a range fault in reading 1 beats a meter fault in 0
        (
            [{"value": 1, "time_ms": T0, "meter": HOME.did}, {"value": -1, "time_ms": T0}],
            "metering.invalid_reading",
        ),
        # then the block time, before the state (the meter is not even registered)
        ([{"value": 1, "time_ms": T0 + 10 * HOUR}], "metering.future_reading"),
        ([{"value": 1, "time_ms": T0 + 10 * HOUR, "meter": HOME.did}], "metering.wrong_meter"),
        ([{"value": 1, "time_ms": T0}], "metering.unknown_meter"),
    ],
)
def test_read_codes_before_the_state(world: World, readings: list[dict[str, Any]], code: str) -> None:
    assert world.code(INVERTER, {"type": "metering/read", "readings": readings}, at=T0 + HOUR) == code


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (metering.set_tariff("nobody", "aut", 1), "metering.invalid_account"),
        (metering.set_tariff(CHARGER.did, "AUT", 1), "metering.invalid_tariff"),
        (metering.set_tariff(CHARGER.did, "aut", -1), "metering.invalid_tariff"),
        (metering.set_tariff(CHARGER.did, "aut", MAX_U64 + 1), "metering.invalid_tariff"),
        (metering.set_tariff("nobody", "AUT", -1), "metering.invalid_account"),
        (metering.set_tariff(CHARGER.did, "aut", 1), "metering.not_authorised"),
        (metering.set_tariff(CHARGER.did, "AUT", 1), "metering.invalid_tariff"),
    ],
)
def test_set_tariff_codes(world: World, message: dict[str, Any], code: str) -> None:
    assert world.code(STRANGER, message) == code


@pytest.mark.parametrize(
    ("message", "code"),
    [
        (metering.deposit("x", "aut", 10, T0 + HOUR), "metering.invalid_account"),
        (metering.deposit(CAR.did, "aut", 10, T0 + HOUR), "metering.invalid_account"),  # itself
        (metering.deposit(CHARGER.did, "aut", 0, T0 + HOUR), "metering.invalid_amount"),
        (metering.deposit(CHARGER.did, "aut", MAX_U64 + 1, T0 + HOUR), "metering.invalid_amount"),
        (metering.deposit(CHARGER.did, "aut", 10, -1), "metering.invalid_expiry"),
        (metering.deposit(CHARGER.did, "aut", 10, metering.MAX_EXPIRY_MS + 1), "metering.invalid_expiry"),
        (metering.deposit(CHARGER.did, "aut", 10, G0 + BLOCK_MS), "metering.invalid_expiry"),  # the block's
        (metering.deposit(CHARGER.did, "aut", 0, G0), "metering.invalid_amount"),
        (metering.deposit(CHARGER.did, "aut", 10, T0 + HOUR), "metering.no_tariff"),
        (metering.deposit(CHARGER.did, "aut", 10, G0), "metering.invalid_expiry"),
        (metering.withdraw(b"\x01" * 32, 0), "metering.invalid_amount"),
        (metering.withdraw(b"\x01" * 32), "metering.unknown_deposit"),
    ],
)
def test_deposit_and_withdraw_codes_without_state(world: World, message: dict[str, Any], code: str) -> None:
    assert world.code(CAR, message) == code


def test_deposit_expiry_leaves_room_for_the_escrow_backstop() -> None:
    assert metering.MAX_EXPIRY_MS + 1 == escrow_keeper.MAX_EXPIRY_MS


def test_codes_are_namespaced_and_unique() -> None:
    codes = [error.code for error in METERING_CODES_IN_PRECEDENCE]
    assert len(codes) == len(set(codes)) == 23
    assert all(code.startswith("metering.") for code in codes)


def test_readme_lists_the_codes_in_precedence_order() -> None:
    readme = (Path(__file__).resolve().parents[2] / "src/autarky/modules/metering/README.md").read_text()
    table = readme.split("## Errors, in order of precedence", 1)[1]
    listed = re.findall(r"^\| (\d+)\s+\| `(metering\.[a-z_]+)`", table, flags=re.MULTILINE)
    assert [code for _, code in listed] == [error.code for error in METERING_CODES_IN_PRECEDENCE]
    assert [int(number) for number, _ in listed] == list(range(1, 24))


# ---------------------------------------------------------------------------------------------------
# register and deregister


def test_register_stores_the_record_the_index_and_an_event(world: World) -> None:
    receipt = world.ok(HOME, metering.register(INVERTER.did, HOME.did, "export", "wh"))
    record = world.metering.meter(world.chain.state, INVERTER.did)
    assert record == keeper.MeterRecord(
        INVERTER.did, HOME.did, "export", "wh", None, 1, world.now, None, 0, 0
    )
    assert world.metering.meters_of(world.chain.state, HOME.did) == [record]
    assert world.chain.data[keeper.by_subject_key(HOME.did, "export", INVERTER.did)]
    (event,) = receipt.events
    assert event.type == "metering.registered"
    assert dict(event.attributes) == {
        "meter": INVERTER.did,
        "subject": HOME.did,
        "direction": "export",
        "unit": "wh",
        "infra": None,
    }


def test_who_registers_a_meter(world: World) -> None:
    # Only the subject's controller: HOME controls itself; nobody else registers for HOME.
    assert world.code(STRANGER, register_message()) == "metering.not_authorised"
    # A machine's owner acts for it: HOME registers PUMP as the meter of INVERTER's own import.
    world.ok(HOME, metering.register(PUMP.did, INVERTER.did, "import", "wh"))
    # ... and the machine itself may not, it has an owner.
    assert world.code(
        INVERTER, metering.register(LOOSE.did, INVERTER.did, "export", "wh"), cosigners=[LOOSE]
    ) == ("metering.not_authorised")


def test_the_meter_consents(world: World) -> None:
    # LOOSE is nobody's machine: it must co-sign.
    loose = metering.register(LOOSE.did, NEIGHBOUR.did, "export", "wh")
    assert world.code(NEIGHBOUR, loose) == "metering.meter_not_signed"
    world.ok(NEIGHBOUR, loose, cosigners=[LOOSE])
    # A machine of someone else must co-sign too; the neighbour cannot claim the home's inverter.
    theirs = metering.register(INVERTER.did, NEIGHBOUR.did, "export", "wh")
    assert world.code(NEIGHBOUR, theirs) == "metering.meter_not_signed"
    # The owner's machine consents through its owner; a self-metering account is its own meter.
    register_inverter(world)
    world.ok(CAR, metering.register(CAR.did, CAR.did, "export", "wh"))


def test_an_infrastructure_meter_belongs_to_the_infrastructure(world: World) -> None:
    # LOOSE co-signs, but it is not the charger's: the car could under-report its own charging.
    foreign = metering.register(LOOSE.did, CAR.did, "import", "wh", CHARGER.did)
    assert world.code(CAR, foreign, cosigners=[LOOSE]) == "metering.meter_not_of_infra"
    register_socket(world)
    # The infrastructure may meter itself.
    world.ok(
        NEIGHBOUR,
        metering.register(CHARGER.did, NEIGHBOUR.did, "import", "wh", CHARGER.did),
        cosigners=[CHARGER],
    )


def test_register_state_codes_in_precedence(world: World) -> None:
    register_inverter(world)
    again = metering.register(INVERTER.did, HOME.did, "export", "kwh")
    assert world.code(HOME, again) == "metering.already_registered"  # before unit_mismatch
    other_unit = metering.register(PUMP.did, HOME.did, "export", "kwh")
    assert world.code(HOME, other_unit) == "metering.unit_mismatch"
    world.ok(HOME, metering.register(PUMP.did, HOME.did, "import", "kwh"))  # another direction may differ
    # not_authorised before meter_not_signed before meter_not_of_infra before already_registered
    assert world.code(STRANGER, again) == "metering.not_authorised"
    assert world.code(CAR, metering.register(INVERTER.did, CAR.did, "import", "wh", CHARGER.did)) == (
        "metering.meter_not_signed"
    )
    assert world.code(HOME, metering.register(INVERTER.did, HOME.did, "import", "wh", CHARGER.did)) == (
        "metering.meter_not_of_infra"
    )


def test_deregister(world: World) -> None:
    register_inverter(world)
    assert world.code(STRANGER, metering.deregister(INVERTER.did)) == "metering.not_authorised"
    assert world.code(STRANGER, metering.deregister(PUMP.did)) == "metering.unknown_meter"  # before
    receipt = world.ok(INVERTER, metering.deregister(INVERTER.did))  # the meter itself may
    assert dict(receipt.events[0].attributes) == {
        "meter": INVERTER.did,
        "subject": HOME.did,
        "by": INVERTER.did,
    }
    assert world.metering.meter(world.chain.state, INVERTER.did) is None
    assert world.metering.meters_of(world.chain.state, HOME.did) == []
    assert world.code(INVERTER, metering.read([(1, world.now)])) == "metering.unknown_meter"
    register_socket(world)
    world.ok(CHARGER, metering.deregister(SOCKET.did))  # the meter's controller may
    register_socket(world)
    world.ok(CAR, metering.deregister(SOCKET.did))  # and the subject's


# ---------------------------------------------------------------------------------------------------
# Readings and attribution


def test_the_first_reading_is_the_baseline(world: World) -> None:
    register_inverter(world)
    receipt = world.read(INVERTER, (5_000, T0 + 10_000))
    assert dict(receipt.events[0].attributes)["energy"] == 0
    assert world.energy(HOME, K0) == 0
    record = world.metering.meter(world.chain.state, INVERTER.did)
    assert record is not None and (record.baseline, record.counted, record.readings) == (5_000, 0, 1)
    assert world.metering.last_reading(world.chain.state, INVERTER.did) == keeper.LastReading(
        T0 + 10_000, 5_000
    )


def test_deltas_go_to_the_interval_containing_time_minus_one(world: World) -> None:
    register_inverter(world)
    world.read(INVERTER, (0, T0 + 1))
    world.read(INVERTER, (100, T0 + L - 1), (150, T0 + L))  # both in interval K0 (the end counts)
    world.read(INVERTER, (160, T0 + L + 1))  # the first ms of K0 + 1
    world.read(INVERTER, (400, T0 + 3 * L + 7))  # a gap: all of it goes to K0 + 3
    assert [world.energy(HOME, K0 + k) for k in range(4)] == [150, 10, 0, 240]
    record = world.metering.meter(world.chain.state, INVERTER.did)
    assert record is not None and record.counted == 400 - 0 and record.readings == 5
    ranged = keeper.usage_range(world.chain.state, HOME.did, "export", K0, K0 + 3)
    assert ranged == [(K0, 150), (K0 + 1, 10), (K0 + 3, 240)]
    assert keeper.usage_range(world.chain.state, HOME.did, "export", K0 + 1, K0 + 2) == [(K0 + 1, 10)]


def test_equal_values_count_nothing_and_move_the_last_reading(world: World) -> None:
    register_inverter(world)
    world.read(INVERTER, (7, T0 + 5), (7, T0 + 6))
    assert world.energy(HOME, K0) == 0
    assert world.metering.last_reading(world.chain.state, INVERTER.did) == keeper.LastReading(T0 + 6, 7)
    assert not any(key.startswith(keeper.USAGE_PREFIX) for key in world.chain.data)


def test_energy_sums_the_meters_of_an_account_and_direction(world: World) -> None:
    register_inverter(world)
    world.ok(HOME, metering.register(PUMP.did, HOME.did, "import", "wh"))
    world.ok(HOME, metering.register(LOOSE.did, HOME.did, "export", "wh"), cosigners=[LOOSE])
    world.read(INVERTER, (0, T0 + 4_000))
    world.read(LOOSE, (1_000, T0 + 5_000))
    world.read(PUMP, (50, T0 + 6_000))
    world.read(INVERTER, (30, T0 + 10_000))
    world.read(LOOSE, (1_012, T0 + 11_000))
    world.read(PUMP, (55, T0 + 12_000))
    assert world.energy(HOME, K0) == 42
    assert world.energy(HOME, K0, "import") == 5
    assert world.energy(NEIGHBOUR, K0) == 0


@pytest.mark.parametrize(
    ("readings", "code"),
    [
        ([(200, T0 + 20_000)], "metering.duplicate_reading"),  # the same reading again
        ([(200, T0 + 19_000)], "metering.duplicate_reading"),  # earlier than the last
        ([(300, T0 + 20_000)], "metering.duplicate_reading"),  # same time, other value
        ([(150, T0 + 21_000)], "metering.value_backwards"),
        ([(150, T0 + 20_000)], "metering.duplicate_reading"),  # duplicate before backwards
        ([(250, T0 + 22_000), (260, T0 + 22_000)], "metering.duplicate_reading"),  # twice in the batch
        ([(250, T0 + 22_000), (240, T0 + 23_000)], "metering.value_backwards"),  # backwards in the batch
        ([(250, T0 + 22_000), (1, T0 + 999_999_999)], "metering.future_reading"),  # before any state code
        ([(100, T0 + 22_000), (300, T0 + 21_000)], "metering.value_backwards"),  # reading 0 decides
    ],
)
def test_refused_readings_refuse_the_whole_batch(
    world: World, readings: list[tuple[int, int]], code: str
) -> None:
    register_inverter(world)
    world.read(INVERTER, (100, T0 + 10_000), (200, T0 + 20_000))
    before = dict(world.chain.data)
    receipt = world.read(INVERTER, *readings, at=T0 + 30_000)
    assert receipt.code == code
    changed = {key for key in world.chain.data if world.chain.data[key] != before.get(key)}
    assert all(key.startswith("core/seq/") for key in changed), changed  # only the sequence moved
    assert world.energy(HOME, K0) == 100


def test_readings_before_the_registration_are_refused(world: World) -> None:
    world.block(T0 + 50_000)
    register_inverter(world)  # at T0 + 51_000
    assert world.read(INVERTER, (1, T0 + 50_999), at=T0 + 60_000).code == "metering.before_registration"
    world.read(INVERTER, (1, T0 + 51_000), at=T0 + 61_000)


def test_a_reading_at_the_block_time_is_not_in_the_future(world: World) -> None:
    register_inverter(world)
    world.read(INVERTER, (1, T0 + 5_000), at=T0 + 5_000)
    assert world.read(INVERTER, (2, T0 + 6_001), at=T0 + 6_000).code == "metering.future_reading"


def test_reregistering_never_counts_energy_twice(world: World) -> None:
    register_inverter(world)
    world.read(INVERTER, (100, T0 + 5_000))
    world.read(INVERTER, (180, T0 + 9_000))
    world.ok(HOME, metering.deregister(INVERTER.did), at=T0 + 10_000)
    world.ok(NEIGHBOUR, metering.register(INVERTER.did, NEIGHBOUR.did, "export", "wh"), cosigners=[INVERTER])
    # The meter's history carries over: an old value is refused, not taken as a new baseline.
    assert world.read(INVERTER, (150, T0 + 20_000)).code == "metering.value_backwards"
    world.read(INVERTER, (200, T0 + 21_000))  # the new baseline: the 20 Wh between are nobody's
    world.read(INVERTER, (230, T0 + 22_000))
    assert (world.energy(HOME, K0), world.energy(NEIGHBOUR, K0)) == (80, 30)


def test_usage_overflow_is_refused() -> None:
    world = World()
    register_inverter(world)
    world.ok(HOME, metering.register(LOOSE.did, HOME.did, "export", "wh"), cosigners=[LOOSE])
    world.read(INVERTER, (0, T0 + 1))
    world.read(LOOSE, (0, T0 + 2))
    world.read(INVERTER, (MAX_U64, T0 + 3))
    assert world.read(LOOSE, (1, T0 + 4)).code == "metering.overflow"
    assert world.energy(HOME, K0) == MAX_U64


# ---------------------------------------------------------------------------------------------------
# readings_complete: when the market may settle an interval


def test_readings_complete_needs_every_meter_past_the_interval_end(world: World) -> None:
    assert world.complete(HOME, K0)  # no meter: nothing can be delivered through one
    register_inverter(world)
    world.ok(HOME, metering.register(LOOSE.did, HOME.did, "export", "wh"), cosigners=[LOOSE])
    assert not world.complete(HOME, K0)
    world.read(INVERTER, (0, T0 + 10_000))
    world.read(LOOSE, (0, T0 + 11_000))
    world.read(INVERTER, (10, T0 + L))  # exactly at the end: complete for this meter
    assert not world.complete(HOME, K0)
    world.read(LOOSE, (5, T0 + L + 500))
    assert world.complete(HOME, K0) and not world.complete(HOME, K0 + 1)
    assert world.complete(HOME, K0, "import")  # no import meter
    assert world.energy(HOME, K0) == 10 and world.energy(HOME, K0 + 1) == 5


def test_a_meter_registered_after_the_interval_cannot_change_it(world: World) -> None:
    world.block(T0 + L + 5_000)
    register_inverter(world)
    assert world.complete(HOME, K0) and not world.complete(HOME, K0 + 1)


def test_the_market_interface(world: World) -> None:
    assert world.metering.interval_ms(world.chain.state) == L
    assert World({**GENESIS, "app_state": {}}).metering.interval_ms(Overlay(MappingState({}))) == 900_000
    with pytest.raises(AssertionError):
        world.metering.energy(world.chain.state, HOME.did, "both", K0)


# ---------------------------------------------------------------------------------------------------
# Tariffs


def test_set_tariff(world: World) -> None:
    assert world.metering.tariff(world.chain.state, CHARGER.did) is None
    receipt = world.ok(CHARGER, metering.set_tariff(CHARGER.did, "aut", 3))
    assert dict(receipt.events[0].attributes) == {
        "infra": CHARGER.did,
        "asset": "aut",
        "price_per_unit": 3,
        "by": CHARGER.did,
    }
    assert world.metering.tariff(world.chain.state, CHARGER.did) == keeper.Tariff("aut", 3)
    # A machine's owner sets its tariff; the machine itself may not.
    world.ok(HOME, metering.set_tariff(INVERTER.did, "aut", 0))
    assert world.code(INVERTER, metering.set_tariff(INVERTER.did, "aut", 1)) == "metering.not_authorised"


def test_the_default_tariff_applies_until_an_infrastructure_sets_its_own() -> None:
    genesis = {
        **GENESIS,
        "app_state": {
            **GENESIS["app_state"],
            "metering": {
                "params": {"interval_ms": L, "default_tariff": {"asset": "aut", "price_per_unit": 2}}
            },
        },
    }
    world = World(genesis)
    assert world.metering.tariff(world.chain.state, CHARGER.did) == keeper.Tariff("aut", 2)
    register_socket(world)
    world.deposit(CAR, 100, T0 + HOUR)
    world.read(SOCKET, (0, world.now + 1))
    world.read(SOCKET, (10, world.now + 1))
    assert world.statement(CAR, CHARGER) == keeper.Statement(10, 20, 20, 0)
    world.ok(CHARGER, metering.set_tariff(CHARGER.did, "aut", 5))
    world.read(SOCKET, (11, world.now + 1))
    assert world.statement(CAR, CHARGER) == keeper.Statement(11, 25, 25, 0)


# ---------------------------------------------------------------------------------------------------
# Deposits, billing, debt


@pytest.fixture
def charging(world: World) -> World:
    world.ok(CHARGER, metering.set_tariff(CHARGER.did, "aut", 3))
    register_socket(world)
    world.read(SOCKET, (1_000, world.now + 1))
    return world


def test_deposit_locks_funds_in_escrow(charging: World) -> None:
    world = charging
    receipt = world.ok(CAR, metering.deposit(CHARGER.did, "aut", 300, T0 + HOUR))
    assert [event.type for event in receipt.events] == ["escrow.locked", "metering.deposited"]
    (record,) = world.metering.deposits(world.chain.state, CAR.did)
    assert (record.payer, record.infra, record.asset, record.amount, record.expires_ms) == (
        CAR.did,
        CHARGER.did,
        "aut",
        300,
        T0 + HOUR,
    )
    lock = escrow_keeper.get(world.chain.state, record.lock)
    assert lock is not None
    assert (lock.holder, lock.amount, lock.expires_ms, lock.beneficiaries) == (
        "metering",
        300,
        T0 + HOUR + 1,
        (CHARGER.did,),
    )
    assert world.balance(CAR) == 10_000 - 300


def test_billing_pays_from_the_deposit(charging: World) -> None:
    world = charging
    world.deposit(CAR, 300, T0 + HOUR)
    receipt = world.read(SOCKET, (1_040, world.now + 1))
    assert [event.type for event in receipt.events] == ["metering.read", "escrow.released", "metering.bill"]
    bill = dict(receipt.events[-1].attributes)
    assert bill == {
        "payer": CAR.did,
        "infra": CHARGER.did,
        "meter": SOCKET.did,
        "asset": "aut",
        "quantity": 40,
        "price_per_unit": 3,
        "amount": 120,
        "paid": 120,
    }
    assert world.balance(CHARGER) == 120 and world.balance(CAR) == 10_000 - 300
    assert world.statement(CAR, CHARGER) == keeper.Statement(40, 120, 120, 0)
    interval = (world.now - 1) // L
    assert keeper.read_bill(world.chain.state, CAR.did, CHARGER.did, "aut", interval) == (40, 120)
    assert world.energy(CAR, interval, "import") == 40  # an infrastructure meter is usage too
    (record,) = world.metering.deposits(world.chain.state, CAR.did)
    assert record.amount == 180


def test_what_deposits_cannot_cover_becomes_debt_and_the_next_deposit_pays_it(charging: World) -> None:
    world = charging
    world.deposit(CAR, 100, T0 + HOUR)
    receipt = world.read(SOCKET, (1_050, world.now + 1))  # 150 due, 100 held
    assert [event.type for event in receipt.events][-2:] == ["metering.bill", "metering.debt"]
    assert dict(receipt.events[-1].attributes) == {
        "payer": CAR.did,
        "infra": CHARGER.did,
        "asset": "aut",
        "amount": 50,
        "debt": 50,
    }
    assert world.metering.deposits(world.chain.state, CAR.did) == []  # emptied, the lock closed
    world.read(SOCKET, (1_060, world.now + 1))  # 30 more, nothing to pay from
    assert world.statement(CAR, CHARGER) == keeper.Statement(60, 180, 100, 80)
    receipt = world.ok(CAR, metering.deposit(CHARGER.did, "aut", 50, T0 + HOUR))
    assert [event.type for event in receipt.events] == [
        "escrow.locked",
        "metering.deposited",
        "escrow.released",
        "metering.debt_paid",
    ]
    assert dict(receipt.events[-1].attributes)["debt"] == 30
    assert world.metering.deposits(world.chain.state, CAR.did) == []
    world.deposit(CAR, 100, T0 + HOUR)
    assert world.statement(CAR, CHARGER) == keeper.Statement(60, 180, 180, 0)
    (record,) = world.metering.deposits(world.chain.state, CAR.did)
    assert record.amount == 70
    assert world.balance(CHARGER) == 180 and world.balance(CAR) == 10_000 - 250


def test_deposits_pay_soonest_expiry_first_and_expired_ones_not_at_all(charging: World) -> None:
    world = charging
    late = world.deposit(CAR, 100, T0 + 2 * HOUR)
    soon = world.deposit(CAR, 100, T0 + HOUR)
    world.read(SOCKET, (1_050, world.now + 1))  # 150: 100 from soon, 50 from late
    assert keeper.read_deposit(world.chain.state, soon) is None
    late_record = keeper.read_deposit(world.chain.state, late)
    assert late_record is not None and late_record.amount == 50
    # A block at the late deposit's expiry: the reading in it may not draw on it.
    receipt = world.read(SOCKET, (1_051, T0 + 2 * HOUR - 5), at=T0 + 2 * HOUR)
    assert dict(receipt.events[-1].attributes)["debt"] == 3
    assert keeper.read_deposit(world.chain.state, late) is None  # refunded by end_block
    assert world.balance(CAR) == 10_000 - 150


def test_withdraw(charging: World) -> None:
    world = charging
    lock = world.deposit(CAR, 100, T0 + HOUR)
    assert world.code(STRANGER, metering.withdraw(lock)) == "metering.not_authorised"
    assert world.code(STRANGER, metering.withdraw(lock, 101)) == "metering.not_authorised"
    assert world.code(CAR, metering.withdraw(lock, 101)) == "metering.insufficient_deposit"
    receipt = world.ok(CAR, metering.withdraw(lock, 30))
    assert [event.type for event in receipt.events] == ["escrow.refunded", "metering.withdrawn"]
    assert dict(receipt.events[-1].attributes)["remaining"] == 70
    world.ok(CAR, metering.withdraw(lock))
    assert world.metering.deposits(world.chain.state, CAR.did) == []
    assert escrow_keeper.get(world.chain.state, lock) is None
    assert world.balance(CAR) == 10_000
    assert world.code(CAR, metering.withdraw(lock)) == "metering.unknown_deposit"


def test_deposit_state_codes(charging: World) -> None:
    world = charging
    assert world.code(CAR, metering.deposit(CHARGER.did, "kwh", 10, T0 + HOUR)) == "metering.asset_mismatch"
    assert world.code(CAR, metering.deposit(HOME.did, "aut", 10, T0 + HOUR)) == "metering.no_tariff"
    assert (
        world.code(STRANGER, metering.deposit(CHARGER.did, "aut", 10, T0 + HOUR)) == "bank.insufficient_funds"
    )
    world.ok(HOME, metering.set_tariff(HOME.did, "gold", 1))
    assert world.code(CAR, metering.deposit(HOME.did, "gold", 10, T0 + HOUR)) == "bank.unknown_asset"


def test_expired_deposits_are_refunded_by_metering_before_the_escrow_backstop(charging: World) -> None:
    world = charging
    lock = world.deposit(CAR, 100, T0 + HOUR)
    world.block(T0 + HOUR - 1)
    assert keeper.read_deposit(world.chain.state, lock) is not None
    (result,) = [world.chain.execute([], T0 + HOUR)]
    assert result == ()
    assert keeper.read_deposit(world.chain.state, lock) is None and world.balance(CAR) == 10_000
    assert world.chain.invariants() == [] and orphaned_metering_locks(world.chain.state) == []


def test_end_block_events_of_an_expiry(charging: World) -> None:
    world = charging
    lock = world.deposit(CAR, 100, T0 + HOUR)
    from autarky.ledger.executor import execute_block

    result = execute_block(
        world.chain.state, world.chain.tree, world.chain.next_env(T0 + 2 * HOUR), [], world.chain.app
    )
    types = [event.type for event in result.end_events]
    assert types == ["escrow.refunded", "metering.deposit_expired"]
    assert dict(result.end_events[-1].attributes) == {
        "lock": lock,
        "payer": CAR.did,
        "infra": CHARGER.did,
        "asset": "aut",
        "amount": 100,
    }


def test_a_free_tariff_bills_quantities_only(charging: World) -> None:
    world = charging
    world.ok(CHARGER, metering.set_tariff(CHARGER.did, "aut", 0))
    receipt = world.read(SOCKET, (1_010, world.now + 1))
    assert [event.type for event in receipt.events] == ["metering.read", "metering.bill"]
    assert world.statement(CAR, CHARGER) == keeper.Statement(10, 0, 0, 0)


def test_an_infrastructure_without_a_tariff_does_not_bill(world: World) -> None:
    register_socket(world)
    world.read(SOCKET, (0, world.now + 1))
    receipt = world.read(SOCKET, (10, world.now + 1))
    assert [event.type for event in receipt.events] == ["metering.read"]
    assert keeper.statements_of(world.chain.state, CAR.did) == []


def test_a_batch_bills_each_interval(charging: World) -> None:
    world = charging
    world.deposit(CAR, 1_000, T0 + 2 * HOUR)
    start = world.now + 1
    boundary = (start // L + 1) * L
    world.read(SOCKET, (1_010, boundary), (1_030, boundary + 10), at=boundary + 10)
    bills = keeper.bills_of(world.chain.state, CAR.did)
    assert [(interval - K0, quantity, amount) for _, _, interval, quantity, amount in bills] == [
        (boundary // L - 1 - K0, 10, 30),
        (boundary // L - K0, 20, 60),
    ]


def test_statement_overflow_is_refused(charging: World) -> None:
    world = charging
    world.ok(CHARGER, metering.set_tariff(CHARGER.did, "aut", 2**40))
    assert world.read(SOCKET, (1_000 + 2**24, world.now + 1)).code == "metering.overflow"
    world.read(SOCKET, (1_000 + 2**23, world.now + 1))
    assert world.statement(CAR, CHARGER).debt == 2**63


# ---------------------------------------------------------------------------------------------------
# Genesis


def test_an_empty_section_writes_nothing_and_keeps_the_root() -> None:
    without = {**GENESIS, "app_state": {k: v for k, v in GENESIS["app_state"].items() if k != "metering"}}
    empty = {**without, "app_state": {**without["app_state"], "metering": {}}}
    roots = [execute_genesis(genesis, build_app()).header.state_root for genesis in (without, empty)]
    assert roots[0] == roots[1]
    chain = Chain.from_genesis(empty)
    assert not any(key.startswith("metering/") for key in chain.data)
    assert "metering/params" in Chain.from_genesis(GENESIS).data


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"tariffs": []}, "unknown key"),
        ({"params": []}, "must be a map"),
        ({"params": {"interval_ms": 0}}, "interval_ms"),
        ({"params": {"interval_ms": 2**32 + 1}}, "interval_ms"),
        ({"params": {"interval_ms": True}}, "interval_ms"),
        ({"params": {"default_tariff": {"asset": "aut"}}}, "lacks the key"),
        ({"params": {"default_tariff": {"asset": "A", "price_per_unit": 1}}}, "asset name"),
        ({"params": {"default_tariff": {"asset": "aut", "price_per_unit": -1}}}, "price_per_unit"),
        ({"params": {"interval": 5}}, "unknown key"),
    ],
)
def test_bad_genesis_is_refused(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_params(config)
    with pytest.raises(ValueError, match=message):
        Chain.from_genesis({**GENESIS, "app_state": {**GENESIS["app_state"], "metering": config}})


def test_genesis_defaults() -> None:
    assert parse_params({}) == keeper.Params(900_000, None)
    assert parse_params({"params": {"default_tariff": None}}) == keeper.Params(900_000, None)


def test_build_app_wires_metering_before_the_markets_and_escrow() -> None:
    app = build_app()
    names = [module.name for module in app.modules]
    assert names.index("oracle") < names.index("metering") < names.index("escrow")
    module = app.module("metering")
    assert isinstance(module, MeteringModule)
    assert module.escrow is app.module("escrow") and module.identity is app.module("identity")  # type: ignore[comparison-overlap]
    assert [app.routes[t] for t in metering.MESSAGE_TYPES] == [module] * 6


# ---------------------------------------------------------------------------------------------------
# Invariants find what they claim to find


def corrupted(world: World, edit: Any) -> list[str]:
    state = Overlay(MappingState(dict(world.chain.data)))
    edit(state)
    return world.metering.invariants(state)


def test_invariants_catch_corruption(charging: World) -> None:
    world = charging
    register_inverter(world)
    world.read(INVERTER, (0, world.now + 1))
    world.read(INVERTER, (10, world.now + 1))
    lock = world.deposit(CAR, 100, T0 + HOUR)
    world.read(SOCKET, (1_010, world.now + 1))
    record = world.metering.meter(world.chain.state, INVERTER.did)
    deposit = keeper.read_deposit(world.chain.state, lock)
    assert record is not None and deposit is not None
    assert world.metering.invariants(world.chain.state) == []

    def meter(**changes: Any) -> Any:
        return lambda state: state.set_obj(
            keeper.meter_key(INVERTER.did), dataclasses.replace(record, **changes).to_cbor()
        )

    def set_key(key: str, value: Any) -> Any:
        return lambda state: state.set_obj(key, value)

    cases = {
        "counted": meter(counted=11),
        "baseline without last": lambda state: state.delete(keeper.last_key(INVERTER.did)),
        "last before registration": set_key(keeper.last_key(INVERTER.did), [record.registered_ms - 1, 10]),
        "no baseline yet counted": meter(baseline=None),
        "direction": meter(direction="sideways"),
        "index missing": lambda state: state.delete(keeper.by_subject_key(HOME.did, "export", INVERTER.did)),
        "index unit": set_key(keeper.by_subject_key(HOME.did, "export", INVERTER.did), "kwh"),
        "index extra": set_key(keeper.by_subject_key(NEIGHBOUR.did, "export", INVERTER.did), "wh"),
        "malformed meter": set_key(keeper.meter_key(PUMP.did), {"subject": HOME.did}),
        "usage zero": set_key(keeper.usage_key(HOME.did, "export", K0), 0),
        "bill": set_key(keeper.bill_key(CAR.did, CHARGER.did, "aut", K0), [0, 5]),
        "statement": set_key(
            keeper.statement_key(CAR.did, CHARGER.did, "aut"), keeper.Statement(1, 5, 1, 1).to_cbor()
        ),
        "deposit amount": set_key(
            keeper.deposit_key(lock), dataclasses.replace(deposit, amount=71).to_cbor()
        ),
        "deposit lock gone": set_key(
            keeper.deposit_key(b"\x07" * 32), dataclasses.replace(deposit, lock=b"\x07" * 32).to_cbor()
        ),
        "deposit index missing": lambda state: state.delete(keeper.deposit_of_key(deposit)),
        "due index missing": lambda state: state.delete(keeper.deposit_due_key(deposit.expires_ms, lock)),
        "due index extra": set_key(keeper.deposit_due_key(5, b"\x01" * 32), CAR.did),
        "params": set_key(keeper.PARAMS_KEY, {"interval_ms": 0, "default_tariff": None}),
    }
    for name, edit in cases.items():
        assert corrupted(world, edit) != [], name


# ---------------------------------------------------------------------------------------------------
# The README example runs as written


def test_readme_example_runs() -> None:
    readme = Path(__file__).resolve().parents[2] / "src/autarky/modules/metering/README.md"
    text = readme.read_text(encoding="utf-8")
    example = text.split("## Example", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", example, flags=re.DOTALL)[:1]
    exec(compile(code, str(readme), "exec"), {})


def test_usage_range_scans_across_digit_boundaries() -> None:
    state = Overlay(MappingState({}))
    intervals = [0, 8, 9, 10, 11, 99, 100, 101, 999, 1000, 10**19]
    for interval in intervals:
        keeper.write_usage(state, HOME.did, "export", interval, interval + 1)
    keeper.write_usage(state, HOME.did, "import", 9, 5)  # another direction is never listed
    for first, last in [
        (0, 0),
        (9, 10),
        (8, 11),
        (99, 100),
        (50, 150),
        (999, 1000),
        (0, 10**20 - 1),
        (12, 98),
        (5, 3),
    ]:
        expected = [(k, k + 1) for k in intervals if first <= k <= last]
        assert keeper.usage_range(state, HOME.did, "export", first, last) == expected, (first, last)
