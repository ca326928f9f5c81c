"""A block that takes the in-process pre-check's execution (``executed`` in ``apply_block``) is the
block that executing every transaction again gives: same receipts, same writes, same state root."""

from __future__ import annotations

from typing import Any

import pytest

import autarky.ledger.executor as executor
from autarky.agent import InProcessLedger, Machine, run_fleet
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.executor import ACCEPTING_VERIFIER, Executed, apply_block, execute_tx
from autarky.ledger.state import Overlay
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.modules.escrow import messages as escrow_messages
from autarky.modules.harness import Chain
from autarky.scenarios import SimConfig
from autarky.scenarios.runner import run

START_MS = 1_700_000_000_000
HOUR_MS = 3_600_000


def key(label: str) -> SigningKey:
    return SigningKey.from_seed(sha256(label.encode()))


OWNER = key("owner")
MACHINES = [key(f"machine-{i}") for i in range(4)]


def make_chain() -> Chain:
    genesis = {
        "chain_id": "reuse-test",
        "genesis_time_ms": START_MS,
        "app_state": {
            "identity": {"accounts": [{"did": k.did, "owner": OWNER.did, "kind": "meter"} for k in MACHINES]},
            "bank": {
                "params": {"fee_asset": "aut", "min_fee": 1},
                "balances": [{"account": k.did, "asset": "aut", "amount": 10_000} for k in MACHINES],
            },
        },
    }
    return Chain.from_genesis(genesis)


def lock(payee: str, amount: int) -> dict[str, Any]:
    """A user escrow lock: its id is derived from the transaction hash (the signature included)."""
    return escrow_messages.lock("aut", amount, [payee], START_MS + 48 * HOUR_MS)


def signed(chain: Chain, signer: SigningKey, sequence: int, *messages: dict[str, Any]) -> SignedTx:
    return sign_tx(TxBody(chain.chain_id, signer.did, sequence, 1, 0, tuple(messages)), signer)


def pre_executed(chain: Chain, txs: list[SignedTx]) -> list[Executed]:
    """What InProcessLedger.check_signed records: each transaction on a child of one pending overlay."""
    pending = Overlay(chain.state)
    env = chain.next_env(START_MS + 1_000)
    done = []
    for index, tx in enumerate(txs):
        child = pending.child()
        receipt = execute_tx(child, env, tx, index, chain.app, ACCEPTING_VERIFIER)
        done.append(Executed(receipt, tuple(child.changes())))
        child.commit()
    return done


def test_reused_block_equals_executed_block() -> None:
    chain = make_chain()
    a, b = MACHINES[0], MACHINES[1]
    txs = [
        signed(
            chain, a, 0, lock(b.did, 100), {"type": "bank/send", "to": b.did, "asset": "aut", "amount": 9}
        ),
        signed(chain, b, 0, lock(a.did, 7)),
        signed(chain, a, 1, lock(b.did, 1)),
    ]
    env = chain.next_env(START_MS + 1_000)
    plain = apply_block(chain.state, env, txs, chain.app)
    reused = apply_block(chain.state, env, txs, chain.app, executed=pre_executed(chain, txs))
    assert plain == reused
    assert all(receipt.ok for receipt in plain.receipts)


def test_a_bad_signature_ends_the_reuse() -> None:
    chain = make_chain()
    a, b = MACHINES[0], MACHINES[1]
    good = signed(chain, a, 0, lock(b.did, 100))
    forged = SignedTx(good.body, good.body_bytes, ((a.public_key.raw, bytes(64)),), good.raw, good.hash)
    later = signed(chain, b, 0, lock(a.did, 3))
    done = pre_executed(chain, [forged, later])
    env = chain.next_env(START_MS + 1_000)
    applied = apply_block(chain.state, env, [forged, later], chain.app, executed=done)
    assert [receipt.code for receipt in applied.receipts] == ["core.bad_signature", "ok"]
    assert applied == apply_block(chain.state, env, [forged, later], chain.app)


def test_an_entry_for_another_transaction_is_not_taken() -> None:
    chain = make_chain()
    a, b = MACHINES[0], MACHINES[1]
    first = signed(chain, a, 0, lock(b.did, 100))
    other = signed(chain, a, 0, lock(b.did, 200))  # same sequence, another transaction
    env = chain.next_env(START_MS + 1_000)
    applied = apply_block(chain.state, env, [other], chain.app, executed=pre_executed(chain, [first]))
    assert applied == apply_block(chain.state, env, [other], chain.app)


def test_machines_blocks_take_the_checks_and_replay_to_the_same_root(monkeypatch: pytest.MonkeyPatch) -> None:
    chain = make_chain()
    ledger = InProcessLedger(chain)
    fleet = []
    paid = {"n": 0}
    for i, machine_key in enumerate(MACHINES):
        machine = Machine(machine_key, ledger, name=f"m{i}")
        payee = MACHINES[(i + 1) % len(MACHINES)].did

        async def pay(m: Machine, payee: str = payee) -> None:
            assert (await m.submit(lock(payee, 10))).ok
            assert (await m.submit({"type": "bank/send", "to": payee, "asset": "aut", "amount": 3})).ok
            paid["n"] += 1

        machine.on_interval(period_ms=15 * 60_000)(pay)
        fleet.append(machine)

    calls = {"in_block": 0, "blocks": 0}
    original = executor.execute_tx

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls["in_block"] += 1
        return original(*args, **kwargs)

    original_apply = executor.apply_block

    def apply_counting(*args: Any, **kwargs: Any) -> Any:
        calls["blocks"] += 1
        monkeypatch.setattr(executor, "execute_tx", counting)
        try:
            return original_apply(*args, **kwargs)
        finally:
            monkeypatch.setattr(executor, "execute_tx", original)

    monkeypatch.setattr(executor, "apply_block", apply_counting)
    run_fleet(fleet, ledger, start_ms=START_MS, until_ms=START_MS + 2 * HOUR_MS)
    assert paid["n"] >= 7 * len(MACHINES) and ledger.txs_committed == 2 * paid["n"]
    assert calls["blocks"] >= 8
    assert calls["in_block"] == 0  # every transaction of every block came from its check
    assert chain.invariants() == []
    assert chain.replay().root == chain.root  # executed again from genesis, nothing taken


def test_microgrid_same_root_with_and_without_reuse(monkeypatch: pytest.MonkeyPatch) -> None:
    config = SimConfig(machines=20, hours=4, seed=5)
    reused = run("microgrid", config)
    # Without check_signed a machine checks the unsigned body and every block executes everything.
    monkeypatch.delattr(InProcessLedger, "check_signed")
    executed = run("microgrid", config)
    assert reused["transactions_committed"] == executed["transactions_committed"] > 0
    assert reused["trades"] == executed["trades"] > 0
    assert reused["state_root"] == executed["state_root"]
