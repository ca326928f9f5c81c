"""The oracle module (feeds, rounds, the median, staleness, reward budgets) through the real executor.

Layout: a small world (an owner, five reporters, a funder, a stranger) on the in-memory chain built
by ``build_app``, then one section per behaviour: names and the median, ``oracle/create_feed``,
reports and finalization in ``end_block``, stale rounds, ``oracle/set_reporters``, ``latest`` and
``fresh``, history, genesis and state roots, reward budgets through the escrow, invariants, and the
README (its error table and its example). A test that names a precedence puts two faults in one
message and checks the one documented first wins.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.block import Receipt
from autarky.ledger.executor import execute_block, execute_genesis
from autarky.ledger.router import App
from autarky.ledger.state import Overlay
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules import build_app
from autarky.modules.bank import BankModule
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.harness import Chain
from autarky.modules.identity import IdentityModule
from autarky.modules.oracle import FinalValue, OracleModule, Round, keeper, lower_median, messages
from autarky.modules.oracle.errors import ORACLE_CODES_IN_PRECEDENCE
from autarky.modules.oracle.records import Budget, Feed, is_feed_name
from autarky.modules.policy import PolicyModule
from autarky.modules.validators import ValidatorsModule

CHAIN_ID = "oracle-test"
T0 = 1_700_000_000_000
BLOCK_MS = 1000
FEED = "grid-price/zone-a"
MINUTE = 60_000


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/oracle-test/" + name.encode()))


OWNER = make_key("owner")
R1, R2, R3, R4, R5 = (make_key(f"reporter-{i}") for i in range(1, 6))
REPORTERS = (R1, R2, R3, R4, R5)
FUNDER = make_key("funder")
STRANGER = make_key("stranger")


def genesis(oracle: dict[str, Any] | None = None) -> dict[str, Any]:
    app_state: dict[str, Any] = {
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "assets": ["kwh"],
            "balances": [
                {"account": key.did, "asset": "aut", "amount": 10_000}
                for key in (OWNER, *REPORTERS, FUNDER, STRANGER)
            ],
        }
    }
    if oracle is not None:
        app_state["oracle"] = oracle
    return {"chain_id": CHAIN_ID, "genesis_time_ms": T0, "app_state": app_state}


class World:
    """A chain and helpers: ``block`` runs one block of transactions, each signed by its sender."""

    def __init__(self, oracle_genesis: dict[str, Any] | None = None) -> None:
        self.chain = Chain.from_genesis(genesis(oracle_genesis), block_ms=BLOCK_MS)
        oracle = self.chain.app.module("oracle")
        assert isinstance(oracle, OracleModule)
        self.oracle = oracle
        self.end_events: list[tuple[str, dict[str, Any]]] = []

    @property
    def now(self) -> int:
        return self.chain.headers[-1].time_ms

    def block(
        self, *txs: tuple[SigningKey, dict[str, Any]], time_ms: int | None = None
    ) -> tuple[Receipt, ...]:
        sequences: dict[str, int] = {}
        raws = []
        for signer, message in txs:
            sequence = sequences.get(signer.did, self.chain.sequence(signer.did))
            sequences[signer.did] = sequence + 1
            body = TxBody(CHAIN_ID, signer.did, sequence, 0, 0, (message,))
            raws.append(sign_tx(body, signer).raw)
        result = execute_block(
            self.chain.state, self.chain.tree, self.chain.next_env(time_ms), raws, self.chain.app
        )
        self.chain.commit(result, tuple(raws))
        self.end_events = [(event.type, dict(event.attributes)) for event in result.end_events]
        assert self.chain.invariants() == []
        return result.receipts

    def run(self, signer: SigningKey, message: dict[str, Any], time_ms: int | None = None) -> Receipt:
        (receipt,) = self.block((signer, message), time_ms=time_ms)
        return receipt

    def create(self, feed: str = FEED, quorum: int = 3, **kwargs: Any) -> Receipt:
        reporters = kwargs.pop("reporters", [key.did for key in REPORTERS])
        heartbeat_ms = kwargs.pop("heartbeat_ms", 10 * MINUTE)
        receipt = self.run(OWNER, messages.create_feed(feed, reporters, quorum, heartbeat_ms, **kwargs))
        return receipt

    def reports(
        self, round_number: int, *pairs: tuple[SigningKey, int], feed: str = FEED, **kw: Any
    ) -> list[str]:
        receipts = self.block(
            *((key, messages.report(feed, round_number, value)) for key, value in pairs), **kw
        )
        return [receipt.code for receipt in receipts]

    def feed(self, name: str = FEED) -> Feed:
        feed = keeper.read_feed(self.chain.state, name)
        assert feed is not None
        return feed

    def round(self, number: int, name: str = FEED) -> Round | None:
        return keeper.read_round(self.chain.state, name, number)

    def balance(self, key_or_account: SigningKey | str, asset: str = "aut") -> int:
        account = key_or_account if isinstance(key_or_account, str) else key_or_account.did
        return bank_keeper.balance(self.chain.state, account, asset)


def codes(receipts: Sequence[Receipt]) -> list[str]:
    return [receipt.code for receipt in receipts]


def events_of(receipt: Receipt, event_type: str) -> list[dict[str, Any]]:
    return [dict(event.attributes) for event in receipt.events if event.type == event_type]


# ---------------------------------------------------------------------------------------------------
# Names and the median


@pytest.mark.parametrize(
    "name",
    ["grid-price/zone-a", "weather/temp-c/farm-1", "a", "0", "x" * 128, "a.b_c-d/e", "rounds/x", "a/roundsx"],
)
def test_valid_feed_names(name: str) -> None:
    assert is_feed_name(name)


@pytest.mark.parametrize(
    "name",
    ["", "x" * 129, "Grid", "a//b", "/a", "a/", "a:b", "-a", "a/.b", "rounds", "grid/rounds", "a b", 7, None],
)
def test_invalid_feed_names(name: object) -> None:
    assert not is_feed_name(name)


@pytest.mark.parametrize(
    ("values", "median"),
    [([5], 5), ([3, 1], 1), ([1, 2, 3], 2), ([4, 1, 3, 2], 2), ([-5, -1, -3], -3), ([7, 7, 1, 9], 7)],
)
def test_lower_median(values: list[int], median: int) -> None:
    assert lower_median(values) == median


# ---------------------------------------------------------------------------------------------------
# oracle/create_feed


def test_create_feed_stores_the_feed_and_emits() -> None:
    world = World()
    receipt = world.create(quorum=3, decimals=4, description="zone A spot price")
    assert receipt.code == "ok"
    (event,) = events_of(receipt, "oracle.feed_created")
    assert event == {
        "feed": FEED,
        "owner": OWNER.did,
        "reporters": 5,
        "quorum": 3,
        "heartbeat_ms": 10 * MINUTE,
        "round_ms": 10 * MINUTE,  # round_ms defaults to the heartbeat
        "decimals": 4,
    }
    feed = world.feed()
    assert feed.owner == OWNER.did and feed.round == 1 and feed.created == world.chain.height
    assert list(feed.reporters) == sorted(key.did for key in REPORTERS)
    assert world.oracle.latest(world.chain.state, FEED) is None
    assert world.oracle.fresh(world.chain.state, FEED, world.now) is None


def test_create_feed_refusals() -> None:
    world = World()
    dids = [key.did for key in REPORTERS]

    def create(**fields: Any) -> str:
        message = messages.create_feed(FEED, dids[:3], 2, MINUTE, decimals=2, description="d")
        message.update(fields)
        return world.run(STRANGER, message).code

    assert create(feed="Grid") == "oracle.invalid_feed"
    assert create(feed="grid/rounds") == "oracle.invalid_feed"
    assert create(reporters=[]) == "oracle.invalid_reporters"
    assert create(reporters=[dids[0], dids[0]]) == "oracle.invalid_reporters"
    assert create(reporters=[dids[0], "did:web:example.org"]) == "oracle.invalid_reporters"
    assert create(reporters=[make_key(f"k{i}").did for i in range(33)]) == "oracle.invalid_reporters"
    assert create(quorum=0) == "oracle.invalid_quorum"
    assert create(quorum=4) == "oracle.invalid_quorum"
    assert create(heartbeat_ms=0) == "oracle.invalid_timing"
    assert create(heartbeat_ms=366 * 24 * 3600 * 1000 + 1) == "oracle.invalid_timing"
    assert create(round_ms=MINUTE + 1) == "oracle.invalid_timing"
    assert create(round_ms=0) == "oracle.invalid_timing"
    assert create(decimals=19) == "oracle.invalid_decimals"
    assert create(decimals=-1) == "oracle.invalid_decimals"
    assert create(description="é" * 129) == "oracle.invalid_description"  # 258 bytes
    assert create(description="é" * 128) == "ok"
    assert create() == "oracle.feed_exists"


@pytest.mark.parametrize(
    "fields",
    [
        {"quorum": True},
        {"quorum": "2"},
        {"reporters": "did:key:z"},
        {"reporters": [1]},
        {"heartbeat_ms": None},
        {"round_ms": "60000"},
        {"decimals": False},
        {"description": None},
        {"feed": b"grid"},
        {"extra": 1},
    ],
)
def test_create_feed_shape_is_core_invalid_message(fields: dict[str, Any]) -> None:
    world = World()
    message = messages.create_feed(FEED, [R1.did], 1, MINUTE)
    message.update(fields)
    assert world.run(OWNER, message).code == "core.invalid_message"
    missing = messages.create_feed(FEED, [R1.did], 1, MINUTE)
    del missing["description"]
    assert world.run(OWNER, missing).code == "core.invalid_message"
    without_round_ms = messages.create_feed(FEED, [R1.did], 1, MINUTE)
    del without_round_ms["round_ms"]  # the one optional field
    assert world.run(OWNER, without_round_ms).code == "ok"


def test_create_feed_precedence() -> None:
    world = World()
    world.create()
    dids = [key.did for key in REPORTERS]
    # Each pair: two faults; the code listed earlier in errors.py wins.
    cases = [
        (messages.create_feed("Bad", [], 0, 0, decimals=99), "oracle.invalid_feed"),
        (messages.create_feed(FEED, [], 0, 0, decimals=99), "oracle.invalid_reporters"),
        (messages.create_feed(FEED, dids, 9, 0, decimals=99), "oracle.invalid_quorum"),
        (messages.create_feed(FEED, dids, 1, 0, decimals=99), "oracle.invalid_timing"),
        (
            messages.create_feed(FEED, dids, 1, 1, decimals=99, description="x" * 300),
            "oracle.invalid_decimals",
        ),
        (messages.create_feed(FEED, dids, 1, 1, description="x" * 300), "oracle.invalid_description"),
        (messages.create_feed(FEED, dids, 1, 1), "oracle.feed_exists"),
    ]
    for message, code in cases:
        assert world.run(STRANGER, message).code == code, message


# ---------------------------------------------------------------------------------------------------
# Reports and finalization


def test_a_round_finalizes_at_the_end_of_the_block_that_reaches_the_quorum() -> None:
    world = World()
    world.create(quorum=3)
    assert world.reports(1, (R1, 100)) == ["ok"]
    opened = world.round(1)
    assert opened is not None and opened.status == "open" and opened.opened_ms == world.now
    assert opened.deadline_ms == world.now + 10 * MINUTE and opened.quorum == 3
    assert world.reports(1, (R2, 300)) == ["ok"]
    assert world.oracle.latest(world.chain.state, FEED) is None  # 2 of 3: still open
    # The third report reaches the quorum; the fourth, in the same block, still counts.
    assert world.reports(1, (R3, 200), (R4, 50)) == ["ok", "ok"]
    final = world.round(1)
    assert final is not None and final.status == "final" and final.closed_ms == world.now
    assert final.value == lower_median([100, 300, 200, 50]) == 100
    assert world.oracle.latest(world.chain.state, FEED) == FinalValue(FEED, 100, 1, world.now)
    assert world.feed().round == 2
    # Round 1 is closed from the next block on.
    assert world.reports(1, (R5, 999)) == ["oracle.round_closed"]
    assert world.reports(2, (R5, 999)) == ["ok"]


def test_finalized_event_and_report_events() -> None:
    world = World()
    world.create(quorum=2)
    receipts = world.block((R1, messages.report(FEED, 1, 10)), (R2, messages.report(FEED, 1, 30)))
    assert codes(receipts) == ["ok", "ok"]
    (reported,) = events_of(receipts[1], "oracle.reported")
    assert reported == {"feed": FEED, "round": 1, "reporter": R2.did, "value": 30, "reports": 2, "quorum": 2}
    assert world.end_events == [
        ("oracle.finalized", {"feed": FEED, "round": 1, "value": 10, "reports": 2, "time_ms": world.now})
    ]


def test_the_order_of_reports_in_a_block_does_not_change_the_value() -> None:
    values = {R1: 7, R2: -3, R3: 12, R4: 12, R5: 0}
    finals = set()
    for order in ([R1, R2, R3, R4, R5], [R5, R4, R3, R2, R1], [R3, R1, R5, R2, R4]):
        world = World()
        world.create(quorum=3)
        assert world.reports(1, *((key, values[key]) for key in order)) == ["ok"] * 5
        latest = world.oracle.latest(world.chain.state, FEED)
        assert latest is not None
        finals.add(latest.value)
    assert finals == {7}  # sorted: -3 0 7 12 12


def test_rounds_across_blocks_finalize_at_the_block_time_of_the_quorum() -> None:
    world = World()
    world.create(quorum=2)
    world.reports(1, (R1, 5))
    world.block()
    world.reports(1, (R2, 9))
    assert world.oracle.latest(world.chain.state, FEED) == FinalValue(FEED, 5, 1, world.now)


def test_report_refusals_and_precedence() -> None:
    world = World()
    world.create(quorum=2, round_ms=5 * MINUTE)
    assert world.run(R1, messages.report("other/feed", 1, 1)).code == "oracle.unknown_feed"
    assert world.run(STRANGER, messages.report(FEED, 1, 1)).code == "oracle.not_reporter"
    assert world.run(R1, messages.report(FEED, 2, 1)).code == "oracle.round_ahead"
    assert world.run(R1, messages.report(FEED, 1, 1)).code == "ok"
    assert world.run(R1, messages.report(FEED, 1, 2)).code == "oracle.already_reported"
    assert world.run(R1, messages.report(FEED, 0, 1)).code == "oracle.invalid_round"
    assert world.run(R1, messages.report(FEED, 1, 2**63)).code == "oracle.invalid_value"
    assert world.run(R1, messages.report(FEED, 1, -(2**63) - 1)).code == "oracle.invalid_value"
    assert world.run(R1, messages.report(FEED, 1, True)).code == "core.invalid_message"
    # Precedence: the earlier code wins when two faults meet.
    assert world.run(STRANGER, messages.report("Bad", 0, 2**70)).code == "oracle.invalid_feed"
    assert world.run(STRANGER, messages.report(FEED, 0, 2**70)).code == "oracle.invalid_round"
    assert world.run(STRANGER, messages.report("nope", 1, 1)).code == "oracle.unknown_feed"
    assert world.run(STRANGER, messages.report(FEED, 9, 1)).code == "oracle.not_reporter"
    world.reports(1, (R2, 1))  # round 1 final; round 2 current
    assert world.run(R1, messages.report(FEED, 1, 1)).code == "oracle.round_closed"
    assert world.run(R1, messages.report(FEED, 3, 1)).code == "oracle.round_ahead"


def test_round_stale_precedes_already_reported() -> None:
    world = World()
    world.create(quorum=3, round_ms=MINUTE)
    world.reports(1, (R1, 1))
    deadline = world.now + MINUTE
    # At the deadline: the reporter that already reported gets round_stale (it is checked first).
    assert world.reports(1, (R1, 1), (R2, 2), time_ms=deadline) == [
        "oracle.round_stale",
        "oracle.round_stale",
    ]
    assert world.round(1) is not None and world.round(1).status == "stale"  # type: ignore[union-attr]


# ---------------------------------------------------------------------------------------------------
# Stale rounds


def test_a_round_without_quorum_goes_stale_at_its_deadline() -> None:
    world = World()
    world.create(quorum=3, heartbeat_ms=10 * MINUTE, round_ms=2 * MINUTE)
    world.reports(1, (R1, 10), (R2, 20))
    opened = world.round(1)
    assert opened is not None
    # One millisecond before the deadline the round still takes reports (and would finalize).
    world.block(time_ms=opened.deadline_ms - 2)
    assert world.round(1).status == "open"  # type: ignore[union-attr]
    # At the deadline it refuses them and closes as stale at the end of that block.
    assert world.reports(1, (R3, 30), time_ms=opened.deadline_ms) == ["oracle.round_stale"]
    stale = world.round(1)
    assert stale is not None and stale.status == "stale" and stale.closed_ms == opened.deadline_ms
    assert stale.value is None and len(stale.reports) == 2
    assert world.feed().round == 2 and world.oracle.latest(world.chain.state, FEED) is None
    assert world.reports(1, (R3, 30)) == ["oracle.round_closed"]
    assert world.reports(2, (R1, 1), (R2, 2), (R3, 3)) == ["ok", "ok", "ok"]
    assert world.oracle.latest(world.chain.state, FEED) == FinalValue(FEED, 2, 2, world.now)


def test_a_stale_round_closes_in_an_empty_block_and_reports_an_event() -> None:
    world = World()
    world.create(quorum=2, round_ms=MINUTE)
    world.reports(1, (R1, 10))
    deadline = world.round(1).deadline_ms  # type: ignore[union-attr]
    world.block(time_ms=deadline + 5000)
    assert world.end_events == [("oracle.round_stale", {"feed": FEED, "round": 1, "reports": 1})]


def test_due_index_is_read_only_up_to_the_block_time() -> None:
    world = World()
    for index, round_ms in enumerate((MINUTE, 3 * MINUTE, 2 * MINUTE)):
        name = f"feed/{index}"
        world.create(feed=name, quorum=2, round_ms=round_ms)
        world.reports(1, (R1, 1), feed=name)
    due = keeper.due_rounds(world.chain.state, world.now + 2 * MINUTE)
    assert [feed for feed, _ in due] == ["feed/0", "feed/2"]  # in deadline order, the 3-minute one not due


# ---------------------------------------------------------------------------------------------------
# oracle/set_reporters


def test_set_reporters_abandons_the_open_round_and_applies_the_new_set() -> None:
    world = World()
    world.create(quorum=3)
    world.reports(1, (R1, 10), (R2, 20))
    assert world.run(R1, messages.set_reporters(FEED, [R1.did], 1)).code == "oracle.not_owner"
    assert world.run(OWNER, messages.set_reporters("nope", [R1.did], 1)).code == "oracle.unknown_feed"
    receipt = world.run(OWNER, messages.set_reporters(FEED, [R3.did, R4.did], 2))
    assert receipt.code == "ok"
    assert events_of(receipt, "oracle.round_abandoned") == [{"feed": FEED, "round": 1, "reports": 2}]
    assert events_of(receipt, "oracle.reporters_set") == [
        {"feed": FEED, "reporters": 2, "quorum": 2, "round": 2}
    ]
    abandoned = world.round(1)
    assert abandoned is not None and abandoned.status == "abandoned" and abandoned.closed_ms == world.now
    assert world.reports(2, (R1, 1)) == ["oracle.not_reporter"]
    assert world.reports(2, (R3, 5), (R4, 7)) == ["ok", "ok"]
    assert world.oracle.latest(world.chain.state, FEED) == FinalValue(FEED, 5, 2, world.now)
    # Without an open round nothing is abandoned and the round number stays.
    receipt = world.run(OWNER, messages.set_reporters(FEED, [R5.did], 1))
    assert events_of(receipt, "oracle.round_abandoned") == [] and world.feed().round == 3


def test_set_reporters_in_the_block_that_reaches_the_quorum_abandons_the_round() -> None:
    world = World()
    world.create(quorum=2)
    receipts = world.block(
        (R1, messages.report(FEED, 1, 1)),
        (R2, messages.report(FEED, 1, 2)),
        (OWNER, messages.set_reporters(FEED, [R1.did, R2.did], 2)),
    )
    assert codes(receipts) == ["ok", "ok", "ok"]
    assert world.round(1).status == "abandoned"  # type: ignore[union-attr]
    assert world.oracle.latest(world.chain.state, FEED) is None


def test_set_reporters_refusals_in_precedence() -> None:
    world = World()
    world.create()
    assert world.run(STRANGER, messages.set_reporters("Bad", [], 0)).code == "oracle.invalid_feed"
    assert world.run(STRANGER, messages.set_reporters(FEED, [], 0)).code == "oracle.invalid_reporters"
    assert world.run(STRANGER, messages.set_reporters(FEED, [R1.did], 2)).code == "oracle.invalid_quorum"
    assert world.run(STRANGER, messages.set_reporters("nope", [R1.did], 1)).code == "oracle.unknown_feed"
    assert world.run(STRANGER, messages.set_reporters(FEED, [R1.did], 1)).code == "oracle.not_owner"


# ---------------------------------------------------------------------------------------------------
# latest and fresh


def test_fresh_until_the_age_reaches_the_heartbeat() -> None:
    world = World()
    world.create(quorum=1, heartbeat_ms=MINUTE)
    world.reports(1, (R1, 42))
    state = world.chain.state
    final = world.oracle.latest(state, FEED)
    assert final == FinalValue(FEED, 42, 1, world.now)
    assert world.oracle.fresh(state, FEED, world.now) == final
    assert world.oracle.fresh(state, FEED, world.now + MINUTE - 1) == final
    assert world.oracle.fresh(state, FEED, world.now + MINUTE) is None
    assert world.oracle.latest(state, FEED) == final  # latest does not age
    assert world.oracle.fresh(state, "nope", world.now) is None and world.oracle.latest(state, "nope") is None


def test_a_feed_whose_rounds_go_stale_keeps_its_last_value_which_ages_out() -> None:
    world = World()
    world.create(quorum=2, heartbeat_ms=3 * MINUTE, round_ms=MINUTE)
    world.reports(1, (R1, 5), (R2, 6))
    finalized_at = world.now
    world.reports(2, (R1, 7))
    world.block(time_ms=finalized_at + 2 * MINUTE)  # round 2 stale
    assert world.round(2).status == "stale"  # type: ignore[union-attr]
    assert world.oracle.fresh(world.chain.state, FEED, world.now) == FinalValue(FEED, 5, 1, finalized_at)
    world.block(time_ms=finalized_at + 3 * MINUTE)
    assert world.oracle.fresh(world.chain.state, FEED, world.now) is None


def test_reading_in_a_handler_and_in_end_block_uses_overlays() -> None:
    world = World()
    world.create(quorum=1)
    world.reports(1, (R1, 3))
    overlay = Overlay(world.chain.state)
    assert world.oracle.fresh(overlay, FEED, world.now) == FinalValue(FEED, 3, 1, world.now)


# ---------------------------------------------------------------------------------------------------
# History


def test_only_the_last_history_rounds_are_kept() -> None:
    world = World({"params": {"history_rounds": 3}})
    world.create(quorum=1)
    for number in range(1, 7):
        world.reports(number, (R1, number))
    stored = [record.round for record in keeper.iter_rounds(world.chain.state, FEED)]
    assert stored == [4, 5, 6]
    assert world.oracle.latest(world.chain.state, FEED) == FinalValue(FEED, 6, 6, world.now)
    assert [r.round for r in keeper.iter_rounds(world.chain.state, FEED, first=5)] == [5, 6]


def test_round_keys_of_one_feed_do_not_mix_with_a_feed_named_below_it() -> None:
    world = World()
    world.create(feed="a", quorum=1)
    world.create(feed="a/00000000000000000001", quorum=1)
    world.reports(1, (R1, 1), feed="a")
    world.reports(1, (R1, 2), feed="a/00000000000000000001")
    assert [(r.feed, r.value) for r in keeper.iter_rounds(world.chain.state, "a")] == [("a", 1)]
    assert [f.name for f in keeper.iter_feeds(world.chain.state)] == ["a", "a/00000000000000000001"]


# ---------------------------------------------------------------------------------------------------
# Genesis and state roots


def _app_without_oracle() -> App:
    identity = IdentityModule()
    policy = PolicyModule(identity=identity)
    return App([identity, BankModule(identity=identity, policy=policy), ValidatorsModule(), policy], identity)


def test_an_empty_oracle_genesis_writes_nothing() -> None:
    without = execute_genesis(genesis(), _app_without_oracle())
    with_oracle = execute_genesis(genesis(), build_app())
    assert with_oracle.header.state_root == without.header.state_root
    assert all(not key.startswith("oracle/") for key, _ in with_oracle.changes)


def test_genesis_params_are_checked_and_stored() -> None:
    world = World({"params": {"max_reporters": 2, "history_rounds": 10}})
    assert keeper.read_params(world.chain.state).max_reporters == 2
    too_many = messages.create_feed(FEED, [R1.did, R2.did, R3.did], 1, MINUTE)
    assert world.run(OWNER, too_many).code == "oracle.invalid_reporters"
    for bad in (
        {"params": {"max_reporters": 0}},
        {"params": {"max_reporters": 257}},
        {"params": {"history_rounds": True}},
        {"params": {"unknown": 1}},
        {"feeds": []},
        {"params": []},
    ):
        with pytest.raises(ValueError, match="oracle genesis"):
            execute_genesis(genesis(bad), build_app())


def test_replay_reproduces_the_state_root() -> None:
    world = World()
    world.create(quorum=2, round_ms=MINUTE)
    world.reports(1, (R1, 1), (R2, 2))
    world.reports(2, (R1, 1))
    world.block(time_ms=world.now + 2 * MINUTE)
    assert world.chain.replay().root == world.chain.root


# ---------------------------------------------------------------------------------------------------
# Reward budgets (through the escrow)


def _fund(
    world: World, amount: int, reward: int, expires_in: int = 60 * MINUTE, key: SigningKey = FUNDER
) -> Receipt:
    return world.run(key, messages.fund(FEED, "aut", amount, reward, world.now + expires_in))


def test_a_budget_pays_every_reporter_of_each_final_round() -> None:
    world = World()
    world.create(quorum=2)
    before = {key: world.balance(key) for key in (*REPORTERS, FUNDER)}
    receipt = _fund(world, 100, 10)
    assert receipt.code == "ok"
    (funded,) = events_of(receipt, "oracle.funded")
    assert funded["amount"] == 100 and funded["reward"] == 10 and funded["payer"] == FUNDER.did
    assert [e.type for e in receipt.events] == ["escrow.locked", "oracle.funded"]
    budget = world.oracle.budget(world.chain.state, FEED)
    assert budget is not None and budget.remaining == 100 and budget.lock == funded["lock"]
    assert world.balance(FUNDER) == before[FUNDER] - 100

    world.reports(1, (R1, 1), (R2, 2), (R3, 3))  # three reporters in the final round: 30
    assert [world.balance(key) - before[key] for key in REPORTERS] == [10, 10, 10, 0, 0]
    budget = world.oracle.budget(world.chain.state, FEED)
    assert budget is not None and budget.remaining == 70 and budget.paid_rounds == 1
    lock = escrow_keeper.get(world.chain.state, budget.lock)
    assert lock is not None and lock.amount == 70 and lock.holder == "oracle"


def test_a_budget_that_cannot_pay_a_whole_round_refunds_the_rest_and_closes() -> None:
    world = World()
    world.create(quorum=2)
    _fund(world, 50, 10)
    start = world.balance(FUNDER)
    world.reports(1, (R1, 1), (R2, 2), (R3, 3))  # 30 paid, 20 left
    world.reports(2, (R1, 5), (R2, 5), (R3, 5))  # would cost 30
    types = [event_type for event_type, _ in world.end_events]
    assert types == ["oracle.finalized", "escrow.refunded", "oracle.budget_closed"]
    closed = world.end_events[-1][1]
    assert closed["reason"] == "spent" and closed["refunded"] == 20 and closed["paid_rounds"] == 1
    assert world.oracle.budget(world.chain.state, FEED) is None
    assert world.balance(FUNDER) == start + 20
    assert world.balance("module:escrow") == 0


def test_a_budget_paid_out_exactly_closes_with_nothing_to_refund() -> None:
    world = World()
    world.create(quorum=2)
    _fund(world, 40, 20)
    world.reports(1, (R1, 1), (R2, 2))
    assert world.oracle.budget(world.chain.state, FEED) is None
    assert world.balance("module:escrow") == 0


def test_an_expired_budget_is_refunded_before_the_rounds_of_its_block() -> None:
    world = World()
    world.create(quorum=1)
    _fund(world, 100, 10, expires_in=5000)
    start = world.balance(FUNDER)
    budget = world.oracle.budget(world.chain.state, FEED)
    assert budget is not None
    # A round finalizes in the very block the budget expires: no reward, everything back.
    world.reports(1, (R1, 1), time_ms=budget.expires_ms)
    assert world.oracle.budget(world.chain.state, FEED) is None
    assert world.balance(FUNDER) == start + 100 and world.balance(R1) == 10_000


def test_defund_and_its_refusals() -> None:
    world = World()
    world.create(quorum=1)
    assert world.run(FUNDER, messages.defund(FEED)).code == "oracle.no_budget"
    assert world.run(FUNDER, messages.defund("nope")).code == "oracle.unknown_feed"
    _fund(world, 100, 10)
    assert _fund(world, 100, 10, key=STRANGER).code == "oracle.budget_exists"
    assert world.run(STRANGER, messages.defund(FEED)).code == "oracle.not_funder"
    receipt = world.run(FUNDER, messages.defund(FEED))
    assert receipt.code == "ok"
    assert [e.type for e in receipt.events] == ["escrow.refunded", "oracle.budget_closed"]
    assert events_of(receipt, "oracle.budget_closed")[0]["reason"] == "withdrawn"
    assert world.balance(FUNDER) == 10_000 and world.oracle.budget(world.chain.state, FEED) is None


def test_fund_refusals_in_precedence() -> None:
    world = World()
    world.create(quorum=1)
    later = world.now + MINUTE
    assert world.run(FUNDER, messages.fund("Bad", "aut", 0, 0, 0)).code == "oracle.invalid_feed"
    assert world.run(FUNDER, messages.fund(FEED, "aut", 5, 0, 0)).code == "oracle.invalid_reward"
    assert world.run(FUNDER, messages.fund(FEED, "aut", 5, 6, 0)).code == "oracle.invalid_reward"
    assert world.run(FUNDER, messages.fund("nope", "aut", 5, 1, 0)).code == "oracle.unknown_feed"
    # The oracle's own codes come first, then the escrow's, then the bank's.
    assert world.run(FUNDER, messages.fund(FEED, "aut", 5, 1, world.now)).code == "escrow.invalid_expiry"
    assert world.run(FUNDER, messages.fund(FEED, "gold", 5, 1, later)).code == "bank.unknown_asset"
    assert world.run(FUNDER, messages.fund(FEED, "aut", 10**6, 1, later)).code == "bank.insufficient_funds"
    assert world.run(FUNDER, messages.fund(FEED, "aut", 5, 1, later)).code == "ok"
    assert world.run(FUNDER, messages.fund(FEED, "aut", 0, 1, later)).code == "oracle.invalid_reward"


def test_fund_without_escrow_is_an_unknown_message() -> None:
    identity = IdentityModule()
    policy = PolicyModule(identity=identity)
    app = App([identity, BankModule(identity=identity, policy=policy), policy, OracleModule()], identity)
    chain = Chain.from_genesis(genesis(), app)
    body = TxBody(CHAIN_ID, FUNDER.did, 0, 0, 0, (messages.fund(FEED, "aut", 5, 1, T0 + MINUTE),))
    (receipt,) = chain.execute([sign_tx(body, FUNDER).raw])
    assert receipt.code == "core.unknown_message"


# ---------------------------------------------------------------------------------------------------
# Invariants catch corruption


def _corrupt(world: World, key: str, value: Any) -> list[str]:
    overlay = Overlay(world.chain.state)
    if value is None:
        overlay.delete(key)
    else:
        overlay.set_obj(key, value)
    return world.oracle.invariants(overlay)


def test_invariants_report_corrupted_state() -> None:
    world = World()
    world.create(quorum=2)
    world.reports(1, (R1, 10), (R2, 30))
    world.reports(2, (R1, 10))
    _fund(world, 100, 10)
    assert world.oracle.invariants(world.chain.state) == []
    final = world.round(1)
    assert final is not None
    wrong_value = final.to_cbor() | {"value": 30}
    assert any("lower median" in p for p in _corrupt(world, keeper.round_key(FEED, 1), wrong_value))
    assert any("pending" in p for p in _corrupt(world, keeper.pending_key(FEED), 2))
    open_round = world.round(2)
    assert open_round is not None
    assert any("missing" in p for p in _corrupt(world, keeper.due_key(open_round.deadline_ms, FEED), None))
    assert any("history" in p for p in _corrupt(world, keeper.round_key(FEED, 1), None))
    latest = FinalValue(FEED, 11, 1, world.now).to_cbor()
    assert any("latest" in p for p in _corrupt(world, keeper.latest_key(FEED), latest))
    budget = world.oracle.budget(world.chain.state, FEED)
    assert budget is not None
    short = Budget(**{**budget.to_cbor(), "remaining": 99}).to_cbor()
    assert any("expects" in p for p in _corrupt(world, keeper.budget_key(FEED), short))
    assert any("malformed" in p for p in _corrupt(world, keeper.feed_key(FEED), {"feed": FEED}))


# ---------------------------------------------------------------------------------------------------
# The README: its error table and its example


README = Path(__file__).resolve().parents[2] / "src/autarky/modules/oracle/README.md"


def test_readme_lists_every_code_in_precedence_order() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("## Errors, in order of precedence", 1)[1]
    listed = re.findall(r"^\| \d+ +\| `(oracle\.[a-z_]+)`", table, flags=re.MULTILINE)
    assert listed == [error.code for error in ORACLE_CODES_IN_PRECEDENCE]


def test_readme_example_runs() -> None:
    text = README.read_text(encoding="utf-8")
    example = text.split("## Example", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", example, flags=re.DOTALL)[:1]
    exec(compile(code, str(README), "exec"), {})


def test_the_guides_module_example_runs() -> None:
    guide = Path(__file__).resolve().parents[2] / "docs/oracle.md"
    section = guide.read_text(encoding="utf-8").split("## From another module", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)[:1]
    namespace: dict[str, Any] = {}
    exec(compile(code, str(guide), "exec"), namespace)
    world = World()
    world.create(quorum=1, heartbeat_ms=MINUTE)
    assert namespace["price_cap"](world.oracle, world.chain.state, world.now) is None
    world.reports(1, (R1, 2150))
    assert namespace["price_cap"](world.oracle, world.chain.state, world.now) == 2150
    assert namespace["price_cap"](world.oracle, world.chain.state, world.now + MINUTE) is None
