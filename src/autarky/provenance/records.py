"""Decision records: what a machine decided, from which inputs, under which model and authority.

A record is hashed, never signed: its hash is chained (each record names the hash of the one
before it) and batches of hashes are anchored on chain as a Merkle root
(``provenance/anchor_decisions``). The hash covers canonical CBOR of the record's map under the tag
``AUTARKY-DECISION-V1`` and a NUL byte; the inputs a decision read are hashed apart under
``AUTARKY-DECISION-INPUTS-V1`` and a NUL byte. Neither tag is a prefix of the other or of any
signature domain in ``autarky.crypto.domains`` (those all read ``AUTARKY-<KIND>-V1`` with kinds TX,
BLOCK, MSG, VOTE, CUT, KEYPROOF, ATTEST), so a record hash can never be mistaken for signed bytes.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections.abc import Mapping
from typing import Any

from autarky.encoding import canonical_decode, canonical_encode

DECISION_TAG = b"AUTARKY-DECISION-V1\x00"
INPUTS_TAG = b"AUTARKY-DECISION-INPUTS-V1\x00"
ZERO_HASH = bytes(32)
ALLOWED_KINDS = ("guardrail", "grant", "owner-key", "none")
NOT_ALLOWED_BY_ANYTHING: Mapping[str, str] = {"kind": "none", "ref": ""}


class RecordError(ValueError):
    """A record (or its stored form) does not have the documented shape."""


def inputs_digest(inputs: Mapping[str, Any]) -> bytes:
    """SHA-256 over the tag and canonical CBOR of ``inputs`` (ints, str, bytes, lists, maps; no floats)."""
    if not isinstance(inputs, Mapping):
        raise RecordError("inputs must be a map")
    return hashlib.sha256(INPUTS_TAG + _encode(dict(inputs), "inputs")).digest()


def _encode(value: Any, what: str) -> bytes:
    try:
        return canonical_encode(value)
    except TypeError as error:  # a float or another type outside the data model
        raise RecordError(f"{what}: {error} (quantise floats to integers first)") from error


def _check_hash(name: str, value: object, optional: bool = False) -> None:
    if value is None and optional:
        return
    if not isinstance(value, bytes) or len(value) != 32:
        raise RecordError(f"{name} must be 32 bytes")


@dataclasses.dataclass(frozen=True)
class DecisionRecord:
    """One decision. ``seq`` counts from 0 per machine; ``prev`` is the previous record's hash."""

    machine: str
    seq: int
    prev: bytes
    time_ms: int
    policy: str
    model: bytes | None
    inputs_digest: bytes
    output: Any
    allowed_by: Mapping[str, str]
    tx: bytes | None

    def __post_init__(self) -> None:
        if not isinstance(self.machine, str) or not self.machine:
            raise RecordError("machine must be a DID")
        if not isinstance(self.seq, int) or isinstance(self.seq, bool) or self.seq < 0:
            raise RecordError("seq must be an integer >= 0")
        _check_hash("prev", self.prev)
        if self.seq == 0 and self.prev != ZERO_HASH:
            raise RecordError("the first record (seq 0) has prev = 32 zero bytes")
        if not isinstance(self.time_ms, int) or isinstance(self.time_ms, bool) or self.time_ms < 0:
            raise RecordError("time_ms must be an integer >= 0")
        if not isinstance(self.policy, str) or not self.policy:
            raise RecordError("policy must be a name such as 'battery-lp/1'")
        _check_hash("model", self.model, optional=True)
        _check_hash("inputs_digest", self.inputs_digest)
        _check_hash("tx", self.tx, optional=True)
        allowed = self.allowed_by
        if (
            not isinstance(allowed, Mapping)
            or set(allowed) != {"kind", "ref"}
            or allowed["kind"] not in ALLOWED_KINDS
            or not isinstance(allowed["ref"], str)
        ):
            raise RecordError(f"allowed_by must be {{'kind': one of {ALLOWED_KINDS}, 'ref': str}}")

    def to_map(self) -> dict[str, Any]:
        """The record as the canonical map its hash covers (absent model/tx are null)."""
        return {
            "machine": self.machine,
            "seq": self.seq,
            "prev": self.prev,
            "time_ms": self.time_ms,
            "policy": self.policy,
            "model": self.model,
            "inputs_digest": self.inputs_digest,
            "output": self.output,
            "allowed_by": {"kind": self.allowed_by["kind"], "ref": self.allowed_by["ref"]},
            "tx": self.tx,
        }

    def encode(self) -> bytes:
        """Canonical CBOR of :meth:`to_map` (refuses floats anywhere in ``output``)."""
        return self._encoded

    @functools.cached_property
    def _encoded(self) -> bytes:
        return _encode(self.to_map(), "record")

    @functools.cached_property
    def hash(self) -> bytes:
        """``sha256(DECISION_TAG || canonical_encode(to_map()))``, computed once per record."""
        return hashlib.sha256(DECISION_TAG + self._encoded).digest()

    @classmethod
    def from_map(cls, value: Mapping[str, Any]) -> DecisionRecord:
        fields = {field.name for field in dataclasses.fields(cls)}
        if not isinstance(value, Mapping) or set(value) != fields:
            raise RecordError(f"a decision record is a map with exactly the keys {sorted(fields)}")
        return cls(**{name: value[name] for name in fields})

    @classmethod
    def decode(cls, data: bytes) -> DecisionRecord:
        """Inverse of :meth:`encode`; the bytes must be canonical."""
        return cls.from_map(canonical_decode(data))


def record_hash(record: DecisionRecord) -> bytes:
    """The record's hash (see :attr:`DecisionRecord.hash`)."""
    return record.hash
