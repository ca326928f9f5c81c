"""Reusable cbor2 encoders, one per thread.

``cbor2.dumps`` builds a new encoder and buffer on every call, which costs more than encoding a
small value (3.6 µs against 0.1 µs for an integer, measured here). Reusing one encoder per thread
gives the same bytes without that set-up. It must be per thread: the node encodes on its event
loop thread and in worker threads at once, and an encoder holds a buffer between calls.
"""

from __future__ import annotations

import io
import threading
from typing import Any

import cbor2

_local = threading.local()


def _encode(value: Any, slot: str, canonical: bool) -> bytes:
    """Encode with this thread's encoder kept in ``_local.<slot>`` (made on first use)."""
    try:
        buffer, encoder = getattr(_local, slot)
    except AttributeError:
        buffer = io.BytesIO()
        encoder = cbor2.CBOREncoder(buffer, canonical=canonical)
        setattr(_local, slot, (buffer, encoder))
    buffer.seek(0)
    buffer.truncate()
    try:
        encoder.encode(value)
    except BaseException:
        # Never leave a half-written buffer behind for the next call.
        delattr(_local, slot)
        raise
    encoded: bytes = buffer.getvalue()
    return encoded


def dumps_plain(value: Any) -> bytes:
    """Exactly ``cbor2.dumps(value)`` (maps in their own key order), faster. Canonical only when
    every map's keys are already in canonical order (``autarky.encoding.cbor`` sees to that)."""
    return _encode(value, "plain", False)


def dumps_canonical(value: Any) -> bytes:
    """Exactly ``cbor2.dumps(value, canonical=True)``, faster."""
    return _encode(value, "canonical", True)
