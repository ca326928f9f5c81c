"""The provenance messages as typed, frozen values: exact fields, parsing, value checks, builders.

Parsing checks the message alone, never the state, in two stages whose order is part of the
module's precedence (README.md):

1. shape: every required field is present, no unexpected field is, every field has its type and
   every hash or id is 32 bytes (``core.invalid_message``);
2. values, in the order of ``errors.PROVENANCE_CODES_IN_PRECEDENCE``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from autarky.crypto.did import is_did_key
from autarky.ledger.errors import INVALID_MESSAGE
from autarky.ledger.router import check_field_names, require_field, require_text
from autarky.ledger.tx import MAX_U64
from autarky.modules.provenance.errors import (
    INVALID_BATCH_SIZE,
    INVALID_CONDITION,
    INVALID_COUNT,
    INVALID_EVENT,
    INVALID_ITEM_ID,
    INVALID_KIND,
    INVALID_MACHINE,
    INVALID_METADATA,
    INVALID_MODEL_ID,
    INVALID_RECIPIENT,
    INVALID_SCHEMA,
    INVALID_TIME_RANGE,
    INVALID_TRAINING_ANCHORS,
    INVALID_VERSION,
)

ANCHOR = "provenance/anchor"
REGISTER_MODEL = "provenance/register_model"
RETIRE_MODEL = "provenance/retire_model"
ANCHOR_DECISIONS = "provenance/anchor_decisions"
REGISTER_ITEM = "provenance/register_item"
ITEM_EVENT = "provenance/item_event"
MESSAGE_TYPES = (ANCHOR, REGISTER_MODEL, RETIRE_MODEL, ANCHOR_DECISIONS, REGISTER_ITEM, ITEM_EVENT)

HASH_BYTES = 32
MAX_BATCH = 4096
MAX_TRAINING_ANCHORS = 16
MAX_METADATA_ENTRIES = 16
MAX_METADATA_VALUE_CHARS = 256
CUSTODY = "custody"
CONDITION = "condition"

_ITEM_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
_MODEL_ID = re.compile(r"[a-z][a-z0-9_.-]{0,63}")
_VERSION = re.compile(r"[0-9A-Za-z][0-9A-Za-z._+-]{0,31}")
_SCHEMA = re.compile(r"[a-z][a-z0-9._/-]{0,63}")
_KIND = re.compile(r"[a-z][a-z0-9_-]{0,31}")
_METADATA_KEY = re.compile(r"[a-z][a-z0-9_.-]{0,31}")
_CONDITION = re.compile(r"[a-z][a-z0-9_-]{0,63}")


@dataclass(frozen=True, slots=True)
class Anchor:
    schema: str
    root: bytes
    count: int
    from_ms: int
    until_ms: int
    metadata: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class RegisterModel:
    model_id: str
    version: str
    hash: bytes
    card_hash: bytes
    kind: str
    training_anchors: tuple[bytes, ...]


@dataclass(frozen=True, slots=True)
class RetireModel:
    hash: bytes


@dataclass(frozen=True, slots=True)
class AnchorDecisions:
    machine: str
    first_seq: int
    count: int
    head: bytes
    root: bytes


@dataclass(frozen=True, slots=True)
class RegisterItem:
    item_id: str
    kind: str
    metadata: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class ItemEvent:
    item_id: str
    event: str
    to: str | None
    condition: str | None
    digest: bytes | None


Message = Anchor | RegisterModel | RetireModel | AnchorDecisions | RegisterItem | ItemEvent


def _match(pattern: re.Pattern[str], value: str) -> bool:
    return pattern.fullmatch(value) is not None


def _hash(message: Mapping[str, Any], name: str) -> bytes:
    value = message.get(name)
    if type(value) is not bytes or len(value) != HASH_BYTES:
        raise INVALID_MESSAGE(f"field {name!r} must be a {HASH_BYTES}-byte hash")
    return value


def _optional_hash(message: Mapping[str, Any], name: str) -> bytes | None:
    return None if message.get(name) is None else _hash(message, name)


def _optional_text(message: Mapping[str, Any], name: str) -> str | None:
    value = message.get(name)
    if value is not None and type(value) is not str:
        raise INVALID_MESSAGE(f"field {name!r} must be text or None")
    return value


def _metadata_shape(message: Mapping[str, Any]) -> dict[Any, Any]:
    value: dict[Any, Any] = require_field(message, "metadata", dict)
    if any(type(key) is not str or type(item) is not str for key, item in value.items()):
        raise INVALID_MESSAGE("field 'metadata' must map text to text")
    return value


def _check_metadata(metadata: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    if len(metadata) > MAX_METADATA_ENTRIES:
        raise INVALID_METADATA(f"at most {MAX_METADATA_ENTRIES} entries")
    for key in sorted(metadata):
        item = metadata[key]
        if not _match(_METADATA_KEY, key):
            raise INVALID_METADATA(f"key {key[:40]!r} is not [a-z][a-z0-9_.-]{{0,31}}")
        if len(item) > MAX_METADATA_VALUE_CHARS or any(ord(c) < 0x20 or ord(c) == 0x7F for c in item):
            raise INVALID_METADATA(
                f"value of {key!r}: at most {MAX_METADATA_VALUE_CHARS} characters, no control characters"
            )
    return tuple(sorted(metadata.items()))


def _check_kind(kind: str) -> str:
    if not _match(_KIND, kind):
        raise INVALID_KIND(f"kind {kind[:40]!r} is not [a-z][a-z0-9_-]{{0,31}}")
    return kind


def parse(message: Mapping[str, Any]) -> Message:
    """The typed message; ``core.invalid_message`` or a ``provenance.*`` code of the message alone."""
    message_type = message["type"]
    if message_type == ANCHOR:
        return parse_anchor(message)
    if message_type == REGISTER_MODEL:
        return parse_register_model(message)
    if message_type == RETIRE_MODEL:
        check_field_names(message, ("hash",), ())
        return RetireModel(_hash(message, "hash"))
    if message_type == ANCHOR_DECISIONS:
        return parse_anchor_decisions(message)
    if message_type == REGISTER_ITEM:
        check_field_names(message, ("item_id", "kind", "metadata"), ())
        item_id = require_text(message, "item_id")
        kind = require_text(message, "kind")
        metadata = _metadata_shape(message)
        _check_item_id(item_id)
        return RegisterItem(item_id, _check_kind(kind), _check_metadata(metadata))
    assert message_type == ITEM_EVENT, message_type
    return parse_item_event(message)


def parse_anchor(message: Mapping[str, Any]) -> Anchor:
    check_field_names(message, ("schema", "root", "count", "from_ms", "until_ms", "metadata"), ())
    schema = require_text(message, "schema")
    root = _hash(message, "root")
    count = require_field(message, "count", int)
    from_ms = require_field(message, "from_ms", int)
    until_ms = require_field(message, "until_ms", int)
    metadata = _metadata_shape(message)
    if not _match(_SCHEMA, schema):
        raise INVALID_SCHEMA(f"schema {schema[:40]!r} is not [a-z][a-z0-9._/-]{{0,63}}")
    if not 1 <= count <= MAX_U64:
        raise INVALID_COUNT("count must be from 1 to 2**64-1")
    if not 0 <= from_ms <= until_ms <= MAX_U64:
        raise INVALID_TIME_RANGE(f"from_ms {from_ms} and until_ms {until_ms} are not an interval")
    return Anchor(schema, root, count, from_ms, until_ms, _check_metadata(metadata))


def parse_register_model(message: Mapping[str, Any]) -> RegisterModel:
    check_field_names(message, ("model_id", "version", "hash", "card_hash", "kind", "training_anchors"), ())
    model_id = require_text(message, "model_id")
    version = require_text(message, "version")
    file_hash = _hash(message, "hash")
    card_hash = _hash(message, "card_hash")
    kind = require_text(message, "kind")
    anchors = require_field(message, "training_anchors", list)
    if any(type(entry) is not bytes for entry in anchors):
        raise INVALID_MESSAGE("field 'training_anchors' must be a list of anchor ids")
    if not _match(_MODEL_ID, model_id):
        raise INVALID_MODEL_ID(f"model_id {model_id[:40]!r} is not [a-z][a-z0-9_.-]{{0,63}}")
    if not _match(_VERSION, version):
        raise INVALID_VERSION(f"version {version[:40]!r} is not [0-9A-Za-z][0-9A-Za-z._+-]{{0,31}}")
    _check_kind(kind)
    if not 1 <= len(anchors) <= MAX_TRAINING_ANCHORS:
        raise INVALID_TRAINING_ANCHORS(f"name 1 to {MAX_TRAINING_ANCHORS} training data anchors")
    for index, anchor_id in enumerate(anchors):
        if len(anchor_id) != HASH_BYTES:
            raise INVALID_TRAINING_ANCHORS(f"training anchor {index} is not a {HASH_BYTES}-byte id")
        if anchor_id in anchors[:index]:
            raise INVALID_TRAINING_ANCHORS(f"training anchor {anchor_id.hex()} is named twice")
    return RegisterModel(model_id, version, file_hash, card_hash, kind, tuple(anchors))


def parse_anchor_decisions(message: Mapping[str, Any]) -> AnchorDecisions:
    check_field_names(message, ("machine", "first_seq", "count", "head", "root"), ())
    machine = require_text(message, "machine")
    first_seq = require_field(message, "first_seq", int)
    count = require_field(message, "count", int)
    head = _hash(message, "head")
    root = _hash(message, "root")
    if not is_did_key(machine):
        raise INVALID_MACHINE(f"machine {machine[:80]!r} is not an Ed25519 did:key")
    if not 1 <= count <= MAX_BATCH:
        raise INVALID_BATCH_SIZE(f"count must be from 1 to {MAX_BATCH}")
    return AnchorDecisions(machine, first_seq, count, head, root)


def parse_item_event(message: Mapping[str, Any]) -> ItemEvent:
    check_field_names(message, ("item_id", "event"), ("to", "condition", "digest"))
    item_id = require_text(message, "item_id")
    event = require_text(message, "event")
    to = _optional_text(message, "to")
    condition = _optional_text(message, "condition")
    digest = _optional_hash(message, "digest")
    _check_item_id(item_id)
    if not (
        (event == CUSTODY and to is not None and condition is None)
        or (event == CONDITION and condition is not None and to is None)
    ):
        raise INVALID_EVENT('"custody" names to (and no condition); "condition" names condition (and no to)')
    if to is not None and not is_did_key(to):
        raise INVALID_RECIPIENT(f"to {to[:80]!r} is not an Ed25519 did:key")
    if condition is not None and not _match(_CONDITION, condition):
        raise INVALID_CONDITION(f"condition {condition[:40]!r} is not [a-z][a-z0-9_-]{{0,63}}")
    return ItemEvent(item_id, event, to, condition, digest)


def _check_item_id(item_id: str) -> None:
    if not _match(_ITEM_ID, item_id):
        raise INVALID_ITEM_ID(f"item_id {item_id[:40]!r} is not [A-Za-z0-9][A-Za-z0-9_.:-]{{0,63}}")


# ---------------------------------------------------------------------------------------------------
# Builders: the message maps clients put in a transaction body


def anchor(
    schema: str,
    root: bytes,
    count: int,
    from_ms: int,
    until_ms: int,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """A data anchor: the Merkle root of ``count`` records of ``schema`` covering a time range."""
    return {
        "type": ANCHOR,
        "schema": schema,
        "root": root,
        "count": count,
        "from_ms": from_ms,
        "until_ms": until_ms,
        "metadata": dict(metadata or {}),
    }


def register_model(
    model_id: str,
    version: str,
    file_hash: bytes,
    card_hash: bytes,
    kind: str,
    training_anchors: Sequence[bytes],
) -> dict[str, Any]:
    return {
        "type": REGISTER_MODEL,
        "model_id": model_id,
        "version": version,
        "hash": file_hash,
        "card_hash": card_hash,
        "kind": kind,
        "training_anchors": list(training_anchors),
    }


def retire_model(file_hash: bytes) -> dict[str, Any]:
    return {"type": RETIRE_MODEL, "hash": file_hash}


def anchor_decisions(machine: str, first_seq: int, count: int, head: bytes, root: bytes) -> dict[str, Any]:
    return {
        "type": ANCHOR_DECISIONS,
        "machine": machine,
        "first_seq": first_seq,
        "count": count,
        "head": head,
        "root": root,
    }


def register_item(item_id: str, kind: str, metadata: Mapping[str, str] | None = None) -> dict[str, Any]:
    return {"type": REGISTER_ITEM, "item_id": item_id, "kind": kind, "metadata": dict(metadata or {})}


def item_custody(item_id: str, to: str, digest: bytes | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {"type": ITEM_EVENT, "item_id": item_id, "event": CUSTODY, "to": to}
    if digest is not None:
        message["digest"] = digest
    return message


def item_condition(item_id: str, condition: str, digest: bytes | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": ITEM_EVENT,
        "item_id": item_id,
        "event": CONDITION,
        "condition": condition,
    }
    if digest is not None:
        message["digest"] = digest
    return message
