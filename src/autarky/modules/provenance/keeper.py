"""The provenance module's state: the only functions that read or write keys under ``provenance/``.

State keys (values are canonical CBOR maps; ids and hashes in keys are lower-case hex)::

    provenance/anchor/<anchor id>                     a data anchor
    provenance/model/<file hash>                      a registered model
    provenance/model_id/<model_id>/<version>          the file hash of that model version
    provenance/dhead/<did>                            {count, head, height}: a machine's anchored decisions
    provenance/dbatch/<did>/<first_seq:020d>          one anchored batch of its decision records
    provenance/item/<item_id>                         a tracked item and its current custodian
    provenance/item_event/<item_id>/<n:020d>          the item's history, event 0 = its registration

Nothing is ever deleted: anchors, models (retired ones too), batches and item histories stay.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from autarky.crypto.hashing import sha256
from autarky.encoding import canonical_encode, decode_trusted
from autarky.ledger.state import Overlay, StateReader, get_obj

ANCHOR_PREFIX = "provenance/anchor/"
MODEL_PREFIX = "provenance/model/"
MODEL_ID_PREFIX = "provenance/model_id/"
DHEAD_PREFIX = "provenance/dhead/"
DBATCH_PREFIX = "provenance/dbatch/"
ITEM_PREFIX = "provenance/item/"
ITEM_EVENT_PREFIX = "provenance/item_event/"
ANCHOR_ID_TAG = "autarky/provenance/anchor-id"
SEQ_DIGITS = 20


def new_anchor_id(tx_hash: bytes, message_index: int) -> bytes:
    """``sha256(canonical_cbor(["autarky/provenance/anchor-id", tx_hash, message_index]))``."""
    return sha256(canonical_encode([ANCHOR_ID_TAG, tx_hash, message_index]))


def anchor_key(anchor_id: bytes) -> str:
    return ANCHOR_PREFIX + anchor_id.hex()


def model_key(file_hash: bytes) -> str:
    return MODEL_PREFIX + file_hash.hex()


def model_id_key(model_id: str, version: str) -> str:
    return f"{MODEL_ID_PREFIX}{model_id}/{version}"


def dhead_key(machine: str) -> str:
    return DHEAD_PREFIX + machine


def dbatch_key(machine: str, first_seq: int) -> str:
    assert 0 <= first_seq < 10**SEQ_DIGITS
    return f"{DBATCH_PREFIX}{machine}/{first_seq:0{SEQ_DIGITS}d}"


def item_key(item_id: str) -> str:
    return ITEM_PREFIX + item_id


def item_event_key(item_id: str, n: int) -> str:
    return f"{ITEM_EVENT_PREFIX}{item_id}/{n:0{SEQ_DIGITS}d}"


def _get(state: StateReader, key: str) -> dict[str, Any] | None:
    value: dict[str, Any] | None = get_obj(state, key)
    return value


def iter_values(state: StateReader, prefix: str) -> Iterator[tuple[str, Any]]:
    """``(key without the prefix, decoded value)`` under ``prefix``, in key order."""
    for key, raw in state.iter_prefix(prefix):
        yield key[len(prefix) :], decode_trusted(raw)


# -- Anchors -------------------------------------------------------------------------------------------


def read_anchor(state: StateReader, anchor_id: bytes) -> dict[str, Any] | None:
    return _get(state, anchor_key(anchor_id))


def write_anchor(state: Overlay, anchor: dict[str, Any]) -> None:
    state.set_obj(anchor_key(anchor["id"]), anchor)


# -- Models --------------------------------------------------------------------------------------------


def read_model(state: StateReader, file_hash: bytes) -> dict[str, Any] | None:
    return _get(state, model_key(file_hash))


def model_hash_of(state: StateReader, model_id: str, version: str) -> bytes | None:
    value: bytes | None = get_obj(state, model_id_key(model_id, version))
    return value


def write_model(state: Overlay, model: dict[str, Any]) -> None:
    state.set_obj(model_key(model["hash"]), model)
    state.set_obj(model_id_key(model["model_id"], model["version"]), model["hash"])


def models(state: StateReader, model_id: str | None = None) -> list[dict[str, Any]]:
    """Registered models in (model_id, version) order, all of them or one model_id's versions."""
    prefix = MODEL_ID_PREFIX if model_id is None else f"{MODEL_ID_PREFIX}{model_id}/"
    found = []
    for _, file_hash in iter_values(state, prefix):
        model = read_model(state, file_hash)
        assert model is not None
        found.append(model)
    return found


# -- Decision batches ----------------------------------------------------------------------------------


def read_dhead(state: StateReader, machine: str) -> dict[str, Any] | None:
    return _get(state, dhead_key(machine))


def write_batch(state: Overlay, batch: dict[str, Any], height: int) -> None:
    """Store a batch and move the machine's head: two writes, whatever the number of batches."""
    machine = batch["machine"]
    state.set_obj(dbatch_key(machine, batch["first_seq"]), batch)
    state.set_obj(
        dhead_key(machine),
        {"count": batch["first_seq"] + batch["count"], "head": batch["head"], "height": height},
    )


def read_batch(state: StateReader, machine: str, first_seq: int) -> dict[str, Any] | None:
    return _get(state, dbatch_key(machine, first_seq))


def batches(
    state: StateReader, machine: str, from_seq: int = 0, limit: int | None = None
) -> list[dict[str, Any]]:
    """The machine's anchored batches with ``first_seq >= from_seq``, in order, at most ``limit``."""
    prefix = f"{DBATCH_PREFIX}{machine}/"
    start = f"{from_seq:0{SEQ_DIGITS}d}"  # zero-padded: text order is seq order
    found: list[dict[str, Any]] = []
    for key, raw in state.iter_prefix(prefix):
        if key[len(prefix) :] < start:
            continue  # only the key is compared: batches before the page are not decoded
        if limit is not None and len(found) >= limit:
            break
        found.append(decode_trusted(raw))
    return found


def batch_containing(state: StateReader, machine: str, seq: int) -> dict[str, Any] | None:
    """The anchored batch with ``first_seq <= seq < first_seq + count``, or None."""
    for _, batch in iter_values(state, f"{DBATCH_PREFIX}{machine}/"):
        if batch["first_seq"] > seq:
            return None
        if seq < batch["first_seq"] + batch["count"]:
            return dict(batch)
    return None


# -- Items ---------------------------------------------------------------------------------------------


def read_item(state: StateReader, item_id: str) -> dict[str, Any] | None:
    return _get(state, item_key(item_id))


def write_item(state: Overlay, item: dict[str, Any]) -> None:
    state.set_obj(item_key(item["item_id"]), item)


def append_item_event(state: Overlay, item: dict[str, Any], event: dict[str, Any]) -> dict[str, Any]:
    """Write event number ``item["events"]`` and return the item with its count moved on."""
    n = item["events"]
    state.set_obj(item_event_key(item["item_id"], n), {**event, "n": n})
    updated = {**item, "events": n + 1}
    write_item(state, updated)
    return updated


def item_history(state: StateReader, item_id: str) -> list[dict[str, Any]]:
    return [event for _, event in iter_values(state, f"{ITEM_EVENT_PREFIX}{item_id}/")]
