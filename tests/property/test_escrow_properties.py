"""Escrow conserves value and every lock ends released or refunded (issue 5, property tests).

Random user locks, partial releases, refunds and block-time jumps across four accounts, run through
the real executor; a step model predicts each balance. After each block the chain's invariants hold
(bank supply == balances; escrow's account == open locks); after the last expiry no lock remains
and every balance equals the model's: what was locked went exactly to beneficiaries or back.
"""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.bank import keeper as bank_keeper
from autarky.modules.escrow import ESCROW_ACCOUNT
from autarky.modules.escrow import keeper as escrow_keeper
from autarky.modules.escrow import messages as escrow
from autarky.modules.harness import Chain

KEYS = [SigningKey.from_seed(sha256(b"autarky/escrow-prop/" + bytes([i]))) for i in range(4)]
T0 = 1_700_000_000_000
GENESIS: dict[str, Any] = {
    "chain_id": "escrow-prop",
    "genesis_time_ms": T0,
    "app_state": {
        "bank": {
            "params": {"fee_asset": "aut", "min_fee": 0},
            "balances": [{"account": k.did, "asset": "aut", "amount": 500} for k in KEYS],
        }
    },
}

STEP = st.tuples(
    st.sampled_from(["lock", "release", "refund", "wait"]),
    st.integers(0, 3),  # actor
    st.integers(0, 3),  # other party
    st.integers(0, 600),  # amount (may exceed what is there: then refused)
    st.integers(0, 30),  # lock pick / seconds
)


@settings(max_examples=60, deadline=None)
@given(st.lists(STEP, min_size=1, max_size=30))
def test_value_is_conserved_and_every_lock_ends(steps: list[tuple[str, int, int, int, int]]) -> None:
    chain = Chain.from_genesis(GENESIS)
    expected = {k.did: 500 for k in KEYS}
    model: dict[bytes, list[Any]] = {}  # lock id -> [payer, remaining]
    for kind, actor_i, other_i, amount, pick in steps:
        actor, other = KEYS[actor_i], KEYS[other_i]
        now = chain.headers[-1].time_ms
        if kind == "wait":
            chain.execute([], now + pick * 1000)
        else:
            ids = sorted(model)
            lock_id = ids[pick % len(ids)] if ids else bytes(32)
            if kind == "lock":
                message = escrow.lock("aut", amount, [other.did], now + 1000 + pick * 1000)
            elif kind == "release":
                message = escrow.release(lock_id, other.did, amount)
            else:
                message = escrow.refund(lock_id)
            body = TxBody("escrow-prop", actor.did, chain.sequence(actor.did), 0, 0, (message,))
            tx = sign_tx(body, actor)
            (receipt,) = chain.execute([tx.raw])
            if receipt.code == "ok" and kind == "lock":
                model[escrow_keeper.new_lock_id(tx.hash, 0)] = [actor.did, amount]
                expected[actor.did] -= amount
            elif receipt.code == "ok" and kind == "release":
                model[lock_id][1] -= amount
                expected[other.did] += amount
            elif receipt.code == "ok":
                expected[model[lock_id][0]] += model[lock_id][1]
                model[lock_id][1] = 0
        _settle_expired(chain, model, expected)
        assert chain.invariants() == []
        for k in KEYS:
            assert bank_keeper.balance(chain.state, k.did, "aut") == expected[k.did]
    # Every lock ends: past every expiry nothing is held and all the value is back in wallets.
    chain.execute([], chain.headers[-1].time_ms + 40_000)
    _settle_expired(chain, model, expected)
    assert escrow_keeper.all_locks(chain.state) == [] and model == {}
    assert bank_keeper.balance(chain.state, ESCROW_ACCOUNT, "aut") == 0
    for k in KEYS:
        assert bank_keeper.balance(chain.state, k.did, "aut") == expected[k.did]
    assert sum(expected.values()) == 2000 and chain.invariants() == []


def _settle_expired(chain: Chain, model: dict[bytes, list[Any]], expected: dict[str, int]) -> None:
    """A lock the chain no longer holds was emptied by releases or a refund, or expired: refunded."""
    for lock_id in sorted(model):
        record = escrow_keeper.get(chain.state, lock_id)
        payer, remaining = model[lock_id]
        if record is None:
            expected[payer] += remaining
            del model[lock_id]
        else:
            assert record.amount == remaining
