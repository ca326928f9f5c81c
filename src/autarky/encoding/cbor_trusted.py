"""Fast decoding of bytes that Autarky itself encoded and stored (state values, receipts).

Input from outside always goes through :func:`autarky.encoding.canonical_decode`, which checks the
bytes are canonical. Values read back from our own state were produced by
:func:`canonical_encode`, so re-checking them on every read would only cost time.
"""

from __future__ import annotations

from typing import Any

import cbor2


def decode_trusted(data: bytes) -> Any:
    """Decode CBOR that this process's canonical encoder produced."""
    return cbor2.loads(data)
