"""Blocks, headers, receipts and events.

A header commits to everything a replica needs to agree on: the previous header's hash, the
injected block time, the Merkle root of the transaction hashes, the Merkle root of the results
(receipts and end-of-block events) and the state root *after* the block. Its hash is SHA-256 of
its canonical CBOR.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from autarky.crypto.hashing import sha256
from autarky.encoding import (
    DecodeError,
    canonical_decode,
    canonical_encode,
    canonical_key_order,
    encode_ordered,
)
from autarky.ledger.errors import OK

AttrValue = str | int | bytes | bool | None
_ATTR_TYPES = frozenset({str, int, bytes, bool, type(None)})


@dataclass(frozen=True, slots=True)
class Event:
    """Something a handler wants the outside world to know: ``bank.transfer`` with attributes."""

    type: str
    attributes: tuple[tuple[str, AttrValue], ...]

    def to_cbor(self) -> list[Any]:
        return [self.type, {key: value for key, value in self.attributes}]

    def consensus_cbor(self) -> list[Any]:
        """:meth:`to_cbor` with the attribute map in canonical key order, so that
        :func:`~autarky.encoding.encode_ordered` gives its canonical bytes without sorting again
        (a block's results hold hundreds of thousands of events at 10,000 machines)."""
        attributes = dict(self.attributes)
        assert _ATTR_TYPES.issuperset(map(type, attributes.values())), (
            f"event value outside the model: {self}"
        )
        keys = tuple(attributes)
        order = canonical_key_order(keys)
        if order is not keys:
            attributes = {key: attributes[key] for key in order}
        return [self.type, attributes]

    @classmethod
    def from_cbor(cls, data: Any) -> Event:
        return cls(data[0], tuple(sorted(data[1].items())))

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "attributes": {k: _json_value(v) for k, v in self.attributes}}

    def get(self, key: str) -> AttrValue:
        for name, value in self.attributes:
            if name == key:
                return value
        return None


def _json_value(value: AttrValue) -> Any:
    return value.hex() if isinstance(value, bytes) else value


@dataclass(frozen=True, slots=True)
class Receipt:
    """The outcome of one transaction in a block. ``detail`` is for people and is not hashed."""

    tx_hash: bytes
    index: int
    code: str
    events: tuple[Event, ...]
    sender: str | None = None
    detail: str = ""

    @property
    def ok(self) -> bool:
        return self.code == OK

    def consensus_bytes(self) -> bytes:
        return encode_ordered([self.tx_hash, self.code, [event.consensus_cbor() for event in self.events]])

    def to_cbor(self) -> list[Any]:
        return [
            self.tx_hash,
            self.index,
            self.code,
            [e.to_cbor() for e in self.events],
            self.sender,
            self.detail,
        ]

    @classmethod
    def from_cbor(cls, data: Any) -> Receipt:
        tx_hash, index, code, events, sender, detail = data
        return cls(tx_hash, index, code, tuple(Event.from_cbor(e) for e in events), sender, detail)

    def to_json(self) -> dict[str, Any]:
        return {
            "tx_hash": self.tx_hash.hex(),
            "index": self.index,
            "code": self.code,
            "ok": self.ok,
            "sender": self.sender,
            "detail": self.detail,
            "events": [event.to_json() for event in self.events],
        }


@dataclass(frozen=True, slots=True)
class BlockHeader:
    chain_id: str
    height: int
    prev_hash: bytes
    time_ms: int
    tx_count: int
    tx_root: bytes
    result_root: bytes
    state_root: bytes

    def to_cbor_map(self) -> dict[str, Any]:
        return {
            "chain": self.chain_id,
            "height": self.height,
            "prev": self.prev_hash,
            "time_ms": self.time_ms,
            "tx_count": self.tx_count,
            "tx_root": self.tx_root,
            "result_root": self.result_root,
            "state_root": self.state_root,
        }

    def encode(self) -> bytes:
        return canonical_encode(self.to_cbor_map())

    @property
    def hash(self) -> bytes:
        return sha256(self.encode())

    @classmethod
    def decode(cls, data: bytes) -> BlockHeader:
        try:
            m = canonical_decode(data)
            return cls(
                m["chain"],
                m["height"],
                m["prev"],
                m["time_ms"],
                m["tx_count"],
                m["tx_root"],
                m["result_root"],
                m["state_root"],
            )
        except (DecodeError, KeyError, TypeError) as exc:
            raise ValueError(f"not a block header: {exc}") from exc

    def to_json(self) -> dict[str, Any]:
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "hash": self.hash.hex(),
            "prev_hash": self.prev_hash.hex(),
            "time_ms": self.time_ms,
            "tx_count": self.tx_count,
            "tx_root": self.tx_root.hex(),
            "result_root": self.result_root.hex(),
            "state_root": self.state_root.hex(),
        }
