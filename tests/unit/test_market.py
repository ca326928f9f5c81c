"""The market module through the real executor, escrow and bank, with small fakes for metering and
the oracle (so a test sets exactly what the meters say and when they are complete).

Layout: a small world (two buyers, two sellers, a stranger) on an in-memory chain whose interval
length is 10 s; then one section per behaviour: placing orders and their escrow, every refusal
code and its precedence, cancelling, clearing (timing, refunds, price cap, no trade), settlement
(timing, delivery, shares, penalties, several zones), genesis, invariants catching corruption, and
the README example with the real metering module. A test that names a precedence puts two faults
in one message and checks the one documented first wins. Invariants run after every block.
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.encoding import canonical_encode
from autarky.ledger.block import Event, Receipt
from autarky.ledger.executor import execute_block, execute_genesis
from autarky.ledger.router import App
from autarky.ledger.state import StateReader
from autarky.ledger.tx import MAX_U64, SignedTx, TxBody, sign_tx
from autarky.modules import build_app
from autarky.modules.bank import BankModule
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.escrow import EscrowModule
from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.harness import Chain
from autarky.modules.identity import IdentityModule
from autarky.modules.market import MarketModule, keeper
from autarky.modules.market import messages as market
from autarky.modules.market.errors import (
    CANCEL_PRECEDENCE,
    MARKET_CODES_IN_PRECEDENCE,
    ORDER_PRECEDENCE,
)
from autarky.modules.market.keeper import ClearingRecord, OrderRecord
from autarky.modules.policy import PolicyModule
from autarky.modules.validators import ValidatorsModule

CHAIN_ID = "market-test"
L = 10_000  # interval length, ms
T0 = 1_000_000  # genesis time: interval 100


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/market-test/" + name.encode()))


B1, B2, S1, S2, STRANGER = (make_key(name) for name in ("b1", "b2", "s1", "s2", "stranger"))
FUNDS = 1_000_000


@dataclasses.dataclass(frozen=True)
class FinalValue:
    value: int
    round: int


class FakeMetering:
    """``MeteringKeeper`` with values set by the test (not in state)."""

    def __init__(self, interval_ms: int = L) -> None:
        self.length = interval_ms
        self.exports: dict[tuple[str, int], int] = {}
        self.complete: dict[tuple[str, int], bool] = {}

    def interval_ms(self, state: StateReader) -> int:
        return self.length

    def energy(self, state: StateReader, account: str, direction: str, interval: int) -> int:
        assert direction == "export"
        return self.exports.get((account, interval), 0)

    def readings_complete(self, state: StateReader, account: str, direction: str, interval: int) -> bool:
        assert direction == "export"
        return self.complete.get((account, interval), False)

    def deliver(self, seller: SigningKey, interval: int, units: int, complete: bool = True) -> None:
        self.exports[seller.did, interval] = units
        self.complete[seller.did, interval] = complete


class FakeOracle:
    def __init__(self) -> None:
        self.values: dict[str, int | None] = {}
        self.asked: list[tuple[str, int]] = []

    def fresh(self, state: StateReader, feed: str, now_ms: int) -> FinalValue | None:
        self.asked.append((feed, now_ms))
        value = self.values.get(feed)
        return None if value is None else FinalValue(value, 1)


def market_app(metering: FakeMetering, oracle: FakeOracle | None) -> App:
    identity = IdentityModule()
    policy = PolicyModule(identity=identity)
    bank = BankModule(identity=identity, policy=policy)
    escrow = EscrowModule(bank)
    market_module = MarketModule(escrow=escrow, metering=metering, oracle=oracle)
    return App([identity, bank, ValidatorsModule(), policy, market_module, escrow], authenticator=identity)


def genesis(market_section: dict[str, Any] | None = None) -> dict[str, Any]:
    section = (
        {
            "zones": [
                {"name": "north", "penalty_per_unit": 2},
                {"name": "south"},
                {"name": "capped", "price_cap_feed": "grid-price/capped"},
            ],
            "max_orders_per_interval": 5,
            "max_intervals_ahead": 10,
            "settlement_delay_ms": 3 * L,
        }
        if market_section is None
        else market_section
    )
    return {
        "chain_id": CHAIN_ID,
        "genesis_time_ms": T0,
        "app_state": {
            "bank": {
                "params": {"fee_asset": "aut", "min_fee": 0},
                "assets": ["kwh"],
                "balances": [
                    {"account": key.did, "asset": "aut", "amount": FUNDS} for key in (B1, B2, S1, S2)
                ]
                + [{"account": STRANGER.did, "asset": "aut", "amount": 10}],
            },
            "market": section,
        },
    }


class World:
    """The chain, its fakes, and helpers that sign, run one transaction per block and check invariants."""

    def __init__(self, market_section: dict[str, Any] | None = None) -> None:
        self.metering = FakeMetering()
        self.oracle = FakeOracle()
        self.chain = Chain.from_genesis(genesis(market_section), app=market_app(self.metering, self.oracle))
        module = self.chain.app.module("market")
        assert isinstance(module, MarketModule)
        self.market = module
        self.time = T0
        self.end_events: list[Event] = []

    def tx(self, signer: SigningKey, *msgs: dict[str, Any]) -> SignedTx:
        body = TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, tuple(msgs))
        return sign_tx(body, signer)

    def block(self, *txs: SignedTx, at: int | None = None) -> tuple[Receipt, ...]:
        """One block at time ``at`` (default: 1 ms after the last), then the invariants."""
        self.time = self.time + 1 if at is None else at
        raws = tuple(tx.raw for tx in txs)
        result = execute_block(
            self.chain.state, self.chain.tree, self.chain.next_env(self.time), raws, self.chain.app
        )
        self.chain.commit(result, raws)
        self.end_events = list(result.end_events)
        assert self.chain.invariants() == []
        return result.receipts

    def run(self, signer: SigningKey, *msgs: dict[str, Any], at: int | None = None) -> Receipt:
        (receipt,) = self.block(self.tx(signer, *msgs), at=at)
        return receipt

    def code(self, signer: SigningKey, *msgs: dict[str, Any], at: int | None = None) -> str:
        return self.run(signer, *msgs, at=at).code

    def place(self, signer: SigningKey, message: dict[str, Any], at: int | None = None) -> bytes:
        tx = self.tx(signer, message)
        (receipt,) = self.block(tx, at=at)
        assert receipt.code == "ok", receipt.detail
        return keeper.new_order_id(tx.hash, 0)

    def order(self, order_id: bytes) -> OrderRecord:
        record = keeper.order(self.chain.state, order_id)
        assert record is not None
        return record

    def clearing(self, zone: str, interval: int) -> ClearingRecord | None:
        return keeper.clearing(self.chain.state, zone, interval)

    def balance(self, key: SigningKey | str, asset: str = "aut") -> int:
        account = key if isinstance(key, str) else key.did
        return bank_keeper.balance(self.chain.state, account, asset)

    def market_locks(self) -> list[Any]:
        return [
            lock
            for key in (B1, B2, S1, S2, STRANGER)
            for lock in escrow_keeper.locks_of(self.chain.state, key.did)
            if lock.holder == "market"
        ]


@pytest.fixture
def world() -> World:
    return World()


K = T0 // L + 2  # an interval two intervals ahead of genesis: its gate is at K * L


# ---------------------------------------------------------------------------------------------------
# Placing orders


def test_a_bid_escrows_quantity_times_limit_and_names_its_order(world: World) -> None:
    tx = world.tx(B1, market.bid("north", K, 100, 30))
    (receipt,) = world.block(tx)
    assert receipt.code == "ok"
    order_id = keeper.new_order_id(tx.hash, 0)
    assert [event.type for event in receipt.events] == ["escrow.locked", "market.order"]
    event = receipt.events[1]
    assert event.get("order") == order_id and event.get("escrowed") == 3000 and event.get("side") == "bid"
    record = world.order(order_id)
    assert (record.owner, record.status, record.escrowed, record.height) == (B1.did, "open", 3000, 1)
    assert record.lock == receipt.events[0].get("lock")
    assert world.balance(B1) == FUNDS - 3000 and world.balance("module:escrow") == 3000
    lock = escrow_keeper.get(world.chain.state, record.lock)  # type: ignore[arg-type]
    assert lock is not None and (lock.holder, lock.purpose, lock.amount) == ("market", "market/bid", 3000)
    assert lock.expires_ms > (K + 1) * L + 3 * L  # a backstop beyond the settlement deadline
    assert keeper.open_count(world.chain.state, K, "north") == 1


def test_an_ask_escrows_collateral_only_where_there_is_a_penalty(world: World) -> None:
    north = world.place(S1, market.ask("north", K, 50, 10))
    south = world.place(S1, market.ask("south", K, 50, 0))
    assert world.order(north).escrowed == 100 and world.order(north).lock is not None
    assert world.order(north).penalty_per_unit == 2
    assert world.order(south).escrowed == 0 and world.order(south).lock is None
    assert world.balance(S1) == FUNDS - 100


def test_several_orders_in_one_transaction_get_ids_by_message_index(world: World) -> None:
    tx = world.tx(
        B1, market.bid("north", K, 1, 5), market.bid("south", K, 2, 5), market.ask("south", K, 3, 1)
    )
    (receipt,) = world.block(tx)
    assert receipt.code == "ok"
    ids = [keeper.new_order_id(tx.hash, index) for index in range(3)]
    assert [world.order(order_id).quantity for order_id in ids] == [1, 2, 3]
    assert [event.get("order") for event in receipt.events if event.type == "market.order"] == ids


# ---------------------------------------------------------------------------------------------------
# Refusals, in order of precedence


def test_every_code_is_listed_once_namespaced_and_in_the_readme() -> None:
    codes = [error.code for error in MARKET_CODES_IN_PRECEDENCE]
    assert len(codes) == len(set(codes)) and all(code.startswith("market.") for code in codes)
    readme = (Path(__file__).resolve().parents[2] / "src/autarky/modules/market/README.md").read_text()
    table = re.findall(r"^\| \d+ +\| `(market\.[a-z_]+)`", readme, re.MULTILINE)
    assert table == codes
    order_codes = [error.code for error in ORDER_PRECEDENCE]
    cancel_codes = [error.code for error in CANCEL_PRECEDENCE]
    for subset in (order_codes, cancel_codes):
        assert subset == sorted(subset, key=codes.index)


@pytest.mark.parametrize(
    "message",
    [
        {"type": "market/bid", "zone": "north", "interval": 1, "quantity": 1},
        {"type": "market/bid", "zone": "north", "interval": 1, "quantity": 1, "limit_price": 1, "x": 1},
        {"type": "market/bid", "zone": "north", "interval": True, "quantity": 1, "limit_price": 1},
        {"type": "market/ask", "zone": 7, "interval": 1, "quantity": 1, "limit_price": 1},
        {"type": "market/cancel", "order": b"\0" * 31},
        {"type": "market/cancel", "order": "00" * 32},
    ],
)
def test_malformed_messages_are_invalid(world: World, message: dict[str, Any]) -> None:
    assert world.code(B1, message) == "core.invalid_message"


def test_message_value_codes_in_precedence(world: World) -> None:
    assert world.code(B1, market.bid("north", -1, 0, 0)) == "market.invalid_interval"
    assert world.code(B1, market.bid("north", 10**16, 1, 1)) == "market.invalid_interval"
    assert world.code(B1, market.bid("nowhere", K, 0, 0)) == "market.invalid_quantity"
    assert world.code(B1, market.bid("nowhere", K, MAX_U64 + 1, 1)) == "market.invalid_quantity"
    assert world.code(B1, market.bid("nowhere", K, 1, 0)) == "market.invalid_price"
    assert world.code(B1, market.ask("nowhere", K, 1, -1)) == "market.invalid_price"
    assert world.code(B1, market.ask("nowhere", K, 1, MAX_U64 + 1)) == "market.invalid_price"
    assert world.code(B1, market.bid("Nowhere/x", K, 2**40, 2**40)) == "market.unknown_zone"


def test_state_codes_in_precedence(world: World) -> None:
    now = T0 + 1
    assert world.code(B1, market.bid("north", 0, 2**40, 2**40), at=now) == "market.too_large"
    assert world.code(S1, market.ask("north", 0, 2**63, 0), at=now + 1) == "market.too_large"  # * 2
    assert world.code(B1, market.bid("north", T0 // L, 1, 1)) == "market.gate_closed"  # began
    assert world.code(B1, market.bid("north", T0 // L + 11, 1, 1)) == "market.too_far_ahead"
    assert world.code(B1, market.bid("north", T0 // L + 10, 1, 1)) == "ok"
    for _ in range(5):
        world.place(B2, market.bid("south", K, 1, 1))
    assert world.code(S1, market.ask("south", K, 1, 1)) == "market.book_full"
    assert world.code(S1, market.ask("south", K - 2, 1, 1)) == "market.gate_closed"  # before book_full
    assert world.code(S1, market.ask("south", K + 1, 1, 1)) == "ok"  # another book


def test_escrow_codes_come_last(world: World) -> None:
    assert world.code(STRANGER, market.bid("north", K, 11, 1)) == "bank.insufficient_funds"
    assert world.code(STRANGER, market.bid("north", K, 10, 1)) == "ok"
    assert world.code(STRANGER, market.bid("north", K, 1, 1)) == "bank.insufficient_funds"
    assert world.code(STRANGER, market.ask("south", K, 10**6, 5)) == "ok"  # no collateral there
    other = World({"zones": [{"name": "kwh-zone", "asset": "nope"}]})
    assert other.code(B1, market.bid("kwh-zone", K, 1, 1)) == "bank.unknown_asset"


# ---------------------------------------------------------------------------------------------------
# Cancelling


def test_cancel_returns_the_escrow_and_leaves_the_record(world: World) -> None:
    bid = world.place(B1, market.bid("north", K, 10, 7))
    ask = world.place(S1, market.ask("north", K, 10, 1))
    receipt = world.run(B1, market.cancel(bid))
    assert receipt.code == "ok"
    assert [event.type for event in receipt.events] == ["escrow.refunded", "market.cancelled"]
    assert world.order(bid).status == "cancelled" and world.balance(B1) == FUNDS
    assert keeper.open_count(world.chain.state, K, "north") == 1
    assert world.code(S1, market.cancel(ask)) == "ok"
    assert keeper.open_count(world.chain.state, K, "north") == 0
    world.block(at=K * L)
    assert world.clearing("north", K) is None  # only cancelled orders: nothing to clear
    assert world.balance(S1) == FUNDS and world.market_locks() == []


def test_cancel_of_an_ask_without_collateral(world: World) -> None:
    ask = world.place(S1, market.ask("south", K, 10, 1))
    receipt = world.run(S1, market.cancel(ask))
    assert [event.type for event in receipt.events] == ["market.cancelled"]


def test_cancel_codes_in_precedence(world: World) -> None:
    bid = world.place(B1, market.bid("north", K, 10, 7))
    assert world.code(B2, market.cancel(b"\1" * 32)) == "market.unknown_order"
    assert world.code(B2, market.cancel(bid)) == "market.not_owner"
    assert world.code(B1, market.cancel(bid)) == "ok"
    assert world.code(B1, market.cancel(bid)) == "market.not_open"
    late = world.place(B1, market.bid("north", K, 10, 7))
    assert world.code(B1, market.cancel(late), at=K * L) == "market.gate_closed"  # cleared in this block
    assert world.order(late).status == "unfilled"
    assert world.code(B1, market.cancel(late)) == "market.not_open"


# ---------------------------------------------------------------------------------------------------
# Clearing


def test_a_book_clears_in_the_first_block_at_or_after_its_gate(world: World) -> None:
    bid = world.place(B1, market.bid("north", K, 100, 30))
    ask = world.place(S1, market.ask("north", K, 80, 10))
    world.block(at=K * L - 1)
    assert world.clearing("north", K) is None and world.order(bid).status == "open"
    world.block(world.tx(B2, market.bid("south", K + 1, 1, 1)), at=K * L + 5)
    clearing = world.clearing("north", K)
    assert clearing is not None
    assert (clearing.price, clearing.volume, clearing.status) == (30, 80, "settling")
    assert (clearing.height, clearing.time_ms, clearing.deadline_ms) == (
        world.chain.height,
        K * L + 5,
        (K + 4) * L,
    )
    assert keeper.open_count(world.chain.state, K, "north") == 0
    assert keeper.settling(world.chain.state) == [(K, "north", (K + 4) * L, [S1.did])]
    # The bid keeps price * fill = 2400 of its 3000; the ask keeps fill * 2 = 160 of its 160.
    assert world.order(bid).status == "cleared" and world.order(bid).fill == 80
    assert world.balance(B1) == FUNDS - 2400 and world.balance(S1) == FUNDS - 160
    assert world.balance("module:escrow") == 2400 + 160 + 1
    assert world.order(ask).fill == 80


def test_end_block_events_of_clearing(world: World) -> None:
    world.place(B1, market.bid("south", K, 5, 9))
    world.place(S1, market.ask("south", K, 5, 3))
    world.block(at=K * L)
    # The bid (limit 9, price 6) gets 5 * 3 back; the ask escrowed nothing (no penalty in south).
    types = sorted(event.type for event in world.end_events[:-1])
    assert types == ["escrow.refunded", "market.filled", "market.filled"]
    refund = next(event for event in world.end_events if event.type == "escrow.refunded")
    assert refund.get("amount") == 15 and refund.get("remaining") == 30
    cleared = world.end_events[-1]
    assert cleared.type == "market.cleared"
    assert (cleared.get("price"), cleared.get("volume"), cleared.get("bids"), cleared.get("asks")) == (
        6,
        5,
        1,
        1,
    )
    filled = [event for event in world.end_events if event.type == "market.filled"]
    assert {event.get("fill") for event in filled} == {5} and {event.get("price") for event in filled} == {6}


def test_unfilled_orders_get_everything_back_and_a_book_without_trade_is_recorded(world: World) -> None:
    bid = world.place(B1, market.bid("north", K, 10, 5))
    ask = world.place(S1, market.ask("north", K, 10, 6))
    world.block(at=K * L)
    clearing = world.clearing("north", K)
    assert clearing is not None and (clearing.price, clearing.volume, clearing.status) == (
        None,
        0,
        "no_trade",
    )
    assert world.order(bid).status == world.order(ask).status == "unfilled"
    assert world.balance(B1) == world.balance(S1) == FUNDS and world.market_locks() == []
    assert keeper.settling(world.chain.state) == []


def test_partial_fill_refunds_the_rest_at_clearing(world: World) -> None:
    b1 = world.place(B1, market.bid("south", K, 10, 40))
    b2 = world.place(B2, market.bid("south", K, 10, 30))
    world.place(S1, market.ask("south", K, 15, 20))
    world.block(at=K * L)
    # b1 takes 10, b2 the last 5: demand left at 30 -> price 30.
    assert (world.order(b1).fill, world.order(b2).fill) == (10, 5)
    assert world.clearing("south", K).price == 30  # type: ignore[union-attr]
    assert world.balance(B1) == FUNDS - 300 and world.balance(B2) == FUNDS - 150


def test_books_of_several_zones_and_intervals_clear_in_one_block(world: World) -> None:
    for zone in ("south", "north"):
        world.place(B1, market.bid(zone, K, 5, 9))
        world.place(S1, market.ask(zone, K, 5, 3))
    world.place(B1, market.bid("south", K + 1, 5, 9))
    world.place(S1, market.ask("south", K + 1, 5, 3))
    world.block(at=(K + 1) * L)  # both intervals have begun
    books = (("north", K), ("south", K), ("south", K + 1))
    assert [getattr(world.clearing(zone, k), "price", None) for zone, k in books] == [6, 6, 6]


def test_a_fresh_cap_excludes_dearer_asks_and_bounds_the_price(world: World) -> None:
    world.oracle.values["grid-price/capped"] = 25
    world.place(B1, market.bid("capped", K, 10, 100))
    cheap = world.place(S1, market.ask("capped", K, 4, 20))
    dear = world.place(S2, market.ask("capped", K, 10, 30))
    world.block(at=K * L)
    clearing = world.clearing("capped", K)
    assert clearing is not None and (clearing.price, clearing.volume, clearing.cap) == (25, 4, 25)
    assert not clearing.cap_stale and clearing.asks == 2
    assert world.order(cheap).fill == 4 and world.order(dear).status == "unfilled"
    assert ("grid-price/capped", K * L) in world.oracle.asked


def test_a_stale_cap_feed_clears_without_a_cap(world: World) -> None:
    world.oracle.values["grid-price/capped"] = None
    world.place(B1, market.bid("capped", K, 10, 100))
    world.place(S2, market.ask("capped", K, 10, 30))
    world.block(at=K * L)
    clearing = world.clearing("capped", K)
    assert clearing is not None and (clearing.price, clearing.cap, clearing.cap_stale) == (65, None, True)


# ---------------------------------------------------------------------------------------------------
# Settlement


def _cleared_book(world: World) -> tuple[bytes, bytes]:
    bid = world.place(B1, market.bid("north", K, 80, 30))
    ask = world.place(S1, market.ask("north", K, 80, 10))
    world.block(at=K * L)
    assert world.clearing("north", K).price == 20  # type: ignore[union-attr]
    return bid, ask


def test_settlement_waits_for_the_end_of_the_interval_and_complete_readings(world: World) -> None:
    bid, ask = _cleared_book(world)
    world.metering.deliver(S1, K, 80, complete=True)
    world.block(at=(K + 1) * L - 1)  # readings say complete, but the interval is not over
    assert world.clearing("north", K).status == "settling"  # type: ignore[union-attr]
    world.metering.deliver(S1, K, 80, complete=False)
    world.block(at=(K + 1) * L)
    assert world.clearing("north", K).status == "settling"  # type: ignore[union-attr]
    world.metering.deliver(S1, K, 80, complete=True)
    world.block(at=(K + 1) * L + 1)
    clearing = world.clearing("north", K)
    assert clearing is not None and (clearing.status, clearing.delivered, clearing.penalty) == (
        "settled",
        80,
        0,
    )
    assert clearing.settled_height == world.chain.height
    assert world.balance(B1) == FUNDS - 1600 and world.balance(S1) == FUNDS + 1600
    assert world.order(bid).status == world.order(ask).status == "settled"
    assert (world.order(bid).paid, world.order(ask).paid) == (1600, 1600)
    assert world.market_locks() == [] and keeper.settling(world.chain.state) == []
    assert keeper.delivered(world.chain.state, K, S1.did) == 80


def test_short_delivery_pays_what_was_delivered_and_penalises_the_rest(world: World) -> None:
    bid, ask = _cleared_book(world)
    world.metering.deliver(S1, K, 70)
    world.block(at=(K + 1) * L)
    assert (world.order(bid).delivered, world.order(bid).paid, world.order(bid).penalty) == (70, 1400, 20)
    assert (world.order(ask).delivered, world.order(ask).paid, world.order(ask).penalty) == (70, 1400, 20)
    assert world.balance(B1) == FUNDS - 1400 + 20 and world.balance(S1) == FUNDS + 1400 - 20


def test_more_metered_than_sold_credits_only_the_fill(world: World) -> None:
    _, ask = _cleared_book(world)
    world.metering.deliver(S1, K, 500)
    world.block(at=(K + 1) * L)
    assert world.order(ask).delivered == 80 and world.balance(S1) == FUNDS + 1600


def test_the_deadline_settles_with_whatever_was_metered(world: World) -> None:
    bid, _ = _cleared_book(world)
    world.metering.deliver(S1, K, 30, complete=False)
    world.block(at=(K + 4) * L - 1)
    assert world.clearing("north", K).status == "settling"  # type: ignore[union-attr]
    world.block(at=(K + 4) * L)  # the deadline: (K+1)*L + 3*L
    assert world.clearing("north", K).status == "settled"  # type: ignore[union-attr]
    assert world.order(bid).delivered == 30 and world.order(bid).penalty == 100  # 50 short * 2
    assert world.balance(B1) == FUNDS - 600 + 100 and world.balance(S1) == FUNDS + 600 - 100


def test_a_seller_without_meters_delivered_nothing(world: World) -> None:
    bid, _ = _cleared_book(world)
    world.metering.complete[S1.did, K] = True  # no meter: complete, nothing exported
    world.block(at=(K + 1) * L)
    assert world.order(bid).delivered == 0 and world.balance(B1) == FUNDS + 160
    assert world.balance(S1) == FUNDS - 160


def test_buyers_share_delivery_by_largest_remainder(world: World) -> None:
    b1 = world.place(B1, market.bid("south", K, 4, 50))
    b2 = world.place(B2, market.bid("south", K, 3, 50))
    stranger = world.place(STRANGER, market.bid("south", K, 2, 5))
    world.place(S1, market.ask("south", K, 9, 5))
    world.block(at=K * L)
    assert world.clearing("south", K).price == 5  # type: ignore[union-attr]
    world.metering.deliver(S1, K, 5)
    world.block(at=(K + 1) * L)
    # 5 delivered of 9: 20/9, 15/9, 10/9 -> 2, 1, 1 and the leftover to b2 (remainder 6/9).
    assert [world.order(order).delivered for order in (b1, b2, stranger)] == [2, 2, 1]
    assert world.balance(STRANGER) == 10 - 5 and world.balance(S1) == FUNDS + 25


def test_one_sellers_export_counts_once_over_its_asks_and_zones(world: World) -> None:
    world.place(B1, market.bid("north", K, 50, 10))
    north = world.place(S1, market.ask("north", K, 50, 10))
    world.place(B2, market.bid("south", K, 50, 10))
    south_1 = world.place(S1, market.ask("south", K, 30, 10))
    south_2 = world.place(S1, market.ask("south", K, 20, 10))
    world.block(at=K * L)
    world.metering.deliver(S1, K, 60)  # 60 metered for 100 sold in all
    world.block(at=(K + 1) * L)
    # The books settle in zone order: north takes 50, south gets the 10 left (to its first ask).
    assert [world.order(order).delivered for order in (north, south_1, south_2)] == [50, 10, 0]
    assert keeper.delivered(world.chain.state, K, S1.did) == 60
    assert world.balance(S1) == FUNDS + 600 - 2 * 0  # south has no penalty; north delivered in full


def test_trading_with_oneself_is_settled_like_any_trade(world: World) -> None:
    world.place(S1, market.bid("north", K, 10, 10))
    world.place(S1, market.ask("north", K, 10, 10))
    world.block(at=K * L)
    world.metering.deliver(S1, K, 4)
    world.block(at=(K + 1) * L)
    assert world.balance(S1) == FUNDS and world.market_locks() == []


def test_price_zero_closes_the_buyers_escrow_at_clearing(world: World) -> None:
    bid = world.place(B1, market.bid("north", K, 10, 1))
    world.place(S1, market.ask("north", K, 20, 0))
    world.block(at=K * L)
    assert world.clearing("north", K).price == 0  # type: ignore[union-attr]
    assert escrow_keeper.get(world.chain.state, world.order(bid).lock) is None  # type: ignore[arg-type]
    world.metering.deliver(S1, K, 6)
    world.block(at=(K + 1) * L)
    assert world.order(bid).penalty == 8 and world.balance(B1) == FUNDS + 8


def test_value_is_conserved_and_no_market_lock_outlives_its_book(world: World) -> None:
    supply = bank_keeper.supply(world.chain.state, "aut")
    world.place(STRANGER, market.bid("north", K, 1, 10))
    for index, key in enumerate((B1, B2)):
        world.place(key, market.bid("north", K, 3 + index, 20 + index))
    for index, key in enumerate((S1, S2)):
        world.place(key, market.ask("north", K, 4 + index, 15 + index))
    world.block(at=K * L)
    world.metering.deliver(S1, K, 2)
    world.metering.deliver(S2, K, 9)
    world.block(at=(K + 1) * L)
    assert world.market_locks() == [] and world.balance("module:escrow") == 0
    assert sum(world.balance(key) for key in (B1, B2, S1, S2, STRANGER)) == supply


# ---------------------------------------------------------------------------------------------------
# Queries


def test_queries(world: World) -> None:
    bid = world.place(B1, market.bid("south", K, 5, 9))
    world.place(S1, market.ask("south", K, 5, 3))
    state = world.chain.state
    assert [zone.name for zone in world.market.zones(state)] == ["capped", "north", "south"]
    assert world.market.interval_ms(state) == L
    assert [record.side for record in world.market.book(state, "south", K)] in (
        ["bid", "ask"],
        ["ask", "bid"],
    )
    assert world.market.order(state, bid) == world.order(bid)
    for k in (K, K + 1, K + 2):
        world.place(B1, market.bid("south", k + 1, 1, 9))
        world.place(S1, market.ask("south", k + 1, 1, 3))
        world.block(at=k * L)
    history = world.market.prices(world.chain.state, "south", K, K + 2, 100)
    assert [(record.interval, record.price) for record in history] == [(K, 6), (K + 1, 6), (K + 2, 6)]
    assert [
        record.interval for record in world.market.prices(world.chain.state, "south", K + 1, 10**9, 1)
    ] == [K + 1]
    assert world.market.prices(world.chain.state, "north", 0, 10**9, 10) == []


# ---------------------------------------------------------------------------------------------------
# Genesis


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        ({"zone": []}, "unknown key 'zone'"),
        ({"zones": []}, "1 to 64 zones"),
        ({"zones": [{"name": "A"}]}, "zones\\[0\\].name"),
        ({"zones": [{"name": "a"}, {"name": "a"}]}, "repeats"),
        ({"zones": [{"name": "a", "colour": 1}]}, "unknown key 'colour'"),
        ({"zones": [{"name": "a", "asset": "A"}]}, "asset"),
        ({"zones": [{"name": "a", "unit": ""}]}, "unit"),
        ({"zones": [{"name": "a", "penalty_per_unit": -1}]}, "penalty_per_unit"),
        ({"zones": [{"name": "a", "price_cap_feed": ""}]}, "price_cap_feed"),
        ({"max_orders_per_interval": 0}, "max_orders_per_interval"),
        ({"max_intervals_ahead": True}, "max_intervals_ahead"),
        ({"settlement_delay_ms": 31 * 24 * 3_600_000}, "settlement_delay_ms"),
    ],
)
def test_bad_genesis_is_refused(section: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Chain.from_genesis(genesis(section), app=market_app(FakeMetering(), FakeOracle()))


def test_a_cap_feed_needs_an_oracle() -> None:
    with pytest.raises(ValueError, match="runs no oracle"):
        Chain.from_genesis(genesis(), app=market_app(FakeMetering(), None))


def test_an_empty_section_stores_nothing_and_runs_the_default_zone() -> None:
    world = World({})
    assert not any(key.startswith("market/") for key in world.chain.data)
    assert [zone.name for zone in world.market.zones(world.chain.state)] == ["main"]
    assert world.market.params(world.chain.state).max_orders_per_interval == 1000
    assert world.code(B1, market.bid("main", K, 1, 1)) == "ok"
    assert world.code(B1, market.bid("north", K, 1, 1)) == "market.unknown_zone"
    plain = {**genesis(), "app_state": {"bank": genesis()["app_state"]["bank"]}}
    identity = IdentityModule()
    without = App([identity, BankModule(identity=identity), ValidatorsModule()], authenticator=identity)
    assert (
        execute_genesis(plain, build_app()).header.state_root
        == execute_genesis(plain, without).header.state_root
    )


def test_build_app_wires_the_market_with_the_real_modules() -> None:
    app = build_app()
    module = app.module("market")
    assert isinstance(module, MarketModule)
    assert module.escrow is app.module("escrow") and module.metering is app.module("metering")  # type: ignore[comparison-overlap]
    assert module.oracle is app.module("oracle")  # type: ignore[comparison-overlap]
    names = [m.name for m in app.modules]
    assert names.index("metering") < names.index("market") < names.index("escrow")
    assert names.index("oracle") < names.index("market")


# ---------------------------------------------------------------------------------------------------
# Invariants catch corruption


def _corrupt(world: World, key: str, value: Any) -> list[str]:
    world.chain.state.apply([(key, canonical_encode(value))])
    return world.chain.invariants()


def test_invariants_catch_a_lock_that_disagrees_with_its_order(world: World) -> None:
    bid = world.place(B1, market.bid("north", K, 10, 7))
    record = world.order(bid).to_cbor()
    assert any(
        "expects 71" in problem
        for problem in _corrupt(world, keeper.order_key(bid), {**record, "escrowed": 71})
    )


def test_invariants_catch_an_open_index_out_of_step(world: World) -> None:
    world.place(B1, market.bid("north", K, 10, 7))
    problems = _corrupt(world, keeper.open_key(K, "north"), 2)
    assert any("counts 2 open orders" in problem for problem in problems)


def test_invariants_catch_an_orphan_market_lock_and_a_fill_beyond_quantity(world: World) -> None:
    bid = world.place(B1, market.bid("north", K, 10, 7))
    ask = world.place(S1, market.ask("north", K, 10, 7))
    world.block(at=K * L)
    problems = _corrupt(world, keeper.order_key(ask), {**world.order(ask).to_cbor(), "fill": 11})
    assert any("fill 11" in problem for problem in problems)
    problems = _corrupt(world, keeper.order_key(bid), {**world.order(bid).to_cbor(), "lock": b"\7" * 32})
    assert any("belongs to no order" in problem for problem in problems)


# ---------------------------------------------------------------------------------------------------
# The README example runs as written


def test_readme_example_runs() -> None:
    readme = (Path(__file__).resolve().parents[2] / "src/autarky/modules/market/README.md").read_text()
    match = re.search(r"## Example.*?```python\n(.*?)```", readme, re.DOTALL)
    assert match is not None
    namespace: dict[str, Any] = {}
    exec(compile(match.group(1), "market/README.md", "exec"), namespace)
    chain = namespace["chain"]
    assert chain.replay().root == chain.root  # the real modules replay to the same state root
