"""The escrow module through the real executor: user locks, the interface for holder modules,
expiry refunds, every refusal code in its precedence, and the invariants that catch broken states.
"""

from __future__ import annotations

from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.errors import TxError
from autarky.ledger.router import BlockEnv, KeyScope, TxContext
from autarky.ledger.state import Overlay
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.bank import messages as bank
from autarky.modules.escrow import ESCROW_ACCOUNT, EscrowModule
from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.escrow import messages as escrow
from autarky.modules.escrow.errors import ESCROW_CODES_IN_PRECEDENCE
from autarky.modules.harness import Chain

CHAIN_ID = "escrow-test"
T0 = 1_700_000_000_000


def key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/escrow-test/" + name.encode()))


PAYER, SELLER, COURIER, ARBITER, OWNER, ROBOT = (
    key(n) for n in ("payer", "seller", "courier", "arbiter", "owner", "robot")
)

GENESIS: dict[str, Any] = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": T0,
    "app_state": {
        "identity": {"accounts": [{"did": ROBOT.did, "owner": OWNER.did, "kind": "robot"}]},
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "balances": [
                {"account": PAYER.did, "asset": "aut", "amount": 1_000},
                {"account": ROBOT.did, "asset": "aut", "amount": 500},
                {"account": OWNER.did, "asset": "aut", "amount": 10},
            ],
        },
    },
}


class World:
    def __init__(self) -> None:
        self.chain = Chain.from_genesis(GENESIS)
        module = self.chain.app.module("escrow")
        assert isinstance(module, EscrowModule)
        self.escrow = module

    @property
    def now(self) -> int:
        return self.chain.headers[-1].time_ms

    def tx(
        self, signer: SigningKey, *msgs: dict[str, Any], cosigners: tuple[SigningKey, ...] = ()
    ) -> SignedTx:
        body = TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, tuple(msgs))
        return sign_tx(body, signer, cosigners)

    def run(self, signer: SigningKey, *msgs: dict[str, Any], time_ms: int | None = None, **kw: Any) -> Any:
        (receipt,) = self.chain.execute([self.tx(signer, *msgs, **kw).raw], time_ms)
        assert self.chain.invariants() == []
        return receipt

    def code(self, signer: SigningKey, *msgs: dict[str, Any], **kw: Any) -> str:
        return str(self.run(signer, *msgs, **kw).code)

    def lock(self, signer: SigningKey = PAYER, amount: int = 100, **fields: Any) -> bytes:
        beneficiaries = fields.pop("beneficiaries", [SELLER.did])
        expires = fields.pop("expires_ms", self.now + 60_000)
        tx = self.tx(signer, escrow.lock("aut", amount, beneficiaries, expires, **fields))
        (receipt,) = self.chain.execute([tx.raw])
        assert receipt.code == "ok", receipt.detail
        assert self.chain.invariants() == []
        return escrow_keeper.new_lock_id(tx.hash, 0)

    def balance(self, who: SigningKey | str) -> int:
        account = who if isinstance(who, str) else who.did
        return bank_keeper.balance(self.chain.state, account, "aut")


def events(receipt: Any, kind: str) -> list[dict[str, Any]]:
    return [dict(e.attributes) for e in receipt.events if e.type == kind]


# -- user locks -------------------------------------------------------------------------------------


def test_lock_release_in_parts_and_the_lock_closes_at_zero() -> None:
    w = World()
    lock_id = w.lock(
        amount=300, beneficiaries=[SELLER.did, COURIER.did], arbiter=ARBITER.did, purpose="parcel"
    )
    assert w.balance(PAYER) == 700 and w.balance(ESCROW_ACCOUNT) == 300
    record = w.escrow.get(w.chain.state, lock_id)
    assert record is not None and record.amount == 300 and record.arbiter == ARBITER.did
    assert [lock.id for lock in w.escrow.locks_of(w.chain.state, PAYER.did)] == [lock_id]
    assert [lock.id for lock in w.escrow.locks_for(w.chain.state, COURIER.did)] == [lock_id]
    receipt = w.run(PAYER, escrow.release(lock_id, SELLER.did, 250))
    assert receipt.code == "ok"
    assert events(receipt, "escrow.released") == [
        {"lock": lock_id, "to": SELLER.did, "asset": "aut", "amount": 250, "remaining": 50}
    ]
    assert w.code(ARBITER, escrow.release(lock_id, COURIER.did, 50)) == "ok"
    assert w.balance(SELLER) == 250 and w.balance(COURIER) == 50 and w.balance(ESCROW_ACCOUNT) == 0
    assert w.escrow.get(w.chain.state, lock_id) is None
    assert not any(k.startswith("escrow/") for k in w.chain.data)


def test_a_beneficiary_or_the_arbiter_refunds_the_payer_but_the_payer_cannot() -> None:
    w = World()
    lock_id = w.lock(amount=100, arbiter=ARBITER.did)
    assert w.code(PAYER, escrow.refund(lock_id)) == "escrow.not_authorized"
    receipt = w.run(SELLER, escrow.refund(lock_id))
    assert receipt.code == "ok" and events(receipt, "escrow.refunded")[0]["amount"] == 100
    assert w.balance(PAYER) == 1_000
    other = w.lock(amount=40, arbiter=ARBITER.did)
    assert w.code(ARBITER, escrow.refund(other)) == "ok" and w.balance(PAYER) == 1_000


def test_expiry_refunds_what_remains_at_the_first_block_that_reaches_it() -> None:
    w = World()
    lock_id = w.lock(amount=100, expires_ms=w.now + 5_000)
    assert w.code(PAYER, escrow.release(lock_id, SELLER.did, 30)) == "ok"
    w.chain.execute([], w.now + 2_000)  # not yet
    assert w.escrow.get(w.chain.state, lock_id) is not None
    w.chain.execute([], w.now + 10_000)
    assert w.escrow.get(w.chain.state, lock_id) is None
    assert w.balance(PAYER) == 970 and w.balance(SELLER) == 30 and w.chain.invariants() == []


def test_the_expiry_refund_events_are_in_the_block_result() -> None:
    w = World()
    first = w.lock(amount=10, expires_ms=w.now + 3_000)
    second = w.lock(amount=20, expires_ms=w.now + 2_000)
    state = Overlay(w.chain.state)
    env = BlockEnv(CHAIN_ID, w.chain.height + 1, w.now + 5_000, w.chain.headers[-1].hash)
    produced = w.escrow.end_block(state, env)
    order = [dict(e.attributes)["lock"] for e in produced if e.type == "escrow.expired"]
    assert order == [second, first]  # expiry order, not creation order


# -- refusals, each in its precedence -------------------------------------------------------------------


def test_lock_refusals_in_order() -> None:
    w = World()
    later = w.now + 60_000

    def lock(**fields: Any) -> str:
        message = escrow.lock("aut", 10, [SELLER.did], later)
        message.update(fields)
        return w.code(PAYER, message)

    assert lock(beneficiaries=[]) == "escrow.invalid_beneficiaries"
    assert lock(beneficiaries=[PAYER.did], amount=0) == "escrow.invalid_beneficiaries"
    assert lock(beneficiaries=[SELLER.did, SELLER.did]) == "escrow.invalid_beneficiaries"
    assert lock(beneficiaries=["not-a-did"]) == "escrow.invalid_beneficiaries"
    assert lock(arbiter=PAYER.did, amount=0) == "escrow.invalid_arbiter"
    assert lock(purpose="x" * 65, amount=0) == "escrow.invalid_purpose"
    assert lock(amount=0, expires_ms=0) == "escrow.invalid_amount"
    assert lock(amount=2**64) == "escrow.invalid_amount"
    assert lock(expires_ms=w.now, asset="nope") == "escrow.invalid_expiry"
    assert lock(asset="nope") == "bank.unknown_asset"
    assert lock(amount=1_001) == "bank.insufficient_funds"
    assert lock(amount="10") == "core.invalid_message"
    assert lock(extra=1) == "core.invalid_message"
    assert w.balance(PAYER) == 1_000 and w.balance(ESCROW_ACCOUNT) == 0


def test_guardrails_apply_to_locks_and_the_allowlist_to_beneficiaries() -> None:
    w = World()
    guard = {
        "window_blocks": 10,
        "limits": {"aut": {"per_tx": 50, "per_window": None, "cosign_above": None}},
        "allowlist": [SELLER.did],
    }
    assert w.code(OWNER, bank.set_guardrails(ROBOT.did, guard)) == "ok"
    assert (
        w.code(ROBOT, escrow.lock("aut", 10, [COURIER.did], w.now + 60_000))
        == "bank.counterparty_not_allowed"
    )
    assert w.code(ROBOT, escrow.lock("aut", 60, [SELLER.did], w.now + 60_000)) == "bank.per_tx_cap"
    assert w.code(ROBOT, escrow.lock("aut", 50, [SELLER.did], w.now + 60_000)) == "ok"
    assert w.balance(ROBOT) == 450


def test_release_and_refund_refusals_in_order() -> None:
    w = World()
    lock_id = w.lock(amount=100, beneficiaries=[SELLER.did])
    unknown = bytes(32)
    assert w.code(PAYER, escrow.release(unknown, SELLER.did, 1)) == "escrow.unknown_lock"
    assert w.code(SELLER, escrow.release(lock_id, COURIER.did, 0)) == "escrow.not_authorized"
    assert w.code(PAYER, escrow.release(lock_id, COURIER.did, 0)) == "escrow.not_beneficiary"
    assert w.code(PAYER, escrow.release(lock_id, SELLER.did, 0)) == "escrow.invalid_amount"
    assert w.code(PAYER, escrow.release(lock_id, SELLER.did, 101)) == "escrow.invalid_amount"
    assert w.code(PAYER, escrow.refund(unknown)) == "escrow.unknown_lock"
    assert w.code(COURIER, escrow.refund(lock_id)) == "escrow.not_authorized"
    assert w.code(PAYER, {"type": "escrow/refund", "lock": b"short"}) == "core.invalid_message"
    assert w.balance(ESCROW_ACCOUNT) == 100


def test_a_module_lock_is_released_only_by_its_holder() -> None:
    w = World()
    tx = w.tx(PAYER, bank.send(SELLER.did, "aut", 1))
    state = Overlay(w.chain.state)
    env = BlockEnv(CHAIN_ID, w.chain.height + 1, w.now + 1000, w.chain.headers[-1].hash)
    block = state.child()
    ctx = TxContext(block, env, tx, KeyScope(PAYER.public_key.raw), w.chain.app)
    lock_id = w.escrow.lock(
        ctx, asset="aut", amount=70, holder="market", expires_ms=env.time_ms + 1, purpose="bid"
    )
    assert [e.type for e in ctx.events] == ["escrow.locked"]
    with pytest.raises(AssertionError):
        w.escrow.release(block, lock_id, SELLER.did, 10, holder="lease")
    with pytest.raises(AssertionError):
        w.escrow.release(block, lock_id, SELLER.did, 71, holder="market")
    w.escrow.release(block, lock_id, SELLER.did, 20, holder="market")
    w.escrow.refund(block, lock_id, 5, holder="market")
    assert escrow_keeper.get(block, lock_id).amount == 45  # type: ignore[union-attr]
    assert w.chain.app.invariants(block) == []
    # The user messages refuse a module's lock, whoever signs them.
    for message in (escrow.release(lock_id, SELLER.did, 1), escrow.refund(lock_id)):
        with pytest.raises(TxError) as refused:
            w.escrow.handle(ctx, message)
        assert refused.value.code == "escrow.held_by_module"


def test_every_code_is_listed_once_in_the_readme_in_its_order() -> None:
    from pathlib import Path

    import autarky.modules.escrow as package

    readme = (Path(package.__file__).parent / "README.md").read_text()
    assert len({code.code for code in ESCROW_CODES_IN_PRECEDENCE}) == len(ESCROW_CODES_IN_PRECEDENCE)
    assert all(f"`{code.code}`" in readme for code in ESCROW_CODES_IN_PRECEDENCE)
    for heading, codes in (
        ("### `escrow/lock", ESCROW_CODES_IN_PRECEDENCE[:3]),
        ("### `escrow/release", ESCROW_CODES_IN_PRECEDENCE[5:]),
    ):
        section = readme[readme.index(heading) :]
        positions = [section.index(f"`{code.code}`") for code in codes]
        assert positions == sorted(positions), heading


def test_invariants_catch_money_outside_a_lock_and_a_missing_index() -> None:
    w = World()
    lock_id = w.lock(amount=100)
    state = Overlay(w.chain.state)
    bank_keeper.transfer(state, PAYER.did, ESCROW_ACCOUNT, "aut", 5)
    assert any("locks sum to" in p for p in w.chain.app.invariants(state))
    state = Overlay(w.chain.state)
    state.delete(f"escrow/payer/{PAYER.did}/{lock_id.hex()}")
    assert any("indexes disagree" in p for p in w.chain.app.invariants(state))


def test_a_lock_record_is_built_in_canonical_key_order_and_its_json_keeps_its_order() -> None:
    """Encoding takes a map already in canonical order as it is (no copy); the API's JSON is unchanged."""
    from autarky.encoding.cbor import canonical_key_order
    from autarky.modules.escrow.keeper import Lock

    lock = Lock(b"\x01" * 32, "did:key:p", "aut", 5, 9, "module:market", "bid", 10, ("did:key:b",), None, 3)
    keys = tuple(lock.to_cbor())
    assert canonical_key_order(keys) == keys
    document = lock.to_json()
    assert list(document) == [
        "payer", "asset", "amount", "locked", "holder", "purpose", "expires_ms", "beneficiaries", "arbiter",
        "height", "id",
    ]  # fmt: skip
    assert document["beneficiaries"] == ["did:key:b"] and document["amount"] == 5
