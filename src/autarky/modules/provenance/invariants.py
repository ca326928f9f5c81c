"""What must hold in the provenance state after every block. Run by tests; each broken rule is one line.

1. Every anchor is stored under its own id, with ``count >= 1`` and ``from_ms <= until_ms``.
2. Models and the (model_id, version) index agree both ways, and every model's training anchors
   exist.
3. Each machine's decision batches are contiguous from 0 (``first_seq`` of each is the sum of the
   counts before it, each count 1..4096), and its head holds their total and the last batch's head.
4. Every item's history is events ``0 .. events-1``, event 0 its registration by the registrant, and
   its custodian is the ``to`` of its last custody event (the registrant when there is none).

The checks report what they find rather than assert, so a corrupted state gives a readable list.
"""

from __future__ import annotations

from typing import Any

from autarky.ledger.state import StateReader
from autarky.modules.provenance import keeper
from autarky.modules.provenance.messages import CUSTODY, MAX_BATCH


def check_invariants(state: StateReader) -> list[str]:
    return [*_anchors(state), *_models(state), *_decisions(state), *_items(state)]


def _anchors(state: StateReader) -> list[str]:
    problems = []
    for id_hex, anchor in keeper.iter_values(state, keeper.ANCHOR_PREFIX):
        if anchor["id"].hex() != id_hex:
            problems.append(f"anchor {id_hex}: stored under another id")
        if anchor["count"] < 1 or anchor["from_ms"] > anchor["until_ms"]:
            problems.append(f"anchor {id_hex}: count or time range out of bounds")
    return problems


def _models(state: StateReader) -> list[str]:
    problems = []
    indexed: dict[bytes, str] = {}
    for name, file_hash in keeper.iter_values(state, keeper.MODEL_ID_PREFIX):
        indexed[file_hash] = name
    for hash_hex, model in keeper.iter_values(state, keeper.MODEL_PREFIX):
        name = f"{model['model_id']}/{model['version']}"
        if model["hash"].hex() != hash_hex:
            problems.append(f"model {hash_hex}: stored under another hash")
        if indexed.pop(model["hash"], None) != name:
            problems.append(f"model {hash_hex}: the index does not name it as {name}")
        for anchor_id in model["training_anchors"]:
            if keeper.read_anchor(state, anchor_id) is None:
                problems.append(f"model {hash_hex}: training anchor {anchor_id.hex()} is missing")
    problems.extend(f"model index {name}: no model {h.hex()}" for h, name in sorted(indexed.items()))
    return problems


def _decisions(state: StateReader) -> list[str]:
    problems = []
    runs: dict[str, tuple[int, bytes | None]] = {}
    for rest, batch in keeper.iter_values(state, keeper.DBATCH_PREFIX):
        machine = rest.rsplit("/", 1)[0]
        total, _ = runs.get(machine, (0, None))
        if batch["machine"] != machine or batch["first_seq"] != total or not 1 <= batch["count"] <= MAX_BATCH:
            problems.append(f"decisions of {machine}: batch {rest} is not the next contiguous batch")
        runs[machine] = (total + batch["count"], batch["head"])
    for machine, head in keeper.iter_values(state, keeper.DHEAD_PREFIX):
        total, last_head = runs.pop(machine, (0, None))
        if head["count"] != total or head["head"] != last_head:
            problems.append(
                f"decisions of {machine}: head {head['count']} does not match its batches ({total})"
            )
    problems.extend(f"decisions of {machine}: batches without a head" for machine in sorted(runs))
    return problems


def _items(state: StateReader) -> list[str]:
    problems = []
    for item_id, item in keeper.iter_values(state, keeper.ITEM_PREFIX):
        history: list[dict[str, Any]] = keeper.item_history(state, item_id)
        custodian = item["registrant"]
        if [event["n"] for event in history] != list(range(item["events"])):
            problems.append(f"item {item_id}: history is not events 0..{item['events'] - 1}")
        if not history or history[0]["event"] != "registered" or history[0]["by"] != item["registrant"]:
            problems.append(f"item {item_id}: event 0 is not its registration")
        for event in history:
            if event["event"] == CUSTODY:
                custodian = event["to"]
        if item["custodian"] != custodian:
            problems.append(f"item {item_id}: custodian {item['custodian']} is not the last handed to")
    return problems
