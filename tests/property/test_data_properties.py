"""The data market conserves value, every purchase ends delivered or refunded, and grants follow the
money (issue 5, property tests).

Random programs of offers, withdrawals, purchases (per period and per item, some beyond the buyer's
balance or of the wrong unit), acknowledgements (by the buyer or someone else, in time or late),
sellers revoking the grants they gave, and jumps of block time, run through the real executor
against a step model that predicts every result code, every balance and every purchase's status.
After each block the chain's invariants hold (bank supply == balances, the escrow account == open
locks, data's records == escrow's locks == policy's grants). The buyer's grant allows ``read`` on
``data/<offer>`` exactly while the model says it should. After the last deadline no purchase is
open, no lock held by ``data`` remains, and every unit of value is where the model put it: with the
seller for acknowledged purchases, back with the buyer for the rest.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.data import DataModule
from autarky.modules.data import keeper as data_keeper
from autarky.modules.data import messages as data
from autarky.modules.data.records import resource_of
from autarky.modules.escrow import ESCROW_ACCOUNT, EscrowModule
from autarky.modules.harness import Chain
from autarky.modules.policy import PolicyModule
from autarky.modules.policy import messages as policy
from autarky.modules.policy.errors import GrantRefused

KEYS = [SigningKey.from_seed(sha256(b"autarky/data-prop/" + bytes([i]))) for i in range(3)]
T0 = 1_700_000_000_000
BLOCK_MS = 1_000
WINDOW_MS = 20_000
MAX_UNITS = 20
START = 300
GENESIS: dict[str, Any] = {
    "chain_id": "data-prop",
    "genesis_time_ms": T0,
    "app_state": {
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "balances": [{"account": k.did, "asset": "aut", "amount": START} for k in KEYS],
        },
        "data": {"params": {"delivery_window_ms": WINDOW_MS, "max_units": MAX_UNITS}},
    },
}


@dataclass
class ModelOffer:
    seller: str
    price: int
    per: str
    period_ms: int | None
    withdrawn: bool = False


@dataclass
class ModelPurchase:
    offer: bytes
    buyer: str
    seller: str
    amount: int
    deliver_by_ms: int
    access_until_ms: int | None
    status: str = "open"
    grant_revoked: bool = False


def _to_step(roll: int, account: int, pick: int, units: int, extra: int) -> tuple[Any, ...]:
    """One step from plain integers. Purchases and acknowledgements are the most frequent steps, so
    most programs sell something; every kind of step still comes often."""
    if roll < 8:
        per = "period" if extra % 2 == 0 else "item"
        return ("offer", account, 1 + extra, per, (None, 5_000, 30_000)[pick % 3])
    if roll < 14:
        return ("withdraw", account, pick)
    if roll < 50:
        return ("buy", account, pick, units, extra % 5 != 0)  # one in five asks for the wrong unit
    if roll < 78:
        return ("ack", account, pick)
    if roll < 84:
        return ("revoke", pick)
    return ("wait", 1 + extra)


STEP = st.builds(
    _to_step,
    st.integers(0, 99),
    st.integers(0, 2),
    st.integers(0, 9),
    st.integers(0, MAX_UNITS + 1),
    st.integers(0, 40),
)

OPENING: list[tuple[Any, ...]] = [
    ("offer", 0, 3, "period", 10_000),
    ("offer", 1, 7, "item", 5_000),
    ("offer", 2, 2, "item", None),
]
"""Every program starts with an offer from each account, one of each kind, so most programs sell."""


class Run:
    """The chain, the model, and one step at a time."""

    def __init__(self) -> None:
        self.chain = Chain.from_genesis(GENESIS, block_ms=BLOCK_MS)
        modules = (self.chain.app.module(name) for name in ("data", "escrow", "policy"))
        self.data, self.escrow, self.policy = modules
        assert isinstance(self.data, DataModule) and isinstance(self.escrow, EscrowModule)
        assert isinstance(self.policy, PolicyModule)
        self.balances = {k.did: START for k in KEYS}
        self.offers: dict[bytes, ModelOffer] = {}
        self.purchases: dict[bytes, ModelPurchase] = {}

    @property
    def now(self) -> int:
        return self.chain.headers[-1].time_ms

    def pick(self, ids: dict[bytes, Any], index: int) -> bytes:
        ordered = sorted(ids)
        return ordered[index % len(ordered)] if ordered else bytes(32)

    def send(self, actor: SigningKey, message: dict[str, Any]) -> tuple[str, bytes]:
        body = TxBody("data-prop", actor.did, self.chain.sequence(actor.did), 0, 0, (message,))
        tx = sign_tx(body, actor)
        (receipt,) = self.chain.execute([tx.raw])
        return receipt.code, tx.hash

    def settle_due(self) -> None:
        """What end_block did at the block just executed: refund every open purchase that is due."""
        for purchase in self.purchases.values():
            if purchase.status == "open" and purchase.deliver_by_ms <= self.now:
                purchase.status = "refunded"
                purchase.grant_revoked = True
                self.balances[purchase.buyer] += purchase.amount

    def step(self, step: tuple[Any, ...]) -> None:
        kind = step[0]
        block_ms = self.now + BLOCK_MS
        if kind == "offer":
            _, seller_i, price, per, period_ms = step
            seller = KEYS[seller_i]
            if per == "period" and period_ms is None:
                period_ms = 10_000
            message = data.offer(
                kind="stream", name="n", price=price, asset="aut", per=per, period_ms=period_ms, licence="l"
            )
            code, tx_hash = self.send(seller, message)
            assert code == "ok"
            self.offers[data_keeper.new_offer_id(tx_hash, 0)] = ModelOffer(seller.did, price, per, period_ms)
        elif kind == "withdraw":
            _, actor_i, offer_i = step
            offer_id = self.pick(self.offers, offer_i)
            offer = self.offers.get(offer_id)
            expected = (
                "data.unknown_offer"
                if offer is None
                else "data.not_seller"
                if offer.seller != KEYS[actor_i].did
                else "data.offer_withdrawn"
                if offer.withdrawn
                else "ok"
            )
            code, _ = self.send(KEYS[actor_i], data.withdraw(offer_id))
            assert code == expected
            if code == "ok":
                assert offer is not None
                offer.withdrawn = True
        elif kind == "buy":
            self.buy(step, block_ms)
        elif kind == "ack":
            _, actor_i, purchase_i = step
            purchase_id = self.pick(self.purchases, purchase_i)
            purchase = self.purchases.get(purchase_id)
            actor = KEYS[actor_i]
            expected = (
                "data.unknown_purchase"
                if purchase is None
                else "data.not_buyer"
                if purchase.buyer != actor.did
                else "data.already_settled"
                if purchase.status != "open"
                else "data.delivery_overdue"
                if block_ms >= purchase.deliver_by_ms
                else "ok"
            )
            code, _ = self.send(actor, data.ack_delivery(purchase_id, sha256(purchase_id)))
            assert code == expected
            if code == "ok":
                assert purchase is not None
                purchase.status = "delivered"
                self.balances[purchase.seller] += purchase.amount
        elif kind == "revoke":
            purchase_id = self.pick(self.purchases, step[1])
            purchase = self.purchases.get(purchase_id)
            if purchase is None:
                self.chain.execute([])
            else:
                record = self.data.purchase(self.chain.state, purchase_id)
                assert record is not None
                seller = next(k for k in KEYS if k.did == purchase.seller)
                code, _ = self.send(seller, policy.revoke(record.grant))
                assert code == ("policy.already_revoked" if purchase.grant_revoked else "ok")
                purchase.grant_revoked = True
        else:
            self.chain.execute([], self.now + step[1] * BLOCK_MS)
        self.settle_due()
        self.check()

    def buy(self, step: tuple[Any, ...], block_ms: int) -> None:
        _, buyer_i, offer_i, units, right_unit = step
        buyer = KEYS[buyer_i]
        offer_id = self.pick(self.offers, offer_i)
        offer = self.offers.get(offer_id)
        per = "period" if offer is None else offer.per
        unit = per if right_unit else ("item" if per == "period" else "period")
        message = data.buy(offer_id, **{f"{unit}s": units})
        amount = 0 if offer is None else offer.price * units
        if not 1 <= units <= MAX_UNITS:
            expected = "data.invalid_units"
        elif offer is None:
            expected = "data.unknown_offer"
        elif offer.withdrawn:
            expected = "data.offer_withdrawn"
        elif unit != offer.per:
            expected = "data.wrong_unit"
        elif offer.seller == buyer.did:
            expected = "data.self_purchase"
        elif amount > self.balances[buyer.did]:
            expected = "bank.insufficient_funds"
        else:
            expected = "ok"
        code, tx_hash = self.send(buyer, message)
        assert code == expected, (code, expected)
        if code != "ok":
            return
        assert offer is not None
        if offer.per == "period":
            assert offer.period_ms is not None
            access: int | None = block_ms + units * offer.period_ms
        else:
            access = None if offer.period_ms is None else block_ms + offer.period_ms
        self.balances[buyer.did] -= amount
        purchase_id = data_keeper.new_purchase_id(tx_hash, 0)
        self.purchases[purchase_id] = ModelPurchase(
            offer_id, buyer.did, offer.seller, amount, block_ms + WINDOW_MS, access
        )

    def check(self) -> None:
        assert self.chain.invariants() == []
        state = self.chain.state
        for did, expected in self.balances.items():
            assert bank_keeper.balance(state, did, "aut") == expected, did
        locked = sum(p.amount for p in self.purchases.values() if p.status == "open")
        assert bank_keeper.balance(state, ESCROW_ACCOUNT, "aut") == locked
        for purchase_id, model in self.purchases.items():
            record = self.data.purchase(state, purchase_id)
            assert record is not None and record.status == model.status
            assert record.access_until_ms == model.access_until_ms
            self.check_grant(record.grant, model)

    def check_grant(self, grant_id: bytes, model: ModelPurchase) -> None:
        live = not model.grant_revoked and (model.access_until_ms is None or self.now < model.access_until_ms)
        try:
            self.policy.check_grant(
                self.chain.state,
                grant_id,
                grantee=model.buyer,
                action="read",
                resource=resource_of(model.offer),
                now_ms=self.now,
            )
            allowed = True
        except GrantRefused:
            allowed = False
        assert allowed == live


@settings(max_examples=200, deadline=None)
@given(st.lists(STEP, min_size=5, max_size=40))
def test_value_is_conserved_and_every_purchase_ends_delivered_or_refunded(
    steps: list[tuple[Any, ...]],
) -> None:
    run = Run()
    for step in [*OPENING, *steps]:
        run.step(step)
    run.chain.execute([], run.now + WINDOW_MS)  # past every deadline
    run.settle_due()
    run.check()
    assert all(p.status in ("delivered", "refunded") for p in run.purchases.values())
    assert bank_keeper.balance(run.chain.state, ESCROW_ACCOUNT, "aut") == 0
    for key in KEYS:
        assert not [lock for lock in run.escrow.locks_of(run.chain.state, key.did) if lock.holder == "data"]
    assert sum(run.balances.values()) == START * len(KEYS)
    paid = {k.did: 0 for k in KEYS}
    for purchase in run.purchases.values():
        if purchase.status == "delivered":
            paid[purchase.seller] += purchase.amount
            paid[purchase.buyer] -= purchase.amount
    assert {did: START + paid[did] for did in paid} == run.balances
    assert not any(key.startswith(data_keeper.DUE_PREFIX) for key in run.chain.data)


@settings(max_examples=10, deadline=None)
@given(st.lists(STEP, min_size=1, max_size=15))
def test_a_replay_of_any_program_gives_the_same_headers(steps: list[tuple[Any, ...]]) -> None:
    run = Run()
    for step in [*OPENING, *steps]:
        run.step(step)
    assert [h.hash for h in run.chain.replay().headers] == [h.hash for h in run.chain.headers]
