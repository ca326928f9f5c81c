"""The data module through the real executor: offers, purchases paid through the escrow, the buyer's
grant, acknowledged delivery, refunds at the deadline, every refusal code in its precedence,
genesis parameters, the invariants that catch broken states, and the README example.

A small world: a weather station sells data (SELLER), a tractor buys it (BUYER), a calibration lab
(LAB), a stranger. A test that names a precedence puts two faults in one message and checks that
the one documented first wins.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.block import Receipt
from autarky.ledger.executor import execute_genesis
from autarky.ledger.state import Overlay
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.modules import build_app
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.data import DataModule, OfferRecord, PurchaseRecord
from autarky.modules.data import keeper as data_keeper
from autarky.modules.data import messages as data
from autarky.modules.data.errors import AGENT_CODES_IN_PRECEDENCE, DATA_CODES_IN_PRECEDENCE
from autarky.modules.data.records import resource_of
from autarky.modules.escrow import ESCROW_ACCOUNT, EscrowModule
from autarky.modules.harness import Chain
from autarky.modules.policy import PolicyModule, check_grant
from autarky.modules.policy import messages as policy
from autarky.modules.policy.check import lookup_in
from autarky.modules.policy.errors import GrantRefused
from autarky.modules.policy.module import issued_grant_id

CHAIN_ID = "data-test"
T0 = 1_700_000_000_000
BLOCK_MS = 1000
HOUR_MS = 3_600_000


def key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/data-test/" + name.encode()))


SELLER, BUYER, LAB, STRANGER = (key(n) for n in ("weather-station", "tractor", "lab", "stranger"))


def genesis(data_config: dict[str, Any] | None = None) -> dict[str, Any]:
    app_state: dict[str, Any] = {
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "assets": ["kwh"],
            "balances": [
                {"account": BUYER.did, "asset": "aut", "amount": 10_000},
                {"account": SELLER.did, "asset": "aut", "amount": 100},
                {"account": STRANGER.did, "asset": "aut", "amount": 100},
            ],
        }
    }
    if data_config is not None:
        app_state["data"] = data_config
    return {"chain_id": CHAIN_ID, "genesis_time_ms": T0, "app_state": app_state}


class World:
    def __init__(self, data_config: dict[str, Any] | None = None) -> None:
        self.chain = Chain.from_genesis(genesis(data_config), block_ms=BLOCK_MS)
        module = self.chain.app.module("data")
        assert isinstance(module, DataModule)
        self.data = module
        escrow = self.chain.app.module("escrow")
        assert isinstance(escrow, EscrowModule)
        self.escrow = escrow
        policy_module = self.chain.app.module("policy")
        assert isinstance(policy_module, PolicyModule)
        self.policy = policy_module

    @property
    def now(self) -> int:
        return self.chain.headers[-1].time_ms

    def tx(self, signer: SigningKey, *msgs: dict[str, Any]) -> SignedTx:
        body = TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, tuple(msgs))
        return sign_tx(body, signer)

    def run(self, signer: SigningKey, *msgs: dict[str, Any], time_ms: int | None = None) -> Receipt:
        (receipt,) = self.chain.execute([self.tx(signer, *msgs).raw], time_ms)
        assert self.chain.invariants() == []
        return receipt

    def code(self, signer: SigningKey, *msgs: dict[str, Any], time_ms: int | None = None) -> str:
        return str(self.run(signer, *msgs, time_ms=time_ms).code)

    def offer(self, signer: SigningKey = SELLER, **fields: Any) -> bytes:
        tx = self.tx(signer, weather_offer(**fields))
        (receipt,) = self.chain.execute([tx.raw])
        assert receipt.code == "ok", receipt.detail
        assert self.chain.invariants() == []
        return data_keeper.new_offer_id(tx.hash, 0)

    def buy(self, offer_id: bytes, signer: SigningKey = BUYER, **units: int) -> tuple[bytes, Receipt]:
        tx = self.tx(signer, data.buy(offer_id, **(units or {"periods": 1})))
        (receipt,) = self.chain.execute([tx.raw])
        assert self.chain.invariants() == []
        return data_keeper.new_purchase_id(tx.hash, 0), receipt

    def balance(self, who: SigningKey | str, asset: str = "aut") -> int:
        return bank_keeper.balance(self.chain.state, who if isinstance(who, str) else who.did, asset)

    def purchase(self, purchase_id: bytes) -> PurchaseRecord:
        record = self.data.purchase(self.chain.state, purchase_id)
        assert record is not None
        return record

    def offer_record(self, offer_id: bytes) -> OfferRecord:
        record = self.data.offer(self.chain.state, offer_id)
        assert record is not None
        return record


def weather_offer(**fields: Any) -> dict[str, Any]:
    """Hourly weather readings, 5 aut an hour, requiring a calibration by the lab."""
    terms: dict[str, Any] = {
        "kind": "stream",
        "name": "weather/field-12",
        "description": "temperature, rain and wind every minute",
        "price": 5,
        "asset": "aut",
        "per": "period",
        "period_ms": HOUR_MS,
        "licence": "CC-BY-4.0",
        "required_attestations": [("calibration/v1", LAB.did)],
    }
    terms.update(fields)
    return data.offer(**terms)


def events(receipt: Receipt, kind: str) -> list[dict[str, Any]]:
    return [dict(event.attributes) for event in receipt.events if event.type == kind]


# -- offers ------------------------------------------------------------------------------------------


def test_an_offer_is_stored_indexed_and_named_by_its_transaction() -> None:
    w = World()
    tx = w.tx(SELLER, weather_offer(content_hash=sha256(b"ciphertext")))
    (receipt,) = w.chain.execute([tx.raw])
    assert receipt.code == "ok", receipt.detail
    offer_id = data_keeper.new_offer_id(tx.hash, 0)
    assert events(receipt, "data.offered") == [
        {
            "offer": offer_id,
            "seller": SELLER.did,
            "kind": "stream",
            "name": "weather/field-12",
            "price": 5,
            "asset": "aut",
            "per": "period",
        }
    ]
    record = w.offer_record(offer_id)
    assert (record.seller, record.price, record.period_ms, record.licence) == (
        SELLER.did,
        5,
        HOUR_MS,
        "CC-BY-4.0",
    )
    assert [(r.claim, r.issuer) for r in record.required_attestations] == [("calibration/v1", LAB.did)]
    assert record.content_hash == sha256(b"ciphertext") and record.withdrawn is None and record.sold == 0
    assert record.created == w.chain.height
    assert [o.id for o in w.data.offers(w.chain.state)] == [offer_id]
    assert [o.id for o in w.data.offers(w.chain.state, SELLER.did)] == [offer_id]
    assert w.data.offers(w.chain.state, BUYER.did) == []
    assert record.to_json()["resource"] == f"data/{offer_id.hex()}"


def test_two_offers_in_one_transaction_get_distinct_ids() -> None:
    w = World()
    tx = w.tx(SELLER, weather_offer(), weather_offer(kind="dataset", per="item", period_ms=None))
    (receipt,) = w.chain.execute([tx.raw])
    assert receipt.code == "ok"
    ids = [data_keeper.new_offer_id(tx.hash, index) for index in (0, 1)]
    assert [e["offer"] for e in events(receipt, "data.offered")] == ids
    assert sorted(o.id for o in w.data.offers(w.chain.state)) == sorted(ids)
    assert w.chain.invariants() == []


def test_withdraw_by_the_seller_only_and_once() -> None:
    w = World()
    offer_id = w.offer()
    assert w.code(STRANGER, data.withdraw(offer_id)) == "data.not_seller"
    assert w.code(SELLER, data.withdraw(bytes(32))) == "data.unknown_offer"
    receipt = w.run(SELLER, data.withdraw(offer_id))
    assert receipt.code == "ok"
    assert events(receipt, "data.withdrawn") == [{"offer": offer_id, "seller": SELLER.did}]
    assert w.offer_record(offer_id).withdrawn == w.chain.height
    assert w.code(SELLER, data.withdraw(offer_id)) == "data.offer_withdrawn"
    assert w.buy(offer_id)[1].code == "data.offer_withdrawn"


# -- buying ------------------------------------------------------------------------------------------


def test_a_purchase_locks_the_price_and_grants_read_until_the_paid_periods_end() -> None:
    w = World()
    offer_id = w.offer()
    tx = w.tx(BUYER, data.buy(offer_id, periods=3))
    (receipt,) = w.chain.execute([tx.raw])
    assert receipt.code == "ok", receipt.detail
    purchase_id = data_keeper.new_purchase_id(tx.hash, 0)
    now = w.now
    record = w.purchase(purchase_id)
    assert (record.buyer, record.seller, record.units, record.amount, record.status) == (
        BUYER.did,
        SELLER.did,
        3,
        15,
        "open",
    )
    assert record.access_until_ms == now + 3 * HOUR_MS
    assert record.deliver_by_ms == now + data_keeper.DEFAULT_PARAMS.delivery_window_ms
    assert w.balance(BUYER) == 10_000 - 15 and w.balance(ESCROW_ACCOUNT) == 15 and w.balance(SELLER) == 100

    lock = w.escrow.get(w.chain.state, record.lock)
    assert lock is not None and (lock.payer, lock.amount, lock.holder) == (BUYER.did, 15, "data")
    assert lock.beneficiaries == (SELLER.did,) and lock.expires_ms > record.deliver_by_ms

    assert record.grant == issued_grant_id("data", purchase_id)
    grant = w.policy.grant(w.chain.state, record.grant)
    assert grant is not None
    assert (grant.grantor, grant.grantee, grant.action, grant.resource) == (
        SELLER.did,
        BUYER.did,
        "read",
        resource_of(offer_id),
    )
    assert grant.expires_ms == record.access_until_ms and grant.delegable == 0
    allowed = w.policy.check_grant(
        w.chain.state,
        record.grant,
        grantee=BUYER.did,
        action="read",
        resource=resource_of(offer_id),
        now_ms=now,
    )
    assert allowed.root_grantor == SELLER.did
    with pytest.raises(GrantRefused) as refused:
        w.policy.check_grant(
            w.chain.state,
            record.grant,
            grantee=BUYER.did,
            action="read",
            resource=resource_of(offer_id),
            now_ms=now + 3 * HOUR_MS,
        )
    assert refused.value.code == "policy.expired"

    # The receipt tells the whole story: escrow lock, the grant, the purchase.
    assert [e.type for e in receipt.events] == ["escrow.locked", "policy.granted", "data.bought"]
    (bought,) = events(receipt, "data.bought")
    assert bought == {
        "purchase": purchase_id,
        "offer": offer_id,
        "buyer": BUYER.did,
        "seller": SELLER.did,
        "asset": "aut",
        "amount": 15,
        "units": 3,
        "grant": record.grant,
        "lock": record.lock,
        "access_until_ms": now + 3 * HOUR_MS,
        "deliver_by_ms": record.deliver_by_ms,
    }
    assert w.offer_record(offer_id).sold == 1
    assert [p.id for p in w.data.purchases_of(w.chain.state, BUYER.did)] == [purchase_id]
    assert [p.id for p in w.data.purchases_of(w.chain.state, SELLER.did)] == [purchase_id]
    assert [p.id for p in w.data.purchases_of_offer(w.chain.state, offer_id)] == [purchase_id]
    assert w.data.purchases_of(w.chain.state, STRANGER.did) == []


def test_per_item_offers_grant_for_their_access_window_or_without_expiry() -> None:
    w = World()
    windowed = w.offer(kind="dataset", per="item", period_ms=24 * HOUR_MS, price=2)
    forever = w.offer(kind="dataset", per="item", period_ms=None, price=7)
    first, receipt = w.buy(windowed, items=40)
    assert receipt.code == "ok"
    record = w.purchase(first)
    assert (record.units, record.amount, record.access_until_ms) == (40, 80, w.now + 24 * HOUR_MS)
    second, receipt = w.buy(forever, items=1)
    assert receipt.code == "ok"
    record = w.purchase(second)
    assert record.access_until_ms is None and record.amount == 7
    grant = w.policy.grant(w.chain.state, record.grant)
    assert grant is not None and grant.expires_ms is None


def test_several_purchases_in_one_transaction_each_get_a_lock_and_a_grant() -> None:
    w = World()
    offer_id = w.offer()
    tx = w.tx(BUYER, data.buy(offer_id, periods=1), data.buy(offer_id, periods=2))
    (receipt,) = w.chain.execute([tx.raw])
    assert receipt.code == "ok" and w.chain.invariants() == []
    ids = [data_keeper.new_purchase_id(tx.hash, index) for index in (0, 1)]
    records = [w.purchase(pid) for pid in ids]
    assert [r.amount for r in records] == [5, 10]
    assert records[0].lock != records[1].lock and records[0].grant != records[1].grant
    assert w.offer_record(offer_id).sold == 2 and w.balance(ESCROW_ACCOUNT) == 15


def test_a_refused_purchase_leaves_no_lock_no_grant_and_no_record() -> None:
    w = World()
    offer_id = w.offer(price=10_001)
    before = dict(w.chain.data)
    _, receipt = w.buy(offer_id)
    assert receipt.code == "bank.insufficient_funds"
    changed = {k for k in w.chain.data if before.get(k) != w.chain.data[k]} | (
        set(before) - set(w.chain.data)
    )
    assert not any(k.startswith(("data/purchase", "policy/", "escrow/")) for k in changed)
    assert w.offer_record(offer_id).sold == 0


# -- delivery: acknowledged, or refunded at the deadline --------------------------------------------


def test_the_buyers_acknowledgement_pays_the_seller_everything_locked() -> None:
    w = World()
    offer_id = w.offer()
    purchase_id, _ = w.buy(offer_id, periods=4)
    key_hash = sha256(b"the key")
    assert w.code(STRANGER, data.ack_delivery(purchase_id, key_hash)) == "data.not_buyer"
    assert w.code(BUYER, data.ack_delivery(bytes(32), key_hash)) == "data.unknown_purchase"
    receipt = w.run(BUYER, data.ack_delivery(purchase_id, key_hash))
    assert receipt.code == "ok", receipt.detail
    assert [e.type for e in receipt.events] == ["escrow.released", "data.delivered"]
    assert events(receipt, "data.delivered") == [
        {
            "purchase": purchase_id,
            "offer": offer_id,
            "buyer": BUYER.did,
            "seller": SELLER.did,
            "asset": "aut",
            "amount": 20,
            "key_hash": key_hash,
        }
    ]
    record = w.purchase(purchase_id)
    assert (record.status, record.key_hash, record.settled) == ("delivered", key_hash, w.chain.height)
    assert w.balance(SELLER) == 120 and w.balance(BUYER) == 9_980 and w.balance(ESCROW_ACCOUNT) == 0
    assert w.escrow.get(w.chain.state, record.lock) is None
    assert not any(k.startswith(data_keeper.DUE_PREFIX) for k in w.chain.data)
    assert w.code(BUYER, data.ack_delivery(purchase_id, key_hash)) == "data.already_settled"
    # Delivered: the grant stays until the end of the paid periods; the deadline passing changes nothing.
    w.chain.execute([], record.deliver_by_ms + 1)
    grant = w.policy.grant(w.chain.state, record.grant)
    assert grant is not None and grant.revoked is None and w.balance(SELLER) == 120


def test_no_acknowledgement_by_the_deadline_refunds_the_buyer_and_revokes_the_grant() -> None:
    w = World()
    offer_id = w.offer()
    purchase_id, _ = w.buy(offer_id, periods=2)
    record = w.purchase(purchase_id)
    w.chain.execute([], record.deliver_by_ms - 1)  # one ms early: nothing happens
    assert w.purchase(purchase_id).is_open and w.balance(ESCROW_ACCOUNT) == 10
    # At the deadline an acknowledgement is too late; end_block refunds in the same block.
    receipt = w.run(BUYER, data.ack_delivery(purchase_id, bytes(32)), time_ms=record.deliver_by_ms)
    assert receipt.code == "data.delivery_overdue"
    settled = w.purchase(purchase_id)
    assert (settled.status, settled.settled, settled.key_hash) == ("refunded", w.chain.height, None)
    assert w.balance(BUYER) == 10_000 and w.balance(SELLER) == 100 and w.balance(ESCROW_ACCOUNT) == 0
    grant = w.policy.grant(w.chain.state, record.grant)
    assert grant is not None and grant.revoked == w.chain.height
    assert w.code(BUYER, data.ack_delivery(purchase_id, bytes(32))) == "data.already_settled"


def test_refunds_run_in_end_block_in_deadline_order_with_their_events() -> None:
    w = World()
    offer_id = w.offer()
    first, _ = w.buy(offer_id)
    second, _ = w.buy(offer_id)
    deadline = w.purchase(second).deliver_by_ms
    state = Overlay(w.chain.state)
    env = w.chain.next_env(deadline)
    produced = w.data.end_block(state, env)
    kinds = [e.type for e in produced]
    assert kinds == ["escrow.refunded", "policy.revoked", "data.refunded"] * 2
    refunded = [dict(e.attributes)["purchase"] for e in produced if e.type == "data.refunded"]
    assert refunded == [first, second]
    revoked = [dict(e.attributes) for e in produced if e.type == "policy.revoked"]
    assert revoked[0] == {"grant": issued_grant_id("data", first), "by": "module:data"}


def test_a_grant_the_seller_revoked_itself_is_refunded_without_a_second_revocation() -> None:
    w = World()
    purchase_id, _ = w.buy(w.offer())
    record = w.purchase(purchase_id)
    assert w.code(SELLER, policy.revoke(record.grant)) == "ok"
    state = Overlay(w.chain.state)
    produced = w.data.end_block(state, w.chain.next_env(record.deliver_by_ms))
    assert [e.type for e in produced] == ["escrow.refunded", "data.refunded"]
    w.chain.execute([], record.deliver_by_ms)
    assert w.purchase(purchase_id).status == "refunded" and w.chain.invariants() == []


def test_a_withdrawn_offer_keeps_its_open_purchases() -> None:
    w = World()
    offer_id = w.offer()
    purchase_id, _ = w.buy(offer_id)
    assert w.code(SELLER, data.withdraw(offer_id)) == "ok"
    assert w.code(BUYER, data.ack_delivery(purchase_id, bytes(32))) == "ok"
    assert w.balance(SELLER) == 105


# -- refusals in their precedence ----------------------------------------------------------------------


def test_offer_refusals_in_order() -> None:
    w = World()

    def offer(**fields: Any) -> str:
        return w.code(SELLER, weather_offer(**fields))

    assert offer(kind="video", name="") == "data.invalid_kind"
    assert offer(name="", price=0) == "data.invalid_text"
    assert offer(name="x" * 65) == "data.invalid_text"
    assert offer(name="bad\nname") == "data.invalid_text"
    assert offer(name="bad\x85name") == "data.invalid_text"
    assert offer(description="d" * 1025) == "data.invalid_text"
    assert offer(licence="") == "data.invalid_text"
    assert offer(licence="L" * 129, price=0) == "data.invalid_text"
    assert offer(price=0, per="year") == "data.invalid_price"
    assert offer(price=2**64) == "data.invalid_price"
    assert offer(asset="Not-An-Asset", per="year") == "data.invalid_price"
    assert offer(per="year", required_attestations=[("BAD", LAB.did)]) == "data.invalid_period"
    assert offer(period_ms=None) == "data.invalid_period"
    assert offer(period_ms=999) == "data.invalid_period"
    assert offer(per="item", period_ms=367 * 24 * HOUR_MS) == "data.invalid_period"
    assert offer(required_attestations=[("Calibration", LAB.did)]) == "data.invalid_attestations"
    assert offer(required_attestations=[("calibration/v1", "did:web:lab")]) == "data.invalid_attestations"
    twice = [("calibration/v1", LAB.did)] * 2
    assert offer(required_attestations=twice) == "data.invalid_attestations"
    many = [(f"claim/v{n}", LAB.did) for n in range(9)]
    assert offer(required_attestations=many) == "data.invalid_attestations"
    assert offer(name="ok", required_attestations=[], description="", per="item", period_ms=None) == "ok"
    assert offer(name="üñíçødé wéather ☀", description="") == "ok"


@pytest.mark.parametrize(
    "change",
    [
        {"price": "5"},
        {"price": True},
        {"name": None},
        {"period_ms": "1h"},
        {"content_hash": b"short"},
        {"required_attestations": "calibration"},
        {"required_attestations": [{"claim": "calibration/v1"}]},
        {"required_attestations": [{"claim": "calibration/v1", "issuer": LAB.did, "x": 1}]},
        {"required_attestations": [{"claim": 1, "issuer": LAB.did}]},
        {"extra": 1},
    ],
)
def test_offer_shapes_are_core_invalid_message_before_any_value_code(change: dict[str, Any]) -> None:
    w = World()
    message = weather_offer(kind="video")  # a value fault too: the shape fault wins
    message.update(change)
    assert w.code(SELLER, message) == "core.invalid_message"


def test_an_offer_may_leave_out_its_optional_fields() -> None:
    w = World()
    message = weather_offer(per="item")
    del message["period_ms"], message["content_hash"]
    assert w.code(SELLER, message) == "ok"
    message = weather_offer()
    del message["period_ms"]
    assert w.code(SELLER, message) == "data.invalid_period"


def test_buy_refusals_in_order() -> None:
    w = World({"params": {"max_units": 100}})
    offer_id = w.offer()
    items_offer = w.offer(per="item", period_ms=None)
    withdrawn = w.offer()
    assert w.code(SELLER, data.withdraw(withdrawn)) == "ok"
    huge = w.offer(price=2**63)

    def buy(offer: bytes, signer: SigningKey = BUYER, **units: int) -> str:
        return w.code(signer, data.buy(offer, **units))

    assert buy(bytes(32), periods=0) == "data.invalid_units"
    assert buy(bytes(32), periods=101) == "data.invalid_units"
    assert buy(bytes(32), periods=1) == "data.unknown_offer"
    assert buy(withdrawn, items=1, signer=SELLER) == "data.offer_withdrawn"
    assert buy(items_offer, periods=1, signer=SELLER) == "data.wrong_unit"
    assert buy(offer_id, items=1) == "data.wrong_unit"
    assert buy(offer_id, periods=1, signer=SELLER) == "data.self_purchase"
    assert buy(huge, periods=2, signer=SELLER) == "data.self_purchase"
    assert buy(huge, periods=2) == "data.amount_too_large"
    assert buy(huge, periods=1) == "bank.insufficient_funds"
    assert buy(offer_id, periods=100) == "ok"
    assert w.code(BUYER, {"type": "data/buy", "offer": offer_id}) == "core.invalid_message"
    assert (
        w.code(BUYER, {"type": "data/buy", "offer": offer_id, "periods": 1, "items": 1})
        == "core.invalid_message"
    )
    assert w.code(BUYER, {"type": "data/buy", "offer": offer_id, "periods": True}) == "core.invalid_message"
    assert w.code(BUYER, {"type": "data/buy", "offer": b"x", "periods": 1}) == "core.invalid_message"


def test_buying_an_offer_in_an_asset_the_chain_does_not_have_is_the_escrows_code() -> None:
    w = World()
    offer_id = w.offer(asset="gold")
    assert w.buy(offer_id)[1].code == "bank.unknown_asset"


def test_ack_refusals_in_order() -> None:
    w = World()
    purchase_id, _ = w.buy(w.offer())
    late = w.purchase(purchase_id).deliver_by_ms
    assert w.code(STRANGER, data.ack_delivery(bytes(32), bytes(32))) == "data.unknown_purchase"
    assert w.code(STRANGER, data.ack_delivery(purchase_id, bytes(32)), time_ms=late) == "data.not_buyer"
    assert w.code(BUYER, data.ack_delivery(purchase_id, b"short")) == "core.invalid_message"
    assert w.code(BUYER, {"type": "data/ack_delivery", "purchase": purchase_id}) == "core.invalid_message"


def test_every_code_is_listed_once_and_namespaced() -> None:
    codes = [code.code for code in DATA_CODES_IN_PRECEDENCE]
    assert len(codes) == len(set(codes)) and all(code.startswith("data.") for code in codes)
    agent = [code.code for code in AGENT_CODES_IN_PRECEDENCE]
    assert len(agent) == len(set(agent)) and all(code.startswith("data.") for code in agent)
    readme = (Path(__file__).resolve().parents[2] / "src/autarky/modules/data/README.md").read_text()
    table = [m for m in re.findall(r"\|\s*\d+\s*\|\s*`(data\.[a-z_]+)`", readme)]
    assert table == codes
    for code in agent:
        assert f"`{code}`" in readme


# -- genesis and parameters ----------------------------------------------------------------------------


def test_no_data_genesis_writes_no_key_and_keeps_the_state_root() -> None:
    without = execute_genesis(genesis(), build_app())
    with_empty = execute_genesis(genesis({}), build_app())
    assert without.header.state_root == with_empty.header.state_root
    assert not any(key.startswith("data/") for key, _ in without.changes)


def test_genesis_parameters_are_validated_and_used() -> None:
    w = World({"params": {"delivery_window_ms": 60_000, "max_units": 5}})
    assert w.data.params(w.chain.state) == data_keeper.Params(60_000, 5)
    offer_id = w.offer()
    purchase_id, _ = w.buy(offer_id, periods=5)
    assert w.purchase(purchase_id).deliver_by_ms == w.now + 60_000
    assert w.buy(offer_id, periods=6)[1].code == "data.invalid_units"
    for bad in (
        {"params": {"delivery_window_ms": 999}},
        {"params": {"delivery_window_ms": "1h"}},
        {"params": {"max_units": 0}},
        {"params": {"max_units": 10**7}},
        {"params": {"unknown": 1}},
        {"params": []},
        {"offers": []},
    ):
        with pytest.raises(ValueError, match="data genesis"):
            execute_genesis(genesis(bad), build_app())


# -- invariants catch broken states --------------------------------------------------------------------


def broken(world: World, mutate: Any) -> list[str]:
    state = Overlay(world.chain.state)
    mutate(state)
    return world.data.invariants(state)


def test_invariants_catch_broken_records_indexes_locks_and_grants() -> None:
    w = World()
    offer_id = w.offer()
    open_id, _ = w.buy(offer_id)
    done_id, _ = w.buy(offer_id)
    assert w.code(BUYER, data.ack_delivery(done_id, bytes(32))) == "ok"
    assert w.chain.invariants() == []
    open_record = w.purchase(open_id)

    def set_purchase(**changes: Any) -> Any:
        def mutate(state: Overlay) -> None:
            value = open_record.to_cbor()
            value.update(changes)
            state.set_obj(data_keeper.purchase_key(open_id), value)

        return mutate

    assert any("malformed" in p for p in broken(w, set_purchase(status="lost")))
    assert any("amount" in p for p in broken(w, set_purchase(amount=6)))
    assert any("settlement height" in p for p in broken(w, set_purchase(settled=3)))
    assert any("key hash" in p for p in broken(w, set_purchase(key_hash=bytes(32))))
    assert any("its grant" in p for p in broken(w, set_purchase(grant=bytes(32))))
    assert any("escrow lock" in p for p in broken(w, set_purchase(lock=bytes(32))))
    assert any("no open purchase" in p for p in broken(w, set_purchase(lock=bytes(32))))
    assert any(
        "is missing" in p
        for p in broken(w, lambda s: s.delete(data_keeper.due_key(open_record.deliver_by_ms, open_id)))
    )
    assert any(
        "names no record" in p
        for p in broken(w, lambda s: s.set_obj(data_keeper.due_key(1, done_id), BUYER.did))
    )
    assert any("sold" in p for p in broken(w, lambda s: s.delete(data_keeper.purchase_key(done_id))))
    assert any(
        "holds id" in p
        for p in broken(w, lambda s: s.set_obj(data_keeper.purchase_key(bytes(32)), open_record.to_cbor()))
    )
    offer = w.offer_record(offer_id).to_cbor()
    offer["seller"] = STRANGER.did
    assert any(
        "seller or asset" in p for p in broken(w, lambda s: s.set_obj(data_keeper.offer_key(offer_id), offer))
    )
    done = w.purchase(done_id).to_cbor()
    done["status"] = "refunded"
    done["key_hash"] = None
    assert any(
        "not revoked" in p for p in broken(w, lambda s: s.set_obj(data_keeper.purchase_key(done_id), done))
    )


# -- the grant the purchase made works like any other grant ---------------------------------------------


def test_the_grant_is_checked_offline_like_any_grant_and_the_seller_can_revoke_it() -> None:
    w = World()
    offer_id = w.offer()
    purchase_id, _ = w.buy(offer_id, periods=2)
    record = w.purchase(purchase_id)
    grant = w.policy.grant(w.chain.state, record.grant)
    assert grant is not None
    records = {grant.id: grant}
    resource = resource_of(offer_id)
    allowed = check_grant(
        lookup_in(records), grant.id, grantee=BUYER.did, action="read", resource=resource, now_ms=w.now
    )
    assert allowed.root_grantor == SELLER.did
    with pytest.raises(GrantRefused):
        check_grant(
            lookup_in(records), grant.id, grantee=STRANGER.did, action="read", resource=resource, now_ms=w.now
        )
    assert w.code(BUYER, policy.revoke(record.grant)) == "policy.not_authorised"
    assert w.code(SELLER, policy.revoke(record.grant)) == "ok"


def test_replaying_the_chain_gives_the_same_headers() -> None:
    w = World()
    offer_id = w.offer()
    delivered, _ = w.buy(offer_id, periods=2)
    w.buy(offer_id, periods=1)
    assert w.code(BUYER, data.ack_delivery(delivered, bytes(32))) == "ok"
    w.chain.execute([], w.now + 2 * HOUR_MS)
    other = w.chain.replay()
    assert [h.hash for h in other.headers] == [h.hash for h in w.chain.headers]


# -- the README example runs as written ----------------------------------------------------------------


def test_readme_example_runs() -> None:
    readme = Path(__file__).resolve().parents[2] / "src/autarky/modules/data/README.md"
    example = readme.read_text(encoding="utf-8").split("## Example", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", example, flags=re.DOTALL)[:1]
    exec(compile(code, str(readme), "exec"), {})
