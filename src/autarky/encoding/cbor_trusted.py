"""Fast decoding of bytes that Autarky itself encoded and stored (state values, receipts).

Input from outside always goes through :func:`autarky.encoding.canonical_decode`, which checks the
bytes are canonical. Values read back from our own state were produced by
:func:`canonical_encode`, so re-checking them on every read would only cost time.
"""

from __future__ import annotations

from typing import Any

import cbor2

from autarky.encoding.encoder_cache import dumps_canonical

_HEAD_LENGTH = {24: 1, 25: 2, 26: 4, 27: 8}


def decode_trusted(data: bytes) -> Any:
    """Decode CBOR that this process's canonical encoder produced.

    Unsigned integers (most state values) are read directly; anything else goes to cbor2.
    """
    first = data[0]
    if first < 24 and len(data) == 1:
        return first
    length = _HEAD_LENGTH.get(first)
    if length is not None and len(data) == 1 + length:
        return int.from_bytes(data[1:], "big")
    return cbor2.loads(data)


def encode_trusted(value: Any) -> bytes:
    """Canonical CBOR of a value this process built from the data model (no tuple/float checks).

    For receipts, blocks and stored blobs whose shape the code fixes; anything that could carry
    outside input goes through :func:`autarky.encoding.canonical_encode`.
    """
    return dumps_canonical(value)
