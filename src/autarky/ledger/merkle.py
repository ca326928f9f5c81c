"""Merkle roots over ordered lists (transactions and receipts of a block), RFC 6962 style.

Leaves and inner nodes carry different one-byte prefixes so a leaf can never be passed off as an
inner node. An empty list has the root SHA-256("").
"""

from __future__ import annotations

from collections.abc import Sequence

from autarky.crypto.hashing import sha256

EMPTY_LIST_ROOT = sha256(b"")


def leaf_hash(data: bytes) -> bytes:
    return sha256(b"\x00" + data)


def node_hash(left: bytes, right: bytes) -> bytes:
    return sha256(b"\x01" + left + right)


def merkle_root(leaves: Sequence[bytes]) -> bytes:
    """Root over ``leaves`` (already-serialised items, hashed here as leaves)."""
    if not leaves:
        return EMPTY_LIST_ROOT
    level = [leaf_hash(item) for item in leaves]
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def merkle_proof(leaves: Sequence[bytes], index: int) -> list[tuple[bool, bytes]]:
    """Sibling path for ``leaves[index]``: (sibling_is_left, sibling_hash) from bottom to top."""
    assert 0 <= index < len(leaves)
    level = [leaf_hash(item) for item in leaves]
    path: list[tuple[bool, bytes]] = []
    while len(level) > 1:
        sibling = index ^ 1
        if sibling < len(level):
            path.append((sibling < index, level[sibling]))
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
        index //= 2
    return path


def verify_merkle_proof(root: bytes, leaf: bytes, path: Sequence[tuple[bool, bytes]]) -> bool:
    current = leaf_hash(leaf)
    for sibling_is_left, sibling in path:
        current = node_hash(sibling, current) if sibling_is_left else node_hash(current, sibling)
    return current == root
