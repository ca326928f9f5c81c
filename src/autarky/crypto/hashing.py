"""Hash functions. SHA-256 everywhere a hash is part of consensus."""

from __future__ import annotations

import hashlib


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()
