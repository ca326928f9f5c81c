"""The provenance module's rejection codes, in order of precedence.

A message is checked top to bottom and the first failing check decides its code; README.md says
which codes each message can return. The code strings are part of consensus: never rename or
renumber them; add new codes at the place in the order where they are checked.

``core.invalid_message`` (a field missing, unexpected or of the wrong type, a hash that is not 32
bytes) comes before all of these. Codes 1-14 need only the message; the rest read the state.
"""

from __future__ import annotations

from autarky.ledger.errors import ErrorCode

# Checks on the message alone.
INVALID_ITEM_ID = ErrorCode("provenance.invalid_item_id", "item_id is not [A-Za-z0-9][A-Za-z0-9_.:-]{0,63}")
INVALID_MODEL_ID = ErrorCode("provenance.invalid_model_id", "model_id is not [a-z][a-z0-9_.-]{0,63}")
INVALID_VERSION = ErrorCode("provenance.invalid_version", "version is not [0-9A-Za-z][0-9A-Za-z._+-]{0,31}")
INVALID_SCHEMA = ErrorCode("provenance.invalid_schema", "schema is not [a-z][a-z0-9._/-]{0,63}")
INVALID_KIND = ErrorCode("provenance.invalid_kind", "kind is not [a-z][a-z0-9_-]{0,31}")
INVALID_COUNT = ErrorCode("provenance.invalid_count", "count is not from 1 to 2**64-1")
INVALID_TIME_RANGE = ErrorCode(
    "provenance.invalid_time_range", "from_ms and until_ms are not 0 <= from_ms <= until_ms <= 2**64-1"
)
INVALID_METADATA = ErrorCode(
    "provenance.invalid_metadata",
    "metadata is not at most 16 entries, keys [a-z][a-z0-9_.-]{0,31}, values of at most 256 characters "
    "without control characters",
)
INVALID_TRAINING_ANCHORS = ErrorCode(
    "provenance.invalid_training_anchors", "training_anchors is not 1 to 16 distinct 32-byte anchor ids"
)
INVALID_MACHINE = ErrorCode("provenance.invalid_machine", "machine is not an Ed25519 did:key")
INVALID_BATCH_SIZE = ErrorCode("provenance.invalid_batch_size", "count is not from 1 to 4096")
INVALID_EVENT = ErrorCode(
    "provenance.invalid_event",
    'event is not "custody" (with to, without condition) or "condition" (with condition, without to)',
)
INVALID_RECIPIENT = ErrorCode("provenance.invalid_recipient", "to is not an Ed25519 did:key")
INVALID_CONDITION = ErrorCode("provenance.invalid_condition", "condition is not [a-z][a-z0-9_-]{0,63}")

# Finding what the message names, and the sender's right to act on it.
UNKNOWN_ANCHOR = ErrorCode("provenance.unknown_anchor", "no data anchor has this id")
UNKNOWN_MODEL = ErrorCode("provenance.unknown_model", "no model is registered with this hash")
UNKNOWN_ITEM = ErrorCode("provenance.unknown_item", "no item is registered with this id")
NOT_REGISTRANT = ErrorCode("provenance.not_registrant", "only the model's registrant may do this")
NOT_MACHINE_OR_OWNER = ErrorCode(
    "provenance.not_machine_or_owner",
    "only the machine itself or its registered owner may anchor its decisions",
)
NOT_CUSTODIAN = ErrorCode("provenance.not_custodian", "only the item's current custodian may do this")

# The state of what the message names.
MODEL_VERSION_EXISTS = ErrorCode(
    "provenance.model_version_exists", "this model_id and version are already registered"
)
MODEL_HASH_EXISTS = ErrorCode(
    "provenance.model_hash_exists", "a model with this file hash is already registered"
)
MODEL_RETIRED = ErrorCode("provenance.model_retired", "the model is already retired")
OUT_OF_ORDER = ErrorCode(
    "provenance.out_of_order", "first_seq is not the number of the machine's decisions anchored so far"
)
ITEM_EXISTS = ErrorCode("provenance.item_exists", "an item with this id is already registered")
SAME_CUSTODIAN = ErrorCode("provenance.same_custodian", "the item is already in this custodian's hands")

PROVENANCE_CODES_IN_PRECEDENCE = (
    INVALID_ITEM_ID,
    INVALID_MODEL_ID,
    INVALID_VERSION,
    INVALID_SCHEMA,
    INVALID_KIND,
    INVALID_COUNT,
    INVALID_TIME_RANGE,
    INVALID_METADATA,
    INVALID_TRAINING_ANCHORS,
    INVALID_MACHINE,
    INVALID_BATCH_SIZE,
    INVALID_EVENT,
    INVALID_RECIPIENT,
    INVALID_CONDITION,
    UNKNOWN_ANCHOR,
    UNKNOWN_MODEL,
    UNKNOWN_ITEM,
    NOT_REGISTRANT,
    NOT_MACHINE_OR_OWNER,
    NOT_CUSTODIAN,
    MODEL_VERSION_EXISTS,
    MODEL_HASH_EXISTS,
    MODEL_RETIRED,
    OUT_OF_ORDER,
    ITEM_EXISTS,
    SAME_CUSTODIAN,
)
"""Every provenance code, in order of precedence. Part of consensus: add codes, never rename one."""
