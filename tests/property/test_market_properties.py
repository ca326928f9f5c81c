"""Properties of the energy market, on random books and random trading days.

* ``clear`` equals the LP reference of ``autarky bench auction`` (scipy HiGHS, welfare maximised
  with the tie-breaking encoded as exact perturbations): identical fills and price, with and
  without a cap;
* every clearing is a valid uniform-price outcome: no order fills beyond its quantity or its limit
  (nor an ask beyond the cap), both sides trade the same volume, at most one order per side is
  filled in part, no bid and ask left over would trade with each other, and the price is the
  documented rule (``uniform_price``);
* the outcome does not depend on the order of the input, and changing only the tie-breakers
  (heights, ids) changes who fills at the marginal price, never the price or how much trades at
  each price;
* ``settle`` conserves value exactly and never pays for more than was delivered;
* on a chain (real executor, bank and escrow; fake meters and oracle), random orders, cancels,
  deliveries and time steps keep every invariant after every block (escrow agreeing with the
  market's records, bank supply) and, once every book has settled, no market lock is left, every
  order is closed, and each account's balance moved by exactly what its settled orders say.

Broken variants these catch (each tried by hand): a clear that ranks ties by id before height,
that stops matching at equal limits, or rounds its midpoint up; penalties shared by fill instead of
by units short; a settlement that forgets a buyer's refund; a clearing that leaves a filled order's
escrow uncut. (The price rule itself, shared by ``clear`` and ``uniform_price``, is pinned by the
hand-worked unit tests.)
"""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import event, given, settings
from hypothesis import strategies as st

from autarky.bench.auction import lp_reference
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.router import App
from autarky.ledger.state import StateReader
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.bank import BankModule
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.escrow import EscrowModule
from autarky.modules.harness import Chain
from autarky.modules.identity import IdentityModule
from autarky.modules.market import MarketModule, keeper
from autarky.modules.market import messages as market
from autarky.modules.market.auction import Order, clear, eligible_asks, uniform_price
from autarky.modules.market.settlement import settle
from autarky.modules.policy import PolicyModule
from autarky.modules.validators import ValidatorsModule

# ---------------------------------------------------------------------------------------------------
# Random books


@st.composite
def books(draw: st.DrawFn, max_side: int = 10, max_price: int = 12) -> tuple[list[Order], list[Order]]:
    """Bids and asks with many equal prices and heights; ids distinct, in random order."""
    bid_count = draw(st.integers(0, max_side))
    ask_count = draw(st.integers(0, max_side))
    ids = draw(st.permutations(list(range(bid_count + ask_count))))

    def orders(offset: int, count: int, lowest_price: int) -> list[Order]:
        return [
            Order(
                id=bytes([ids[offset + index]]) * 32,
                price=draw(st.integers(lowest_price, max_price)),
                quantity=draw(st.integers(1, 20)),
                height=draw(st.integers(1, 3)),
            )
            for index in range(count)
        ]

    return orders(0, bid_count, 1), orders(bid_count, ask_count, 0)


caps = st.none() | st.integers(-1, 13)


@settings(max_examples=150)
@given(books(), caps)
def test_clear_equals_the_lp_reference(book: tuple[list[Order], list[Order]], cap: int | None) -> None:
    bids, asks = book
    result = clear(bids, asks, cap)
    price, fills = lp_reference(bids, asks, cap)
    assert (result.price, result.fills) == (price, fills)


@settings(max_examples=300)
@given(books(), caps)
def test_every_clearing_is_a_valid_uniform_price_outcome(
    book: tuple[list[Order], list[Order]], cap: int | None
) -> None:
    bids, asks = book
    result = clear(bids, asks, cap)
    fills = result.fills
    assert all(units > 0 for units in fills.values())
    assert (
        sum(fills.get(bid.id, 0) for bid in bids)
        == sum(fills.get(ask.id, 0) for ask in asks)
        == result.volume
    )
    assert all(fills.get(order.id, 0) <= order.quantity for order in (*bids, *asks))
    assert result.price == uniform_price(bids, asks, fills, cap)
    if result.volume == 0:
        assert result.price is None and fills == {}
    else:
        price = result.price
        assert price is not None
        assert all(bid.price >= price for bid in bids if bid.id in fills)
        assert all(ask.price <= price for ask in asks if ask.id in fills)
        if cap is not None:
            assert price <= cap and all(ask.price <= cap for ask in asks if ask.id in fills)
    assert sum(1 for bid in bids if 0 < fills.get(bid.id, 0) < bid.quantity) <= 1
    assert sum(1 for ask in asks if 0 < fills.get(ask.id, 0) < ask.quantity) <= 1
    bids_left = [bid.price for bid in bids if fills.get(bid.id, 0) < bid.quantity]
    asks_left = [ask.price for ask in eligible_asks(asks, cap) if fills.get(ask.id, 0) < ask.quantity]
    if bids_left and asks_left:
        assert max(bids_left) < min(asks_left), "a bid and an ask left over would still trade"


@given(books(), caps, st.randoms(use_true_random=False))
def test_clearing_does_not_depend_on_the_order_of_the_input(
    book: tuple[list[Order], list[Order]], cap: int | None, random: Any
) -> None:
    bids, asks = book
    shuffled_bids, shuffled_asks = list(bids), list(asks)
    random.shuffle(shuffled_bids)
    random.shuffle(shuffled_asks)
    assert clear(shuffled_bids, shuffled_asks, cap) == clear(bids, asks, cap)


@given(books(), caps, st.randoms(use_true_random=False))
def test_tie_breakers_change_only_who_fills_at_a_price(
    book: tuple[list[Order], list[Order]], cap: int | None, random: Any
) -> None:
    bids, asks = book
    ids = [order.id for order in (*bids, *asks)]
    random.shuffle(ids)
    rebroken = [
        dataclasses.replace(order, id=new_id, height=random.randint(1, 3))
        for order, new_id in zip((*bids, *asks), ids, strict=True)
    ]
    other_bids, other_asks = rebroken[: len(bids)], rebroken[len(bids) :]
    first, second = clear(bids, asks, cap), clear(other_bids, other_asks, cap)
    assert (first.price, first.volume) == (second.price, second.volume)

    def per_price(orders: list[Order], fills: dict[bytes, int]) -> dict[int, int]:
        totals: dict[int, int] = {}
        for order in orders:
            totals[order.price] = totals.get(order.price, 0) + fills.get(order.id, 0)
        return totals

    assert per_price(bids, first.fills) == per_price(other_bids, second.fills)
    assert per_price(asks, first.fills) == per_price(other_asks, second.fills)


@given(
    price=st.integers(0, 50),
    bid_fills=st.lists(st.integers(1, 30), min_size=1, max_size=6),
    ask_parts=st.lists(st.tuples(st.integers(0, 100), st.integers(0, 5)), min_size=1, max_size=6),
    data=st.data(),
)
def test_settle_conserves_value(
    price: int, bid_fills: list[int], ask_parts: list[tuple[int, int]], data: st.DataObject
) -> None:
    volume = sum(bid_fills)
    # Split the volume among the asks (each at least 1 unit when possible) and draw deliveries.
    weights = [weight + 1 for weight, _ in ask_parts]
    from autarky.modules.market.settlement import largest_remainder

    ask_fills = [fill for fill in largest_remainder(volume, weights) if fill > 0]
    asks = [
        (bytes([100 + index]) * 32, fill, data.draw(st.integers(0, fill)), ask_parts[index][1])
        for index, fill in enumerate(ask_fills)
    ]
    bids = [(bytes([index]) * 32, fill) for index, fill in enumerate(bid_fills)]
    outcome = settle(price, bids, asks)
    delivered = sum(ask[2] for ask in asks)
    assert sum(bid.delivered for bid in outcome.bids) == delivered == outcome.delivered
    assert all(0 <= bid.delivered <= bid.fill for bid in outcome.bids)
    assert (
        sum(bid.paid for bid in outcome.bids)
        == sum(ask.received for ask in outcome.asks)
        == price * delivered
    )
    assert all(bid.paid + bid.refund == price * bid.fill for bid in outcome.bids)
    assert sum(bid.penalty_received for bid in outcome.bids) == sum(ask.penalty for ask in outcome.asks)
    # Pro rata with largest remainder: each part is within one unit of its exact share.
    for bid in outcome.bids:
        assert abs(bid.delivered * volume - delivered * bid.fill) < volume
    short = volume - delivered
    for bid in outcome.bids:
        assert abs(bid.penalty_received * short - outcome.penalty * (bid.fill - bid.delivered)) < max(
            short, 1
        )
    assert all(
        ask.penalty + ask.collateral_refund == ask.fill * rate
        for ask, (_, _, _, rate) in zip(outcome.asks, asks, strict=True)
    )
    assert sum(t.amount for t in outcome.payments) == price * delivered
    assert sum(t.amount for t in outcome.penalties) == outcome.penalty
    assert all(t.amount > 0 for t in (*outcome.payments, *outcome.penalties))
    paid_from: dict[bytes, int] = {}
    for transfer in outcome.payments:
        paid_from[transfer.source] = paid_from.get(transfer.source, 0) + transfer.amount
    assert all(paid_from.get(bid.id, 0) == bid.paid for bid in outcome.bids)


# ---------------------------------------------------------------------------------------------------
# Random trading on a chain

L = 1_000
T0 = 100 * L
K = T0 // L + 1
KEYS = [SigningKey.from_seed(sha256(b"autarky/market-property/" + bytes([index]))) for index in range(5)]
FUNDS = 100_000


@dataclasses.dataclass(frozen=True)
class FinalValue:
    value: int
    round: int


class FakeMetering:
    def __init__(self) -> None:
        self.exports: dict[tuple[str, int], int] = {}
        self.complete: dict[tuple[str, int], bool] = {}

    def interval_ms(self, state: StateReader) -> int:
        return L

    def energy(self, state: StateReader, account: str, direction: str, interval: int) -> int:
        return self.exports.get((account, interval), 0)

    def readings_complete(self, state: StateReader, account: str, direction: str, interval: int) -> bool:
        return self.complete.get((account, interval), False)


class FakeOracle:
    def __init__(self) -> None:
        self.value: int | None = None

    def fresh(self, state: StateReader, feed: str, now_ms: int) -> FinalValue | None:
        return None if self.value is None else FinalValue(self.value, 1)


def chain_for(metering: FakeMetering, oracle: FakeOracle) -> Chain:
    identity = IdentityModule()
    policy = PolicyModule(identity=identity)
    bank = BankModule(identity=identity, policy=policy)
    escrow = EscrowModule(bank)
    modules = [identity, bank, ValidatorsModule(), policy, MarketModule(escrow, metering, oracle), escrow]
    genesis = {
        "chain_id": "market-property",
        "genesis_time_ms": T0,
        "app_state": {
            "bank": {
                "params": {"fee_asset": "aut", "min_fee": 0},
                "balances": [{"account": key.did, "asset": "aut", "amount": FUNDS} for key in KEYS],
            },
            "market": {
                "zones": [
                    {"name": "a", "penalty_per_unit": 3},
                    {"name": "b", "price_cap_feed": "cap"},
                ],
                "max_orders_per_interval": 6,
                "settlement_delay_ms": 2 * L,
            },
        },
    }
    return Chain.from_genesis(genesis, app=App(modules, authenticator=identity))


order_specs = st.tuples(
    st.sampled_from(["bid", "ask"]),
    st.integers(0, len(KEYS) - 1),  # who
    st.sampled_from(["a", "b"]),  # zone
    st.integers(1, 2),  # interval: this many after the current one
    st.integers(1, 40),  # quantity
    st.integers(0, 25),  # limit price (a bid at 0 is refused: that is fine)
)
rounds = st.tuples(
    st.lists(order_specs, min_size=1, max_size=8),  # placed in one block (ties at one height)
    st.lists(st.integers(0, 100), max_size=2),  # cancels of earlier orders
    st.lists(st.tuples(st.integers(0, len(KEYS) - 1), st.integers(0, 60), st.booleans()), max_size=3),
    st.none() | st.integers(0, 25),  # the cap feed's fresh value (None: stale)
    st.integers(1, 1_500),  # then wait this long (ms) and run an empty block
)


@settings(max_examples=100, deadline=None)
@given(st.lists(rounds, min_size=1, max_size=8))
def test_random_trading_keeps_value_and_escrow_in_step(program: list[Any]) -> None:
    metering, oracle = FakeMetering(), FakeOracle()
    chain = chain_for(metering, oracle)
    time_ms = T0
    placed: list[bytes] = []

    def block(*messages_by: tuple[SigningKey, dict[str, Any]]) -> None:
        nonlocal time_ms
        time_ms += 1
        txs = []
        for signer, message in messages_by:
            body = TxBody(
                "market-property",
                signer.did,
                chain.sequence(signer.did) + sum(1 for other in txs if other.body.sender == signer.did),
                0,
                0,
                (message,),
            )
            txs.append(sign_tx(body, signer))
        receipts = chain.execute([tx.raw for tx in txs], time_ms)
        for tx, receipt in zip(txs, receipts, strict=True):
            if receipt.code == "ok" and tx.body.messages[0]["type"] != market.CANCEL:
                placed.append(keeper.new_order_id(tx.hash, 0))
        assert chain.invariants() == []

    for specs, cancels, deliveries, cap, wait_ms in program:
        current = time_ms // L
        block(
            *(
                (
                    KEYS[who],
                    (market.bid if side == "bid" else market.ask)(zone, current + ahead, quantity, price),
                )
                for side, who, zone, ahead, quantity, price in specs
            )
        )
        cancelling = [keeper.order(chain.state, placed[index % len(placed)]) for index in cancels if placed]
        block(
            *(
                (next(key for key in KEYS if key.did == record.owner), market.cancel(record.id))
                for record in cancelling
                if record is not None
            )
        )
        for who, units, complete in deliveries:
            for interval in (current, current + 1, current + 2):
                metering.exports[KEYS[who].did, interval] = units
                metering.complete[KEYS[who].did, interval] = complete
        oracle.value = cap
        time_ms += wait_ms
        block()
    time_ms += 6 * L  # past every deadline
    block()

    state = chain.state
    records = [keeper.order(state, order_id) for order_id in placed]
    assert all(
        record is not None and record.status in ("cancelled", "unfilled", "settled") for record in records
    )
    assert not any(key.startswith("escrow/") for key in chain.data), "a lock outlived its book"
    assert bank_keeper.balance(state, "module:escrow", "aut") == 0
    assert not any(key.startswith("market/open/") or key.startswith("market/settling/") for key in chain.data)
    event(f"orders settled: {min(9, sum(1 for r in records if r is not None and r.status == 'settled'))}+")
    for key in KEYS:
        net = 0
        for record in records:
            assert record is not None
            if record.owner == key.did and record.status == "settled":
                net += record.paid - record.penalty if record.side == "ask" else record.penalty - record.paid
        assert bank_keeper.balance(state, key.did, "aut") == FUNDS + net
