"""State commitment: a persistent, compact binary sparse Merkle tree with inclusion and exclusion proofs.

Shape
-----
Every state key has a 256-bit *path*, ``SHA-256("autarky/smt/key" 0x00 || utf8(key))``, read most
significant bit first: bit ``d`` of the path chooses the branch at depth ``d`` (0 = left, 1 = right).
A subtree holding no key is *empty*; a subtree holding exactly one key *is* that key's leaf, which
therefore sits at the shallowest depth where it is alone (as in Diem's Jellyfish Merkle tree). Any
subtree holding two or more keys is an internal node, even when all of them go the same way. So the
tree is a pure function of the set of (path, value hash) pairs, never of the order of updates, and
its depth is about log2(number of keys), not 256.

Hashes::

    empty          = 32 zero bytes                       (EMPTY_ROOT)
    leaf           = SHA-256(0x00 || path || SHA-256(value))
    internal node  = SHA-256(0x01 || left hash || right hash)

The prefixes keep a leaf from ever being read as an internal node and vice versa.

Persistence
-----------
Nodes are immutable tuples, so :meth:`SparseMerkleTree.update` returns a new tree that shares every
untouched subtree with the old one, and the old tree stays valid (a block that fails to commit
simply drops the new tree). A batch walks down once, splitting the sorted change paths at each
node, so k changes touch about ``k * (depth - log2 k) + k`` nodes. Nodes are plain tuples (not
class instances) because CPython's cycle collector stops tracking a tuple whose items are all
untracked; with the help of ``SparseMerkleTree._recent`` it does so in one pass, so a state of
millions of nodes does not make the collector's full passes slow.

Proofs
------
A :class:`Proof` records where the search for a key's path ended: at that key's leaf (inclusion),
at an empty subtree, or at the leaf of a different key whose path shares the prefix (both
exclusion). It carries the sibling hashes from the root down, compressed to a bitmap of which
siblings are non-empty plus the non-empty hashes. Verifiers recompute the root from the claim and
the proof; nothing in a proof is trusted.

Errors: :class:`InvalidProof` (a ``ValueError``) is raised by :meth:`Proof.decode` and by the
:class:`Proof` constructor for anything that is not a well-formed proof. The ``verify_*`` functions
never raise for a bad proof, they answer ``False``.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, TypeAlias, TypeVar

from autarky.crypto.hashing import sha256
from autarky.encoding import DecodeError, canonical_decode, canonical_encode

__all__ = [
    "EMPTY_ROOT",
    "InvalidProof",
    "Proof",
    "SparseMerkleTree",
    "key_path",
    "verify",
    "verify_exclusion",
    "verify_inclusion",
]

EMPTY_ROOT = bytes(32)
"""Root (and hash) of an empty tree or subtree."""

PATH_BITS = 256
HASH_BYTES = 32

_KEY_DOMAIN = b"autarky/smt/key\x00"
_LEAF_PREFIX = b"\x00"
_INTERNAL_PREFIX = b"\x01"

_RECENT_NODES_KEPT = 16_384
"""How many of the nodes made by the last update or build a tree keeps (see SparseMerkleTree)."""

MAX_PROOF_BYTES = 10_240
"""Largest encoded proof :meth:`Proof.decode` reads (a 256-deep proof with every sibling is ~8.9 KB)."""

# Nodes. A leaf is a 3-tuple and an internal node a 4-tuple, so ``len(node)`` tells them apart.
#   leaf:     (hash, path, value_hash)
#   internal: (hash, left, right, leaf_count)     left/right are nodes, None when empty
_Leaf: TypeAlias = tuple[bytes, bytes, bytes]
_Internal: TypeAlias = "tuple[bytes, _Node, _Node, int]"
_Node: TypeAlias = "_Leaf | _Internal | None"


class InvalidProof(ValueError):
    """The bytes or fields given are not a well-formed proof."""


def key_path(key: str) -> bytes:
    """The 256-bit path of a state key."""
    return sha256(_KEY_DOMAIN + key.encode("utf-8"))


def _leaf_hash(path: bytes, value_hash: bytes) -> bytes:
    return sha256(_LEAF_PREFIX + path + value_hash)


def _internal_hash(left_hash: bytes, right_hash: bytes) -> bytes:
    return sha256(_INTERNAL_PREFIX + left_hash + right_hash)


def _bit(bits: bytes, index: int) -> int:
    """Bit ``index`` of ``bits``, most significant bit of the first byte first."""
    return (bits[index >> 3] >> (7 - (index & 7))) & 1


def _make_leaf(path: bytes, value_hash: bytes, made: list[_Node]) -> _Leaf:
    leaf = (_leaf_hash(path, value_hash), path, value_hash)
    made.append(leaf)
    return leaf


def _count(node: _Node) -> int:
    if node is None:
        return 0
    if len(node) == 3:
        return 1
    return node[3]


def _join(left: _Node, right: _Node, made: list[_Node]) -> _Node:
    """The subtree with children ``left`` and ``right``, kept canonical: a lone leaf moves up."""
    # Hot path (about ten calls per changed key): the internal-node hash is written out here.
    node: _Internal
    if left is None:
        if right is None or len(right) == 3:
            return right
        node = (sha256(_INTERNAL_PREFIX + EMPTY_ROOT + right[0]), None, right, right[3])
    elif right is None:
        if len(left) == 3:
            return left
        node = (sha256(_INTERNAL_PREFIX + left[0] + EMPTY_ROOT), left, None, left[3])
    else:
        count = (1 if len(left) == 3 else left[3]) + (1 if len(right) == 3 else right[3])
        node = (sha256(_INTERNAL_PREFIX + left[0] + right[0]), left, right, count)
    made.append(node)
    return node


def _split(paths: Sequence[bytes], depth: int, lo: int, hi: int) -> int:
    """First index in ``paths[lo:hi]`` (sorted, sharing ``depth`` leading bits) whose bit ``depth`` is 1."""
    if _bit(paths[lo], depth):
        return lo
    if not _bit(paths[hi - 1], depth):
        return hi
    return bisect_left(paths, 1, lo + 1, hi - 1, key=lambda path: _bit(path, depth))


def _build(
    depth: int, paths: Sequence[bytes], value_hashes: Sequence[bytes], lo: int, hi: int, made: list[_Node]
) -> _Node:
    """The subtree at ``depth`` holding exactly the leaves ``lo:hi`` (sorted, distinct, at least one)."""
    if hi - lo == 1:
        return _make_leaf(paths[lo], value_hashes[lo], made)
    split = _split(paths, depth, lo, hi)
    left = _build(depth + 1, paths, value_hashes, lo, split, made) if lo < split else None
    right = _build(depth + 1, paths, value_hashes, split, hi, made) if split < hi else None
    return _join(left, right, made)


def _pair(first: _Leaf, second: _Leaf, depth: int, made: list[_Node]) -> _Node:
    """The subtree at ``depth`` holding two leaves whose paths share at least ``depth`` leading bits."""
    difference = int.from_bytes(first[1], "big") ^ int.from_bytes(second[1], "big")
    assert difference != 0, "two leaves with the same path"
    split_depth = PATH_BITS - difference.bit_length()
    assert split_depth >= depth
    if _bit(first[1], split_depth):
        first, second = second, first
    node = _join(first, second, made)
    path = first[1]
    for level in range(split_depth - 1, depth - 1, -1):
        node = _join(None, node, made) if _bit(path, level) else _join(node, None, made)
    return node


def _update_one(node: _Node, depth: int, path: bytes, value_hash: bytes | None, made: list[_Node]) -> _Node:
    """``node`` (at ``depth``) with one change applied: walk down to where ``path`` ends, rebuild up."""
    original = node
    ancestors: list[_Internal] = []
    while node is not None and len(node) == 4:
        ancestors.append(node)
        # _bit(path, depth), written out: this loop is the hot path.
        node = node[2] if (path[depth >> 3] >> (7 - (depth & 7))) & 1 else node[1]
        depth += 1
    new: _Node
    if node is None:
        if value_hash is None:
            return original  # deleting an absent key
        new = _make_leaf(path, value_hash, made)
    elif node[1] == path:
        if value_hash == node[2]:
            return original  # same value again
        new = None if value_hash is None else _make_leaf(path, value_hash, made)
    else:
        if value_hash is None:
            return original  # deleting an absent key
        new = _pair(node, _make_leaf(path, value_hash, made), depth, made)
    for parent in reversed(ancestors):
        depth -= 1
        if (path[depth >> 3] >> (7 - (depth & 7))) & 1:
            new = _join(parent[1], new, made)
        else:
            new = _join(new, parent[2], made)
    return new


def _merge_into_leaf(
    leaf: _Leaf,
    depth: int,
    paths: Sequence[bytes],
    value_hashes: Sequence[bytes | None],
    lo: int,
    hi: int,
    made: list[_Node],
) -> _Node:
    """The subtree that was ``leaf`` after the changes ``lo:hi``: rebuild it from the merged items."""
    leaf_path = leaf[1]
    position = bisect_left(paths, leaf_path, lo, hi)
    replaced = position < hi and paths[position] == leaf_path
    merged_paths: list[bytes] = []
    merged_hashes: list[bytes] = []
    for index in range(lo, hi):
        if index == position and not replaced:
            merged_paths.append(leaf_path)
            merged_hashes.append(leaf[2])
        value_hash = value_hashes[index]
        if value_hash is not None:
            merged_paths.append(paths[index])
            merged_hashes.append(value_hash)
    if position == hi:
        merged_paths.append(leaf_path)
        merged_hashes.append(leaf[2])
    if not merged_paths:
        return None
    if len(merged_paths) == 1 and merged_paths[0] == leaf_path and merged_hashes[0] == leaf[2]:
        return leaf
    return _build(depth, merged_paths, merged_hashes, 0, len(merged_paths), made)


def _update(
    node: _Node,
    depth: int,
    paths: Sequence[bytes],
    value_hashes: Sequence[bytes | None],
    lo: int,
    hi: int,
    made: list[_Node],
) -> _Node:
    """``node`` (at ``depth``) with the changes ``lo:hi`` applied (sorted, distinct, at least one)."""
    if hi - lo == 1:
        return _update_one(node, depth, paths[lo], value_hashes[lo], made)
    if node is None:
        kept_paths: list[bytes] = []
        kept_hashes: list[bytes] = []
        for index in range(lo, hi):
            value_hash = value_hashes[index]
            if value_hash is not None:  # deleting an absent key changes nothing
                kept_paths.append(paths[index])
                kept_hashes.append(value_hash)
        return _build(depth, kept_paths, kept_hashes, 0, len(kept_paths), made) if kept_paths else None
    if len(node) == 3:
        return _merge_into_leaf(node, depth, paths, value_hashes, lo, hi, made)
    _, left, right, _ = node
    split = _split(paths, depth, lo, hi)
    new_left = _update(left, depth + 1, paths, value_hashes, lo, split, made) if lo < split else left
    new_right = _update(right, depth + 1, paths, value_hashes, split, hi, made) if split < hi else right
    if new_left is left and new_right is right:
        return node
    return _join(new_left, new_right, made)


_Value = TypeVar("_Value")


def _sorted_by_path(entries: Iterable[tuple[bytes, _Value]]) -> tuple[list[bytes], list[_Value]]:
    """Paths and their values, sorted by path. The same key twice in one batch is a caller bug."""
    ordered = sorted(entries, key=itemgetter(0))
    paths = [entry[0] for entry in ordered]
    for index in range(1, len(paths)):
        assert paths[index - 1] != paths[index], "the same key appears twice in one batch"
    return paths, [entry[1] for entry in ordered]


class SparseMerkleTree:
    """An immutable snapshot of the state commitment. :meth:`update` returns a new snapshot."""

    # ``_recent`` holds the last nodes this snapshot's construction made, newest first. It changes
    # no result; it is there for CPython's cycle collector. The collector stops tracking a tuple
    # whose items are all untracked, checking the tuples of a generation once each, in the order
    # its reachability scan left them. Reached only through their parents, fresh nodes come
    # parent-first and only one level per pass would stop being tracked: a large state would stay
    # tracked and full collections would take hundreds of milliseconds. The scan reaches the items
    # of a tuple last to first, so ``_recent`` (scanned before ``_root``: slots are laid out sorted
    # by name) puts the fresh nodes children-first. While a tree is being built, the ``made`` list
    # referenced from the running frame keeps them in creation order, which is children-first too.
    __slots__ = ("_recent", "_root")

    def __init__(self, _root: _Node = None, _made: Sequence[_Node] = ()) -> None:
        """Private: use :meth:`empty`, :meth:`from_items` or :meth:`update`."""
        self._root = _root
        self._recent = tuple(reversed(_made[-_RECENT_NODES_KEPT:]))

    @classmethod
    def empty(cls) -> SparseMerkleTree:
        return cls(None)

    @classmethod
    def from_items(cls, items: Iterable[tuple[str, bytes]]) -> SparseMerkleTree:
        """A tree holding exactly ``items`` (keys distinct), built bottom-up in one pass."""
        paths, value_hashes = _sorted_by_path((key_path(key), sha256(value)) for key, value in items)
        if not paths:
            return cls(None)
        made: list[_Node] = []
        root = _build(0, paths, value_hashes, 0, len(paths), made)
        return cls(root, made)

    @property
    def root(self) -> bytes:
        node = self._root
        return EMPTY_ROOT if node is None else node[0]

    def __len__(self) -> int:
        """Number of keys (leaves)."""
        return _count(self._root)

    def __repr__(self) -> str:
        return f"SparseMerkleTree(root={self.root.hex()}, leaves={len(self)})"

    def update(self, changes: Sequence[tuple[str, bytes | None]]) -> SparseMerkleTree:
        """A new tree with ``changes`` applied: ``(key, value)`` sets, ``(key, None)`` deletes.

        Keys in one batch must be distinct; their order does not matter. ``self`` is unchanged.
        """
        if not changes:
            return self
        paths, value_hashes = _sorted_by_path(
            (key_path(key), None if value is None else sha256(value)) for key, value in changes
        )
        made: list[_Node] = []
        new_root = _update(self._root, 0, paths, value_hashes, 0, len(paths), made)
        return self if new_root is self._root else SparseMerkleTree(new_root, made)

    def _find(self, path: bytes) -> tuple[_Leaf | None, int, bytes, list[bytes]]:
        """Walk towards ``path``: the leaf (or None) where it ended, its depth, sibling bitmap and hashes."""
        node = self._root
        depth = 0
        bitmap = bytearray(PATH_BITS // 8)
        siblings: list[bytes] = []
        while node is not None and len(node) == 4:
            if _bit(path, depth):
                sibling, node = node[1], node[2]
            else:
                sibling, node = node[2], node[1]
            if sibling is not None:
                bitmap[depth >> 3] |= 0x80 >> (depth & 7)
                siblings.append(sibling[0])
            depth += 1
        return node, depth, bytes(bitmap[: (depth + 7) // 8]), siblings

    def value_hash(self, key: str) -> bytes | None:
        """SHA-256 of the value stored under ``key``, or None when the key is absent."""
        path = key_path(key)
        node, _, _, _ = self._find(path)
        return None if node is None or node[1] != path else node[2]

    def prove(self, key: str) -> Proof:
        """An inclusion proof if ``key`` is present, otherwise an exclusion proof."""
        path = key_path(key)
        node, depth, bitmap, siblings = self._find(path)
        other_leaf = None if node is None or node[1] == path else (node[1], node[2])
        return Proof(path, depth, bitmap, tuple(siblings), other_leaf)


def _is_hash(value: object) -> bool:
    return type(value) is bytes and len(value) == HASH_BYTES


def _proof_problem(proof: Proof) -> str | None:
    """Why ``proof`` is not well formed, or None. Checks shape only, not the claim."""
    depth = proof.depth
    if not _is_hash(proof.path):
        return "path must be 32 bytes"
    if type(depth) is not int or not 0 <= depth <= PATH_BITS:
        return f"depth must be an integer from 0 to {PATH_BITS}"
    bitmap = proof.bitmap
    if type(bitmap) is not bytes or len(bitmap) != (depth + 7) // 8:
        return "bitmap must be one bit per level, padded to whole bytes"
    if depth & 7 and bitmap[-1] & (0xFF >> (depth & 7)):
        return "bitmap padding bits must be zero"
    siblings = proof.siblings
    if type(siblings) is not tuple:
        return "siblings must be a tuple"
    if len(siblings) != sum(byte.bit_count() for byte in bitmap):
        return "number of sibling hashes differs from the bitmap"
    for sibling in siblings:
        if not _is_hash(sibling) or sibling == EMPTY_ROOT:
            return "each listed sibling must be a non-empty 32-byte hash"
    other_leaf = proof.other_leaf
    if other_leaf is not None and (
        type(other_leaf) is not tuple
        or len(other_leaf) != 2
        or not _is_hash(other_leaf[0])
        or not _is_hash(other_leaf[1])
    ):
        return "other_leaf must be None or (path, value_hash), 32 bytes each"
    return None


@dataclass(frozen=True, slots=True)
class Proof:
    """Where the search for ``path`` ended, and the sibling hashes on the way there.

    ``depth`` is the number of internal nodes passed. Bit ``d`` of ``bitmap`` (most significant
    bit first) is 1 when the sibling at depth ``d`` is non-empty, and ``siblings`` lists those
    non-empty sibling hashes from the root down. ``other_leaf`` is ``(path, value_hash)`` of the
    leaf found instead when the search ended at a different key's leaf, else None. A proof does not
    say what it proves: the caller states the claim to :func:`verify`.
    """

    path: bytes
    depth: int
    bitmap: bytes
    siblings: tuple[bytes, ...]
    other_leaf: tuple[bytes, bytes] | None = None

    def __post_init__(self) -> None:
        problem = _proof_problem(self)
        if problem is not None:
            raise InvalidProof(problem)

    def encode(self) -> bytes:
        """Canonical CBOR: ``[path, depth, bitmap, [sibling...], null | [leaf path, leaf value hash]]``."""
        other = None if self.other_leaf is None else list(self.other_leaf)
        return canonical_encode([self.path, self.depth, self.bitmap, list(self.siblings), other])

    @classmethod
    def decode(cls, data: bytes) -> Proof:
        """The proof encoded in ``data``. Raises :class:`InvalidProof` for anything else."""
        try:
            value = canonical_decode(data, max_bytes=MAX_PROOF_BYTES)
        except DecodeError as exc:
            raise InvalidProof(f"proof is not canonical CBOR: {exc}") from exc
        if type(value) is not list or len(value) != 5:
            raise InvalidProof("proof must be a list of 5 items")
        path, depth, bitmap, siblings, other = value
        if type(siblings) is not list:
            raise InvalidProof("siblings must be a list")
        if other is not None:
            if type(other) is not list or len(other) != 2:
                raise InvalidProof("other leaf must be null or a list of 2 items")
            other = (other[0], other[1])
        return cls(path, depth, bitmap, tuple(siblings), other)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready form for the HTTP API, bytes as lowercase hex."""
        other = self.other_leaf
        return {
            "path": self.path.hex(),
            "depth": self.depth,
            "bitmap": self.bitmap.hex(),
            "siblings": [sibling.hex() for sibling in self.siblings],
            "other_leaf": None if other is None else {"path": other[0].hex(), "value_hash": other[1].hex()},
        }


def _root_from(proof: Proof, bottom_hash: bytes) -> bytes:
    """Fold ``bottom_hash`` (the node where the search ended) up through the siblings to a root."""
    path = proof.path
    bitmap = proof.bitmap
    siblings = proof.siblings
    remaining = len(siblings)
    node_hash = bottom_hash
    for depth in range(proof.depth - 1, -1, -1):
        if _bit(bitmap, depth):
            remaining -= 1
            sibling = siblings[remaining]
        else:
            sibling = EMPTY_ROOT
        if _bit(path, depth):
            node_hash = _internal_hash(sibling, node_hash)
        else:
            node_hash = _internal_hash(node_hash, sibling)
    return node_hash


def _claim_is_checkable(root: object, key: object, proof: object) -> bool:
    return _is_hash(root) and type(key) is str and type(proof) is Proof


def verify_inclusion(root: bytes, key: str, value: bytes, proof: Proof) -> bool:
    """True when ``proof`` shows ``key`` holding ``value`` in the tree with ``root``."""
    if not _claim_is_checkable(root, key, proof) or type(value) is not bytes:
        return False
    path = key_path(key)
    if proof.path != path or proof.other_leaf is not None:
        return False
    return _root_from(proof, _leaf_hash(path, sha256(value))) == root


def verify_exclusion(root: bytes, key: str, proof: Proof) -> bool:
    """True when ``proof`` shows ``key`` absent from the tree with ``root``."""
    if not _claim_is_checkable(root, key, proof):
        return False
    path = key_path(key)
    if proof.path != path:
        return False
    other_leaf = proof.other_leaf
    if other_leaf is None:
        return _root_from(proof, EMPTY_ROOT) == root
    other_path, other_value_hash = other_leaf
    # The other leaf must be a different key sitting where this key's path leads.
    difference = int.from_bytes(other_path, "big") ^ int.from_bytes(path, "big")
    if difference == 0 or PATH_BITS - difference.bit_length() < proof.depth:
        return False
    return _root_from(proof, _leaf_hash(other_path, other_value_hash)) == root


def verify(root: bytes, key: str, value: bytes | None, proof: Proof) -> bool:
    """Inclusion of ``key`` with ``value``, or exclusion of ``key`` when ``value`` is None."""
    if value is None:
        return verify_exclusion(root, key, proof)
    return verify_inclusion(root, key, value, proof)
