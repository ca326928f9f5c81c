"""Random provenance traffic against a step model.

A battery (registered, with an owner), a pump (no owner), the owner and a stranger send random
anchors, model registrations and retirements, decision batches (often out of order, too large, or by
someone without the right) and item registrations, custody handovers and condition events (often by
someone who does not hold the item).

The **step model** states the README plainly: every message's code from the precedence table,
each machine's anchored count and head, every model's owner and retirement, every item's custodian
and history length. After every step the chain must agree: the exact code, the heads, the models,
the items and every module's invariants. Runs derandomized under the ``ci`` profile.
"""

from __future__ import annotations

from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import TxBody, sign_tx
from autarky.modules.harness import Chain
from autarky.modules.provenance import ProvenanceModule, keeper
from autarky.modules.provenance import messages as prov

CHAIN_ID = "provenance-model"


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/provenance-model/" + name.encode()))


BATTERY, PUMP, OWNER, STRANGER = (make_key(n) for n in ("battery", "pump", "owner", "stranger"))
ACTORS = [BATTERY, PUMP, OWNER, STRANGER]
MACHINES = [BATTERY, PUMP]
OWNER_OF = {BATTERY.did: OWNER.did}
GENESIS = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": 0,
    "app_state": {
        "identity": {"accounts": [{"did": BATTERY.did, "owner": OWNER.did, "kind": "battery"}]},
        "bank": {"params": {"fee_asset": "aut", "min_fee": 0}, "balances": []},
    },
}
HASHES = [sha256(bytes([i])) for i in range(6)]
ITEMS = ["part-1", "part-2", "part-3"]
actors = st.sampled_from(ACTORS)


class ProvenanceMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.chain = Chain.from_genesis(GENESIS)
        module = self.chain.app.module("provenance")
        assert isinstance(module, ProvenanceModule)
        self.module = module
        self.anchors: list[bytes] = []
        self.heads: dict[str, tuple[int, bytes]] = {}
        self.models: dict[bytes, dict[str, Any]] = {}  # hash -> {name, owner, retired}
        self.items: dict[str, tuple[str, int]] = {}  # id -> (custodian, events)

    def run(self, signer: SigningKey, message: dict[str, Any], expected: str) -> str:
        body = TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, (message,))
        tx = sign_tx(body, signer)
        (receipt,) = self.chain.execute([tx.raw])
        assert receipt.code == expected, (receipt.code, expected, receipt.detail)
        if message["type"] == prov.ANCHOR and expected == "ok":
            self.anchors.append(keeper.new_anchor_id(tx.hash, 0))
        return str(receipt.code)

    @rule(signer=actors, count=st.integers(0, 3), backwards=st.booleans())
    def anchor(self, signer: SigningKey, count: int, backwards: bool) -> None:
        start, end = (5, 4) if backwards else (4, 5)
        expected = (
            "provenance.invalid_count"
            if count == 0
            else ("provenance.invalid_time_range" if backwards else "ok")
        )
        self.run(signer, prov.anchor("data/1", HASHES[0], count, start, end), expected)

    @rule(
        signer=actors,
        name=st.sampled_from(["m-a", "m-b"]),
        version=st.sampled_from(["1", "2"]),
        file_hash=st.sampled_from(HASHES),
        known=st.booleans(),
    )
    def register_model(
        self, signer: SigningKey, name: str, version: str, file_hash: bytes, known: bool
    ) -> None:
        anchor_id = self.anchors[0] if known and self.anchors else sha256(b"unknown")
        names = {m["name"] for m in self.models.values()}
        if anchor_id not in self.anchors:
            expected = "provenance.unknown_anchor"
        elif (name, version) in names:
            expected = "provenance.model_version_exists"
        elif file_hash in self.models:
            expected = "provenance.model_hash_exists"
        else:
            expected = "ok"
            self.models[file_hash] = {"name": (name, version), "owner": signer.did, "retired": False}
        self.run(signer, prov.register_model(name, version, file_hash, HASHES[1], "k", [anchor_id]), expected)

    @rule(signer=actors, file_hash=st.sampled_from(HASHES))
    def retire_model(self, signer: SigningKey, file_hash: bytes) -> None:
        model = self.models.get(file_hash)
        if model is None:
            expected = "provenance.unknown_model"
        elif model["owner"] != signer.did:
            expected = "provenance.not_registrant"
        elif model["retired"]:
            expected = "provenance.model_retired"
        else:
            expected = "ok"
            model["retired"] = True
        self.run(signer, prov.retire_model(file_hash), expected)

    @rule(
        signer=actors,
        machine=st.sampled_from(MACHINES),
        skew=st.sampled_from([0, 0, 0, 1, -1]),
        count=st.sampled_from([1, 7, 4096, 4097]),
    )
    def anchor_decisions(self, signer: SigningKey, machine: SigningKey, skew: int, count: int) -> None:
        anchored, _ = self.heads.get(machine.did, (0, b""))
        first_seq = anchored + skew
        head = sha256(machine.did.encode() + first_seq.to_bytes(8, "big", signed=True))
        if count > prov.MAX_BATCH:
            expected = "provenance.invalid_batch_size"
        elif signer.did != machine.did and OWNER_OF.get(machine.did) != signer.did:
            expected = "provenance.not_machine_or_owner"
        elif first_seq != anchored:
            expected = "provenance.out_of_order"
        else:
            expected = "ok"
            self.heads[machine.did] = (anchored + count, head)
        self.run(signer, prov.anchor_decisions(machine.did, first_seq, count, head, HASHES[2]), expected)

    @rule(signer=actors, item=st.sampled_from(ITEMS))
    def register_item(self, signer: SigningKey, item: str) -> None:
        expected = "provenance.item_exists" if item in self.items else "ok"
        if expected == "ok":
            self.items[item] = (signer.did, 1)
        self.run(signer, prov.register_item(item, "part", {}), expected)

    @rule(signer=actors, item=st.sampled_from(ITEMS), to=actors, custody=st.booleans())
    def item_event(self, signer: SigningKey, item: str, to: SigningKey, custody: bool) -> None:
        message = prov.item_custody(item, to.did) if custody else prov.item_condition(item, "checked")
        state = self.items.get(item)
        if state is None:
            expected = "provenance.unknown_item"
        elif state[0] != signer.did:
            expected = "provenance.not_custodian"
        elif custody and to.did == state[0]:
            expected = "provenance.same_custodian"
        else:
            expected = "ok"
            self.items[item] = (to.did if custody else state[0], state[1] + 1)
        self.run(signer, message, expected)

    @invariant()
    def chain_agrees_with_the_model(self) -> None:
        state = self.chain.state
        for machine in MACHINES:
            head = self.module.decision_head(state, machine.did)
            expected = self.heads.get(machine.did)
            assert (None if head is None else (head["count"], head["head"])) == expected
        for file_hash, model in self.models.items():
            stored = self.module.model(state, file_hash)
            assert stored is not None and stored["owner"] == model["owner"]
            assert (stored["retired_height"] is not None) == model["retired"]
        assert len(self.module.models(state)) == len(self.models)
        for item_id, (custodian, events) in self.items.items():
            stored_item = self.module.item(state, item_id)
            assert stored_item is not None and (stored_item["custodian"], stored_item["events"]) == (
                custodian,
                events,
            )
            assert len(self.module.item_history(state, item_id)) == events
        assert self.chain.invariants() == []


ProvenanceMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=40, deadline=None)
TestProvenanceModel = ProvenanceMachine.TestCase
