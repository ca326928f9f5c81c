"""Properties of the state commitment, checked against a naive reference written from the design.

The reference recomputes the root from scratch from the final set of (key, value) pairs, with no
sharing, no batching and no canonicalisation tricks: the optimised tree must always agree with it,
whatever the batches, their boundaries and the order of changes inside them.
"""

from __future__ import annotations

from itertools import count

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from autarky.crypto.hashing import sha256
from autarky.ledger.smt import EMPTY_ROOT, InvalidProof, Proof, SparseMerkleTree, verify

PROPERTY_SETTINGS = settings(derandomize=True, deadline=None, max_examples=150)


def path_of(key: str) -> bytes:
    return sha256(b"autarky/smt/key\x00" + key.encode("utf-8"))


def bit(path: bytes, depth: int) -> int:
    return (path[depth // 8] >> (7 - depth % 8)) & 1


def reference_root(model: dict[str, bytes]) -> bytes:
    """The root by definition: empty is zeros, one key is its leaf, two or more is an internal node."""

    def subtree(entries: list[tuple[bytes, bytes]], depth: int) -> bytes:
        if not entries:
            return bytes(32)
        if len(entries) == 1:
            path, value_hash = entries[0]
            return sha256(b"\x00" + path + value_hash)
        left = [entry for entry in entries if bit(entry[0], depth) == 0]
        right = [entry for entry in entries if bit(entry[0], depth) == 1]
        return sha256(b"\x01" + subtree(left, depth + 1) + subtree(right, depth + 1))

    return subtree(sorted((path_of(key), sha256(value)) for key, value in model.items()), 0)


def keys_sharing_prefix(bits: int, label: str) -> list[str]:
    """Two keys ``<label>-<n>`` whose paths share at least ``bits`` leading bits (found deterministically)."""
    seen: dict[int, str] = {}
    for number in count():
        key = f"{label}-{number}"
        prefix = int.from_bytes(path_of(key), "big") >> (256 - bits)
        if prefix in seen:
            return [seen[prefix], key]
        seen[prefix] = key
    raise AssertionError("unreachable")


# A small universe, so that batches overwrite and delete each other's keys often, plus two pairs of
# keys whose paths share 16 and 20 leading bits, so deep splits and collapses happen too.
KEYS = (
    [f"k{number}" for number in range(24)]
    + keys_sharing_prefix(16, "deep")
    + keys_sharing_prefix(20, "deeper")
)
ABSENT = [f"never-{number}" for number in range(8)]

values = st.binary(max_size=3)
batches = st.dictionaries(st.sampled_from(KEYS), st.one_of(st.none(), values), max_size=14)


def applied(model: dict[str, bytes], batch: dict[str, bytes | None]) -> dict[str, bytes]:
    result = dict(model)
    for key, value in batch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = value
    return result


@PROPERTY_SETTINGS
@given(st.lists(batches, max_size=8), st.data())
def test_root_matches_reference_whatever_the_batching(
    batch_list: list[dict[str, bytes | None]], data: st.DataObject
) -> None:
    tree = SparseMerkleTree.empty()
    model: dict[str, bytes] = {}
    merged: dict[str, bytes | None] = {}
    snapshots: list[tuple[SparseMerkleTree, bytes, int]] = [(tree, tree.root, 0)]
    for batch in batch_list:
        changes = data.draw(st.permutations(list(batch.items())))  # order inside a batch is free
        tree = tree.update(changes)
        model = applied(model, batch)
        merged.update(batch)
        assert tree.root == reference_root(model)
        assert len(tree) == len(model)
        snapshots.append((tree, tree.root, len(model)))

    # Persistence: every earlier snapshot still has its own root and size.
    for snapshot, root, size in snapshots:
        assert snapshot.root == root
        assert len(snapshot) == size

    # Batch boundaries do not matter: all changes in one batch, or built from scratch.
    assert SparseMerkleTree.empty().update(sorted(merged.items(), reverse=True)).root == tree.root
    assert SparseMerkleTree.from_items(model.items()).root == tree.root
    for key in KEYS:
        expected = None if key not in model else sha256(model[key])
        assert tree.value_hash(key) == expected


@PROPERTY_SETTINGS
@given(st.lists(batches, max_size=6))
def test_every_key_has_a_valid_proof_and_no_false_one(batch_list: list[dict[str, bytes | None]]) -> None:
    tree = SparseMerkleTree.empty()
    model: dict[str, bytes] = {}
    for batch in batch_list:
        tree = tree.update(list(batch.items()))
        model = applied(model, batch)
    root = tree.root
    for key in KEYS + ABSENT:
        proof = tree.prove(key)
        assert Proof.decode(proof.encode()) == proof
        value = model.get(key)
        assert verify(root, key, value, proof)
        if value is None:
            assert not verify(root, key, b"", proof)
        else:
            assert not verify(root, key, None, proof)
            assert not verify(root, key, value + b"\x00", proof)
        for other in ("k0", "never-0"):
            if other != key:
                assert not verify(root, other, model.get(other), proof)


class TreeAgainstModel(RuleBasedStateMachine):
    """Random batches step by step; after each, the tree equals the model and old snapshots hold."""

    def __init__(self) -> None:
        super().__init__()
        self.tree = SparseMerkleTree.empty()
        self.model: dict[str, bytes] = {}
        self.history: list[tuple[SparseMerkleTree, bytes]] = []

    @rule(batch=batches)
    def apply_batch(self, batch: dict[str, bytes | None]) -> None:
        self.history.append((self.tree, self.tree.root))
        self.tree = self.tree.update(sorted(batch.items()))
        self.model = applied(self.model, batch)

    @rule(key=st.sampled_from(KEYS + ABSENT))
    def prove_one_key(self, key: str) -> None:
        proof = self.tree.prove(key)
        assert verify(self.tree.root, key, self.model.get(key), proof)

    @invariant()
    def root_matches_reference(self) -> None:
        assert self.tree.root == reference_root(self.model)
        assert len(self.tree) == len(self.model)

    @invariant()
    def old_snapshots_keep_their_roots(self) -> None:
        for snapshot, root in self.history:
            assert snapshot.root == root


TreeAgainstModel.TestCase.settings = settings(
    derandomize=True, deadline=None, max_examples=60, stateful_step_count=12
)
test_tree_against_model = TreeAgainstModel.TestCase


# Malformed input: decode raises InvalidProof or returns a Proof; a changed proof never verifies.

_SAMPLE_TREE = SparseMerkleTree.from_items((key, key.encode()) for key in KEYS)
_SAMPLE_PROOFS = [(key, _SAMPLE_TREE.prove(key)) for key in ("k3", "deep-0", "never-1", "never-2")]


@PROPERTY_SETTINGS
@given(st.binary(max_size=400))
def test_decoding_arbitrary_bytes_never_crashes(data: bytes) -> None:
    try:
        proof = Proof.decode(data)
    except InvalidProof:
        return
    assert not verify(_SAMPLE_TREE.root, "k3", b"k3", proof) or proof == _SAMPLE_TREE.prove("k3")


@PROPERTY_SETTINGS
@given(st.sampled_from(range(len(_SAMPLE_PROOFS))), st.data())
def test_mutated_proofs_never_verify(which: int, data: st.DataObject) -> None:
    key, proof = _SAMPLE_PROOFS[which]
    value = key.encode() if key in KEYS else None
    encoded = proof.encode()
    position = data.draw(st.integers(0, len(encoded) - 1))
    mutation = data.draw(st.sampled_from(["flip", "delete", "insert"]))
    if mutation == "flip":
        mask = data.draw(st.integers(1, 255))
        mutated = encoded[:position] + bytes([encoded[position] ^ mask]) + encoded[position + 1 :]
    elif mutation == "delete":
        mutated = encoded[:position] + encoded[position + 1 :]
    else:
        mutated = encoded[:position] + bytes([data.draw(st.integers(0, 255))]) + encoded[position:]
    try:
        forged = Proof.decode(mutated)
    except InvalidProof:
        return
    assert forged != proof
    assert not verify(_SAMPLE_TREE.root, key, value, forged)


def test_reference_agrees_on_the_empty_tree() -> None:
    assert reference_root({}) == EMPTY_ROOT == SparseMerkleTree.empty().root
