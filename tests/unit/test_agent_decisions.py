"""Decision records of machines: appended per action with the transaction hash, anchored on chain."""

from __future__ import annotations

import asyncio
from typing import Any

from autarky.agent import ActionRefused, InProcessLedger, Machine, run_fleet
from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.harness import Chain
from autarky.provenance import DecisionStore, inputs_digest, verify_chain

START_MS = 1_700_000_000_000
OWNER, MACHINE, GRID = (SigningKey.from_seed(sha256(n.encode())) for n in ("owner", "battery", "grid"))


class Threshold:
    name = "threshold/1"
    model_hash = sha256(b"model file bytes")

    def decide(self, inputs: Any) -> dict[str, int]:
        return {"amount": min(inputs["bill"], inputs["limit"])}


def chain() -> Chain:
    genesis = {
        "chain_id": "decisions",
        "genesis_time_ms": START_MS,
        "app_state": {
            "identity": {"accounts": [{"did": MACHINE.did, "owner": OWNER.did, "kind": "battery"}]},
            "bank": {
                "params": {"fee_asset": "aut", "min_fee": 1},
                "balances": [
                    {"account": MACHINE.did, "asset": "aut", "amount": 100_000},
                    {"account": OWNER.did, "asset": "aut", "amount": 100_000},
                ],
            },
        },
    }
    return Chain.from_genesis(genesis)


def test_each_action_is_recorded_with_its_transaction_and_anchored() -> None:
    c = chain()
    ledger = InProcessLedger(c)
    store = DecisionStore.memory()
    machine = Machine(MACHINE, ledger, decisions=store, anchor_every=4)
    hashes: list[bytes] = []

    @machine.on_interval(period_ms=900_000)
    async def pay(m: Machine) -> None:
        decision = m.decide(Threshold(), {"bill": 10 + m.sequence, "limit": 50})
        receipt = await m.submit(
            {"type": "bank/send", "to": GRID.did, "asset": "aut", "amount": decision.output["amount"]},
            decision=decision,
        )
        hashes.append(receipt.tx_hash)

    run_fleet([machine], ledger, start_ms=START_MS, until_ms=START_MS + 10 * 900_000)
    assert machine.failures == 0 and machine.refusals == 0
    records = store.records(MACHINE.did)
    assert [r.tx for r in records] == hashes and len(records) == 10
    verify_chain(records)
    first = records[0]
    assert first.policy == "threshold/1" and first.model == Threshold.model_hash
    assert first.inputs_digest == inputs_digest({"bill": 10, "limit": 50})
    assert first.allowed_by == {"kind": "guardrail", "ref": MACHINE.did}
    assert store.by_tx(hashes[3]) == records[3]
    # Anchored in batches of 4 on the ledger: the chain's head is the last anchored record's hash.
    head = c.app.module("provenance").decision_head(c.state, MACHINE.did)  # type: ignore[attr-defined]
    assert head is not None and head["count"] == 8 and head["head"] == records[7].hash
    assert machine.decisions is not None and machine.decisions.pending_count == 2
    assert c.invariants() == []


def test_a_refused_decision_is_recorded_without_a_transaction() -> None:
    c = chain()
    guard = {
        "window_blocks": 10,
        "limits": {"aut": {"per_tx": 20, "per_window": None, "cosign_above": None}},
        "allowlist": None,
    }
    body = TxBody(
        "decisions",
        OWNER.did,
        0,
        1,
        0,
        ({"type": "bank/set_guardrails", "machine": MACHINE.did, "guardrails": guard},),
    )
    assert c.execute([sign_tx(body, OWNER)], START_MS)[0].ok
    ledger = InProcessLedger(c)
    machine = Machine(MACHINE, ledger)
    refusals: list[str] = []

    @machine.on_start
    async def pay(m: Machine) -> None:
        decision = m.decide(Threshold(), {"bill": 45, "limit": 50})
        try:
            await m.submit(
                {"type": "bank/send", "to": GRID.did, "asset": "aut", "amount": 45}, decision=decision
            )
        except ActionRefused as refusal:
            refusals.append(refusal.code)

    run_fleet([machine], ledger, start_ms=START_MS, until_ms=START_MS + 1000)
    assert refusals == ["bank.per_tx_cap"]
    assert machine.decisions is not None
    (record,) = machine.decisions.pending_batch().records  # type: ignore[union-attr]
    assert record.tx is None and record.allowed_by == {"kind": "none", "ref": ""}


def test_anchoring_twice_at_once_anchors_each_record_once() -> None:
    """A second anchor() while one is in flight waits for it, then anchors what is still pending
    (it proposed the same batch again before, refused as provenance.out_of_order)."""
    c = chain()
    ledger = InProcessLedger(c)
    machine = Machine(MACHINE, ledger, anchor_every=1_000)
    receipts: list[Any] = []

    @machine.on_start
    async def decide_then_anchor_twice(m: Machine) -> None:
        async def pay(bill: int) -> None:
            decision = m.decide(Threshold(), {"bill": bill, "limit": 50})
            send = {"type": "bank/send", "to": GRID.did, "asset": "aut", "amount": bill}
            await m.submit(send, decision=decision)

        for bill in (5, 6, 7):
            await pay(bill)
        first = asyncio.ensure_future(m.anchor())
        await asyncio.sleep(0)  # the first is in flight
        await pay(8)
        receipts.extend(await asyncio.gather(first, m.anchor(), m.anchor()))

    run_fleet([machine], ledger, start_ms=START_MS, until_ms=START_MS + 1000)
    assert machine.refusals == 0 and machine.failures == 0
    assert [r is not None and r.ok for r in receipts[:2]] == [True, True] and receipts[2] is None
    head = c.app.module("provenance").decision_head(c.state, MACHINE.did)  # type: ignore[attr-defined]
    assert head is not None and head["count"] == 4
    assert machine.decisions is not None and machine.decisions.pending_count == 0
