"""Off-chain decision provenance: records, chains, batches anchored on chain, storage, explain.

A machine appends a :class:`DecisionRecord` for each decision to its :class:`DecisionChain`
(hash-linked, ``seq`` from 0), keeps them in a :class:`DecisionStore` (SQLite) and anchors batches
with ``provenance/anchor_decisions`` (the module in ``autarky.modules.provenance``).
``explain`` walks from a transaction hash to its record, batch, model and training data, and
reports every check. No network here: the ledger is reached through a ``LedgerView``.
"""

from autarky.provenance.batch import (
    MAX_BATCH,
    BatchAnchor,
    RecordProof,
    batch_anchor,
    batch_root,
    merkle_proof,
    verify_record,
)
from autarky.provenance.chain import ChainError, DecisionChain, PendingBatch, verify_chain
from autarky.provenance.explain import (
    ChainLedgerView,
    Check,
    Explanation,
    LedgerView,
    explain,
    to_jsonable,
    training_data_bytes,
)
from autarky.provenance.records import (
    ALLOWED_KINDS,
    DECISION_TAG,
    INPUTS_TAG,
    ZERO_HASH,
    DecisionRecord,
    RecordError,
    inputs_digest,
    record_hash,
)
from autarky.provenance.store import DecisionStore

__all__ = [
    "ALLOWED_KINDS",
    "DECISION_TAG",
    "INPUTS_TAG",
    "MAX_BATCH",
    "ZERO_HASH",
    "BatchAnchor",
    "ChainError",
    "ChainLedgerView",
    "Check",
    "DecisionChain",
    "DecisionRecord",
    "DecisionStore",
    "Explanation",
    "LedgerView",
    "PendingBatch",
    "RecordError",
    "RecordProof",
    "batch_anchor",
    "batch_root",
    "explain",
    "inputs_digest",
    "merkle_proof",
    "record_hash",
    "to_jsonable",
    "training_data_bytes",
    "verify_chain",
    "verify_record",
]
