"""The provenance module through the real executor: data anchors, the model registry, decision
batches and tracked items; every code in the README's order; the invariants catch planted faults.

Layout: a battery (a registered machine) and its owner, a trainer, a carrier and a stranger on the
in-memory chain built by ``build_app``. After every block the world checks every module's invariants.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from autarky.crypto.hashing import sha256
from autarky.crypto.keys import SigningKey
from autarky.ledger.tx import SignedTx, TxBody, sign_tx
from autarky.modules.harness import Chain
from autarky.modules.provenance import ProvenanceModule, keeper
from autarky.modules.provenance import messages as prov
from autarky.modules.provenance.errors import PROVENANCE_CODES_IN_PRECEDENCE
from autarky.provenance import DecisionChain

CHAIN_ID = "provenance-test"
README = Path(__file__).resolve().parents[2] / "src/autarky/modules/provenance/README.md"


def make_key(name: str) -> SigningKey:
    return SigningKey.from_seed(sha256(b"autarky/provenance-test/" + name.encode()))


BATTERY = make_key("battery")
OWNER = make_key("owner")
TRAINER = make_key("trainer")
CARRIER = make_key("carrier")
STRANGER = make_key("stranger")
H1, H2, H3 = (sha256(bytes([i])) for i in range(3))

GENESIS: dict[str, Any] = {
    "chain_id": CHAIN_ID,
    "genesis_time_ms": 1_000_000,
    "app_state": {
        "identity": {"accounts": [{"did": BATTERY.did, "owner": OWNER.did, "kind": "battery"}]},
        "bank": {"params": {"fee_asset": "aut", "min_fee": 0}, "balances": []},
    },
}


class World:
    def __init__(self) -> None:
        self.chain = Chain.from_genesis(GENESIS)
        module = self.chain.app.module("provenance")
        assert isinstance(module, ProvenanceModule)
        self.module = module

    def tx(self, signer: SigningKey, *msgs: dict[str, Any]) -> SignedTx:
        body = TxBody(CHAIN_ID, signer.did, self.chain.sequence(signer.did), 0, 0, tuple(msgs))
        return sign_tx(body, signer)

    def run(self, signer: SigningKey, *msgs: dict[str, Any]) -> tuple[SignedTx, Any]:
        tx = self.tx(signer, *msgs)
        (receipt,) = self.chain.execute([tx.raw])
        assert self.chain.invariants() == []
        return tx, receipt

    def code(self, signer: SigningKey, *msgs: dict[str, Any]) -> str:
        return str(self.run(signer, *msgs)[1].code)

    def ok(self, signer: SigningKey, *msgs: dict[str, Any]) -> SignedTx:
        tx, receipt = self.run(signer, *msgs)
        assert receipt.code == "ok", (receipt.code, receipt.detail)
        return tx

    def anchor(self, signer: SigningKey = TRAINER) -> bytes:
        tx = self.ok(signer, prov.anchor("autarky.training/pv/1", H1, 10, 0, 100, {"site": "north"}))
        return keeper.new_anchor_id(tx.hash, 0)

    def model(self, version: str = "1", file_hash: bytes = H2) -> bytes:
        self.ok(
            TRAINER,
            prov.register_model("pv-forecaster", version, file_hash, H3, "pv-forecaster", [self.anchor()]),
        )
        return file_hash

    def item(self, item_id: str = "part-7") -> str:
        self.ok(BATTERY, prov.register_item(item_id, "bearing", {"lot": "L1"}))
        return item_id


@pytest.fixture
def world() -> World:
    return World()


def state_of(world: World) -> Any:
    return world.chain.state


# -- Happy paths -------------------------------------------------------------------------------------------


def test_anchor_is_stored_with_sender_height_and_event(world: World) -> None:
    tx, receipt = world.run(
        TRAINER, prov.anchor("s.v/1", H1, 3, 5, 9, {"b": "2", "a": "1"}), prov.anchor("s", H2, 1, 0, 0)
    )
    assert receipt.code == "ok"
    first, second = keeper.new_anchor_id(tx.hash, 0), keeper.new_anchor_id(tx.hash, 1)
    assert first != second
    anchor = world.module.anchor(state_of(world), first)
    assert anchor is not None
    assert (anchor["root"], anchor["count"], anchor["sender"], anchor["height"]) == (H1, 3, TRAINER.did, 1)
    assert anchor["metadata"] == {"a": "1", "b": "2"}
    events = [e for e in receipt.events if e.type == "provenance.anchored"]
    assert [e.get("id") for e in events] == [first, second]


def test_models_register_list_and_retire(world: World) -> None:
    world.model("1", H2)
    world.model("2", H3)
    models = world.module.models(state_of(world), "pv-forecaster")
    assert [(m["version"], m["hash"], m["owner"]) for m in models] == [
        ("1", H2, TRAINER.did),
        ("2", H3, TRAINER.did),
    ]
    assert world.module.models(state_of(world), "other") == []
    world.ok(TRAINER, prov.retire_model(H2))
    model = world.module.model(state_of(world), H2)
    assert model is not None and model["retired_height"] == world.chain.height
    assert len(world.module.models(state_of(world))) == 2


def test_decision_batches_by_machine_and_owner(world: World) -> None:
    decisions = DecisionChain(BATTERY.did)
    for i in range(10):
        decisions.append(time_ms=i, policy="battery-lp/1", inputs={"i": i}, output=i)
    first = decisions.pending_batch(4)
    assert first is not None
    world.ok(BATTERY, prov.anchor_decisions(**first.message_fields(BATTERY.did)))
    decisions.mark_anchored(0, 4)
    rest = decisions.pending_batch()
    assert rest is not None
    tx = world.ok(OWNER, prov.anchor_decisions(**rest.message_fields(BATTERY.did)))
    head = world.module.decision_head(state_of(world), BATTERY.did)
    assert head == {"count": 10, "head": decisions.head, "height": world.chain.height}
    batches = world.module.decision_batches(state_of(world), BATTERY.did)
    assert [(b["first_seq"], b["count"], b["sender"]) for b in batches] == [
        (0, 4, BATTERY.did),
        (4, 6, OWNER.did),
    ]
    assert batches[1]["tx"] == tx.hash and batches[1]["root"] == rest.root
    assert world.module.decision_batch(state_of(world), BATTERY.did, 3)["first_seq"] == 0  # type: ignore[index]
    assert world.module.decision_batch(state_of(world), BATTERY.did, 4)["first_seq"] == 4  # type: ignore[index]
    assert world.module.decision_batch(state_of(world), BATTERY.did, 10) is None
    assert world.module.decision_head(state_of(world), STRANGER.did) is None


def test_items_keep_custody_and_condition_history(world: World) -> None:
    item = world.item()
    world.ok(BATTERY, prov.item_condition(item, "inspected-ok", H1))
    world.ok(BATTERY, prov.item_custody(item, CARRIER.did))
    assert world.code(BATTERY, prov.item_condition(item, "worn")) == "provenance.not_custodian"
    world.ok(CARRIER, prov.item_custody(item, STRANGER.did, H2))
    record = world.module.item(state_of(world), item)
    assert record is not None
    assert (record["custodian"], record["condition"], record["events"]) == (STRANGER.did, "inspected-ok", 4)
    history = world.module.item_history(state_of(world), item)
    assert [(e["n"], e["event"], e["by"]) for e in history] == [
        (0, "registered", BATTERY.did),
        (1, "condition", BATTERY.did),
        (2, "custody", BATTERY.did),
        (3, "custody", CARRIER.did),
    ]
    assert history[1]["digest"] == H1 and history[3]["to"] == STRANGER.did


# -- Every code, in the README's order ---------------------------------------------------------------------


def _anchor(**change: Any) -> dict[str, Any]:
    return {**prov.anchor("s", H1, 1, 0, 0), **change}


def _model(**change: Any) -> dict[str, Any]:
    return {**prov.register_model("m", "1", H2, H3, "k", [H1]), **change}


def _batch(**change: Any) -> dict[str, Any]:
    return {**prov.anchor_decisions(BATTERY.did, 0, 1, H1, H2), **change}


def _event(**change: Any) -> dict[str, Any]:
    return {**prov.item_condition("part-7", "ok"), **change}


def test_invalid_message_shapes(world: World) -> None:
    for message in (
        _anchor(root=b"short"),
        _anchor(extra=1),
        _anchor(metadata={"a": 1}),
        _model(training_anchors=["x"]),
        _batch(first_seq="0"),
        _event(digest=b"x"),
        {"type": prov.RETIRE_MODEL},
    ):
        assert world.code(TRAINER, message) == "core.invalid_message", message


def test_every_code_in_order(world: World) -> None:
    many = {f"k{i}": "v" for i in range(17)}
    cases: list[tuple[str, SigningKey, dict[str, Any]]] = [
        ("provenance.invalid_item_id", BATTERY, prov.register_item("bad/id", "k", {})),
        ("provenance.invalid_model_id", TRAINER, _model(model_id="Bad")),
        ("provenance.invalid_version", TRAINER, _model(version="-1")),
        ("provenance.invalid_schema", TRAINER, _anchor(schema="Schema")),
        ("provenance.invalid_kind", TRAINER, _model(kind="K")),
        ("provenance.invalid_count", TRAINER, _anchor(count=0)),
        ("provenance.invalid_time_range", TRAINER, _anchor(from_ms=5, until_ms=4)),
        ("provenance.invalid_metadata", TRAINER, _anchor(metadata=many)),
        ("provenance.invalid_training_anchors", TRAINER, _model(training_anchors=[H1, H1])),
        ("provenance.invalid_machine", BATTERY, _batch(machine="did:web:example")),
        ("provenance.invalid_batch_size", BATTERY, _batch(count=4097)),
        ("provenance.invalid_event", BATTERY, _event(to=CARRIER.did)),
        ("provenance.invalid_recipient", BATTERY, prov.item_custody("part-7", "nobody")),
        ("provenance.invalid_condition", BATTERY, _event(condition="Worn Out")),
        ("provenance.unknown_anchor", TRAINER, _model()),
        ("provenance.unknown_model", TRAINER, prov.retire_model(H1)),
        ("provenance.unknown_item", BATTERY, _event()),
        ("provenance.not_registrant", STRANGER, prov.retire_model(H2)),
        ("provenance.not_machine_or_owner", STRANGER, _batch()),
        ("provenance.not_custodian", STRANGER, _event(item_id="part-8")),
        ("provenance.model_version_exists", TRAINER, "version"),  # type: ignore[list-item]
        ("provenance.model_hash_exists", TRAINER, "hash"),  # type: ignore[list-item]
        ("provenance.model_retired", TRAINER, prov.retire_model(H3)),
        ("provenance.out_of_order", BATTERY, _batch(first_seq=1)),
        ("provenance.item_exists", BATTERY, prov.register_item("part-8", "k", {})),
        ("provenance.same_custodian", BATTERY, prov.item_custody("part-8", BATTERY.did)),
    ]
    assert [code for code, _, _ in cases] == [c.code for c in PROVENANCE_CODES_IN_PRECEDENCE]
    # The state the state-reading cases need: a model H2 (v1), a retired model H3 (v2), an item part-8.
    world.model("1", H2)
    world.model("2", H3)
    world.ok(TRAINER, prov.retire_model(H3))
    world.item("part-8")
    anchor_id = world.module.model(state_of(world), H2)["training_anchors"][0]  # type: ignore[index]
    for code, signer, message in cases:
        if message == "version":  # type: ignore[comparison-overlap]
            message = prov.register_model("pv-forecaster", "1", sha256(b"new"), H3, "k", [anchor_id])
        elif message == "hash":  # type: ignore[comparison-overlap]
            message = prov.register_model("pv-forecaster", "9", H2, H3, "k", [anchor_id])
        assert world.code(signer, message) == code, code


@pytest.mark.parametrize(
    ("signer", "message", "code"),
    [
        # message-alone codes come before the state: an unknown item with a bad condition
        (BATTERY, _event(item_id="nope", condition="Bad"), "provenance.invalid_condition"),
        (TRAINER, _model(model_id="Bad", version="-"), "provenance.invalid_model_id"),
        (TRAINER, _anchor(count=0, from_ms=2, until_ms=1), "provenance.invalid_count"),
        # the sender before the sequence of batches
        (STRANGER, _batch(first_seq=5), "provenance.not_machine_or_owner"),
        (BATTERY, _batch(machine="x", count=0), "provenance.invalid_machine"),
        # an unknown anchor before a taken version
        (
            TRAINER,
            prov.register_model("pv-forecaster", "1", H2, H3, "k", [sha256(b"none")]),
            "provenance.unknown_anchor",
        ),
        (STRANGER, prov.item_custody("part-8", STRANGER.did), "provenance.not_custodian"),
    ],
)
def test_precedence_pairs(world: World, signer: SigningKey, message: dict[str, Any], code: str) -> None:
    world.model("1", H2)
    world.item("part-8")
    assert world.code(signer, message) == code


def test_a_failed_message_writes_nothing(world: World) -> None:
    before = dict(world.chain.state.data)
    tx, receipt = world.run(TRAINER, prov.anchor("s", H1, 1, 0, 0), prov.retire_model(H1))
    assert receipt.code == "provenance.unknown_model"
    assert keeper.read_anchor(state_of(world), keeper.new_anchor_id(tx.hash, 0)) is None
    assert {k for k in world.chain.state.data if k.startswith("provenance/")} == {
        k for k in before if k.startswith("provenance/")
    }


# -- Invariants catch planted faults ---------------------------------------------------------------------


def _plant(world: World, key: str, value: Any) -> list[str]:
    from autarky.encoding import canonical_encode

    state = dict(world.chain.state.data)
    state[key] = canonical_encode(value)
    from autarky.ledger.state import MappingState

    return world.module.invariants(MappingState(state))


def test_invariants_catch_planted_faults(world: World) -> None:
    world.model()
    world.item()
    world.ok(BATTERY, prov.anchor_decisions(BATTERY.did, 0, 2, H1, H2))
    assert world.module.invariants(world.chain.state) == []
    assert any(
        "head" in p
        for p in _plant(world, keeper.dhead_key(BATTERY.did), {"count": 3, "head": H1, "height": 1})
    )
    batch = {"machine": BATTERY.did, "first_seq": 5, "count": 1, "head": H1, "root": H1}
    assert any("contiguous" in p for p in _plant(world, keeper.dbatch_key(BATTERY.did, 5), batch))
    assert any("index" in p for p in _plant(world, keeper.model_id_key("x", "1"), H1))
    item = world.module.item(state_of(world), "part-7")
    assert item is not None
    assert any(
        "custodian" in p
        for p in _plant(world, keeper.item_key("part-7"), {**item, "custodian": STRANGER.did})
    )
    anchor = {"id": H1, "schema": "s", "root": H1, "count": 0, "from_ms": 0, "until_ms": 0}
    assert any("out of bounds" in p for p in _plant(world, keeper.anchor_key(H1), anchor))


def test_no_provenance_state_at_genesis_and_replay_matches(world: World) -> None:
    assert not any(k.startswith("provenance/") for k in Chain.from_genesis(GENESIS).state.data)
    world.model()
    world.item()
    assert world.chain.replay().root == world.chain.root


# -- The spec ------------------------------------------------------------------------------------------------


def test_readme_lists_every_code_in_precedence_order() -> None:
    text = README.read_text(encoding="utf-8")
    table = text.split("## Errors, in order of precedence", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^\| \d+ +\| `(provenance\.[a-z_]+)`", table, flags=re.MULTILINE)
    assert listed == [code.code for code in PROVENANCE_CODES_IN_PRECEDENCE]


def test_readme_example_runs() -> None:
    text = README.read_text(encoding="utf-8")
    example = text.split("## Example", 1)[1]
    (code,) = re.findall(r"```python\n(.*?)```", example, flags=re.DOTALL)[:1]
    exec(compile(code, str(README), "exec"), {})
